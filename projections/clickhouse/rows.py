"""Pure row builders: decoded Avro records (timestamps as epoch-ms ints) -> table rows.

Rows are tuples in the column order of `ddl.TABLE_COLUMNS`; timestamps stay epoch milliseconds and
the backend converts them for its wire format.
"""

from __future__ import annotations

import orjson

from schemas.canonical import ms_to_iso
from schemas.sms import receipt_revision


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


def tracking_rows(event: dict) -> list[tuple]:
    """The `tracking` rows of an OrderEvent: for a TrackingUpdated, its parcel (the shipment whose latest
    step is the event's time); none for any other event."""
    if event["event_type"] != "TrackingUpdated":
        return []
    order = event["order"]
    return [(order["order_id"], order["platform"], order["shop_id"], s["tracking_no"] or "", s.get("carrier"),
             s["tracking_state"], s.get("tracking_status"), s.get("tracking_step"), s["tracking_at"],
             s.get("delivered_at"), event["event_id"], event["version"])
            for s in order["shipments"] if s.get("tracking_at") == event["occurred_at"] and s.get("tracking_state")]


def shipment_row(result: dict) -> tuple:
    """A decoded ShipmentResult -> one `shipments` row."""
    platform, shop_id, _ = result["order_id"].split(":", 2)
    return (
        result["shipment_id"],
        result["order_id"],
        platform,
        shop_id,
        result["status"],
        result.get("carrier_code"),
        result["tracking_no"],
        list(result.get("line_ids") or ()),
        min(result.get("attempt", 1), 65535),
        result.get("reason"),
        result["recorded_at"],
    )


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


def anomaly_row(anomaly: dict) -> tuple:
    """A decoded Anomaly -> one `anomaly_log` row (the history of raised/resolved records)."""
    return (
        anomaly["anomaly_id"],
        anomaly["order_id"],
        anomaly.get("event_id"),
        anomaly["platform"],
        anomaly["shop_id"],
        anomaly["rule"],
        anomaly["severity"],
        anomaly["action"],
        anomaly["state"],
        anomaly["message_zh"],
        anomaly["message_en"],
        {str(k): str(v) for k, v in (anomaly.get("evidence") or {}).items()},
        anomaly["detected_at"],
        anomaly["order_version"],
    )


def anomaly_revision(anomaly: dict) -> int:
    """The replacing version of `anomalies`: newer wins; at the same millisecond a resolution wins."""
    return anomaly["detected_at"] * 2 + (1 if anomaly["state"] == "resolved" else 0)


def anomaly_rows(anomaly: dict) -> dict[str, tuple]:
    """Both rows one Anomaly yields: the latest-state row and the history row, by table."""
    row = anomaly_row(anomaly)
    return {"anomalies": (*row, anomaly_revision(anomaly)), "anomaly_log": row}


def alert_attempts_json(attempts) -> str:
    """The `alerts.attempts` column: the attempts as a JSON array with ISO-8601 Z start times."""
    return orjson.dumps(
        [
            {
                "channel": a["channel"],
                "attempt": a["attempt"],
                "ok": bool(a["ok"]),
                "error": a.get("error"),
                "code": a.get("code"),
                "retryable": bool(a.get("retryable", False)),
                "started_at": ms_to_iso(a["started_at"]),
                "latency_ms": float(a["latency_ms"]),
            }
            for a in attempts or ()
        ]
    ).decode()


def alert_row(report: dict) -> tuple:
    """A decoded AlertReport -> one `alerts` row."""
    attempts = report.get("attempts") or ()
    return (
        report["key"],
        1 if report["ok"] else 0,
        report.get("channel"),
        report["route"],
        report["rule"],
        report["kind"],
        report["severity"],
        report["title"],
        list(report.get("anomaly_ids") or ()),
        list(report.get("order_ids") or ()),
        alert_attempts_json(attempts),
        min(len(attempts), 65535),
        report["finished_at"],
    )


def sms_message_row(record: dict) -> tuple:
    """A decoded SmsReceipt -> one `sms_messages` row (its phone hash is not projected)."""
    attempts = [{**a, "started_at": ms_to_iso(a["started_at"])} for a in record.get("attempts") or ()]
    return (
        record["key"],
        record.get("order_id"),
        record.get("member_id"),
        record["platform"],
        record["shop_id"],
        record["trigger"],
        record["template"],
        record["kind"],
        record["channel"],
        record.get("provider"),
        record["status"],
        record.get("reason"),
        record.get("code"),
        record.get("to_masked"),
        min(record["segments"], 65535),
        record.get("provider_id"),
        record.get("out_id"),
        orjson.dumps(attempts).decode(),
        record["created_at"],
        record.get("sent_at"),
        record.get("reported_at"),
        record["at"],
        receipt_revision(record),
    )
