"""Pure row builders: decoded Avro records (timestamps as epoch-ms ints) -> table rows.

Rows are tuples in the column order of `ddl.TABLE_COLUMNS`; timestamps stay epoch milliseconds and
the backend converts them for its wire format.
"""

from __future__ import annotations

import orjson


def order_json(order: dict) -> str:
    """The canonical order for the `orders.order_json` column (already masked upstream).

    Times stay epoch milliseconds here (cheap to write on the hot path); readers turn them into
    ISO-8601 with `schemas.canonical.order_json`.
    """
    return orjson.dumps(order).decode()


def event_row(event: dict) -> tuple:
    """A decoded OrderEvent -> one `order_events` row."""
    order = event["order"]
    return (
        event["event_id"],
        event["event_type"],
        event["order_id"],
        order["platform"],
        order["shop_id"],
        event["version"],
        event.get("seq", 0),
        event["occurred_at"],
        event["recorded_at"],
        order["status"],
        order["refund_status"],
        order["paid_total"],
        order["currency"],
        list(event.get("changed_fields") or ()),
    )


def order_row(order: dict) -> tuple:
    """A canonical order snapshot (as in OrderEvent.order) -> one `orders` row."""
    receiver = order.get("receiver") or {}
    return (
        order["order_id"],
        order["platform"],
        order["shop_id"],
        order["external_id"],
        order["status"],
        order["refund_status"],
        order["platform_status"],
        order.get("created_at"),
        order.get("paid_at"),
        order.get("updated_at"),
        order.get("shipped_at"),
        order.get("delivered_at"),
        order["currency"],
        order["items_total"],
        order["shipping_fee"],
        order["discount_total"],
        order["tax_total"],
        order["paid_total"],
        order.get("refunded_total", 0),
        min(len(order.get("lines") or ()), 65535),
        receiver.get("province"),
        receiver.get("city"),
        order["version"],
        order_json(order),
    )


def event_rows(event: dict) -> dict[str, tuple]:
    """Both rows one OrderEvent yields, by table."""
    return {"order_events": event_row(event), "orders": order_row(event["order"])}


def connector_call_row(call: dict) -> tuple:
    """A decoded ConnectorCall -> one `connector_calls` row."""
    return (
        call["call_id"],
        call["platform"],
        call["shop_id"],
        call["endpoint"],
        call["started_at"],
        float(call["latency_ms"]),
        call["http_status"],
        1 if call["ok"] else 0,
        call.get("error_code"),
        call["records"],
        call.get("attempt", 1),
    )


def dead_letter_row(dead: dict) -> tuple:
    """A decoded DeadLetter -> one `dead_letters` row (the original bytes are not projected)."""
    return (
        dead["stage"],
        dead["error"],
        dead["failed_at"],
        dead["topic"],
        dead["partition"],
        dead["offset"],
        dead.get("platform"),
        dead.get("shop_id"),
        dead.get("external_id"),
    )
