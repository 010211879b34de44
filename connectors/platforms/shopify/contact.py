"""Where a Shopify buyer's phone is, for the SMS sender alone: Shopify returns receivers in clear, so the number is
read from the orders fetched at send time and never kept — not in topics, logs or tables.

Folder contract (connectors/platforms/README.md): a platform whose receivers come in clear has `contact.py` with
`buyer_phones(client, external_ids)`. Shopify answers up to 250 orders by id in one `GET /orders.json?ids=`, so
the numbers of many messages cost one call of the shop's 2-per-second budget, which the connector's polling shares.
"""
from __future__ import annotations

import orjson

from connectors.runtime.base import RequestSpec

from .client import classify

MAX_IDS = 250
FIELDS = "id,phone,shipping_address,customer,billing_address"


def buyer_phone(order: dict) -> str | None:
    """The number to text about this order: the shipping address's, else the order's, else the customer's."""
    for holder in (order.get("shipping_address"), order, order.get("customer"), order.get("billing_address")):
        phone = (holder or {}).get("phone")
        if isinstance(phone, str) and phone.strip():
            return phone.strip()
    return None


async def buyer_phones(client, external_ids: list[str]) -> dict[str, str | None]:
    """{external id: phone or None} for up to 250 orders of the client's shop, in one call."""
    ids = ",".join(str(i) for i in external_ids[:MAX_IDS])
    params = {"ids": ids, "status": "any", "limit": str(MAX_IDS), "fields": FIELDS}
    response = await client.caller.request(
        "orders.json?ids", lambda: RequestSpec("GET", f"{client.base}/orders.json", params=params,
                                               headers=client._headers()), classify)
    found = {str(order.get("id")): buyer_phone(order) for order in orjson.loads(response.body)["orders"]}
    return {str(i): found.get(str(i)) for i in external_ids[:MAX_IDS]}
