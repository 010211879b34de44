"""Pure mapping of Doudian order payloads to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies (see payload.py): an `order.searchList` page (every `data.shop_order_list[]`), an
`order.orderDetail` answer (`data.shop_order_detail`), a push batch (no order: its messages only name
the order, the poll or a detail call brings it), and error answers (MappingError with code and sub_code).

Field table (douyin.md §5), parent order -> canonical:

| canonical | Douyin |
|---|---|
| external_id | `order_id` (19-digit string; a bare number keeps its digits) |
| status / platform_status | `order_status` through the manifest's [statuses]; SHIPPED with `logistics_receipt_time` or `confirm_receipt_time` > 0 is DELIVERED |
| created_at, paid_at, updated_at, shipped_at | `create_time`, `pay_time`, `update_time`, `ship_time` (Unix seconds, 0 = not yet) |
| shipping_fee, paid_total | `post_amount`, `pay_amount` (integer fen) |
| buyer.id, buyer.message | `doudian_open_id`, `buyer_words` (free text, masked) |
| receiver | `mask_post_receiver`, `mask_post_tel`, `post_addr`/`mask_post_addr` (`town` is the district, `street` the sub-district); the ciphertexts `encrypt_post_receiver`, `encrypt_post_tel`, `post_addr.encrypt_detail` travel as `secure_token` |
| lines | `sku_order_list[]`: `order_id`, `sku_id`, `out_sku_id` (else `code`), `product_name`, `item_num` |
| shipments | `logistics_info[]`: `company_name` (else the manifest's carrier name), `tracking_no`, `ship_time`, `product_info[].sku_order_id` |

Amounts: a line's `origin_amount` is its original price × quantity, so `unit_price` = origin_amount /
item_num (`sku_price` when that does not divide); its `total` is the sku `pay_amount`, less the sku's
`post_amount` when the sku amounts carry the shipping shares (they add up to the parent's pay_amount);
its `discount` = quantity × unit_price − total. `items_total` and `discount_total` sum the lines, so
items_total + shipping_fee − discount_total + tax_total == paid_total whenever the skus add up to what
the buyer paid. The parent's `promotion_amount` is not used: it can disagree with its skus (the recorded
order_searchList sample says 1200 where the skus' promotions and payments account for 1180), and
Douyin allocates every promotion to the skus.

Refunds per line: `after_sale_info.refund_status` 3 (退款成功) is REFUNDED; otherwise `after_sale_status`
through the manifest's [refund_statuses], and `refund_status` 1 (待退款) is at least REQUESTED. The
order's refund status combines its lines (some refunded: PARTIALLY_REFUNDED).

A summary (a list entry without `sku_order_list`) is refused: the client fetches `order.orderDetail`
for such pages instead of publishing them.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import orjson

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import MappingError, beijing_to_ms, mask_name, mask_phone, mask_street, order_id
from schemas.exact_json import LostPrecision, map_exactly
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from .payload import orders_of, parse_body

_MANIFEST = folder_manifest(__file__)
ORDER_STATUS = {code: entry.status for code, entry in _MANIFEST.statuses.items()}
AFTER_SALE_STATUS = dict(_MANIFEST.refund_statuses)
CARRIERS = dict(_MANIFEST.carriers)
_SHIPPED_OR_DONE = frozenset(("3", "5"))  # sku order_status of a shipped line
# a virtual number: an 11-character (masked) mobile and its extension (17012345678-1234, 170****5678转1234)
_EXTENSION = re.compile(r"^\s*(\+?(?:86)?\s*1[0-9*]{10})\s*(?:-|_|,|，|#|转|ext\.?)\s*([0-9*]{1,8})\s*$")


# ---- value converters ----

def _id(value, name: str) -> str:
    """An id as an exact digit string: strings as given, integers by their digits."""
    cls = value.__class__
    if cls is str and value.isdigit():
        return value
    if cls is int:
        return str(value)
    if cls is float:
        raise LostPrecision(name)
    if value is None or value == "":
        raise MappingError(f"missing required field {name!r}")
    raise MappingError(f"{name} is not an id: {value!r}")


def _opt_id(value, name: str) -> str | None:
    return None if value is None or value == "" or value == 0 else _id(value, name)


def _fen(value, name: str) -> int:
    """Integer fen from an int, a digit string or an integral float/decimal string; never rounds."""
    if value.__class__ is int:
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise MappingError(f"{name} is not an amount in fen: {value!r}")
    try:
        amount = Decimal(value) if isinstance(value, str) else Decimal(repr(value))
    except (InvalidOperation, TypeError):
        raise MappingError(f"{name} is not an amount in fen: {value!r}") from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise MappingError(f"{name} is not a whole number of fen: {value!r}")
    return int(amount)


def _ms(value, name: str) -> int | None:
    """Unix seconds (an int or digit string; 0 means not yet) -> UTC epoch ms. 13-digit values are taken
    as milliseconds and 'yyyy-MM-dd HH:mm:ss' as Beijing time, which some older answers carry."""
    if value.__class__ is int and value > 0:
        return value * 1000 if value < 100_000_000_000 else value
    if value is None or value == "" or value == 0 or value == "0":
        return None
    if isinstance(value, str):
        if value.isdigit():
            return _ms(int(value), name)
        if len(value) == 19:
            return beijing_to_ms(value)
    raise MappingError(f"{name} is not a Unix time in seconds: {value!r}")


def _int(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MappingError(f"{name} is not an integer: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _area(node) -> str | None:
    """A `{name, id}` division (or a bare name) -> its name."""
    if node.__class__ is dict:
        node = node.get("name")
    return node if node.__class__ is str and node else _text(node)


# ---- receivers ----

def _split_extension(phone: str | None) -> tuple[str | None, str | None]:
    """(number, extension) of a virtual number with an extension; (phone, None) otherwise."""
    if not phone or len(phone) < 13:
        return phone, None
    match = _EXTENSION.match(phone)
    return (match.group(1), match.group(2)) if match else (phone, None)


def _mask_tel(number: str | None, extension: str | None) -> str | None:
    """A mobile masked as 138****5678; a virtual number's extension hidden too (170****5678-****).
    `number` and `extension` are the phone split by _split_extension."""
    masked = mask_phone(number)
    return f"{masked}-{'*' * len(extension)}" if extension else masked


def _secure_token(name, phone, address) -> str | None:
    """The receiver's ciphertexts (opaque, for an authorised `order.batchDecrypt`), never decrypted here."""
    if name and phone and address:
        return orjson.dumps({"name": name, "phone": phone, "address": address}).decode()
    token = {k: v for k, v in (("name", name), ("phone", phone), ("address", address)) if v}
    return orjson.dumps(token).decode() if token else None


def _receiver(order: dict) -> dict:
    get = order.get
    addr = get("post_addr") or {}
    shown = get("mask_post_addr") or addr
    if addr.__class__ is not dict or shown.__class__ is not dict:
        raise MappingError("post_addr / mask_post_addr must be objects")
    # an app allowed to read receivers gets post_* in clear: judge those, keep only masks
    detail = addr.get("detail") or shown.get("detail") or ""
    street = (_area(shown.get("street")) or "") + detail
    phone = get("post_tel") or get("mask_post_tel")
    number, extension = _split_extension(phone)  # once for the mask and the verdict
    return {"name_masked": mask_name(get("post_receiver") or get("mask_post_receiver")),
            "phone_masked": _mask_tel(number, extension), "country": "CN",
            "province": _area(shown.get("province")), "city": _area(shown.get("city")),
            "district": _area(shown.get("town")), "address_masked": mask_street(street) if street else None,
            "postal_code": None,
            "secure_token": _secure_token(get("encrypt_post_receiver"), get("encrypt_post_tel"),
                                          addr.get("encrypt_detail")),
            "phone_valid": phone_verdict(number, "CN"), "address_vague": street_vague(street or None, "CN")}


# ---- lines, refunds, shipments ----

def _line_refund(info) -> str:
    if not info:
        return "NONE"
    if info.__class__ is not dict:
        raise MappingError("after_sale_info is not an object")
    state, refund = info.get("after_sale_status", 0), info.get("refund_status", 0)
    if state == 0 and refund == 0:
        return "NONE"
    refund = str(refund)
    if refund == "3":
        return "REFUNDED"
    state = AFTER_SALE_STATUS.get(str(state), "UNKNOWN")
    return "REQUESTED" if refund == "1" and state == "NONE" else state


def _line(sku: dict, with_post: bool) -> dict:
    """One sku order -> canonical line."""
    if sku.__class__ is not dict:
        raise MappingError(f"a sku order must be an object, got {type(sku).__name__}")
    get = sku.get
    line_id = get("order_id")
    if line_id.__class__ is not str or not line_id.isdigit():
        line_id = _id(line_id, "sku order_id")
    quantity = get("item_num")
    if quantity.__class__ is not int:
        quantity = _int(quantity, "item_num")
    if quantity <= 0:
        raise MappingError(f"sku order {line_id}: item_num must be positive, got {quantity}")
    total = get("pay_amount")
    if total.__class__ is not int:
        if total is None:
            raise MappingError(f"sku order {line_id}: missing required field 'pay_amount'")
        total = _fen(total, "pay_amount")
    if with_post:
        total -= _fen(get("post_amount"), "post_amount")
    origin = get("origin_amount")
    if origin is not None:
        if origin.__class__ is not int:
            origin = _fen(origin, "origin_amount")
        unit_price = origin // quantity
        if unit_price * quantity != origin and get("sku_price") is not None:
            unit_price = _fen(get("sku_price"), "sku_price")
    elif get("sku_price") is not None:
        unit_price = _fen(get("sku_price"), "sku_price")
    elif get("sum_amount") is not None:
        unit_price = _fen(get("sum_amount"), "sum_amount") // quantity
    else:
        raise MappingError(f"sku order {line_id}: no price (origin_amount, sku_price or sum_amount)")
    sku_id = get("sku_id")
    merchant_sku = get("out_sku_id") or get("code") or None
    title = get("product_name") or ""
    return {
        "line_id": line_id,
        "sku_id": str(sku_id) if sku_id.__class__ is int and sku_id else _opt_id(sku_id, "sku_id"),
        "merchant_sku": merchant_sku if merchant_sku.__class__ is str or merchant_sku is None else str(merchant_sku),
        "title": title if title.__class__ is str else str(title),
        "quantity": quantity,
        "unit_price": unit_price,
        "total": total,
        "discount": quantity * unit_price - total,
        "refund_status": _line_refund(get("after_sale_info")),
    }


def _refund_status(lines: list[dict]) -> str:
    states = [line["refund_status"] for line in lines]
    if states.count("NONE") == len(states):
        return "NONE"
    if "REQUESTED" in states:
        return "REQUESTED"
    refunded = states.count("REFUNDED")
    if refunded:
        return "REFUNDED" if refunded == len(states) else "PARTIALLY_REFUNDED"
    return "REJECTED" if "REJECTED" in states else "NONE"


def _shipments(packages, skus: list[dict], lines: list[dict]) -> list[dict]:
    """`logistics_info[]` -> shipments; a package without `product_info` holds the shipped skus (all of
    them when no sku says it shipped)."""
    if not packages:
        return []
    if packages.__class__ is not list:
        raise MappingError("logistics_info must be a list")
    shipped = None  # the shipped skus, worked out only for a package that does not list its own
    out = []
    for pack in packages:
        if pack.__class__ is not dict:
            raise MappingError("a logistics_info entry must be an object")
        tracking = _text(pack.get("tracking_no"))
        if tracking is None:
            continue
        code = _text(pack.get("company"))
        items = pack.get("product_info") or []
        line_ids = [_id(item.get("sku_order_id"), "product_info.sku_order_id") for item in items
                    if item.__class__ is dict and item.get("sku_order_id")]
        if not line_ids and shipped is None:
            shipped = [line["line_id"] for sku, line in zip(skus, lines)
                       if str(sku.get("order_status")) in _SHIPPED_OR_DONE]
        out.append({"carrier": _text(pack.get("company_name")) or CARRIERS.get(code, code), "tracking_no": tracking,
                    "shipped_at": _ms(pack.get("ship_time"), "logistics_info.ship_time"),
                    "line_ids": line_ids or shipped or [line["line_id"] for line in lines]})
    return out


def map_order(order: dict, shop_id: str, platform: str = "douyin") -> dict:
    """One Douyin shop order (a list element or the detail) -> canonical order dict (version 0)."""
    if order.__class__ is not dict:
        raise MappingError(f"a shop order must be an object, got {type(order).__name__}")
    get = order.get
    external_id = _id(get("order_id"), "order_id")
    code = get("order_status")
    if code is None or code == "":
        raise MappingError(f"order {external_id}: missing required field 'order_status'")
    skus = get("sku_order_list")
    if skus is None:
        raise MappingError(f"order {external_id} is a summary without sku_order_list: fetch order.orderDetail")
    if skus.__class__ is not list:
        raise MappingError(f"order {external_id}: sku_order_list must be a list")
    if "pay_amount" not in order:
        raise MappingError(f"order {external_id}: missing required field 'pay_amount'")
    platform_status = str(code)
    status = ORDER_STATUS.get(platform_status, "UNKNOWN")
    created_at, updated_at = _ms(get("create_time"), "create_time"), _ms(get("update_time"), "update_time")
    paid_at = _ms(get("pay_time"), "pay_time")
    shipping_fee, paid_total = _fen(get("post_amount"), "post_amount"), _fen(get("pay_amount"), "pay_amount")
    # sku amounts that add up to the parent's payment carry their shares of the shipping fee
    with_post = shipping_fee != 0 and sum([_fen(s.get("pay_amount"), "pay_amount") for s in skus
                                           if s.__class__ is dict]) == paid_total
    lines = [_line(sku, with_post) for sku in skus]
    shipments = _shipments(get("logistics_info"), skus, lines)
    shipped_at = _ms(get("ship_time"), "ship_time")
    if shipped_at is None and shipments:
        shipped_at = min((s["shipped_at"] for s in shipments if s["shipped_at"] is not None), default=None)
    delivered_at = None
    if status in ("SHIPPED", "COMPLETED"):
        delivered_at = (_ms(get("logistics_receipt_time"), "logistics_receipt_time")
                        or _ms(get("confirm_receipt_time"), "confirm_receipt_time"))
        if status == "SHIPPED" and delivered_at is not None:
            status = "DELIVERED"  # Douyin has no delivered status: the receipt time says it
    items_total = discount_total = refunded_total = 0
    for line in lines:
        items_total += line["quantity"] * line["unit_price"]
        discount_total += line["discount"]
        if line["refund_status"] == "REFUNDED":
            refunded_total += line["total"]
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": status,
        "refund_status": _refund_status(lines),
        "platform_status": platform_status,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at, "shipped_at": shipped_at,
        "delivered_at": delivered_at,
        "currency": "CNY",
        "items_total": items_total,
        "shipping_fee": shipping_fee,
        "discount_total": discount_total,
        "tax_total": 0,  # domestic orders: prices include VAT
        "paid_total": paid_total,
        "buyer": {"id": _text(get("doudian_open_id")), "nick_masked": None,
                  "message": mask_free_text(_text(get("buyer_words")))},
        "receiver": _receiver(order),
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": refunded_total,
    }


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "douyin") -> list[dict]:
    """Every shop order in a Douyin body -> canonical order dicts (MappingError on anything unusable)."""
    return map_exactly(lambda exact: [map_order(o, shop_id, platform)
                                      for o in orders_of(parse_body(body, content_type, exact))], platform)
