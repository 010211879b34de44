"""Pure mapping of Youzan order payloads to canonical orders (schemas/tonglu.Order.avsc).

Bodies: see payload.py (list, detail, legacy, push message, error envelopes).

Field table (youzan.md §5; `oi` = full_order_info.order_info, `pay` = pay_info, `addr` = address_info):

| canonical | Youzan |
|---|---|
| external_id | oi.tid, verbatim (`E` + 23 digits; a bare number keeps every digit) |
| status / platform_status | oi.status through the manifest's [statuses]; PARTIALLY_SHIPPED when the platform still waits for the seller to ship but `delivery_order` already holds packages |
| created_at, paid_at, updated_at, shipped_at | oi.created, oi.pay_time, oi.update_time, oi.consign_time (Beijing wall clock -> UTC; "" is none) |
| delivered_at | oi.success_time once TRADE_SUCCESS (买家已签收以及订单成功) |
| items_total | Σ orders[].num × orders[].price (pay.total_fee, 优惠前商品总价) |
| lines[].total | orders[].payment (the final apportioned amount), else total_fee, else num × price |
| discount_total | items_total − Σ lines[].total: item and order promotions, apportioned by Youzan into the line payments |
| shipping_fee / paid_total | pay.post_fee / pay.payment |
| refund_status | orders[].refund_state through [refund_statuses] (oi.refund_state 0/1/2/11/12 when no line has one) |
| refunded_total | Σ totals of lines whose refund is REFUNDED |
| buyer | buyer_info.yz_open_id (else a non-zero buyer_id), fans_nickname masked, remark_info.buyer_message masked |
| receiver | addr.receiver_name / receiver_tel / delivery_address masked when in clear; `$…$` ciphertexts are never decrypted: the masks stay empty and the ciphertexts travel as secure_token (name, tel, address, comma-separated) |
| shipments | delivery_order[] (detail only): one per dist with express_info.express_id (manifest [carriers]) and express_no, line_ids = the package's oids, shipped_at = oi.consign_time (the order-level time; Youzan sets it once everything shipped) |

Amount identity: items_total + shipping_fee − discount_total + tax_total == paid_total holds exactly when
pay.payment == Σ orders[].payment + post_fee, which is Youzan's own rule (payment = orders.payment 的总和,
postage on top); an answer breaking it keeps the difference visible for the amount check.

Virtual numbers (隐私号) with an extension, `17012345678-1234`, are masked as `170****5678-****`.
"""
from __future__ import annotations

import re
from functools import lru_cache

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import (
    MappingError,
    beijing_to_ms,
    mask_name,
    mask_phone,
    mask_street,
    order_id,
    to_minor,
)
from schemas.exact_json import LostPrecision, map_exactly, parse_json
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from .payload import orders_of

_MANIFEST = folder_manifest(__file__)
STATUS = {name: entry.status for name, entry in _MANIFEST.statuses.items()}
LINE_REFUND = dict(_MANIFEST.refund_statuses)
ORDER_REFUND = {0: "NONE", 1: "REQUESTED", 2: "PARTIALLY_REFUNDED", 11: "REQUESTED", 12: "REFUNDED"}  # oi.refund_state
CARRIERS = dict(_MANIFEST.carriers)
TIMES = (("created_at", "created"), ("paid_at", "pay_time"), ("updated_at", "update_time"),
         ("shipped_at", "consign_time"))
_VIRTUAL = re.compile(r"(?:\+?86)?(1\d{10})(?:[-_,，#转]|ext\.?|分机)(\d{1,6})", re.IGNORECASE)


# ---- value converters ----

@lru_cache(maxsize=65536)
def _yuan(value) -> int:
    return to_minor(value, "CNY")


def _fen(value) -> int:
    """Yuan as a string, integer or float -> fen, exactly (the shared to_minor; floats through their repr)."""
    if value is None or value == "":
        return 0
    if value.__class__ is bool:
        raise MappingError(f"not a money amount: {value!r}")
    return _yuan(value)


@lru_cache(maxsize=8192)
def _beijing(text: str) -> int:
    return beijing_to_ms(text)


def _ms(value) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' Beijing time -> UTC epoch ms; '' or null is none."""
    if value is None or value == "":
        return None
    if value.__class__ is not str:
        raise MappingError(f"not a Beijing time 'yyyy-MM-dd HH:mm:ss': {value!r}")
    return _beijing(value)


def _id(obj: dict, key: str, required: bool = True) -> str | None:
    value = obj.get(key)
    cls = value.__class__
    if cls is str and value:
        return value
    if cls is int:
        return str(value)
    if value is None or value == "":
        if required:
            raise MappingError(f"missing required field {key!r}")
        return None
    if cls is float:
        raise LostPrecision(key)
    raise MappingError(f"{key} is not an id: {value!r}")


def _count(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MappingError(f"{name} is not an integer: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _cipher(value) -> bool:
    """A Youzan ciphertext: `$…$`."""
    return value.__class__ is str and len(value) > 2 and value[0] == "$" and value[-1] == "$"


def _phone(text: str) -> tuple[str | None, str]:
    """(masked, the number to judge): extensions of virtual numbers are starred whole."""
    match = _VIRTUAL.fullmatch(text.replace(" ", ""))
    if match:
        number, extension = match.groups()
        return f"{mask_phone(number)}-{'*' * len(extension)}", number
    return mask_phone(text), text


# ---- parts of an order ----

def _line(item) -> dict:
    if not isinstance(item, dict):
        raise MappingError("orders[] items must be objects")
    get = item.get
    if get("num") is None or get("price") is None:
        raise MappingError(f"line missing required field {'num' if get('num') is None else 'price'!r}")
    quantity = _count(get("num"), "num")
    unit_price = _fen(get("price"))
    paid = get("payment")
    if paid is None or paid == "":
        paid = get("total_fee")
    total = quantity * unit_price if paid is None or paid == "" else _fen(paid)
    refund = get("refund_state")
    if refund is None or refund == "":
        refund_status = None  # this answer does not say: the order-level refund_state decides
    elif refund.__class__ is int:
        refund_status = ORDER_REFUND.get(refund, "UNKNOWN")
    else:
        refund_status = LINE_REFUND.get(refund, "UNKNOWN")
    sku = get("sku_id")
    return {
        "line_id": _id(item, "oid"),
        "sku_id": None if sku in (None, "", 0, "0") else _id(item, "sku_id"),
        "merchant_sku": _text(get("outer_sku_id")) or _text(get("outer_item_id")),
        "title": str(get("title") or ""),
        "quantity": quantity,
        "unit_price": unit_price,
        "total": total,
        "discount": quantity * unit_price - total,
        "refund_status": refund_status,
    }


def _refund_status(lines: list[dict], order_state) -> str:
    """The order's refund status from its lines; from oi.refund_state when no line says (its lines follow
    it when it is about the whole order, and are UNKNOWN when only part of it is refunded)."""
    states = [line["refund_status"] for line in lines]
    if all(state is None for state in states):
        if order_state in (None, ""):
            order_state = 0
        status = ORDER_REFUND.get(_count(order_state, "refund_state"), "UNKNOWN")
        for line in lines:
            line["refund_status"] = status if status in ("NONE", "REQUESTED", "REFUNDED") else "UNKNOWN"
        return status
    for line in lines:
        if line["refund_status"] is None:
            line["refund_status"] = "NONE"
    states = [line["refund_status"] for line in lines]
    if "REQUESTED" in states:
        return "REQUESTED"
    refunded = states.count("REFUNDED")
    if refunded == len(states):
        return "REFUNDED"
    if refunded or "PARTIALLY_REFUNDED" in states:
        return "PARTIALLY_REFUNDED"
    if "REJECTED" in states:
        return "REJECTED"
    return "UNKNOWN" if "UNKNOWN" in states else "NONE"


def _shipments(deliveries, shipped_at: int | None) -> list[dict]:
    if deliveries is None:
        return []
    if not isinstance(deliveries, list):
        raise MappingError("delivery_order must be a list")
    out = []
    for package in deliveries:
        if not isinstance(package, dict):
            raise MappingError("delivery_order items must be objects")
        line_ids = [_id(o, "oid") if isinstance(o, dict) else _id({"oid": o}, "oid") for o in package.get("oids") or ()]
        for dist in package.get("dists") or [{}]:
            express = (dist.get("express_info") if isinstance(dist, dict) else None) or {}
            company = express.get("express_id")
            carrier = (CARRIERS.get(str(company)) or str(company)) if company not in (None, "", 0) else None
            out.append({"carrier": carrier, "tracking_no": _text(express.get("express_no")), "shipped_at": shipped_at,
                        "line_ids": line_ids})
    return out


def _buyer(foi: dict) -> dict:
    buyer = foi.get("buyer_info") or {}
    remark = foi.get("remark_info") or {}
    buyer_id = buyer.get("yz_open_id") or buyer.get("buyer_id")
    return {"id": None if buyer_id in (None, "", 0, "0") else str(buyer_id),
            "nick_masked": mask_name(_text(buyer.get("fans_nickname"))),
            "message": mask_free_text(_text(remark.get("buyer_message")))}


def _receiver(addr: dict) -> dict:
    name, tel, street = addr.get("receiver_name"), addr.get("receiver_tel"), addr.get("delivery_address")
    sealed = [value for value in (name, tel, street) if _cipher(value)]
    phone_masked = phone_valid = None
    if tel and not _cipher(tel):
        phone_masked, number = _phone(str(tel))
        phone_valid = phone_verdict(number, "CN")
    street_clear = None if _cipher(street) else _text(street)
    return {"name_masked": None if _cipher(name) else mask_name(_text(name)),
            "phone_masked": phone_masked, "country": "CN",
            "province": _text(addr.get("delivery_province")), "city": _text(addr.get("delivery_city")),
            "district": _text(addr.get("delivery_district")), "address_masked": mask_street(street_clear),
            "postal_code": _text(addr.get("delivery_postal_code")), "secure_token": ",".join(sealed) or None,
            "phone_valid": phone_valid, "address_vague": street_vague(street_clear, "CN")}


def map_order(foi: dict, around: dict | None, shop_id: str, platform: str = "youzan") -> dict:
    """One `full_order_info` (with the detail's `delivery_order` beside it in `around`) -> canonical order."""
    info = foi.get("order_info")
    if not isinstance(info, dict):
        raise MappingError("full_order_info.order_info must be an object")
    external_id = _id(info, "tid")
    status = info.get("status")
    if not status or status.__class__ is not str:
        raise MappingError(f"order {external_id}: missing required field 'status'")
    times = {name: _ms(info.get(key)) for name, key in TIMES}
    pay = foi.get("pay_info")
    if not isinstance(pay, dict) or pay.get("payment") in (None, ""):
        raise MappingError(f"order {external_id}: missing required field 'pay_info.payment'")
    items = foi.get("orders")
    if not isinstance(items, list):
        raise MappingError(f"order {external_id}: orders must be a list")
    lines = [_line(item) for item in items]
    refund_status = _refund_status(lines, info.get("refund_state"))
    shipments = _shipments((around or {}).get("delivery_order"), times["shipped_at"])
    canonical = STATUS.get(status, "UNKNOWN")
    if canonical == "PAID" and shipments:
        canonical = "PARTIALLY_SHIPPED"  # Youzan has no status of its own for it
    items_total = sum([line["quantity"] * line["unit_price"] for line in lines])
    addr = foi.get("address_info") or {}
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": canonical, "refund_status": refund_status, "platform_status": status,
        **times,
        "delivered_at": _ms(info.get("success_time")) if status == "TRADE_SUCCESS" else None,
        "currency": "CNY",
        "items_total": items_total,
        "shipping_fee": _fen(pay.get("post_fee")),
        "discount_total": items_total - sum([line["total"] for line in lines]),
        "tax_total": 0,
        "paid_total": _fen(pay["payment"]),
        "buyer": _buyer(foi),
        "receiver": _receiver(addr if isinstance(addr, dict) else {}),
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": sum([line["total"] for line in lines if line["refund_status"] == "REFUNDED"]),
    }


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "youzan") -> list[dict]:
    """Every order in a Youzan answer or push body -> canonical order dicts (MappingError on anything unusable)."""
    if content_type and "xml" in content_type.lower():
        raise MappingError("youzan answers JSON only, not XML")
    return map_exactly(lambda exact: [map_order(foi, around, shop_id, platform)
                                      for foi, around in orders_of(parse_json(body, exact), exact)], platform)
