"""Ship-back to Shopify through fulfillment orders (mandatory since API 2023-01, shopify.md §5).

1. `GET /orders/{id}/fulfillment_orders.json`: the fulfillment orders and their line items.
2. `POST /fulfillments.json` with `line_items_by_fulfillment_order` (the fulfillment order line items of
   the requested lines, or none listed to fulfil what is left) and `tracking_info {number, company}`.
Nothing left to fulfil, or a 422, is settled against the order itself: an earlier attempt of ours, a
cancelled or refunded order, lines fulfilled with another number.
"""
from __future__ import annotations

import orjson

from connectors.runtime.base import Caller, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, TransientError
from connectors.runtime.shipping import ShipRefused, ShipRequest, settle_refusal

from .client import ShopifyClient, classify

ENDPOINT = "fulfillments.json"
FULFILLABLE = ("open", "in_progress")


def _checked(response: Response, ok: int, key: str) -> dict:
    """The JSON body of an answer with status `ok` holding `key`; 404 and 422 are refusals, the rest is
    classified like every Shopify answer (429 throttled, 5xx transient, other 4xx permanent)."""
    if response.status == 404:
        raise ShipRefused("not_found", "shopify 404: no such order or fulfillment order", code="404")
    if response.status == 422:
        raise ShipRefused("rejected", f"shopify 422: {response.body[:300].decode(errors='replace')}", code="422")
    if response.status != ok:
        classify(response, key)  # raises for anything but 200
        raise PermanentError(f"shopify: HTTP {response.status} where {ok} was expected", code=str(response.status))
    try:
        doc = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or key not in doc:
        raise TransientError("malformed body", code="malformed")
    return doc


def fulfillment_request(fulfillment_orders: list[dict], request: ShipRequest) -> dict | None:
    """The `POST /fulfillments.json` body for `request`, or None when some line it asks for (or, asking
    for none, every line) cannot be fulfilled any more; ShipRefused when it names a line the order lacks."""
    wanted = set(request.line_ids)
    groups, known, covered = [], set(), set()
    for fo in fulfillment_orders:
        items = fo.get("line_items") or []
        known |= {str(i["line_item_id"]) for i in items}
        items = [i for i in items if not wanted or str(i["line_item_id"]) in wanted]
        open_items = [i for i in items if i.get("fulfillable_quantity")]
        if fo.get("status") not in FULFILLABLE or not open_items:
            continue
        group: dict = {"fulfillment_order_id": fo["id"]}
        if wanted:
            group["fulfillment_order_line_items"] = [{"id": i["id"], "quantity": i["fulfillable_quantity"]}
                                                     for i in open_items]
        covered |= {str(i["line_item_id"]) for i in open_items}
        groups.append(group)
    if wanted - known:
        raise ShipRefused("unknown_lines", f"shopify: line {min(wanted - known)} is not part of the order")
    if not groups or wanted and covered != wanted:
        return None
    return {"fulfillment": {"line_items_by_fulfillment_order": groups, "notify_customer": True,
                            "tracking_info": {"number": request.tracking_no, "company": request.carrier_code}}}


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = ShopifyClient(creds, caller)

    def _spec(self, method: str, path: str, body: dict | None = None) -> RequestSpec:
        headers = {"X-Shopify-Access-Token": self.creds.access_token, "Accept": "application/json"}
        if body is None:
            return RequestSpec(method, f"{self.client.base}/{path}", headers=headers)
        headers["Content-Type"] = "application/json"
        return RequestSpec(method, f"{self.client.base}/{path}", data=orjson.dumps(body), headers=headers)

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows these lines fulfilled with this number before."""
        try:
            answer = await self.caller.request(
                "orders/{id}/fulfillment_orders.json",
                lambda: self._spec("GET", f"orders/{request.external_id}/fulfillment_orders.json"),
                lambda r: len(_checked(r, 200, "fulfillment_orders")["fulfillment_orders"]))
            body = fulfillment_request(orjson.loads(answer.body)["fulfillment_orders"], request)
            if body is None:
                raise ShipRefused("already_shipped", "shopify: nothing left to fulfil for these lines")
            await self.caller.request(ENDPOINT, lambda: self._spec("POST", "fulfillments.json", body),
                                      lambda r: _checked(r, 201, "fulfillment") and 1)
        except ShipRefused as refused:
            if refused.kind not in ("already_shipped", "rejected"):
                raise
            return await settle_refusal(self.client, self.creds.platform, self.creds.shop_id, request, refused)
        return "accepted"
