"""The connectors process on the Xiaohongshu simulator and the real broker: polled captures carry every
order, the simulator's signed pushes are received, a forged push is refused and nothing of it published."""
import asyncio

import aiohttp
import pytest

from connectors import platforms
from connectors.runtime.poller import PollPolicy
from connectors.runtime.service import ConnectorService, ConnectorSettings
from infra.broker import free_port
from schemas.codec import AvroCodec
from schemas.sealing import open_body
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared broker fixtures
from tests.integration.helpers import TopicReader, serve_app

from ..simulator import HUB, create_app

RAW = AvroCodec("RawRecord")
pytestmark = pytest.mark.integration


async def _post(session, url, payload):
    async with session.post(url, json=payload) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def _decoded(records) -> list[dict]:
    out = []
    for _, value in records:
        raw = RAW.decode(value)
        raw["body"] = open_body(raw)
        out.append(raw)
    return out


def _polled_ids(records) -> set[str]:
    return {o["external_id"] for raw in _decoded(records) if raw["source"] == "poll"
            for o in platforms.map_payload(raw["platform"], raw["body"], raw["content_type"], raw["shop_id"])}


def _pushed(records) -> list[bytes]:
    return [raw["body"] for raw in _decoded(records) if raw["source"] == "push"]


async def _until(reader: TopicReader, predicate, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await loop.run_in_executor(None, reader.poll, 0.5)
        if predicate(reader.records):
            return
    raise AssertionError(f"condition not met within {timeout}s ({len(reader.records)} records)")


async def test_polls_captures_and_receives_signed_pushes_only(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    app = create_app()
    runner, url = await serve_app(app)
    settings = ConnectorSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, raw_topic=topics.raw_orders,
        calls_topic=topics.connector_calls, data_dir=tmp_path, webhook_port=free_port(),
        simulators={"xiaohongshu": url}, policy=PollPolicy(interval=0.3, settle_ms=0, overlap_ms=500, lookback_ms=1_000))
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        first = set((await _post(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 120}))["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await _until(raw, lambda recs: first <= _polled_ids(recs))
            assert app[HUB].subscriptions == {"home": [f"http://127.0.0.1:{settings.webhook_port}/webhooks/xiaohongshu"]}
            more = (await _post(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 3}))["external_ids"]
            await _until(raw, lambda recs: any(all(i.encode() in b for i in more) for b in _pushed(recs)))
            # a forged push is refused; a genuine one after it is the barrier that shows nothing was published
            await _post(session, f"{url}/_sim/webhooks/faults", {"forged_signature": 1})
            forged = (await _post(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"][0]
            marker = (await _post(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"][0]
            await _until(raw, lambda recs: any(marker.encode() in b for b in _pushed(recs)))
            assert not any(forged.encode() in b for b in _pushed(raw.records)), "the forged push was published"
            assert service.receiver.rejected >= 1 and service.receiver.received >= 2  # the platform retries a 401
            await _until(raw, lambda recs: {*more, forged, marker} <= _polled_ids(recs))  # the poll reads them all
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
