"""A Douyin shop through the connectors process on the real broker: polled pages and signed pushes reach
raw.orders, the push is acknowledged as Douyin expects, a forged one is refused and publishes nothing."""
import asyncio

import aiohttp
import pytest

from connectors import platforms
from connectors.runtime.service import ConnectorService
from connectors.simkit.server import WORLD
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared real-broker fixtures
from tests.integration import helpers

from ..simulator import create_app
from ..webhooks import ACKNOWLEDGEMENT, signed_headers

pytestmark = pytest.mark.integration
SHOP = "tonglu-douyin-home"


async def test_a_douyin_shop_is_polled_and_its_signed_pushes_published(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    sim = create_app()
    sim_runner, sim_url = await helpers.serve_app(sim)
    settings = helpers.connector_settings(kafka_bootstrap, topics, tmp_path, {"douyin": sim_url})
    raw = helpers.TopicReader(kafka_bootstrap, topics.raw_orders)
    hook = f"http://127.0.0.1:{settings.webhook_port}/webhooks/douyin"
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        first = set(await helpers.make_orders(session, sim_url, SHOP, 30))
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await helpers.read_until(raw, lambda recs: first <= helpers.raw_ids(recs, "poll"))
            # the service subscribed the shop's pushes: new orders arrive as signed message batches too
            pushed = await helpers.make_orders(session, sim_url, SHOP, 2)
            await helpers.read_until(raw, lambda recs: any(pushed[0].encode() in r["body"]
                                                           for r in helpers.raw_records(recs, "push")))
            push = helpers.raw_records(raw.records, "push")[0]
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
            await helpers.read_until(raw, lambda recs: [r["body"] for r in helpers.raw_records(recs)].count(body) == 1)
        finally:
            stop.set()
            await task
            await sim_runner.cleanup()
