"""The Shopify simulator over real HTTP, driven by ShopifyClient through the runtime's HttpCaller."""

import asyncio
import time

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors.runtime.base import RequestSpec, ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.errors import PermanentError
from connectors.runtime.ratelimit import TokenBucket
from tests.integration.helpers import eventually, serve_app

from ..client import ShopifyClient, classify, next_link
from ..mapping import map_payload
from ..simulator import create_app
from ..webhooks import verify

SECRET = "shpss_demo_0f3c9a"


@pytest.fixture
async def sim():
    runners = []

    async def start(**settings):
        runner, base = await serve_app(create_app(**settings))
        runners.append(runner)
        return base

    session = aiohttp.ClientSession()
    yield start, session
    await session.close()
    for runner in runners:
        await runner.cleanup()


async def _shop(session, base: str, shop_id: str, count: int, paid: bool = True) -> ShopCredentials:
    async with session.post(
        f"{base}/_sim/orders", json={"shop_id": shop_id, "count": count, "paid": paid}
    ) as r:
        assert r.status == 200
    async with session.get(f"{base}/_sim/shops") as r:
        shop = next(s for s in (await r.json())["shops"] if s["shop_id"] == shop_id)
    return ShopCredentials(
        platform="shopify",
        shop_id=shop_id,
        base_url=base,
        access_token=shop["access_token"],
        app_secret=shop["app_secret"],
    )


def _caller(session, shop_id: str, records: list) -> HttpCaller:
    return HttpCaller(
        session,
        "shopify",
        shop_id,
        limiter=TokenBucket(rate=1000, burst=1000),
        on_call=records.append,
        base_backoff=0.01,
    )


def _window() -> tuple[int, int]:
    now = int(time.time() * 1000)
    return now - 3_600_000, now + 3_600_000


async def test_600_orders_three_pages_via_link_cursors(sim):
    start, session = sim
    base = await start()
    creds = await _shop(session, base, "demo-a", 600)
    records: list = []
    client = ShopifyClient(creds, _caller(session, "demo-a", records))
    pages = [page async for page in client.fetch_window(*_window())]
    assert [p.records for p in pages] == [250, 250, 100]
    assert pages[0].page == "1" and all(p.page and p.page != "1" for p in pages[1:])
    assert all(p.endpoint == "orders.json" and p.content_type == "json" and p.request_id for p in pages)
    ids = [o["external_id"] for p in pages for o in map_payload(p.body, p.content_type, "demo-a")]
    async with session.get(f"{base}/_sim/shops") as r:
        assert r.status == 200
    assert len(set(ids)) == 600
    assert all(r["ok"] and r["http_status"] == 200 for r in records)
    # the window is [start, end): an end before every order's update returns nothing
    assert [p.records async for p in client.fetch_window(0, 1_000_000)] == [0]


async def test_cancelled_orders_need_status_any(sim):
    start, session = sim
    base = await start()
    creds = await _shop(session, base, "demo-b", 30)
    await session.post(f"{base}/_sim/advance", json={"shop_id": "demo-b", "steps": 30})
    headers = {"X-Shopify-Access-Token": creds.access_token}
    url = f"{base}/admin/api/2024-10/orders.json"
    async with session.get(url, params={"limit": "250"}, headers=headers) as r:
        open_orders = (await r.json())["orders"]
        assert r.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")
    async with session.get(url, params={"limit": "250", "status": "any"}, headers=headers) as r:
        all_orders = (await r.json())["orders"]
    async with session.get(
        f"{base}/admin/api/2024-10/orders/count.json", params={"status": "any"}, headers=headers
    ) as r:
        assert (await r.json())["count"] == 30
    assert len(all_orders) == 30
    assert open_orders and all(o["cancelled_at"] is None and o["closed_at"] is None for o in open_orders)
    hidden = [o for o in all_orders if o["cancelled_at"] or o["closed_at"]]
    assert len(open_orders) == 30 - len(hidden)
    page = await ShopifyClient(creds, _caller(session, "demo-b", [])).fetch_order(str(all_orders[0]["id"]))
    assert map_payload(page.body, "json", "demo-b")[0]["external_id"] == str(all_orders[0]["id"])


async def test_errors_are_permanent(sim):
    start, session = sim
    base = await start()
    creds = await _shop(session, base, "demo-c", 5)
    records: list = []
    bad = ShopifyClient(
        ShopCredentials("shopify", "demo-c", base, access_token=""), _caller(session, "demo-c", records)
    )
    with pytest.raises(PermanentError) as info:
        _ = [p async for p in bad.fetch_window(*_window())]
    assert info.value.code == "http_401" and len(records) == 1
    headers = {"X-Shopify-Access-Token": creds.access_token}
    caller = _caller(session, "demo-c", records)
    url = f"{base}/admin/api/2024-10/orders.json"
    with pytest.raises(PermanentError, match="400"):
        await caller.request(
            "orders.json", lambda: RequestSpec("GET", url, params={"limit": "300"}, headers=headers), classify
        )
    first = await caller.request(
        "orders.json",
        lambda: RequestSpec("GET", url, params={"limit": "2", "status": "any"}, headers=headers),
        classify,
    )
    link = next_link(first.headers)
    assert link and "page_info=" in link
    with pytest.raises(PermanentError, match="400"):
        await caller.request(
            "orders.json", lambda: RequestSpec("GET", link + "&status=any", headers=headers), classify
        )
    second = await caller.request("orders.json", lambda: RequestSpec("GET", link, headers=headers), classify)
    assert 'rel="previous"' in second.headers["Link"]


async def test_rate_limit_fault_is_retried_and_recorded(sim):
    start, session = sim
    base = await start()
    creds = await _shop(session, base, "demo-d", 10)
    await session.post(f"{base}/_sim/faults", json={"kind": "rate_limit", "count": 1, "seconds": 0.2})
    await session.post(f"{base}/_sim/faults", json={"kind": "error_5xx", "count": 1})
    await session.post(f"{base}/_sim/faults", json={"kind": "malformed", "count": 1})
    records: list = []
    pages = [
        p async for p in ShopifyClient(creds, _caller(session, "demo-d", records)).fetch_window(*_window())
    ]
    assert [p.records for p in pages] == [10]
    assert [(r["http_status"], r["ok"]) for r in records] == [
        (429, False),
        (503, False),
        (200, False),
        (200, True),
    ]
    assert [r["attempt"] for r in records] == [1, 2, 3, 4]


async def test_burst_beyond_bucket_is_ridden_out(sim):
    start, session = sim
    base = await start(leak_rate=20.0, retry_after=0.3)
    creds = await _shop(session, base, "demo-e", 3)
    records: list = []
    client = ShopifyClient(creds, _caller(session, "demo-e", records))
    listed = [p async for p in client.fetch_window(*_window())]
    ext = str(orjson.loads(listed[0].body)["orders"][0]["id"])
    pages = await asyncio.gather(*(client.fetch_order(ext) for _ in range(60)))
    assert len(pages) == 60 and all(p.records == 1 for p in pages)
    throttled = [r for r in records if r["http_status"] == 429]
    assert throttled and all(not r["ok"] for r in throttled)
    assert sum(r["ok"] for r in records) == 61


async def test_webhooks_are_signed_and_retried(sim):
    start, session = sim
    received: list = []
    failed_once: set = set()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        webhook_id = request.headers["X-Shopify-Webhook-Id"]
        if request.app["fail_first"] and webhook_id not in failed_once:
            failed_once.add(webhook_id)
            return web.Response(status=500)
        received.append((dict(request.headers), body))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver["fail_first"] = False
    receiver.router.add_post("/hooks", hook)
    runner, hook_base = await serve_app(receiver)
    try:
        base = await start(webhook_backoff=0.05)
        await _shop(session, base, "demo-f", 1)
        async with session.post(
            f"{base}/_sim/webhooks", json={"shop_id": "demo-f", "address": f"{hook_base}/hooks"}
        ) as r:
            assert r.status == 200
        await session.post(f"{base}/_sim/orders", json={"shop_id": "demo-f", "count": 3})
        await eventually(lambda: len(received) >= 3)
        for headers, body in received:
            assert verify(body, headers["X-Shopify-Hmac-Sha256"], SECRET)
            assert headers["X-Shopify-Topic"] == "orders/create"
            assert headers["X-Shopify-Shop-Domain"] == "demo-f.myshopify.com"
            assert headers["X-Shopify-API-Version"] == "2024-10"
            assert headers["X-Shopify-Event-Id"] and headers["X-Shopify-Triggered-At"].endswith("Z")
            assert map_payload(body, "json", "demo-f")[0]["status"] == "PAID"
        receiver["fail_first"] = True
        received.clear()
        await session.post(f"{base}/_sim/advance", json={"shop_id": "demo-f", "steps": 4})
        await eventually(lambda: len(received) >= 4)
        assert {h["X-Shopify-Topic"] for h, _ in received} == {"orders/updated"}
        assert {h["X-Shopify-Webhook-Id"] for h, _ in received} <= failed_once
        receiver["fail_first"] = False
        received.clear()
        await session.post(f"{base}/_sim/webhooks/faults", json={"forged_signature": 1})
        await session.post(f"{base}/_sim/orders", json={"shop_id": "demo-f", "count": 1})
        await eventually(lambda: len(received) >= 1)
        headers, body = received[0]
        assert not verify(body, headers["X-Shopify-Hmac-Sha256"], SECRET)
    finally:
        await runner.cleanup()


async def test_duplicate_page_fault_serves_previous_page_again(sim):
    start, session = sim
    base = await start()
    creds = await _shop(session, base, "demo-g", 5)
    client = ShopifyClient(creds, _caller(session, "demo-g", []), page_size=2)
    pages = []
    async for page in client.fetch_window(*_window()):
        pages.append(page)
        if len(pages) == 1:
            await session.post(f"{base}/_sim/faults", json={"kind": "duplicate_page", "count": 1})
    bodies = [p.body for p in pages]
    assert bodies[1] == bodies[0]  # the stale repeat, with its own Link, so nothing is lost
    ids = {o["external_id"] for p in pages for o in map_payload(p.body, "json", "demo-g")}
    assert len(ids) == 5
