"""`/webhooks/kuaidi100`: courier tracking pushes, checked, then published as received.

The subscription's callback URL names the order (`?order_id=`) and its salt is derived from Tonglu's
tracking secret, the order id and the tracking number (see `kuaidi100`), so a push is checked
without any stored state. A push that is unsigned, forged, or moved to another order or parcel is
refused (401) and nothing is published; a body that is no push at all gets 400. An accepted push goes,
as one RawRecord of kind logistics, to raw.orders keyed by the order's shop — where the normalizer
that owns the order applies it and takes its next version — and to logistics.updates keyed by the
tracking number, for whoever reads carrier news; only then is it acknowledged, so a push that did not
land is retried by the service. Pushes that arrive while a batch is being written go out together in
the next one (one archive fsync and one broker round trip for all of them).
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.records import raw_record
from connectors.tracking import kuaidi100
from connectors.tracking.kuaidi100 import PushError
from schemas.topics import shop_key

log = logging.getLogger(__name__)
PATH = "/webhooks/kuaidi100"


def tracking_record(order_id: str, body: bytes) -> tuple[bytes, bytes]:
    """(raw.orders key, RawRecord) of a Kuaidi100 push about `order_id` (`platform:shop_id:external_id`)."""
    platform, shop_id, external_id = order_id.split(":", 2)
    return shop_key(platform, shop_id), raw_record(
        platform, shop_id, body, source="push", content_type="form", kind="logistics",
        endpoint=kuaidi100.SERVICE, external_id=external_id)


def _refusal(status: int, reason: str) -> web.Response:
    return web.json_response({"result": False, "returnCode": str(status), "message": reason}, status=status)


class GroupCommit:
    """Publishes records as they come, those that arrive during a write together in the next write."""

    def __init__(self, raw: RawPublisher):
        self.raw = raw
        self._waiting: list[tuple[tuple[bytes, bytes], tuple, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def publish(self, record: tuple[bytes, bytes], also: tuple[tuple[str, bytes, bytes], ...]) -> None:
        """Return once `record` (for raw.orders) and `also` are acknowledged by the broker."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((record, also, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self.raw.publish_async([r for r, _, _ in batch], also=[x for _, also, _ in batch for x in also])
            except Exception as exc:  # noqa: BLE001 - every push of the batch is answered with the failure
                for *_, done in batch:
                    done.set_exception(exc)
                continue
            for *_, done in batch:
                done.set_result(None)


class TrackingReceiver:
    """Receives Kuaidi100 pushes; `secret` derives each subscription's salt."""

    def __init__(self, raw: RawPublisher, logistics_topic: str, secret: str):
        self.logistics_topic, self.secret = logistics_topic, secret
        self.writes = GroupCommit(raw)
        self.received = self.rejected = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        order_id = request.query.get("order_id", "")
        if order_id.count(":") < 2 or not all(order_id.split(":", 2)):
            return _refusal(400, "回调地址缺少订单号 callback URL lacks ?order_id=platform:shop_id:external_id")
        body = await request.read()
        try:
            param, sign = kuaidi100.read_push(body)
            number = kuaidi100.tracking_number(param)
        except PushError as exc:
            return _refusal(400, f"不是快递100推送 not a Kuaidi100 push: {exc}")
        if not kuaidi100.verify_push(param, sign, kuaidi100.subscription_salt(self.secret, order_id, number)):
            self.rejected += 1
            log.warning("rejected a Kuaidi100 push for %s (%s): bad signature", order_id, number)
            return _refusal(401, "签名错误 bad signature")
        key, value = tracking_record(order_id, body)
        await self.writes.publish((key, value), ((self.logistics_topic, number.encode(), value),))
        self.received += 1
        return web.json_response(kuaidi100.ACKNOWLEDGEMENT)
