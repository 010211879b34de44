"""The connectors process on the Xiaohongshu simulator and the real broker: polled captures carry every
order, the simulator's signed pushes are received, a forged push is refused and nothing of it published."""
import asyncio

import aiohttp
import pytest

from connectors.runtime.service import ConnectorService
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared broker fixtures
from tests.integration import helpers

from ..simulator import HUB, create_app

pytestmark = pytest.mark.integration


def _pushed(records) -> list[bytes]:
    return [raw["body"] for raw in helpers.raw_records(records, "push")]


async def test_polls_captures_and_receives_signed_pushes_only(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    app = create_app()
    runner, url = await helpers.serve_app(app)
    settings = helpers.connector_settings(kafka_bootstrap, topics, tmp_path, {"xiaohongshu": url})
    raw = helpers.TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        first = set(await helpers.make_orders(session, url, "home", 120))
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await helpers.read_until(raw, lambda recs: first <= helpers.raw_ids(recs, "poll"))
            assert app[HUB].subscriptions == {"home": [f"http://127.0.0.1:{settings.webhook_port}/webhooks/xiaohongshu"]}
            more = await helpers.make_orders(session, url, "home", 3)
            await helpers.read_until(raw, lambda recs: any(all(i.encode() in b for i in more) for b in _pushed(recs)))
            # a forged push is refused; a genuine one after it is the barrier that shows nothing was published
            await helpers.post_json(session, f"{url}/_sim/webhooks/faults", {"forged_signature": 1})
            forged = (await helpers.make_orders(session, url, "home", 1))[0]
            marker = (await helpers.make_orders(session, url, "home", 1))[0]
            await helpers.read_until(raw, lambda recs: any(marker.encode() in b for b in _pushed(recs)))
            assert not any(forged.encode() in b for b in _pushed(raw.records)), "the forged push was published"
            assert service.receiver.rejected >= 1 and service.receiver.received >= 2  # the platform retries a 401
            # the poll reads them all
            await helpers.read_until(raw, lambda recs: {*more, forged, marker} <= helpers.raw_ids(recs, "poll"))
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
