"""A Douyin shop through the connectors process on the real broker: polled pages and signed pushes reach
raw.orders, the push is acknowledged as Douyin expects, a forged one is refused and publishes nothing."""
import asyncio

import aiohttp
import pytest

from connectors import platforms
from connectors.runtime.service import ConnectorService
from connectors.simkit.server import WORLD
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared real-broker fixtures
from tests.integration.helpers import (
    TopicReader,
    connector_settings,
    post_json,
    raw_ids,
    raw_records,
    read_until,
    serve_app,
)

from ..simulator import create_app
from ..webhooks import ACKNOWLEDGEMENT, signed_headers

pytestmark = pytest.mark.integration
SHOP = "tonglu-douyin-home"


async def test_a_douyin_shop_is_polled_and_its_signed_pushes_published(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    sim = create_app()
    sim_runner, sim_url = await serve_app(sim)
    settings = connector_settings(kafka_bootstrap, topics, tmp_path, {"douyin": sim_url})
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    hook = f"http://127.0.0.1:{settings.webhook_port}/webhooks/douyin"
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        first = set((await post_json(session, f"{sim_url}/_sim/orders", {"shop_id": SHOP, "count": 30}))["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await read_until(raw, lambda recs: first <= raw_ids(recs, "poll"))
            # the service subscribed the shop's pushes: new orders arrive as signed message batches too
            pushed = (await post_json(session, f"{sim_url}/_sim/orders", {"shop_id": SHOP, "count": 2}))["external_ids"]
            await read_until(raw, lambda recs: any(pushed[0].encode() in r["body"] for r in raw_records(recs, "push")))
            push = raw_records(raw.records, "push")[0]
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
            await read_until(raw, lambda recs: sum(r["body"] == body for r in raw_records(recs)) == 1)
        finally:
            stop.set()
            await task
            await sim_runner.cleanup()
