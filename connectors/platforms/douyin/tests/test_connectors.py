"""A Douyin shop through the connectors process on the real broker: polled pages and signed pushes reach
raw.orders, the push is acknowledged as Douyin expects, a forged one is refused and publishes nothing."""
import asyncio

import aiohttp
import pytest

from connectors import platforms
from connectors.runtime.poller import PollPolicy
from connectors.runtime.service import ConnectorService, ConnectorSettings
from connectors.simkit.server import WORLD
from infra.broker import free_port
from schemas.codec import AvroCodec
from schemas.sealing import open_body
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared real-broker fixtures
from tests.integration.helpers import TopicReader, serve_app

from ..simulator import create_app
from ..webhooks import ACKNOWLEDGEMENT, signed_headers

pytestmark = pytest.mark.integration
RAW = AvroCodec("RawRecord")
SHOP = "tonglu-douyin-home"


def _decoded(reader: TopicReader) -> list[dict]:
    return [RAW.decode(value) for _, value in reader.records]


async def _until(reader: TopicReader, predicate, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await loop.run_in_executor(None, reader.poll, 0.5)
        if predicate(_decoded(reader)):
            return
    raise AssertionError(f"condition not met within {timeout}s ({len(reader.records)} records)")


def _polled_ids(raws: list[dict]) -> set[str]:
    return {o["external_id"] for r in raws if r["source"] == "poll"
            for o in platforms.map_payload("douyin", open_body(r), r["content_type"], r["shop_id"])}


async def test_a_douyin_shop_is_polled_and_its_signed_pushes_published(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    sim = create_app()
    sim_runner, sim_url = await serve_app(sim)
    settings = ConnectorSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, raw_topic=topics.raw_orders,
        calls_topic=topics.connector_calls, data_dir=tmp_path, webhook_port=free_port(),
        simulators={"douyin": sim_url}, policy=PollPolicy(interval=0.3, settle_ms=0, overlap_ms=500, lookback_ms=1_000))
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    hook = f"http://127.0.0.1:{settings.webhook_port}/webhooks/douyin"
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 30}) as resp:
            first = set((await resp.json())["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await _until(raw, lambda raws: first <= _polled_ids(raws))
            # the service subscribed the shop's pushes: new orders arrive as signed message batches too
            async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 2}) as resp:
                pushed = (await resp.json())["external_ids"]
            await _until(raw, lambda raws: any(r["source"] == "push" and pushed[0].encode() in open_body(r)
                                               for r in raws))
            push = next(r for r in _decoded(raw) if r["source"] == "push")
            assert (push["platform"], push["shop_id"], push["endpoint"]) == ("douyin", SHOP, "100,101")
            deliveries = sim[platforms.module("douyin", "simulator").HUB].deliveries
            assert deliveries and all(d["acked"] and d["attempt"] == 1 for d in deliveries)
            # Douyin's acknowledgement, and a forged push refused
            body = b'[{"tag":"101","msg_id":"1","data":"{\\"p_id\\":1,\\"shop_id\\":\\"' + SHOP.encode() + b'\\"}"}]'
            async with session.post(hook, data=body, headers=signed_headers(body, SHOP, "forged")) as resp:
                assert resp.status == 401
            secret = sim[WORLD].shops[SHOP]["app_secret"]
            async with session.post(hook, data=body, headers=signed_headers(body, SHOP, secret,
                                                                             sim[WORLD].shops[SHOP]["app_key"])) as resp:
                assert resp.status == 200 and await resp.json() == ACKNOWLEDGEMENT
            assert service.receiver.rejected == 1
            await _until(raw, lambda raws: sum(open_body(r) == body for r in raws) == 1)
        finally:
            stop.set()
            await task
            await sim_runner.cleanup()
