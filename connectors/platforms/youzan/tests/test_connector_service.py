"""The connectors process on the Youzan simulator and the real broker: polled details and signed pushes
reach raw.orders; a forged push is refused and publishes nothing."""
import asyncio

import aiohttp

from connectors.runtime.service import ConnectorService
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the real broker, as the integration tests use it
from tests.integration import helpers

from ..simulator import create_app
from ..webhooks import signed_headers

SHOP = "tonglu-youzan-home"


async def test_polled_details_and_signed_pushes_reach_raw_orders(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    runner, url = await helpers.serve_app(create_app())
    settings = helpers.connector_settings(kafka_bootstrap, topics, tmp_path, {"youzan": url})
    raw = helpers.TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    receiver = f"http://127.0.0.1:{settings.webhook_port}/webhooks/youzan"
    async with aiohttp.ClientSession() as session:
        polled = set(await helpers.make_orders(session, url, SHOP, 60))
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await helpers.read_until(raw, lambda recs: polled <= helpers.raw_ids(recs, "poll"))
            endpoints = {r["endpoint"] for r in helpers.raw_records(raw.records, "poll")}
            assert endpoints == {"youzan.trade.get"}  # details only: the list just finds them
            # the service subscribed the shop: new orders arrive as signed pushes carrying the order
            pushed = set(await helpers.make_orders(session, url, SHOP, 3))
            await helpers.read_until(raw, lambda recs: pushed <= helpers.raw_ids(recs, "push"))
            # a push signed with the wrong secret is refused, and so is one that is not signed at all
            forged = b'{"client_id": "tonglu-youzan-home", "id": "E1", "kdt_id": 1, "msg": "%7B%22tid%22%3A1%7D"}'
            for headers in (signed_headers(forged, SHOP, "not-the-secret"), {"Client-Id": SHOP}):
                async with session.post(receiver, data=forged, headers=headers) as resp:
                    assert resp.status == 401
            assert service.receiver.rejected == 2
            marker = set(await helpers.make_orders(session, url, SHOP, 1))
            # the same shop key: published after the refusals were answered
            await helpers.read_until(raw, lambda recs: marker <= helpers.raw_ids(recs, "push"))
            assert not any(forged in value for _, value in raw.records), "a forged push was published"
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
