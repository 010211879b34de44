"""Where a Shopify buyer's phone is, for the SMS sender alone: Shopify returns receivers in clear, so the number is
read from the order fetched at send time (`GET /orders/{id}.json`) and never kept — not in topics, logs or tables.

Folder contract (connectors/platforms/README.md): a platform whose receivers come in clear has `contact.py` with
`buyer_phone(body) -> str | None`, reading the body its client's `fetch_order` returns.
"""
from __future__ import annotations

import orjson


def buyer_phone(body: bytes) -> str | None:
    """The number to text about this order: the shipping address's, else the order's, else the customer's."""
    order = orjson.loads(body).get("order") or {}
    for holder in (order.get("shipping_address"), order, order.get("customer"), order.get("billing_address")):
        phone = (holder or {}).get("phone")
        if isinstance(phone, str) and phone.strip():
            return phone.strip()
    return None
