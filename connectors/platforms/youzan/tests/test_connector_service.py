"""The connectors process on the Youzan simulator and the real broker: polled details and signed pushes
reach raw.orders; a forged push is refused and publishes nothing."""
import asyncio

import aiohttp

from connectors.runtime.poller import PollPolicy
from connectors.runtime.service import ConnectorService, ConnectorSettings
from infra.broker import free_port
from schemas.codec import AvroCodec
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the real broker, as the integration tests use it
from tests.integration.helpers import TopicReader, serve_app
from tests.integration.test_connectors import _external_ids, _post

from ..simulator import create_app
from ..webhooks import signed_headers

RAW = AvroCodec("RawRecord")
SHOP = "tonglu-youzan-home"


async def test_polled_details_and_signed_pushes_reach_raw_orders(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    runner, url = await serve_app(create_app())
    settings = ConnectorSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, raw_topic=topics.raw_orders,
        calls_topic=topics.connector_calls, data_dir=tmp_path, webhook_port=free_port(),
        simulators={"youzan": url}, policy=PollPolicy(interval=0.3, settle_ms=0, overlap_ms=500, lookback_ms=1_000))
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    receiver = f"http://127.0.0.1:{settings.webhook_port}/webhooks/youzan"
    async with aiohttp.ClientSession() as session:
        polled = set((await _post(session, f"{url}/_sim/orders", {"shop_id": SHOP, "count": 60}))["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await raw.until_true(lambda recs: polled <= _external_ids(recs, "poll"))
            endpoints = {RAW.decode(v)["endpoint"] for _, v in raw.records if RAW.decode(v)["source"] == "poll"}
            assert endpoints == {"youzan.trade.get"}  # details only: the list just finds them
            # the service subscribed the shop: new orders arrive as signed pushes carrying the order
            pushed = set((await _post(session, f"{url}/_sim/orders", {"shop_id": SHOP, "count": 3}))["external_ids"])
            await raw.until_true(lambda recs: pushed <= _external_ids(recs, "push"))
            # a push signed with the wrong secret is refused, and so is one that is not signed at all
            forged = b'{"client_id": "tonglu-youzan-home", "id": "E1", "kdt_id": 1, "msg": "%7B%22tid%22%3A1%7D"}'
            for headers in (signed_headers(forged, SHOP, "not-the-secret"), {"Client-Id": SHOP}):
                async with session.post(receiver, data=forged, headers=headers) as resp:
                    assert resp.status == 401
            assert service.receiver.rejected == 2
            marker = set((await _post(session, f"{url}/_sim/orders", {"shop_id": SHOP, "count": 1}))["external_ids"])
            await raw.until_true(lambda recs: marker <= _external_ids(recs, "push"))  # same shop key: after the refusals
            assert not any(forged in value for _, value in raw.records), "a forged push was published"
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
