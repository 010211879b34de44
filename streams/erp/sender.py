"""One endpoint's way of sending an order event: render it in the endpoint's format, sign each attempt,
judge the answer — shared by the deliverer and `tonglu erp replay`.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from functools import lru_cache

from connectors import platforms
from connectors.erp import payloads, qimen
from connectors.runtime.http1 import Http1Client, Response, TransportError
from schemas.codec import AvroCodec
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


RENDERED_KEPT = 4096  # order versions whose rendered order is kept: the events of one version share it


class Sender:
    """Renders, signs and sends events to one endpoint over a keep-alive, pipelining HTTP/1.1 client."""

    def __init__(self, endpoint: Endpoint, secret: str):
        self.endpoint, self.secret = endpoint, secret
        self.client = Http1Client(endpoint.url, endpoint.connections, endpoint.pipeline, endpoint.timeout_s)
        self.events, self.orders = AvroCodec("OrderEvent"), AvroCodec("Order")
        self._rendered: dict[tuple[str, int], object] = {}

    def read(self, delivery: Delivery) -> None:
        """Decode the event's head into `delivery.event`, leaving its order snapshot for `render` (a record
        of another schema version is decoded whole). Raises DecodeError."""
        head, order_at = self.events.decode_head(delivery.value)
        if order_at is None:
            delivery.order = head.pop("order")
        delivery.event, delivery.order_at = head, order_at

    def render(self, delivery: Delivery) -> None:
        """Render the body once, just before its first attempt (decoding the order now, or taking it from
        the event before it of the same version). Raises DecodeError."""
        if delivery.body:
            return
        event = delivery.event
        key = (event["order_id"], event["version"])
        order = self._rendered.get(key)
        if order is None:
            if delivery.order is None:
                delivery.order = self.orders.decode_body(delivery.value, delivery.order_at)
            order = payloads.order_json_bytes(delivery.order) if self.endpoint.format == "json" else delivery.order
            if len(self._rendered) >= RENDERED_KEPT:
                self._rendered.clear()  # a version's events are adjacent: older entries are seldom wanted
            self._rendered[key] = order
        if self.endpoint.format == "json":
            delivery.body = payloads.webhook_body(event, order)
        else:
            code, name = qimen_source(order["platform"])
            delivery.body = qimen.deliveryorder_xml({**event, "order": order}, self.endpoint.qimen, code, name)
        delivery.order = None

    def request(self, delivery: Delivery, now: float) -> bytes:
        """The bytes of one signed attempt at `now` (unix seconds)."""
        event = delivery.event
        if self.endpoint.format == "json":
            headers = payloads.webhook_headers(event["event_id"], event["event_type"], delivery.body, self.secret,
                                               int(now), os.urandom(16).hex())
            return self.client.prepare(headers, delivery.body)
        query = qimen.request_query(self.endpoint.qimen, self.secret, delivery.body, int(now * 1000))
        headers = [("Content-Type", qimen.CONTENT_TYPE), ("X-Tonglu-Event-Id", event["event_id"])]
        return self.client.prepare(headers, delivery.body, query=query)

    def submit(self, delivery: Delivery, done: Callable[[Outcome], None]) -> None:
        """Start one attempt (rendering the body first if need be: DecodeError is raised here); `done` gets
        the endpoint's verdict, or the transport error as a failed outcome."""
        now = time.time()
        if delivery.first_attempt_at is None:
            delivery.first_attempt_at = now
        self.render(delivery)
        self.client.submit(self.request(delivery, now), delivery.partition, lambda answer: done(self.judge(answer)))

    def judge(self, answer: Response | TransportError) -> Outcome:
        if isinstance(answer, TransportError):
            return Outcome(False, str(answer))
        body_error = None
        if self.endpoint.format == "qimen" and 200 <= answer.status < 300:
            body_error = qimen.response_error(answer.body)
        return judge(answer.status, answer.body, answer.headers, body_error)

    async def attempt(self, delivery: Delivery) -> Outcome:
        """`submit`, awaited."""
        future = asyncio.get_running_loop().create_future()
        self.submit(delivery, future.set_result)
        return await future

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

