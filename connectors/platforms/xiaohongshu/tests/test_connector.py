"""The connectors process on the Xiaohongshu simulator and the real broker: polled captures carry every
order, the simulator's signed pushes are received, a forged push is refused and nothing of it published."""
import asyncio

import aiohttp
import pytest

from connectors.runtime.service import ConnectorService
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared broker fixtures
from tests.integration.helpers import (
    TopicReader,
    connector_settings,
    post_json,
    raw_ids,
    raw_records,
    read_until,
    serve_app,
)

from ..simulator import HUB, create_app

pytestmark = pytest.mark.integration


def _pushed(records) -> list[bytes]:
    return [raw["body"] for raw in raw_records(records, "push")]


async def test_polls_captures_and_receives_signed_pushes_only(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    app = create_app()
    runner, url = await serve_app(app)
    settings = connector_settings(kafka_bootstrap, topics, tmp_path, {"xiaohongshu": url})
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        first = set((await post_json(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 120}))["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await read_until(raw, lambda recs: first <= raw_ids(recs, "poll"))
            assert app[HUB].subscriptions == {"home": [f"http://127.0.0.1:{settings.webhook_port}/webhooks/xiaohongshu"]}
            more = (await post_json(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 3}))["external_ids"]
            await read_until(raw, lambda recs: any(all(i.encode() in b for i in more) for b in _pushed(recs)))
            # a forged push is refused; a genuine one after it is the barrier that shows nothing was published
            await post_json(session, f"{url}/_sim/webhooks/faults", {"forged_signature": 1})
            forged = (await post_json(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"][0]
            marker = (await post_json(session, f"{url}/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"][0]
            await read_until(raw, lambda recs: any(marker.encode() in b for b in _pushed(recs)))
            assert not any(forged.encode() in b for b in _pushed(raw.records)), "the forged push was published"
            assert service.receiver.rejected >= 1 and service.receiver.received >= 2  # the platform retries a 401
            await read_until(raw, lambda recs: {*more, forged, marker} <= raw_ids(recs, "poll"))  # the poll reads them all
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
