"""The tracker process: every shipment the platform accepted (`UPLOADED` on fulfillment.results) is
subscribed with the courier-tracking service, whose pushes then reach `/webhooks/kuaidi100`.

A consumer group reads fulfillment.results; offsets are committed only once each UPLOADED result of a
batch was subscribed or refused for good, so a crash subscribes again what was not committed (the
service answers 501 to a parcel it already tracks: still subscribed). A service that is down or
answers 500 is retried (1 s, doubling to 30 s) without moving on; a refusal (bad key, unknown carrier)
is logged with its reason and counted, and the next result goes on.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

import aiohttp
from confluent_kafka import Consumer

from connectors import platforms
from connectors.tracking import kuaidi100
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import consumer_config, usable

log = logging.getLogger(__name__)


class Unsubscribable(ValueError):
    """A result that cannot be subscribed (the message says why, in one line)."""


@dataclass(frozen=True)
class TrackingAccount:
    """Where and as whom Tonglu subscribes: the service's subscribe URL, its authorisation key, the secret
    the salts are derived from and the public URL of `/webhooks/kuaidi100`."""

    poll_url: str
    key: str
    secret: str
    callback: str


def subscription(result: dict, account: TrackingAccount,
                 carriers: dict[str, str] | None = None) -> dict[str, str] | None:
    """The subscribe form for a ShipmentResult, None when it is not an upload the platform accepted;
    Unsubscribable when the carrier is unknown to the tracking service. `carriers` is the platform's
    manifest table (its own carrier code -> name): a result carries the platform's code, which for
    many platforms is a number ("4" is 中通快递 on Kuaishou, "3" on Youzan)."""
    if result.get("status") != "UPLOADED":
        return None
    code = result.get("carrier_code")
    named = (carriers or {}).get(code)
    company = (kuaidi100.company_code(named) if named else None) or kuaidi100.company_code(code)
    if company is None:
        raise Unsubscribable(f"shipment {result.get('shipment_id')} of {result.get('order_id')}: carrier "
                             f"{result.get('carrier_code')!r} is unknown to the tracking service")
    order_id, number = result["order_id"], result["tracking_no"]
    return kuaidi100.subscribe_form(company, number, account.key, kuaidi100.callback_url(account.callback, order_id),
                                    kuaidi100.subscription_salt(account.secret, order_id, number))


@functools.lru_cache(maxsize=64)
def _platform_carriers(platform: str) -> dict[str, str]:
    try:
        return dict(platforms.manifest(platform).carriers)
    except platforms.UnknownPlatform:  # a platform this deployment does not know: its codes are taken as they are
        return {}


def _carriers(order_id: str | None) -> dict[str, str]:
    """The carrier table of the order's platform (order ids are `platform:shop:external id`)."""
    return _platform_carriers((order_id or "").partition(":")[0])


class Subscriber:
    """fulfillment.results -> subscriptions (see the module)."""

    def __init__(self, kafka_config: dict, results_topic: str, group: str, account: TrackingAccount):
        self.account, self.results_topic = account, results_topic
        self._config = consumer_config(kafka_config, group, **{"fetch.wait.max.ms": 50})
        self.codec = AvroCodec("ShipmentResult")
        self.subscribed = self.refused = 0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = Consumer(self._config)
        consumer.subscribe([self.results_topic])
        try:
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    messages = usable(await asyncio.to_thread(consumer.consume, 100, 0.2))
                    for msg in messages:
                        await self._handle(session, msg.value(), stop)
                    if messages and not stop.is_set():
                        await asyncio.to_thread(consumer.commit, asynchronous=False)
        finally:
            await asyncio.to_thread(consumer.close)

    async def _handle(self, session: aiohttp.ClientSession, value: bytes, stop: asyncio.Event) -> None:
        try:
            result = self.codec.decode(value)
            form = subscription(result, self.account, _carriers(result.get("order_id")))
        except (DecodeError, Unsubscribable) as exc:
            self.refused += 1
            log.error("未订阅物流跟踪 not subscribed for tracking: %s", exc)
            return
        if form is None:
            return
        delay = 1.0
        while not stop.is_set():
            reply = await self._post(session, form)
            outcome = kuaidi100.subscribe_outcome(reply)
            if outcome == "subscribed":
                self.subscribed += 1
                return
            if outcome == "refused":
                self.refused += 1
                log.error("物流跟踪订阅被拒绝 tracking subscription refused for %s (%s): %s %s", result["order_id"],
                          result["tracking_no"], reply.get("returnCode"), reply.get("message"))
                return
            log.warning("tracking service unavailable (%s); subscribing %s again in %.0fs",
                        reply.get("message") or reply.get("returnCode") or "no answer", result["tracking_no"], delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    async def _post(self, session: aiohttp.ClientSession, form: dict[str, str]) -> dict:
        try:
            async with session.post(self.account.poll_url, data=form, timeout=aiohttp.ClientTimeout(total=10)) as r:
                reply = await r.json(content_type=None)
                return reply if isinstance(reply, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return {"message": f"{exc.__class__.__name__}: {exc}"}
