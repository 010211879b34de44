"""SimOrder -> Shopify REST order resource, shaped like the fixtures (used by the simulator).

Shopify has no requested/rejected refund state on the order, so REQUESTED/REJECTED lines render as not
refunded. Times are second-precision ISO-8601 in the shop's offset (-04:00), as the real API sends them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

from connectors.simkit import catalog
from connectors.simkit.world import SimOrder
from schemas.canonical import to_minor

SHOP_TZ = timezone(timedelta(hours=-4))
_PROVINCE_CODES = {province: code for _street, _city, province, code, _zip in catalog.ADDRESSES_US}


def iso(ms: int | None) -> str | None:
    """Epoch ms -> Shopify time text ('2024-05-28T14:03:11-04:00'); sub-second part dropped."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms // 1000, tz=SHOP_TZ).isoformat()


def seconds(ms: int | None) -> int | None:
    """Epoch ms truncated to the second, i.e. what a rendered time maps back to."""
    return None if ms is None else ms // 1000 * 1000


@lru_cache(maxsize=64)
def _exponent(currency: str) -> int:
    return len(str(to_minor("1", currency))) - 1


def money(minor: int, currency: str) -> str:
    """Integer minor units -> Shopify decimal string ("129.90")."""
    exp = _exponent(currency)
    if exp == 0:
        return str(minor)
    sign, minor = ("-" if minor < 0 else ""), abs(minor)
    return f"{sign}{minor // 10**exp}.{minor % 10**exp:0{exp}d}"


def money_set(minor: int, currency: str) -> dict:
    """A Shopify `*_set` object (shop and presentment money are the same here)."""
    amount = {"amount": money(minor, currency), "currency_code": currency}
    return {"shop_money": amount, "presentment_money": dict(amount)}


def financial_status(order: SimOrder) -> str:
    """Shopify `financial_status` for a simulated order."""
    if order.paid_at is None:
        return "voided" if order.status == "CANCELLED" else "pending"
    refunded = sum(1 for line in order.lines if line.refund_status == "REFUNDED")
    if refunded == 0:
        return "paid"
    return "refunded" if refunded == len(order.lines) else "partially_refunded"


def fulfillment_status(order: SimOrder) -> str | None:
    """Shopify `fulfillment_status`: fulfilled when every still-active line shipped, partial when some did."""
    if not any(line.shipped_at is not None for line in order.lines):
        return None
    active = [line for line in order.lines if line.refund_status != "REFUNDED"]
    return "fulfilled" if all(line.shipped_at is not None for line in active) else "partial"


def closed_at(order: SimOrder) -> int | None:
    """Shopify closes (archives) completed orders and cancelled ones."""
    if order.status == "COMPLETED":
        return order.finished_at
    return order.cancelled_at if order.status == "CANCELLED" else None


def order_number(order: SimOrder) -> int:
    return 1000 + int(order.external_id) % 1_000_000


def order_json(order: SimOrder, shop_domain: str) -> dict:
    """The REST order resource of `order` as `GET /orders/{id}.json` returns it (protected-data access)."""
    cur, oid = order.currency, int(order.external_id)
    number = order_number(order)
    discounts = order.line_discounts + order.order_discount
    refunded = order.refunded_total
    first, _, last = order.receiver_name.partition(" ")
    address = {
        "first_name": first,
        "last_name": last or None,
        "name": order.receiver_name,
        "address1": order.street,
        "address2": None,
        "city": order.city,
        "province": order.province,
        "province_code": _PROVINCE_CODES.get(order.province),
        "country": "United States" if order.country == "US" else order.country,
        "country_code": order.country,
        "zip": order.postal_code,
        "phone": order.receiver_phone,
        "company": None,
        "latitude": None,
        "longitude": None,
    }
    paid = order.paid_at is not None
    return {
        "id": oid,
        "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
        "name": f"#{number}",
        "order_number": number,
        "email": order.buyer_nick or None,
        "phone": None,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "processed_at": iso(order.paid_at if paid else order.created_at),
        "closed_at": iso(closed_at(order)),
        "cancelled_at": iso(order.cancelled_at) if order.status == "CANCELLED" else None,
        "cancel_reason": "customer" if order.status == "CANCELLED" else None,
        "financial_status": financial_status(order),
        "fulfillment_status": fulfillment_status(order),
        "currency": cur,
        "presentment_currency": cur,
        "total_line_items_price": money(order.items_total, cur),
        "subtotal_price": money(order.items_total - discounts, cur),
        "total_discounts": money(discounts, cur),
        "total_tax": money(order.tax, cur),
        "total_price": money(order.paid_total, cur),
        "current_total_price": money(order.paid_total - refunded, cur),
        "total_line_items_price_set": money_set(order.items_total, cur),
        "subtotal_price_set": money_set(order.items_total - discounts, cur),
        "total_discounts_set": money_set(discounts, cur),
        "total_tax_set": money_set(order.tax, cur),
        "total_price_set": money_set(order.paid_total, cur),
        "total_shipping_price_set": money_set(order.shipping_fee, cur),
        "tags": "",
        "note": order.buyer_message or None,
        "test": False,
        "source_name": "web",
        "tax_lines": [
            {
                "title": "Sales Tax",
                "rate": 0.08875,
                "price": money(order.tax, cur),
                "price_set": money_set(order.tax, cur),
            }
        ]
        if order.tax
        else [],
        "line_items": [_line(line, cur) for line in order.lines],
        "shipping_lines": [
            {
                "id": 4_700_000_000 + oid % 1_000_000,
                "title": "Standard",
                "code": "Standard",
                "price": money(order.shipping_fee, cur),
                "source": "shopify",
            }
        ]
        if order.shipping_fee
        else [],
        "shipping_address": address,
        "billing_address": dict(address),
        "customer": {
            "id": int(order.buyer_id) if order.buyer_id.isdigit() else None,
            "email": order.buyer_nick or None,
            "first_name": first,
            "last_name": last or None,
        },
        "fulfillments": fulfillments(order),
        "refunds": _refunds(order),
    }


def _line(line, cur: str) -> dict:
    refunded = line.refund_status == "REFUNDED"
    shipped = line.shipped_at is not None
    item = {
        "id": int(line.line_id),
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line.line_id}",
        "variant_id": int(line.sku_id) if line.sku_id.isdigit() else None,
        "product_id": 8_800_000_000 + int(line.sku_id) % 1_000_000 if line.sku_id.isdigit() else None,
        "sku": line.merchant_sku,
        "title": line.title,
        "variant_title": None,
        "name": line.title,
        "quantity": line.quantity,
        "current_quantity": 0 if refunded else line.quantity,
        "fulfillable_quantity": 0 if refunded or shipped else line.quantity,
        "fulfillment_status": "fulfilled" if shipped else None,
        "price": money(line.unit_price, cur),
        "price_set": money_set(line.unit_price, cur),
        "total_discount": money(line.discount, cur),
        "total_discount_set": money_set(line.discount, cur),
        "discount_allocations": [
            {
                "amount": money(line.discount, cur),
                "amount_set": money_set(line.discount, cur),
                "discount_application_index": 0,
            }
        ]
        if line.discount
        else [],
        "requires_shipping": True,
        "taxable": True,
        "gift_card": False,
        "vendor": "Tonglu Demo",
    }
    return item


def fulfillments(order: SimOrder) -> list[dict]:
    """The order's fulfillments: its shipped lines grouped by when, with which number and carrier."""
    groups: dict[tuple, list] = {}
    for line in order.lines:
        if line.shipped_at is not None:
            groups.setdefault((line.shipped_at, line.tracking_no, line.carrier_name), []).append(line)
    out, oid = [], int(order.external_id)
    delivered = order.delivered_at is not None
    for (shipped_at, tracking, carrier), lines in sorted(groups.items(), key=lambda kv: kv[0][0]):
        out.append(
            {
                "id": 5_000_000_000_000 + int(lines[0].line_id),
                "order_id": oid,
                "status": "success",
                "created_at": iso(shipped_at),
                "updated_at": iso(max(order.delivered_at, shipped_at) if delivered else shipped_at),
                "service": "manual",
                "shipment_status": "delivered" if delivered else "in_transit",
                "tracking_company": carrier,
                "tracking_number": tracking,
                "tracking_numbers": [tracking] if tracking else [],
                "tracking_url": f"https://t.example.com/{carrier}/{tracking}" if tracking else None,
                "line_items": [
                    {"id": int(line.line_id), "sku": line.merchant_sku, "quantity": line.quantity}
                    for line in lines
                ],
            }
        )
    return out


def _refunds(order: SimOrder) -> list[dict]:
    cur, oid = order.currency, int(order.external_id)
    at = iso(order.cancelled_at or order.updated_at)
    out = []
    for line in order.lines:
        if line.refund_status != "REFUNDED":
            continue
        rid = int(line.line_id)
        out.append(
            {
                "id": 9_000_000_000_000 + rid,
                "order_id": oid,
                "created_at": at,
                "note": None,
                "restock": True,
                "refund_line_items": [
                    {
                        "id": 6_000_000_000_000 + rid,
                        "line_item_id": rid,
                        "quantity": line.quantity,
                        "restock_type": "cancel",
                        "subtotal": money(line.total, cur),
                        "total_tax": money(0, cur),
                    }
                ],
                "transactions": [
                    {
                        "id": 7_000_000_000_000 + rid,
                        "order_id": oid,
                        "kind": "refund",
                        "gateway": "shopify_payments",
                        "status": "success",
                        "amount": money(line.total, cur),
                        "currency": cur,
                        "created_at": at,
                    }
                ],
            }
        )
    return out


def page_body(orders: list[SimOrder], plaintext: bool = True) -> bytes:
    """A `GET /orders.json` answer listing `orders` (one page). Shopify gives every app with the
    orders scope its receivers in clear, so `plaintext` changes nothing."""
    import json

    return json.dumps({"orders": [order_json(o, f"{o.shop_id}.myshopify.com") for o in orders]}).encode()


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a `GET /orders.json` page, its state forced to `platform_status`
    ("{financial_status}/{fulfillment_status or 'unfulfilled'}[/cancelled]", see the manifest's table).
    Shopify has no separate refund state (`refund_status` must be None)."""
    import json

    if refund_status is not None:
        raise ValueError("shopify has no refund status of its own")
    doc = order_json(order, f"{order.shop_id}.myshopify.com")
    if platform_status is not None:
        financial, fulfillment, *cancelled = platform_status.split("/")
        doc["financial_status"] = financial
        doc["fulfillment_status"] = None if fulfillment == "unfulfilled" else fulfillment
        doc["cancelled_at"] = doc["updated_at"] if cancelled else None
        doc["closed_at"] = doc["updated_at"] if cancelled else None
    return json.dumps({"orders": [doc]}).encode()
