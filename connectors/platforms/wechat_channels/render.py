"""Simulated orders rendered as `channels/ec` answers: the `order` object of order/get, as WeChat returns it.

Receivers come masked as WeChat masks them for most apps (`张*`, `138****1111`, road and number
characters of the street kept, the rest starred); about one order in four has a virtual number with
an extension (`17012345678-8512`) instead of the buyer's. `plaintext=True` gives the receiver in clear,
as `order/sensitiveinfo/decode` would. The API has no line id, so a line is named by its `sku_id`,
which here carries the simulated line id.
"""
from __future__ import annotations

import hashlib

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.world import SimLine, SimOrder

_MANIFEST = folder_manifest(__file__)
DELIVERY_IDS = {"YUNDA": "YD"}  # simulated carrier code -> WeChat delivery_id where they differ
_KEEP_IN_STREET = set("路街道巷弄号楼栋院室单元区")
_OPEN = ("REQUESTED", "REJECTED")  # line refund states with an after-sale order still open


def order_status(order: SimOrder) -> int:
    """The channels/ec `status` code of a simulated order."""
    status = order.status
    if status == "PENDING_PAYMENT":
        return 10
    if status == "PAID":
        return 20
    if status == "PARTIALLY_SHIPPED":
        return 21
    if status in ("SHIPPED", "DELIVERED"):
        return 30  # delivered-not-completed is no status of its own: ship_done_time tells it
    if status == "COMPLETED":
        return 100
    if status == "CANCELLED":
        return 200 if order.paid_at is not None else 250
    raise ValueError(f"unknown simulated status {status!r}")


def _seconds(ms: int | None) -> int:
    return ms // 1000 if ms is not None else 0


def _digest(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def mask_street_wx(street: str) -> str:
    """WeChat-like street mask: first character and road/number markers kept, everything else starred."""
    return street[:1] + "".join(ch if ch in _KEEP_IN_STREET else "*" for ch in street[1:]) if street else ""


def virtual_number(order: SimOrder) -> str | None:
    """A virtual number with extension for about one order in four (stable per order), else None."""
    digest = _digest("virtual", order.external_id)
    if int(digest[:2], 16) % 4:
        return None
    return f"170{int(digest[2:12], 16) % 10**8:08d}-{int(digest[12:18], 16) % 10**4:04d}"


def _address(order: SimOrder, plaintext: bool) -> dict:
    virtual = virtual_number(order)
    phone = order.receiver_phone
    masked_phone = f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "*" * len(phone)
    street = order.town + order.street
    address = {
        "user_name": order.receiver_name if plaintext else order.receiver_name[:1] + "*",
        "postal_code": order.postal_code, "province_name": order.province, "city_name": order.city,
        "county_name": order.district, "detail_info": street if plaintext else order.town + mask_street_wx(order.street),
        "national_code": "", "tel_number": phone if plaintext else (virtual or masked_phone), "house_number": "",
        "virtual_order_tel_number": virtual or "", "use_tel_number": 1 if virtual else 0,
        "hash_code": _digest(order.shop_id, order.receiver_name, phone, order.province, order.city, street)[:32],
    }
    if virtual:
        address["tel_number_ext_info"] = {"real_tel_number": masked_phone, "virtual_tel_number": virtual,
                                          "virtual_tel_expire_time": _seconds(order.created_at) + 30 * 86400}
    return address


def product_id(line: SimLine) -> str:
    """The simulated product id of a line's sku."""
    return str(10_000_000_000_000 + int(line.sku_id) % 10**12)


def _products(order: SimOrder) -> list[dict]:
    per_unit = all(line.total % line.quantity == 0 for line in order.lines)
    out = []
    for line in order.lines:
        state = line.refund_status
        out.append({
            "product_id": product_id(line), "sku_id": line.line_id, "sku_code": line.merchant_sku,
            "thumb_img": f"https://store.mp.video.tencent-cloud.com/demo/{line.merchant_sku.lower()}.jpg",
            "sku_cnt": line.quantity, "sale_price": line.unit_price, "market_price": line.unit_price,
            # the paid price per unit, as the recorded answers give it (per line when it does not divide)
            "real_price": line.total // line.quantity if per_unit else line.total,
            "title": line.title,
            "on_aftersale_sku_cnt": line.quantity if state in _OPEN else 0,
            "finish_aftersale_sku_cnt": line.quantity if state == "REFUNDED" else 0,
            "sku_attrs": [{"attr_key": "规格", "attr_value": line.title.rsplit(" ", 1)[-1]}],
            "out_product_id": "", "out_sku_id": "",
        })
    return out


def _aftersale_status(line: SimLine) -> str:
    shipped = line.shipped_at is not None
    return {"REQUESTED": "USER_WAIT_RETURN" if shipped else "MERCHANT_PROCESSING",
            "REJECTED": "MERCHANT_REJECT_RETURN" if shipped else "MERCHANT_REJECT_REFUND",
            "REFUNDED": "MERCHANT_RETURN_SUCCESS" if shipped else "MERCHANT_REFUND_SUCCESS"}[line.refund_status]


def _aftersale(order: SimOrder) -> dict:
    entries = [{"aftersale_order_id": str(4_000_000_000_000_000_000 + int(_digest("as", line.line_id)[:15], 16)
                                          % 10**18),
                "status": _aftersale_status(line)} for line in order.lines if line.refund_status != "NONE"]
    return {"on_aftersale_order_cnt": sum(1 for line in order.lines if line.refund_status in _OPEN),
            "aftersale_order_list": entries}


def _packages(order: SimOrder) -> list[dict]:
    packages: dict[str, dict] = {}
    for line in order.lines:
        if not line.tracking_no:
            continue
        code = DELIVERY_IDS.get(line.carrier or "", line.carrier or "")
        package = packages.setdefault(line.tracking_no, {
            "waybill_id": line.tracking_no, "delivery_id": code,
            "delivery_name": _MANIFEST.carriers.get(code, line.carrier_name or code),
            "delivery_time": _seconds(line.shipped_at), "deliver_type": 1, "product_infos": []})
        package["product_infos"].append({"product_id": product_id(line), "sku_id": line.line_id,
                                         "product_cnt": line.quantity})
    return list(packages.values())


def order_dict(order: SimOrder, plaintext: bool = False) -> dict:
    """A simulated order as the `order` object of order/get (ids as decimal strings, fen, Unix seconds)."""
    discounts = order.line_discounts + order.order_discount
    paid = order.paid_at is not None
    delivered = order.status in ("DELIVERED", "COMPLETED") and order.delivered_at is not None
    buyer = _digest("buyer", order.buyer_id)
    return {
        "order_id": order.external_id, "status": order_status(order),
        "create_time": _seconds(order.created_at), "update_time": _seconds(order.updated_at),
        "openid": "oZx" + buyer[:25], "unionid": "oU_" + buyer[25:50],
        "order_detail": {
            "product_infos": _products(order),
            "price_info": {"product_price": order.items_total, "order_price": order.paid_total,
                           "freight": order.shipping_fee, "discounted_price": discounts,
                           "is_discounted": discounts > 0,
                           "original_order_price": order.items_total + order.shipping_fee,
                           "estimate_product_price": order.items_total - discounts, "change_down_price": 0,
                           "change_freight": 0, "is_change_freight": False},
            "pay_info": {"prepay_id": "wx" + _digest("prepay", order.external_id)[:32],
                         "transaction_id": "42000" + str(int(_digest("tx", order.external_id)[:20], 16))[:23],
                         "prepay_time": _seconds(order.created_at) + 2, "pay_time": _seconds(order.paid_at),
                         "payment_method": 1} if paid else {},
            "delivery_info": {"address_info": _address(order, plaintext), "delivery_product_info": _packages(order),
                              "ship_done_time": _seconds(order.delivered_at) if delivered else 0,
                              "deliver_method": 0, "address_under_review": None},
            "coupon_info": {"user_coupon_id": ""},
            "ext_info": {"customer_notes": order.buyer_message, "merchant_notes": ""},
            "aftersale_detail": _aftersale(order),
        },
    }


def detail_answer(order: SimOrder, plaintext: bool = False) -> dict:
    """The whole order/get answer for a simulated order."""
    return {"errcode": 0, "errmsg": "ok", "order": order_dict(order, plaintext)}


def _batch(answers: list[dict]) -> bytes:
    return orjson.dumps({"responses": answers})


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """The order/get answers of `orders` as one batch `{"responses": [...]}` (one list page's details)."""
    return _batch([detail_answer(o, plaintext) for o in orders])


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a batch, its `status` forced to `platform_status` and every line put into an
    after-sale order of status `refund_status` (both names from the manifest's tables)."""
    answer = detail_answer(order)
    detail = answer["order"]["order_detail"]
    if platform_status is not None:
        code, _, ship_done = platform_status.partition("/")
        answer["order"]["status"] = int(code)
        if ship_done:  # "30/ship_done": delivery_info.ship_done_time set
            detail["delivery_info"]["ship_done_time"] = answer["order"]["update_time"] + 86_400
    if refund_status is not None:
        state = _MANIFEST.refund_statuses[refund_status]
        for n, product in enumerate(detail["product_infos"]):
            product["on_aftersale_sku_cnt"] = product["sku_cnt"] if state in _OPEN else 0
            product["finish_aftersale_sku_cnt"] = product["sku_cnt"] if state == "REFUNDED" else 0
            detail["aftersale_detail"]["aftersale_order_list"].append(
                {"aftersale_order_id": f"40000000000000{n:05d}", "status": refund_status})
    return _batch([answer])
