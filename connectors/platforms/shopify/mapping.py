"""Shopify REST order resources -> canonical orders (schemas/tonglu.Order.avsc). Pure: no I/O, no clock.

Choices where the fact sheet is silent (see also the module README in the final report):
- `platform_status` is `"{financial_status}/{fulfillment_status or 'unfulfilled'}"` plus `"/cancelled"` when
  `cancelled_at` is set, because Shopify splits its state over several fields.
- `financial_status == "refunded"` on an order that is not cancelled maps to PAID (refund_status tells
  the rest); unknown financial states (e.g. `expired`) map to UNKNOWN.
- `buyer.nick_masked` is the masked e-mail (`m***@example.com`: first character of the local part kept,
  domain kept); without an e-mail, the masked customer name.
- A line's discount is max(`total_discount`, sum of `discount_allocations`): Shopify fills both with the same
  allocation in most payloads, so adding them would count the discount twice.
- `shipping_fee` sums `shipping_lines[].price` when the list is present, else
  `total_shipping_price_set.shop_money`.
- Fulfillments with status cancelled/error/failure are not shipments. `delivered_at` is the latest fulfillment
  `updated_at` (else the order's `updated_at`) once every shipment has `shipment_status == "delivered"`.
- `buyer.message` is the order `note`, free text typed by the buyer, masked by schemas/free_text.py.
- Line titles use the line `name` ("Ceramic Mug - Black"), falling back to `title`; `sku_id` is the
  variant id.
"""

from __future__ import annotations

from functools import lru_cache

from schemas.canonical import MappingError, iso_to_ms, mask_name, mask_phone, mask_street, order_id, to_minor
from schemas.exact_json import parse_json
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

_PAID_LIKE = {"paid", "partially_refunded", "authorized", "refunded"}
_PENDING = {"pending", "partially_paid"}
_PAID_AT = {"paid", "partially_refunded", "refunded"}
_DEAD_FULFILLMENTS = {"cancelled", "error", "failure"}
_REFUND_STATUS = {"refunded": "REFUNDED", "partially_refunded": "PARTIALLY_REFUNDED"}
_REQUIRED = ("id", "created_at", "updated_at", "currency", "financial_status", "line_items", "total_price")


@lru_cache(maxsize=65536)
def _money(amount, currency: str) -> int:
    return to_minor(amount, currency)


class _MinorUnits(dict):
    """Amount -> minor units of one currency: to_minor, remembered (prices repeat; cleared when full)."""

    def __init__(self, currency: str):
        super().__init__()
        self.currency = currency

    def __missing__(self, amount) -> int:
        if len(self) >= 16384:
            self.clear()
        units = self[amount] = to_minor(amount, self.currency)
        return units


class _OddCurrency:
    """A currency that is not a string: every amount goes through _money, which raises where it always did."""

    def __init__(self, currency):
        self.currency = currency

    def __getitem__(self, amount) -> int:
        return _money(amount, self.currency)


_UNITS: dict[str, _MinorUnits] = {}


def _units(currency) -> _MinorUnits | _OddCurrency:
    """money[amount] -> minor units in `currency` (a subscript is cheaper than a call, and an order has many)."""
    if currency.__class__ is not str:
        return _OddCurrency(currency)
    units = _UNITS.get(currency)
    if units is None:
        if len(_UNITS) >= 64:
            _UNITS.clear()
        units = _UNITS[currency] = _MinorUnits(currency)
    return units


@lru_cache(maxsize=8192)
def _minute_ms(minute: str) -> int:
    return iso_to_ms(minute[:16] + ":00" + minute[16:])


_MS_CACHE: dict[str, int] = {}  # an order's times repeat on every page and webhook that carries it; cleared when full


def _time(text: str | None) -> int | None:
    """iso_to_ms with a cached per-minute fast path for 'YYYY-MM-DDTHH:MM:SS+HH:MM' (same result)."""
    ms = _MS_CACHE.get(text) if text.__class__ is str else None
    if ms is not None:
        return ms
    if text and len(text) == 25 and text[16] == ":" and text[17:19].isdigit() and text[17] < "6":
        ms = _minute_ms(text[:16] + text[19:]) + int(text[17:19]) * 1000
        if len(_MS_CACHE) >= 8192:
            _MS_CACHE.clear()
        _MS_CACHE[text] = ms
        return ms
    return iso_to_ms(text)


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "shopify") -> list[dict]:
    """Map an orders list (`{"orders": [...]}`), a single order (`{"order": {...}}`) or a webhook body (a bare
    order) to canonical order dicts. Anything unusable raises MappingError with a one-line reason."""
    if content_type and "json" not in content_type.lower():
        raise MappingError(f"shopify: unsupported content type {content_type!r}")
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise MappingError("shopify: body is not a JSON object")
    if "errors" in doc:
        raise MappingError(f"shopify API error: {doc['errors']}")
    if "orders" in doc:
        orders = doc["orders"]
        if not isinstance(orders, list):
            raise MappingError("shopify: 'orders' is not a list")
    elif "order" in doc:
        orders = [doc["order"]]
    elif "id" in doc:
        orders = [doc]
    else:
        raise MappingError("shopify: body has neither 'orders', 'order' nor an order 'id'")
    return [map_order(o, shop_id, platform) for o in orders]


def map_order(order: dict, shop_id: str, platform: str = "shopify") -> dict:
    """One Shopify order resource (already parsed) -> one canonical order dict."""
    if not isinstance(order, dict):
        raise MappingError("shopify: order is not a JSON object")
    get = order.get
    if (get("id") is None or get("created_at") is None or get("updated_at") is None or get("currency") is None
            or get("financial_status") is None or get("line_items") is None or get("total_price") is None):
        missing = next(name for name in _REQUIRED if get(name) is None)
        raise MappingError(f"shopify order {get('id')}: missing required field {missing!r}")
    try:
        return _map(order, shop_id, platform)
    except MappingError as exc:
        raise MappingError(f"shopify order {get('id')}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise MappingError(
            f"shopify order {get('id')}: bad field ({exc.__class__.__name__}: {exc})"
        ) from None


def _map(o: dict, shop_id: str, platform: str) -> dict:
    # one flat function with the line, buyer and time look-ups written in place: an order makes few calls
    # (each Python call costs about as much as a dozen field reads); the steps keep their order, so a payload
    # with several bad fields is refused for the same one as before
    get = o.get
    ext = str(o["id"])
    cur = o["currency"]
    financial, fulfillment = o["financial_status"], get("fulfillment_status")
    cancelled = bool(get("cancelled_at"))
    fulfillments = get("fulfillments")
    shipments, shipped_at, delivered_at = _shipments(fulfillments, o) if fulfillments else ([], None, None)
    status = _status(financial, fulfillment, cancelled, get("closed_at"), delivered_at is not None)
    money = _units(cur)
    refunded_qty: dict[str, int] = {}
    refunded_total = 0
    refunds = get("refunds")
    if refunds:
        for refund in refunds:
            for item in refund.get("refund_line_items") or ():
                key = str(item["line_item_id"])
                refunded_qty[key] = refunded_qty.get(key, 0) + int(item.get("quantity") or 0)
            for tx in refund.get("transactions") or ():
                if tx.get("kind") == "refund" and tx.get("status") == "success":
                    refunded_total += money[tx.get("amount")]
    lines, items_total = [], 0
    for li in o["line_items"]:
        line_get = li.get
        line_id = str(li["id"])
        quantity = int(li["quantity"])
        unit_price = money[li["price"]]
        discount = money[line_get("total_discount")]
        allocations = line_get("discount_allocations")
        if allocations:
            allocated = 0
            for allocation in allocations:
                allocated += money[allocation.get("amount")]
            discount = max(discount, allocated)
        refunded = refunded_qty.get(line_id, 0) if refunded_qty else 0
        variant = line_get("variant_id")
        lines.append({
            "line_id": line_id,
            "sku_id": str(variant) if variant is not None else None,
            "merchant_sku": line_get("sku") or None,
            "title": line_get("name") or line_get("title") or "",
            "quantity": quantity,
            "unit_price": unit_price,
            "total": quantity * unit_price - discount,
            "discount": discount,
            "refund_status": "NONE" if not refunded
            else ("REFUNDED" if refunded >= quantity > 0 else "PARTIALLY_REFUNDED"),
        })
        items_total += quantity * unit_price
    shipping_lines = get("shipping_lines")
    if shipping_lines is not None:
        shipping_fee = 0
        for shipping in shipping_lines:
            shipping_fee += money[shipping.get("price")]
    else:
        shipping_fee = money[((get("total_shipping_price_set") or {}).get("shop_money") or {}).get("amount")]
    platform_status = f"{financial}/{fulfillment or 'unfulfilled'}{'/cancelled' if cancelled else ''}"
    text = o["created_at"]
    created_at = _MS_CACHE.get(text) if text.__class__ is str else None
    if created_at is None:
        created_at = _time(text)
    paid_at = _time(get("processed_at")) if financial in _PAID_AT else None
    text = o["updated_at"]
    updated_at = _MS_CACHE.get(text) if text.__class__ is str else None
    if updated_at is None:
        updated_at = _time(text)
    discount_total, tax_total, paid_total = money[get("total_discounts")], money[get("total_tax")], money[o["total_price"]]
    customer = get("customer") or {}
    email = get("email") or customer.get("email")
    if email:
        nick = _mask_email(email)
    else:
        nick = mask_name(" ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p))
    cid = customer.get("id")
    note = get("note")
    return {
        "order_id": order_id(platform, shop_id, ext),
        "platform": platform,
        "shop_id": shop_id,
        "external_id": ext,
        "status": status,
        "refund_status": _REFUND_STATUS.get(financial, "NONE"),
        "platform_status": platform_status,
        "created_at": created_at,
        "paid_at": paid_at,
        "updated_at": updated_at,
        "shipped_at": shipped_at,
        "delivered_at": delivered_at,
        "currency": cur,
        "items_total": items_total,
        "shipping_fee": shipping_fee,
        "discount_total": discount_total,
        "tax_total": tax_total,
        "paid_total": paid_total,
        "buyer": {
            "id": str(cid) if cid is not None else None,
            "nick_masked": nick,
            "message": (mask_free_text(note) or None) if note else None,
        },
        "receiver": _receiver(get("shipping_address")),
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": refunded_total,
    }


def _status(financial: str, fulfillment: str | None, cancelled: bool, closed_at, delivered: bool) -> str:
    if cancelled or financial == "voided":
        return "CANCELLED"
    if fulfillment == "fulfilled":
        if closed_at:
            return "COMPLETED"
        return "DELIVERED" if delivered else "SHIPPED"
    if fulfillment == "partial":
        return "PARTIALLY_SHIPPED"
    if financial in _PAID_LIKE:
        return "PAID"
    if financial in _PENDING:
        return "PENDING_PAYMENT"
    return "UNKNOWN"


def _shipments(fulfillments, o: dict) -> tuple[list[dict], int | None, int | None]:
    """(shipments, first shipped_at, delivered_at) of an order's non-empty `fulfillments`."""
    shipments, delivered, delivered_at, shipped_at = [], True, None, None
    for f in fulfillments:
        get = f.get
        if get("status") in _DEAD_FULFILLMENTS:
            continue
        carrier, tracking = get("tracking_company") or None, get("tracking_number") or None
        at = _time(get("created_at"))
        items = get("line_items")
        shipments.append({"carrier": carrier, "tracking_no": tracking, "shipped_at": at,
                          "line_ids": [str(li["id"]) for li in items] if items else []})
        if at is not None and (shipped_at is None or at < shipped_at):
            shipped_at = at
        if get("shipment_status") == "delivered":
            at = _time(get("updated_at") or o["updated_at"])
            delivered_at = at if delivered_at is None else max(delivered_at, at)
        else:
            delivered = False
    return shipments, shipped_at, (delivered_at if shipments and delivered else None)


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{(local or '*')[0]}***@{domain}" if domain else (mask_name(local) or "***")


def _receiver(addr: dict | None) -> dict:
    if not addr:
        return {
            "name_masked": None,
            "phone_masked": None,
            "country": None,
            "province": None,
            "city": None,
            "district": None,
            "address_masked": None,
            "postal_code": None,
            "secure_token": None,
            "phone_valid": None,
            "address_vague": None,
        }
    get = addr.get
    name = get("name") or f"{get('first_name') or ''} {get('last_name') or ''}".strip()
    street, extra = get("address1") or "", get("address2")
    if extra:
        street = f"{street} {extra}".strip()
    phone, country = get("phone"), get("country_code")
    return {
        "name_masked": mask_name(name),
        "phone_masked": mask_phone(phone),
        "country": country or None,
        "province": get("province_code") or get("province") or None,
        "city": get("city") or None,
        "district": None,
        "address_masked": mask_street(street),
        "postal_code": get("zip") or None,
        "secure_token": None,
        # judged here, while the plain number and street are in hand; only the verdicts travel on
        "phone_valid": phone_verdict(phone, country),
        "address_vague": street_vague(street, country),
    }
