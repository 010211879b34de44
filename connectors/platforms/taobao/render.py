"""Simulated orders rendered as TOP answers: a trade JSON object as the API returns it, and its XML form."""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

from connectors.simkit.world import SimLine, SimOrder
from schemas.canonical import ms_to_beijing

LINE_REFUND = {"NONE": "NO_REFUND", "REQUESTED": "WAIT_SELLER_AGREE", "REFUNDED": "SUCCESS",
               "REJECTED": "SELLER_REFUSE_BUYER"}
_KEEP_IN_STREET = set("路街道巷弄号楼栋院室单元区")


def yuan(fen: int) -> str:
    """Integer fen -> TOP yuan string with two decimals ('157.80')."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def trade_status(order: SimOrder) -> str:
    """The TOP trade status of a simulated order (canonical status + payment/refund state)."""
    status = order.status
    if status == "PENDING_PAYMENT":
        return "WAIT_BUYER_PAY"
    if status == "PAID":
        return "WAIT_SELLER_SEND_GOODS"
    if status == "PARTIALLY_SHIPPED":
        return "SELLER_CONSIGNED_PART"
    if status in ("SHIPPED", "DELIVERED"):
        # TRADE_BUYER_SIGNED is for cash-on-delivery only; delivered-not-finished still waits for confirmation
        return "WAIT_BUYER_CONFIRM_GOODS"
    if status == "COMPLETED":
        return "TRADE_FINISHED"
    if status == "CANCELLED":
        return "TRADE_CLOSED" if order.paid_at is not None else "TRADE_CLOSED_BY_TAOBAO"
    raise ValueError(f"unknown simulated status {status!r}")


def mask_name_tb(name: str) -> str:
    """Taobao's receiver-name mask: first character + '**'."""
    return name[:1] + "**" if name else ""


def mask_mobile_tb(phone: str) -> str:
    """Taobao's mobile mask: seven stars + the last 4 digits."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "*******" + digits[-4:] if digits else ""


def mask_street_tb(street: str) -> str:
    """Taobao-like street mask: first character and road/number markers kept, everything else starred."""
    if not street:
        return ""
    return street[0] + "".join(ch if ch in _KEEP_IN_STREET else "*" for ch in street[1:])


def oaid(order: SimOrder) -> str:
    """A stable opaque order-address id standing in for Taobao's `oaid`: the same receiver gives the same
    id (Taobao uses it to tell which orders may ship together)."""
    plain = f"{order.shop_id}|{order.receiver_name}|{order.receiver_phone}|{order.province}{order.city}{order.street}"
    return "1" + hashlib.sha256(plain.encode()).hexdigest()[:67]


def _line_status(order: SimOrder, line: SimLine, trade: str) -> str:
    if line.refund_status == "REFUNDED":
        return "TRADE_CLOSED"
    if trade == "SELLER_CONSIGNED_PART":
        return "WAIT_BUYER_CONFIRM_GOODS" if line.shipped_at is not None else "WAIT_SELLER_SEND_GOODS"
    return trade


def _sub_order(order: SimOrder, line: SimLine, trade: str) -> dict:
    oid = int(line.line_id)
    out = {
        "oid": oid, "oid_str": line.line_id, "num_iid": 715366000000 + int(line.sku_id) % 1000000,
        "sku_id": line.sku_id, "outer_iid": line.merchant_sku.rsplit("-", 1)[0], "outer_sku_id": line.merchant_sku,
        "title": line.title, "num": line.quantity, "price": yuan(line.unit_price),
        "total_fee": yuan(line.quantity * line.unit_price), "payment": yuan(line.total),
        "divide_order_fee": yuan(line.total), "discount_fee": yuan(line.discount), "adjust_fee": "0.00",
        "status": _line_status(order, line, trade), "refund_status": LINE_REFUND[line.refund_status],
    }
    if line.refund_status != "NONE":
        out["refund_id"] = int(line.line_id) // 10 * 10 + 7
    if line.tracking_no:
        out.update(logistics_company=line.carrier_name or line.carrier, invoice_no=line.tracking_no,
                   consign_time=ms_to_beijing(line.shipped_at))
    return out


def trade_dict(order: SimOrder, fields=None, plaintext: bool = False) -> dict:
    """A simulated order as a TOP trade object (ids as numbers plus `*_str`, yuan strings, Beijing times).

    `fields` (an iterable of TOP field names, `orders.x` meaning the whole `orders`) limits the answer
    like the API's `fields` parameter; `tid_str`/`oid_str` come with `tid`/`oid`. Receivers come masked
    as TOP returns them today; `plaintext=True` gives them in clear, as an app authorised to decrypt
    (or an older app before the privacy change) receives them.
    """
    status = trade_status(order)
    end = order.finished_at if status == "TRADE_FINISHED" else order.cancelled_at
    trade = {
        "tid": int(order.external_id), "tid_str": order.external_id, "status": status, "type": "fixed",
        "created": ms_to_beijing(order.created_at),
        "pay_time": ms_to_beijing(order.paid_at) if order.paid_at is not None else None,
        "consign_time": ms_to_beijing(order.shipped_at) if order.shipped_at is not None else None,
        "end_time": ms_to_beijing(end) if end is not None and status.startswith("TRADE_") else None,
        "modified": ms_to_beijing(order.updated_at),
        "payment": yuan(order.paid_total), "total_fee": yuan(order.items_total),
        "post_fee": yuan(order.shipping_fee), "discount_fee": yuan(order.line_discounts + order.order_discount),
        "adjust_fee": "0.00", "buyer_open_uid": order.buyer_id, "buyer_nick": "",
        "buyer_message": order.buyer_message, "seller_nick": order.shop_id,
        "receiver_name": order.receiver_name if plaintext else mask_name_tb(order.receiver_name),
        "receiver_mobile": order.receiver_phone if plaintext else mask_mobile_tb(order.receiver_phone),
        "receiver_phone": "", "receiver_state": order.province, "receiver_city": order.city,
        "receiver_district": order.district, "receiver_town": order.town,
        "receiver_address": order.street if plaintext else mask_street_tb(order.street), "receiver_zip": order.postal_code, "oaid": oaid(order),
        "orders": {"order": [_sub_order(order, line, status) for line in order.lines]},
    }
    trade = {k: v for k, v in trade.items() if v is not None}
    if fields is None:
        return trade
    wanted = {f.strip() for f in fields if f and f.strip()}
    if any(f.startswith("orders.") for f in wanted):
        wanted.add("orders")
    if "tid" in wanted:
        wanted.add("tid_str")
    return {k: v for k, v in trade.items() if k in wanted}


def _xml_into(parent: ET.Element, key: str, value) -> None:
    if value is None:
        return
    elem = ET.SubElement(parent, key)
    if isinstance(value, dict):
        inner = list(value.items())
        if len(inner) == 1 and isinstance(inner[0][1], list):
            elem.set("list", "true")  # TOP's array marker: <orders list="true"><order/>…</orders>
            for item in inner[0][1]:
                _xml_into(elem, inner[0][0], item)
        else:
            for k, v in inner:
                _xml_into(elem, k, v)
    elif isinstance(value, list):
        elem.set("list", "true")
        for item in value:
            _xml_into(elem, key.rstrip("s") or "item", item)
    elif isinstance(value, bool):
        elem.text = "true" if value else "false"
    else:
        elem.text = str(value)


def to_xml(obj: dict, root_name: str) -> bytes:
    """The TOP XML form of a response object (`root_name` e.g. 'trade_fullinfo_get_response')."""
    root = ET.Element(root_name)
    for key, value in obj.items():
        _xml_into(root, key, value)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _page(trades: list[dict]) -> bytes:
    import json

    return json.dumps({"trades_sold_increment_get_response": {
        "has_next": False, "trades": {"trade": trades}, "request_id": "conformance"}}, ensure_ascii=False).encode()


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """A `taobao.trades.sold.increment.get` JSON answer listing `orders` (one page); receivers in clear
    with `plaintext=True` (see trade_dict)."""
    return _page([trade_dict(o, plaintext=plaintext) for o in orders])


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a list page, its trade `status` forced to `platform_status` and every sub-order's
    `refund_status` to `refund_status` (the manifest's tables name both)."""
    trade = trade_dict(order)
    if platform_status is not None:
        trade["status"] = platform_status
    if refund_status is not None:
        for sub in trade["orders"]["order"]:
            sub["refund_status"] = refund_status
    return _page([trade])
