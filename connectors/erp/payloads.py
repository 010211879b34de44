"""What an ERP endpoint receives for one order event: the signed JSON webhook (pure functions).

Body (keys in this order, compact UTF-8 JSON):
`{"event_id","event_type","order_id","version","occurred_at","order":{canonical order JSON}}` — the
order exactly as `tonglu normalize` prints it (`schemas.canonical.order_json`). Headers:
`X-Tonglu-Event-Id` (stable across retries and replays: the receiver's dedup key, also as
`Idempotency-Key`), `X-Tonglu-Event`, `X-Tonglu-Delivery` (one per attempt), `X-Tonglu-Timestamp` (unix
seconds of the attempt) and `X-Tonglu-Signature` (see `signing.webhook_signature`).
"""
from __future__ import annotations

import orjson

from connectors.erp.signing import webhook_signature
from schemas.canonical import ms_to_iso, order_json

CONTENT_TYPE = "application/json; charset=utf-8"


def order_json_bytes(order: dict) -> bytes:
    """The canonical order as JSON bytes (what `tonglu normalize` prints, without the indentation)."""
    return orjson.dumps(order_json(order))


def webhook_body(event: dict, order_bytes: bytes | None = None) -> bytes:
    """The JSON body for `event` (an `OrderEvent` as decoded). `order_bytes` is `order_json_bytes` of the
    event's order when the caller already rendered it (several events of one version share it)."""
    head = orjson.dumps({"event_id": event["event_id"], "event_type": event["event_type"],
                         "order_id": event["order_id"], "version": event["version"],
                         "occurred_at": ms_to_iso(event["occurred_at"])})
    order = order_json_bytes(event["order"]) if order_bytes is None else order_bytes
    return head[:-1] + b',"order":' + order + b"}"


def webhook_headers(event_id: str, event_type: str, body: bytes, secret: str | bytes, timestamp: int,
                    delivery_id: str) -> list[tuple[str, str]]:
    """The headers of one delivery attempt of a webhook body, signed with the endpoint's secret."""
    return [("Content-Type", CONTENT_TYPE), ("X-Tonglu-Event-Id", event_id), ("X-Tonglu-Event", event_type),
            ("X-Tonglu-Delivery", delivery_id), ("Idempotency-Key", event_id),
            ("X-Tonglu-Timestamp", str(timestamp)),
            ("X-Tonglu-Signature", webhook_signature(secret, timestamp, body))]
