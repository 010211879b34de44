"""Pure mapping of TOP trade payloads (JSON or XML) to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies, normal (non-`simplify`) format only:
- `trades_sold_increment_get_response` / `trades_sold_get_response`: every trade in `trades.trade`
  (the wrapper without `trades` is an empty page);
- `trade_fullinfo_get_response`: the one `trade`;
- `error_response`: MappingError carrying code/msg/sub_code;
- a TMC message (`topic` + `content`): carries no order, maps to [] (re-fetch the trade instead).

Amounts (taobao.md §5): `items_total` is Σ num × price; `discount_total` is the trade `discount_fee`
(which already includes the sub-order discounts, see the fixtures: 12.00 = 6.00 + 6.00) minus the
seller's `adjust_fee` (positive adjust raises the price), so that
items_total + shipping_fee − discount_total + tax_total == paid_total. Line `total` is the line
`payment`, else `divide_order_fee`, else num × price − line `discount_fee`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from connectors.platforms.taobao.payload import parse_body, trades_of
from schemas.canonical import MappingError, mask_name, mask_phone, mask_street, order_id, to_minor
from schemas.verdicts import phone_verdict, street_vague

TRADE_STATUS = {
    "TRADE_NO_CREATE_PAY": "PENDING_PAYMENT", "WAIT_BUYER_PAY": "PENDING_PAYMENT",
    "PAY_PENDING": "PENDING_PAYMENT", "WAIT_PRE_AUTH_CONFIRM": "PENDING_PAYMENT",
    "WAIT_SELLER_SEND_GOODS": "PAID", "PAID_FORBID_CONSIGN": "PAID",
    "SELLER_CONSIGNED_PART": "PARTIALLY_SHIPPED", "WAIT_BUYER_CONFIRM_GOODS": "SHIPPED",
    "TRADE_BUYER_SIGNED": "DELIVERED", "TRADE_FINISHED": "COMPLETED",
    "TRADE_CLOSED": "CANCELLED", "TRADE_CLOSED_BY_TAOBAO": "CANCELLED",
}
LINE_REFUND_STATUS = {
    "NO_REFUND": "NONE", "CLOSED": "NONE", "WAIT_SELLER_AGREE": "REQUESTED",
    "WAIT_BUYER_RETURN_GOODS": "REQUESTED", "WAIT_SELLER_CONFIRM_GOODS": "REQUESTED",
    "SELLER_REFUSE_BUYER": "REJECTED", "SUCCESS": "REFUNDED",
}
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


def _ms(text) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' Beijing time -> UTC epoch ms (same result as beijing_to_ms, faster)."""
    if not text:
        return None
    try:
        if len(text) != 19:
            raise ValueError
        return int((datetime.fromisoformat(text) - _EPOCH_BEIJING).total_seconds()) * 1000
    except (ValueError, TypeError):
        raise MappingError(f"not a Beijing time 'yyyy-MM-dd HH:mm:ss': {text!r}") from None


def _int(value, name: str) -> int:
    if isinstance(value, (bool, float)):
        raise MappingError(f"{name} is not an integer: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MappingError(f"{name} is not an integer: {value!r}") from None


class _LostPrecision(Exception):
    """A JSON id came back as a float (beyond 64 bits in orjson): re-parse with the exact stdlib parser."""


def _id(obj: dict, key: str) -> str:
    text = obj.get(key + "_str")
    if text:
        return str(text)
    value = obj.get(key)
    if value is None or value == "":
        raise MappingError(f"missing required field {key!r}")
    if isinstance(value, float):
        raise _LostPrecision(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise MappingError(f"{key} is not an integer id: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


# ---- the field table: simple trade fields, like entity descriptions ----

@dataclass(frozen=True, slots=True)
class Field:
    key: str  # canonical field
    source: str  # Taobao trade field
    convert: Callable


TRADE_FIELDS = (
    Field("platform_status", "status", str),
    Field("created_at", "created", _ms),
    Field("paid_at", "pay_time", _ms),
    Field("updated_at", "modified", _ms),
    Field("shipping_fee", "post_fee", _fen),
    Field("paid_total", "payment", _fen),
)
RECEIVER_FIELDS = (
    Field("name_masked", "receiver_name", mask_name),
    Field("province", "receiver_state", _text),
    Field("city", "receiver_city", _text),
    Field("district", "receiver_district", _text),
    Field("postal_code", "receiver_zip", _text),
    Field("secure_token", "oaid", _text),
)


def _line(order: dict) -> dict:
    """One sub-order (`orders.order[]`) -> canonical line."""
    if "num" not in order or "price" not in order:
        raise MappingError(f"sub-order missing required field {'num' if 'num' not in order else 'price'!r}")
    quantity, unit_price, discount = _int(order["num"], "num"), _fen(order["price"]), _fen(order.get("discount_fee"))
    paid = order.get("payment") or order.get("divide_order_fee")
    refund = order.get("refund_status")
    return {
        "line_id": _id(order, "oid"),
        "sku_id": _text(order.get("sku_id")),
        "merchant_sku": _text(order.get("outer_sku_id")) or _text(order.get("outer_iid")),
        "title": str(order.get("title") or ""),
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
        group = groups.get((carrier, str(tracking)))
        if group is None:
            groups[(carrier, str(tracking))] = {"carrier": carrier, "tracking_no": str(tracking),
                                                "shipped_at": shipped, "line_ids": [line["line_id"]]}
        else:
            group["line_ids"].append(line["line_id"])
            if shipped is not None and (group["shipped_at"] is None or shipped < group["shipped_at"]):
                group["shipped_at"] = shipped
    return list(groups.values())


def map_trade(trade: dict, shop_id: str, platform: str = "taobao") -> dict:
    """One Taobao trade object (JSON-decoded or XML-converted) -> canonical order dict (version 0)."""
    if not isinstance(trade, dict):
        raise MappingError(f"a trade must be an object, got {type(trade).__name__}")
    if not trade.get("status"):
        raise MappingError("missing required field 'status'")
    external_id = _id(trade, "tid")
    out = {"order_id": order_id(platform, shop_id, external_id), "platform": platform, "shop_id": shop_id,
           "external_id": external_id}
    simple = {f.key: f.convert(trade.get(f.source)) for f in TRADE_FIELDS}
    sub_orders = (trade.get("orders") or {}).get("order") or []
    if not isinstance(sub_orders, list):
        raise MappingError("orders.order must be a list")
    lines = [_line(o) for o in sub_orders]
    shipments = _shipments(sub_orders, lines)
    shipped_at = _ms(trade.get("consign_time"))
    if shipped_at is None and shipments:
        shipped_at = min((s["shipped_at"] for s in shipments if s["shipped_at"] is not None), default=None)
    status = trade["status"]
    receiver = {f.key: f.convert(trade.get(f.source)) for f in RECEIVER_FIELDS}
    street = (trade.get("receiver_town") or "") + (trade.get("receiver_address") or "")
    phone = trade.get("receiver_mobile") or trade.get("receiver_phone")
    out.update(
        status=TRADE_STATUS.get(status, "UNKNOWN"),
        refund_status=_refund_status(lines),
        platform_status=simple["platform_status"],
        created_at=simple["created_at"], paid_at=simple["paid_at"], updated_at=simple["updated_at"],
        shipped_at=shipped_at,
        delivered_at=(_ms(trade.get("end_time")) or simple["updated_at"]) if status == "TRADE_BUYER_SIGNED" else None,
        currency="CNY",
        items_total=sum(line["quantity"] * line["unit_price"] for line in lines),
        shipping_fee=simple["shipping_fee"],
        discount_total=_fen(trade.get("discount_fee")) - _fen(trade.get("adjust_fee")),
        tax_total=0,
        paid_total=simple["paid_total"],
        buyer={"id": _text(trade.get("buyer_open_uid")), "nick_masked": mask_name(trade.get("buyer_nick")),
               "message": _text(trade.get("buyer_message"))},
        receiver={"name_masked": receiver["name_masked"],
                  "phone_masked": _mask_phone(phone),
                  "country": "CN", "province": receiver["province"], "city": receiver["city"],
                  "district": receiver["district"], "address_masked": mask_street(street),
                  "postal_code": receiver["postal_code"], "secure_token": receiver["secure_token"],
                  # TOP returns the receiver masked: only the mask's shape and the masked street can be judged
                  "phone_valid": phone_verdict(phone, "CN"), "address_vague": street_vague(street, "CN")},
        lines=lines,
        shipments=shipments,
        version=0,
        refunded_total=sum(line["total"] for line in lines if line["refund_status"] == "REFUNDED"),
    )
    return out


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "taobao") -> list[dict]:
    """Every trade in a TOP response body -> canonical order dicts (MappingError on anything unusable)."""
    try:
        try:
            return [map_trade(t, shop_id, platform) for t in trades_of(parse_body(body, content_type))]
        except _LostPrecision:
            doc = json.loads(body)  # stdlib json keeps integers of any size exact
            return [map_trade(t, shop_id, platform) for t in trades_of(doc)]
    except MappingError:
        raise
    except _LostPrecision as exc:
        raise MappingError(f"{exc} lost precision") from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise MappingError(f"unmappable taobao payload: {exc.__class__.__name__}: {exc}") from None
