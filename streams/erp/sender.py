"""One endpoint's way of sending an order event: render it in the endpoint's format, sign each attempt,
judge the answer — shared by the deliverer and `tonglu erp replay`.
"""
from __future__ import annotations

import time
import uuid
from functools import lru_cache

from connectors import platforms
from connectors.erp import payloads, qimen
from connectors.erp.http1 import Http1Client, TransportError
from schemas.codec import EventDecoder
from streams.erp.config import Endpoint
from streams.erp.lanes import Delivery
from streams.erp.policy import Outcome, judge


@lru_cache(maxsize=256)
def qimen_source(platform: str) -> tuple[str, str]:
    """(Qimen sourcePlatformCode, sourcePlatformName) of a platform code: its manifest's, else OTHER."""
    try:
        return platforms.manifest(platform).qimen_source_code, platforms.label(platform)
    except platforms.UnknownPlatform:
        return "OTHER", platform


def summary(event: dict) -> dict:
    """What a delivery keeps of its decoded event once the body is rendered."""
    return {"event_id": event["event_id"], "event_type": event["event_type"], "order_id": event["order_id"],
            "version": event["version"]}


class Sender:
    """Renders, signs and sends events to one endpoint over a keep-alive, pipelining HTTP/1.1 client."""

    def __init__(self, endpoint: Endpoint, secret: str):
        self.endpoint, self.secret = endpoint, secret
        self.client = Http1Client(endpoint.url, endpoint.connections, endpoint.pipeline, endpoint.timeout_s)
        self.decoder = EventDecoder()

    def render(self, delivery: Delivery, snapshots: dict, rendered: dict) -> None:
        """Decode the record and render its body (`snapshots`, `rendered`: per-batch caches by order
        version, since the events of one version carry the same order). Raises DecodeError."""
        event = self.decoder.decode(delivery.value, snapshots)
        if self.endpoint.format == "json":
            key = (event["order_id"], event["version"])
            order_bytes = rendered.get(key)
            if order_bytes is None:
                order_bytes = rendered[key] = payloads.order_json_bytes(event["order"])
            delivery.body = payloads.webhook_body(event, order_bytes)
        else:
            code, name = qimen_source(event["order"]["platform"])
            delivery.body = qimen.deliveryorder_xml(event, self.endpoint.qimen, code, name)
        delivery.event = summary(event)

    def request(self, delivery: Delivery, now: float) -> bytes:
        """The bytes of one signed attempt at `now` (unix seconds)."""
        event = delivery.event
        if self.endpoint.format == "json":
            headers = payloads.webhook_headers(event["event_id"], event["event_type"], delivery.body, self.secret,
                                               int(now), uuid.uuid4().hex)
            return self.client.prepare(headers, delivery.body)
        query = qimen.request_query(self.endpoint.qimen, self.secret, delivery.body, int(now * 1000))
        headers = [("Content-Type", qimen.CONTENT_TYPE), ("X-Tonglu-Event-Id", event["event_id"])]
        return self.client.prepare(headers, delivery.body, query=query)

    async def attempt(self, delivery: Delivery) -> Outcome:
        """One attempt: the endpoint's verdict, or the transport error as a failed outcome."""
        now = time.time()
        if delivery.first_attempt_at is None:
            delivery.first_attempt_at = now
        try:
            answer = await self.client.send(self.request(delivery, now), lane=delivery.partition)
        except TransportError as exc:
            return Outcome(False, str(exc))
        body_error = None
        if self.endpoint.format == "qimen" and 200 <= answer.status < 300:
            body_error = qimen.response_error(answer.body)
        return judge(answer.status, answer.body, answer.headers, body_error)

    async def close(self) -> None:
        await self.client.close()


def dead_letter(endpoint: str, delivery: Delivery, outcome: Outcome, topic: str, now_ms: int) -> dict:
    """The `ErpDeadLetter` record of a delivery that is given up (or could not be decoded)."""
    event = delivery.event or {}
    first = delivery.first_attempt_at
    return {"endpoint": endpoint, "reason": outcome.reason, "last_status": outcome.status,
            "attempts": delivery.failed_attempts, "first_attempt_at": None if first is None else int(first * 1000),
            "failed_at": now_ms, "event_id": event.get("event_id", ""), "event_type": event.get("event_type", ""),
            "order_id": event.get("order_id", delivery.order_id), "version": event.get("version", -1),
            "topic": topic, "partition": delivery.partition, "offset": delivery.offset, "event": delivery.value}

