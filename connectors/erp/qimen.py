"""Qimen (奇门) `taobao.qimen.deliveryorder.create` and `taobao.qimen.order.cancel` for WMSs that take
orders this way (pure functions).

The request is a POST to the WMS's router URL: system parameters in the query string (`method`,
`app_key`, `customerId`, `timestamp` in Beijing time, `format=xml`, `v=2.0`, `sign_method=md5`, `sign`)
and the XML `<request><deliveryOrder>…</deliveryOrder><orderLines>…</orderLines></request>` as the body
(erp_and_messaging.md §1). `deliveryOrderCode` is the canonical order id: a WMS answers a repeated code
with the delivery order it already has, so a retried or replayed event creates nothing twice.

An order cancelled, or refunded in full, after it was paid and before anything shipped becomes
`order.cancel` (单据取消) of that delivery order: `<request>` with `warehouseCode`, `ownerCode`, `orderCode`
(the deliveryOrderCode), `orderType`, `cancelReason`, signed like every Qimen call. After shipping there
is nothing for the WMS to cancel (the parcel is on its way): such an event is not sent (`method_for`).

The receiver travels as Tonglu holds it: masked name, phone and street, plus the platform's token for
an authorised decrypt channel (`extendProps/secureToken`); the plain text never leaves the platform.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from connectors.erp.signing import qimen_sign
from schemas.canonical import from_minor, ms_to_beijing

METHOD = "taobao.qimen.deliveryorder.create"
CANCEL_METHOD = "taobao.qimen.order.cancel"
CANCELLING = {"OrderCancelled": "订单已取消 order cancelled", "OrderRefunded": "订单已全额退款 order refunded in full"}
_SHIPPED = ("SHIPPED", "PARTIALLY_SHIPPED", "DELIVERED", "COMPLETED")
CONTENT_TYPE = "text/xml;charset=utf-8"


@dataclass(frozen=True)
class QimenParty:
    """Who the WMS knows: the app key and owner (customerId), the warehouse, the goods' owner code."""

    app_key: str
    customer_id: str
    warehouse_code: str
    owner_code: str
    order_type: str = "JYCK"  # 一般交易出库 ordinary sale
    logistics_code: str = "OTHER"  # the WMS picks the carrier


def _el(name: str, value) -> str:
    return f"<{name}>{'' if value is None else escape(str(value))}</{name}>"


def _time(ms: int | None) -> str | None:
    return None if ms is None else ms_to_beijing(ms)


def _lines(order: dict, party: QimenParty) -> str:
    currency, out = order["currency"], []
    for n, line in enumerate(order["lines"], 1):
        quantity = line["quantity"] or 0
        actual = line["total"] // quantity if quantity else line["total"]
        out.append("<orderLine>" + "".join([
            _el("orderLineNo", n), _el("sourceOrderCode", order["external_id"]),
            _el("subSourceOrderCode", line["line_id"]), _el("ownerCode", party.owner_code),
            _el("itemCode", line.get("merchant_sku") or line.get("sku_id")), _el("itemId", line.get("sku_id")),
            _el("itemName", line.get("title")), _el("inventoryType", "ZP"), _el("planQty", quantity),
            _el("retailPrice", from_minor(line["unit_price"], currency)),
            _el("actualPrice", from_minor(actual, currency)),
            _el("discountAmount", from_minor(line.get("discount") or 0, currency))]) + "</orderLine>")
    return "".join(out)


def deliveryorder_xml(event: dict, party: QimenParty, source_code: str, source_name: str) -> bytes:
    """The XML body of `deliveryorder.create` for the order snapshot an `OrderEvent` carries.

    `source_code`/`source_name`: the platform's Qimen code (`TB`, `JD`, … or `OTHER`) and its name.
    """
    order = event["order"]
    currency = order["currency"]
    buyer, receiver = order.get("buyer") or {}, order.get("receiver") or {}
    money = {name: from_minor(order.get(field) or 0, currency) for name, field in (
        ("totalAmount", "paid_total"), ("itemAmount", "items_total"), ("discountAmount", "discount_total"),
        ("freight", "shipping_fee"), ("arAmount", "paid_total"), ("gotAmount", "paid_total"))}
    head = "".join([
        _el("deliveryOrderCode", order["order_id"]), _el("orderType", party.order_type),
        _el("warehouseCode", party.warehouse_code), _el("sourcePlatformCode", source_code),
        _el("sourcePlatformName", source_name), _el("createTime", _time(order.get("created_at"))),
        _el("placeOrderTime", _time(order.get("created_at"))), _el("payTime", _time(order.get("paid_at"))),
        _el("operateTime", _time(event["occurred_at"])), _el("shopNick", order["shop_id"]),
        _el("buyerNick", buyer.get("nick_masked")), *(_el(k, v) for k, v in money.items()),
        _el("logisticsCode", party.logistics_code), _el("buyerMessage", buyer.get("message")),
        _el("remark", f"{event['event_type']} v{event['version']}"),
        "<receiverInfo>", _el("name", receiver.get("name_masked")), _el("zipCode", receiver.get("postal_code")),
        _el("mobile", receiver.get("phone_masked")), _el("countryCode", receiver.get("country")),
        _el("province", receiver.get("province")), _el("city", receiver.get("city")),
        _el("area", receiver.get("district")), _el("detailAddress", receiver.get("address_masked")),
        "</receiverInfo>",
        "<extendProps>", _el("secureToken", receiver.get("secure_token")), _el("tongluEventId", event["event_id"]),
        "</extendProps>"])
    xml = (f'<?xml version="1.0" encoding="utf-8"?><request><deliveryOrder>{head}</deliveryOrder>'
           f"<orderLines>{_lines(order, party)}</orderLines></request>")
    return xml.encode("utf-8")


def method_for(event_type: str, order: dict) -> str | None:
    """The Qimen method an order event becomes: `order.cancel` for a cancellation or full refund of a paid
    order that has not shipped, `deliveryorder.create` for any other event, None when a cancellation
    needs no call (never paid: the WMS never had it; shipped: nothing left to stop)."""
    if event_type not in CANCELLING:
        return METHOD
    if order.get("paid_at") is None or order.get("shipments") or order.get("status") in _SHIPPED:
        return None
    return CANCEL_METHOD


def ordercancel_xml(event: dict, party: QimenParty) -> bytes:
    """The XML body of `order.cancel` for the order an `OrderCancelled`/`OrderRefunded` event carries."""
    order = event["order"]
    reason = CANCELLING.get(event["event_type"], event["event_type"])
    body = "".join([
        _el("warehouseCode", party.warehouse_code), _el("ownerCode", party.owner_code),
        _el("orderCode", order["order_id"]), _el("orderType", party.order_type), _el("cancelReason", reason),
        "<extendProps>", _el("tongluEventId", event["event_id"]), "</extendProps>"])
    return f'<?xml version="1.0" encoding="utf-8"?><request>{body}</request>'.encode()


def request_query(party: QimenParty, secret: str, body: bytes, now_ms: int, method: str = METHOD) -> str:
    """The signed query string (without `?`) of one attempt at `now_ms`."""
    params = {"method": method, "app_key": party.app_key, "customerId": party.customer_id,
              "timestamp": ms_to_beijing(now_ms), "format": "xml", "v": "2.0", "sign_method": "md5"}
    params["sign"] = qimen_sign(secret, params, body)
    return urlencode(params)


_FLAG = re.compile(rb"<flag>\s*([A-Za-z]+)\s*</flag>")
_CODE = re.compile(rb"<code>\s*([^<]*?)\s*</code>")
_MESSAGE = re.compile(rb"<message>\s*([^<]*?)\s*</message>")


def response_error(body: bytes) -> str | None:
    """None when a Qimen response says `<flag>success</flag>`, else the one-line reason (code: message)."""
    flag = _FLAG.search(body)
    if flag and flag.group(1).lower() == b"success":
        return None
    code, message = _CODE.search(body), _MESSAGE.search(body)
    if flag is None:
        return f"not a Qimen response: {body[:120].decode('utf-8', 'replace')!r}"
    return (f"flag {flag.group(1).decode()}: {code.group(1).decode('utf-8', 'replace') if code else '?'}: "
            f"{message.group(1).decode('utf-8', 'replace') if message else ''}").strip()
