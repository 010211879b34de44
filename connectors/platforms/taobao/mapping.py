"""Pure mapping of TOP trade payloads (JSON or XML) to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies, normal (non-`simplify`) format only:
- `trades_sold_increment_get_response` / `trades_sold_get_response`: every trade in `trades.trade`
  (a page without trades is empty only if it says so: `total_results` 0 or `has_next` false);
- `trade_fullinfo_get_response`: the one `trade`;
- `error_response`: MappingError carrying code/msg/sub_code;
- a TMC message (`topic` + `content`): carries no order, maps to [] (re-fetch the trade instead).

Amounts (taobao.md §5): `items_total` is Σ num × price; `discount_total` is the trade `discount_fee`
(which already includes the sub-order discounts, see the fixtures: 12.00 = 6.00 + 6.00) minus the
seller's `adjust_fee` (positive adjust raises the price), so that
items_total + shipping_fee − discount_total + tax_total == paid_total. Line `total` is the line
`payment`, else `divide_order_fee`, else num × price − line `discount_fee`.

`buyer_message` is free text typed by the buyer: phones, ID cards and house numbers in it are masked
(schemas/free_text.py). Product titles are catalogue text and pass unchanged.
"""
from __future__ import annotations

from datetime import datetime

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import MappingError, mask_name, mask_phone, mask_street, order_id, to_minor
from schemas.exact_json import LostPrecision, map_exactly
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from .payload import parse_body, trades_of

_MANIFEST = folder_manifest(__file__)
TRADE_STATUS = {name: entry.status for name, entry in _MANIFEST.statuses.items()}  # manifest [statuses]
LINE_REFUND_STATUS = dict(_MANIFEST.refund_statuses)  # manifest [refund_statuses]
_EPOCH_BEIJING = datetime(1970, 1, 1, 8, 0, 0)  # naive Beijing wall clock at the Unix epoch


# ---- value converters (fast paths; the canonical helpers handle the odd cases) ----

_FEN_CACHE: dict = {}  # yuan strings repeat a lot ("0.00", catalogue prices); bounded below


def _fen(value) -> int:
    """Yuan string/number -> fen. '157.80' takes the fast path; anything else goes through to_minor."""
    fen = _FEN_CACHE.get(value)
    if fen is not None:
        return fen
    if value is None or value == "":
        return 0
    fen = None
    if isinstance(value, str) and len(value) > 3 and value[-3] == ".":
        whole, cents = value[:-3], value[-2:]
        if whole.isdigit() and cents.isdigit():
            fen = int(whole) * 100 + int(cents)
    if fen is None:
        fen = to_minor(repr(value) if isinstance(value, float) else value, "CNY")
    if len(_FEN_CACHE) < 50_000 and isinstance(value, str):
        _FEN_CACHE[value] = fen
    return fen


def _mask_phone(phone) -> str | None:
    """mask_phone, short-cutting Taobao's already-masked '*******1234'."""
    if phone and len(phone) == 11 and phone.startswith("*******") and phone[7:].isdigit():
        return phone
    return mask_phone(phone)


_MS_CACHE: dict = {}  # Beijing time strings repeat within a trade and across a page; cleared when full


def _ms(text) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' Beijing time -> UTC epoch ms (same result as beijing_to_ms, faster)."""
    if not text:
        return None
    try:
        ms = _MS_CACHE.get(text)
        if ms is None:
            if len(text) != 19:
                raise ValueError
            ms = int((datetime.fromisoformat(text) - _EPOCH_BEIJING).total_seconds()) * 1000
            if len(_MS_CACHE) >= 4096:
                _MS_CACHE.clear()
            _MS_CACHE[text] = ms
        return ms
    except (ValueError, TypeError):
        raise MappingError(f"not a Beijing time 'yyyy-MM-dd HH:mm:ss': {text!r}") from None


def _int(value, name: str) -> int:
    if isinstance(value, (bool, float)):
        raise MappingError(f"{name} is not an integer: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MappingError(f"{name} is not an integer: {value!r}") from None


def _id(obj: dict, key: str) -> str:
    text = obj.get(key + "_str")
    if text:
        return str(text)
    value = obj.get(key)
    if value is None or value == "":
        raise MappingError(f"missing required field {key!r}")
    if isinstance(value, float):
        raise LostPrecision(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise MappingError(f"{key} is not an integer id: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _line(order: dict) -> dict:
    """One sub-order (`orders.order[]`) -> canonical line."""
    if "num" not in order or "price" not in order:
        raise MappingError(f"sub-order missing required field {'num' if 'num' not in order else 'price'!r}")
    num = order["num"]
    get = order.get
    quantity = num if num.__class__ is int else _int(num, "num")
    unit_price, discount = _fen(order["price"]), _fen(get("discount_fee"))
    paid = get("payment") or get("divide_order_fee")
    refund = get("refund_status")
    oid = get("oid_str")
    return {
        "line_id": oid if oid and oid.__class__ is str else _id(order, "oid"),
        "sku_id": _text(get("sku_id")),
        "merchant_sku": _text(get("outer_sku_id")) or _text(get("outer_iid")),
        "title": str(get("title") or ""),
        "quantity": quantity,
        "unit_price": unit_price,
        "total": _fen(paid) if paid else quantity * unit_price - discount,
        "discount": discount,
        "refund_status": LINE_REFUND_STATUS.get(refund, "UNKNOWN") if refund else "NONE",
    }


def _refund_status(lines: list[dict]) -> str:
    states = [line["refund_status"] for line in lines]
    if "REQUESTED" in states:
        return "REQUESTED"
    refunded = states.count("REFUNDED")
    if refunded:
        return "REFUNDED" if refunded == len(states) else "PARTIALLY_REFUNDED"
    return "REJECTED" if "REJECTED" in states else "NONE"


def _shipments(sub_orders: list[dict], lines: list[dict]) -> list[dict]:
    """Lines with a tracking number, grouped by (carrier, tracking number) in order of appearance."""
    groups: dict[tuple, dict] = {}
    for order, line in zip(sub_orders, lines):
        tracking = order.get("invoice_no")
        if not tracking:
            continue
        carrier = _text(order.get("logistics_company"))
        shipped = _ms(order.get("consign_time"))
        tracking = str(tracking)
        group = groups.get((carrier, tracking))
        if group is None:
            groups[(carrier, tracking)] = {"carrier": carrier, "tracking_no": tracking, "shipped_at": shipped,
                                           "line_ids": [line["line_id"]]}
        else:
            group["line_ids"].append(line["line_id"])
            if shipped is not None and (group["shipped_at"] is None or shipped < group["shipped_at"]):
                group["shipped_at"] = shipped
    return list(groups.values())


def map_trade(trade: dict, shop_id: str, platform: str = "taobao") -> dict:
    """One Taobao trade object (JSON-decoded or XML-converted) -> canonical order dict (version 0)."""
    if not isinstance(trade, dict):
        raise MappingError(f"a trade must be an object, got {type(trade).__name__}")
    get = trade.get
    status = get("status")
    if not status:
        raise MappingError("missing required field 'status'")
    tid = get("tid_str")
    external_id = tid if tid and tid.__class__ is str else _id(trade, "tid")
    # the order of the conversions decides which error a trade with several bad fields is refused for
    created_at, paid_at, updated_at = _ms(get("created")), _ms(get("pay_time")), _ms(get("modified"))
    shipping_fee, paid_total = _fen(get("post_fee")), _fen(get("payment"))
    sub_orders = (get("orders") or {}).get("order") or []
    if not isinstance(sub_orders, list):
        raise MappingError("orders.order must be a list")
    lines = [_line(o) for o in sub_orders]
    shipments = _shipments(sub_orders, lines)
    shipped_at = _ms(get("consign_time"))
    if shipped_at is None and shipments:
        shipped_at = min((s["shipped_at"] for s in shipments if s["shipped_at"] is not None), default=None)
    name_masked = mask_name(get("receiver_name"))
    street = (get("receiver_town") or "") + (get("receiver_address") or "")
    phone = get("receiver_mobile") or get("receiver_phone")
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": TRADE_STATUS.get(status, "UNKNOWN"),
        "refund_status": _refund_status(lines),
        "platform_status": str(status),
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at, "shipped_at": shipped_at,
        "delivered_at": (_ms(get("end_time")) or updated_at) if status == "TRADE_BUYER_SIGNED" else None,
        "currency": "CNY",
        "items_total": sum([line["quantity"] * line["unit_price"] for line in lines]),
        "shipping_fee": shipping_fee,
        "discount_total": _fen(get("discount_fee")) - _fen(get("adjust_fee")),
        "tax_total": 0,
        "paid_total": paid_total,
        "buyer": {"id": _text(get("buyer_open_uid")), "nick_masked": mask_name(get("buyer_nick")),
                  "message": mask_free_text(_text(get("buyer_message")))},
        # TOP returns the receiver masked: only the mask's shape and the masked street can be judged
        "receiver": {"name_masked": name_masked, "phone_masked": _mask_phone(phone), "country": "CN",
                     "province": _text(get("receiver_state")), "city": _text(get("receiver_city")),
                     "district": _text(get("receiver_district")), "address_masked": mask_street(street),
                     "postal_code": _text(get("receiver_zip")), "secure_token": _text(get("oaid")),
                     "phone_valid": phone_verdict(phone, "CN"), "address_vague": street_vague(street, "CN")},
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": sum([line["total"] for line in lines if line["refund_status"] == "REFUNDED"]),
    }


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "taobao") -> list[dict]:
    """Every trade in a TOP response body -> canonical order dicts (MappingError on anything unusable)."""
    return map_exactly(lambda exact: [map_trade(t, shop_id, platform)
                                      for t in trades_of(parse_body(body, content_type, exact))], platform)
