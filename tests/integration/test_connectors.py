"""The connectors process on real simulators and the real broker: polling, pushes, call records, restarts."""
import asyncio
import json

import aiohttp

from connectors import platforms
from connectors.runtime.archive import read_archive
from connectors.runtime.service import ConnectorService
from schemas.codec import AvroCodec
from tests.integration.helpers import (
    TopicReader,
    connector_settings,
    make_orders,
    post_json,
    raw_ids,
    read_until,
    serve_app,
)

RAW = AvroCodec("RawRecord")


async def test_polls_receives_pushes_records_calls_and_resumes_from_checkpoints(kafka_bootstrap, topics, tmp_path):
    taobao_runner, taobao_url = await serve_app(platforms.module("taobao", "simulator").create_app())
    shopify_runner, shopify_url = await serve_app(platforms.module("shopify", "simulator").create_app())
    settings = connector_settings(kafka_bootstrap, topics, tmp_path, {"taobao": taobao_url, "shopify": shopify_url})
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    calls = TopicReader(kafka_bootstrap, topics.connector_calls, "ConnectorCall")
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        tb = await make_orders(session, taobao_url, "home", 230)
        await post_json(session, f"{taobao_url}/_sim/faults", {"kind": "rate_limit", "count": 2, "seconds": 1})
        sp = await make_orders(session, shopify_url, "demo", 40)
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await read_until(raw, lambda recs: set(tb) | set(sp) <= raw_ids(recs))
            # pushes: the service subscribed to Shopify webhooks; new orders arrive as signed pushes
            pushed = await make_orders(session, shopify_url, "demo", 5)
            await read_until(raw, lambda recs: set(pushed) <= raw_ids(recs, "push"))
            # a forged push is refused and publishes nothing
            forged = b'{"id": 1, "name": "#1"}'
            async with session.post(f"http://127.0.0.1:{settings.webhook_port}/webhooks/shopify", data=forged,
                                    headers={"X-Shopify-Hmac-Sha256": "Zm9yZ2Vk",
                                             "X-Shopify-Shop-Domain": "demo.myshopify.com"}) as resp:
                assert resp.status == 401
            assert service.receiver.rejected == 1
            # a push for a shop not discovered yet is deferred (the platform retries), not called forged
            async with session.post(f"http://127.0.0.1:{settings.webhook_port}/webhooks/shopify", data=forged,
                                    headers={"X-Shopify-Hmac-Sha256": "Zm9yZ2Vk",
                                             "X-Shopify-Shop-Domain": "ghost.myshopify.com"}) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"] == "5"
            assert service.receiver.deferred == 1 and service.receiver.rejected == 1
            for platform in ("taobao", "nowhere"):  # a platform that does not push has no receiver
                async with session.post(f"http://127.0.0.1:{settings.webhook_port}/webhooks/{platform}",
                                        data=forged) as resp:
                    assert resp.status == 404
            # barrier: a genuine push of the same shop after the refusal; once it is on raw.orders, a
            # published forged push (same shop key, same partition) would be there before it
            marker = await make_orders(session, shopify_url, "demo", 1)
            await read_until(raw, lambda recs: set(marker) <= raw_ids(recs, "push"))
            assert not any(forged in value for _, value in raw.records), "the forged push was published"
            await read_until(calls, lambda recs: any(not c["ok"] for _, c in recs) and any(
                c["ok"] and c["records"] > 0 for _, c in recs))
            failed = [c for _, c in calls.records if not c["ok"]]
            assert any(c["platform"] == "taobao" for c in failed) and all(c["error_code"] for c in failed)
            assert all(c["latency_ms"] >= 0 and c["platform"] in ("taobao", "shopify") for _, c in calls.records)
        finally:
            stop.set()
            await task
        checkpoints = json.loads((tmp_path / "checkpoints.json").read_text())
        assert set(checkpoints) == {"taobao:home", "shopify:demo"}
        # write-ahead: every raw record the broker holds (polled or pushed) is in the archive, with its offset
        archived = {r.value: r for r in read_archive(tmp_path / "archive")}
        on_topic = [value for _, value in raw.records]
        assert on_topic and set(on_topic) <= set(archived)
        positions = [(archived[v].partition, archived[v].offset) for v in on_topic]
        assert None not in {p for p, _ in positions} and len(set(positions)) == len(positions)
        assert {RAW.decode(v)["source"] for v in on_topic} == {"poll", "push"}

        # restart: a new service resumes from the saved checkpoints instead of re-reading the first day
        before = len(raw.records)
        late = await make_orders(session, taobao_url, "home", 3)
        stop = asyncio.Event()
        task = asyncio.create_task(ConnectorService(settings).run(stop))
        try:
            await read_until(raw, lambda recs: set(late) <= raw_ids(recs[before:]))
            again = raw_ids(raw.records[before:])
            assert len(again & set(tb)) < len(tb) / 2, "a restarted connector re-read history it had checkpointed"
        finally:
            stop.set()
            await task
    raw.close()
    calls.close()
    await taobao_runner.cleanup()
    await shopify_runner.cleanup()
