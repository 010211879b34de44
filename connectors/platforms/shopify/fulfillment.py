"""Fulfillment orders and fulfillments as the simulator serves them (the fulfillment-order model, API 2023-01+).

Every simulated order has one fulfillment order (one location) whose line items mirror the order's lines:
`open` while nothing left, `in_progress` once some lines left, `closed` when every line still active did
or the order was cancelled, `on_hold` while unpaid (status names from shopify.md §5; which status a
cancelled or unpaid order's fulfillment order takes is unverified). `POST /fulfillments.json` fulfils
whole lines: a quantity other than the line's fulfillable quantity is refused (the simulator does not
split a line).
"""
from __future__ import annotations

from connectors.simkit.world import SimOrder

from .render import iso

FO_OFFSET = 1_000_000_000_000  # fulfillment order id = order id + this (one fulfillment order per order)
FO_LINE_OFFSET = 1_000_000_000_000  # fulfillment order line item id = line item id + this
LOCATION_ID = 70_000_000_001
FULFILLABLE = ("open", "in_progress")


class FulfillmentError(ValueError):
    """A request Shopify answers with `status` and `{"errors": errors}`."""

    def __init__(self, status: int, errors):
        super().__init__(str(errors))
        self.status, self.errors = status, errors


def fulfillment_order_id(order: SimOrder) -> int:
    return int(order.external_id) + FO_OFFSET


def order_external_id(fulfillment_order_id: int) -> str:
    """The order a fulfillment order id belongs to."""
    return str(int(fulfillment_order_id) - FO_OFFSET)


def _active(order: SimOrder):
    return [line for line in order.lines if line.refund_status != "REFUNDED"]


def status(order: SimOrder) -> str:
    if order.status == "CANCELLED" or not any(line.shipped_at is None for line in _active(order)):
        return "closed"
    if order.paid_at is None:
        return "on_hold"
    return "in_progress" if any(line.shipped_at is not None for line in order.lines) else "open"


def fulfillment_orders(order: SimOrder) -> list[dict]:
    """`GET /orders/{id}/fulfillment_orders.json`'s list for one order."""
    fo_id, state = fulfillment_order_id(order), status(order)
    return [{
        "id": fo_id, "order_id": int(order.external_id), "assigned_location_id": LOCATION_ID,
        "request_status": "unsubmitted", "status": state,
        "supported_actions": ["create_fulfillment", "move"] if state in FULFILLABLE else [],
        "fulfill_at": iso(order.paid_at or order.created_at), "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at), "delivery_method": {"method_type": "shipping"},
        "line_items": [{
            "id": int(line.line_id) + FO_LINE_OFFSET, "fulfillment_order_id": fo_id, "line_item_id": int(line.line_id),
            "quantity": line.quantity, "variant_id": int(line.sku_id) if line.sku_id.isdigit() else None,
            "fulfillable_quantity": 0 if line.shipped_at is not None or line.refund_status == "REFUNDED"
            else line.quantity,
        } for line in order.lines],
    }]


def planned_lines(order: SimOrder, request: dict) -> list[str]:
    """The order lines one `line_items_by_fulfillment_order` entry fulfils (all that are left when it lists
    no `fulfillment_order_line_items`); FulfillmentError (422) when Shopify would refuse."""
    fo_id = fulfillment_order_id(order)
    state = status(order)
    if state not in FULFILLABLE:
        raise FulfillmentError(422, [f"Fulfillment order {fo_id} has an unfulfillable status= {state}."])
    (fo,) = fulfillment_orders(order)
    items = {item["id"]: item for item in fo["line_items"]}
    wanted = request.get("fulfillment_order_line_items")
    if not wanted:
        return [str(item["line_item_id"]) for item in fo["line_items"] if item["fulfillable_quantity"] > 0]
    if not isinstance(wanted, list):
        raise FulfillmentError(400, {"fulfillment": "Required parameter missing or invalid"})
    lines = []
    for entry in wanted:
        item = items.get(entry.get("id")) if isinstance(entry, dict) else None
        if item is None:
            raise FulfillmentError(422, [f"Invalid fulfillment order line item id {entry}."])
        if entry.get("quantity") != item["fulfillable_quantity"] or not item["fulfillable_quantity"]:
            raise FulfillmentError(422, ["Invalid fulfillment order line item quantity requested."])
        lines.append(str(item["line_item_id"]))
    return lines
