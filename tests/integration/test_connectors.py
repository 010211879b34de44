"""The connectors process on real simulators and the real broker: polling, pushes, call records, restarts."""
import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from connectors import platforms
from connectors.runtime.archive import ArchiveWriter, read_archive
from connectors.runtime.poller import PollPolicy
from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.service import ConnectorService
from connectors.runtime.webhooks import WebhookReceiver, push_path
from connectors.simkit.server import WORLD, notify
from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from tests.integration.helpers import (
    TopicReader,
    connector_settings,
    make_orders,
    post_json,
    raw_ids,
    raw_records,
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


NAMING = [p for p in platforms.codes() if platforms.manifest(p).capabilities.push
          and hasattr(platforms.module(p, "client").Client, "fetch_orders")]


@pytest.mark.parametrize("platform", NAMING)
async def test_an_order_a_push_names_is_read_at_once_not_at_the_next_poll(platform, kafka_bootstrap, topics, tmp_path):
    """A refund request pushed as a notice that only names the order: the order's detail, showing the
    request, is on raw.orders as a polled page within a second or two, with the next poll minutes away."""
    sim = platforms.module(platform, "simulator").create_app()
    sim_runner, sim_url = await serve_app(sim)
    settings = connector_settings(kafka_bootstrap, topics, tmp_path, {platform: sim_url}, policy=PollPolicy(
        interval=300, sweep_every=300, settle_ms=0, first_sync_ms=600_000))
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        (external_id,) = await make_orders(session, sim_url, "home", 1)
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            hook = f":{settings.webhook_port}{push_path(platform)}"
            deadline = asyncio.get_running_loop().time() + 30
            while service.checkpoints.get(f"{platform}:home") is None or hook not in await _text(
                    session, f"{sim_url}/_sim/webhooks"):  # first poll done and pushes subscribed
                assert asyncio.get_running_loop().time() < deadline, "the shop was not polled and subscribed"
                await asyncio.sleep(0.1)
            order = sim[WORLD].orders[external_id]
            changed_at = int(time.time() * 1000)
            sim[WORLD]._apply(order, "request_refund", changed_at)
            await notify(sim, "home", [order])

            def refund_polled(records) -> list[dict]:
                return [r for r in raw_records(records, "poll") if r["fetched_at"] >= changed_at and any(
                    o["external_id"] == external_id and o["refund_status"] == "REQUESTED"
                    for o in platforms.map_payload(platform, r["body"], r["content_type"], "home"))]

            await read_until(raw, refund_polled, timeout=30)
            (first, *_) = sorted(refund_polled(raw.records), key=lambda r: r["fetched_at"])
            assert first["fetched_at"] - changed_at < 2000, f"read {first['fetched_at'] - changed_at} ms after the push"
            assert service.pollers[f"{platform}:home"].fetched >= 1
            assert raw_records(raw.records, "push")
        finally:
            stop.set()
            await task
            raw.close()
            await sim_runner.cleanup()


async def _text(session, url) -> str:
    async with session.get(url) as resp:
        return await resp.text()


async def test_a_get_on_the_push_url_is_answered_by_the_platforms_url_check(kafka_bootstrap, topics, tmp_path):
    """WeChat checks its message-server URL with a GET: the echo when signed with the shop's token, 401 when
    forged, 503 for a shop not discovered yet; a platform without such a check or without pushes: 404."""
    wechat = platforms.module("wechat_channels", "webhooks")
    publisher, archive = Publisher({"bootstrap.servers": kafka_bootstrap}), ArchiveWriter(tmp_path / "archive")
    receiver = WebhookReceiver(RawPublisher(publisher, topics.raw_orders, archive), {("wechat_channels", "home"): "tok"})
    app = web.Application()
    app.add_routes(receiver.routes())
    runner, url = await serve_app(app)
    try:
        async with aiohttp.ClientSession() as session:
            query = {**wechat.push_query("home", "tok"), "echostr": "8327164"}
            async with session.get(f"{url}/webhooks/wechat_channels", params=query) as resp:
                assert resp.status == 200 and await resp.text() == "8327164"
            async with session.get(f"{url}/webhooks/wechat_channels", params={**query, "signature": "0" * 40}) as resp:
                assert resp.status == 401
            async with session.get(f"{url}/webhooks/wechat_channels",
                                   params={**wechat.push_query("ghost", "tok"), "echostr": "1"}) as resp:
                assert resp.status == 503
            for platform in ("douyin", "taobao", "nowhere"):
                async with session.get(f"{url}/webhooks/{platform}", params=query) as resp:
                    assert resp.status == 404
    finally:
        await runner.cleanup()
        publisher.close()
        archive.close()
    assert (receiver.rejected, receiver.deferred) == (1, 1)
