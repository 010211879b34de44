"""No order is lost at a window or page edge while orders change during the scan.

The platform's client polls its simulator over HTTP through the connectors' own poller (windows, overlap,
checkpoints; pages archived and published to a real broker). Between any two API calls the simulator
creates orders and moves others along their lives — so orders move across page boundaries in the middle
of a scan — and stamps changes exactly on the edges of the window being scanned (its exclusive end, the
millisecond before it, and the whole second around it). Once the changes stop and the poller has caught
up, every order a quiet scan of the whole time then lists is on raw.orders in the state that scan shows
(the simulator's latest).
"""
import asyncio
import random
import time
import zlib

import aiohttp
import pytest
from aiohttp import web

from connectors import platforms
from connectors.runtime.archive import ArchiveWriter
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.checkpoints import CheckpointStore
from connectors.runtime.poller import PollPolicy, ShopPoller
from connectors.runtime.ratelimit import TokenBucket
from connectors.runtime.raw_publisher import REPORT_DELIVERIES, RawPublisher
from connectors.simkit.server import WORLD, ensure_shop, now_ms
from connectors.simkit.world import TRANSITIONS
from schemas.codec import AvroCodec
from schemas.kafka import Publisher, read_to_end
from schemas.sealing import open_body
from tests.conformance.common import PLATFORMS, content_type
from tests.integration.helpers import serve_app

SHOP = "edges"
CHURNED_CALLS = 24
# the runtime's own window logic; only a new shop's first sync is shortened, and no sweep after it, so the
# overlap alone must catch what changes at the edges
POLICY = PollPolicy(first_sync_ms=10 * 60_000, sweep_every=3600.0)


class Churn:
    """Changes a shop's orders on every API call while `calls_left` lasts (an aiohttp middleware)."""

    def __init__(self, world, page_size: int, seed: int):
        self.world, self.rng = world, random.Random(seed)
        self.per_call = max(2, page_size // 8)
        self.calls_left = CHURNED_CALLS
        self.window: tuple[int, int] | None = None  # the window the poller is scanning
        self.first_start: int | None = None
        self.edge_stamps = self.pages_during_churn = 0
        self.calls_in_window: dict[tuple[int, int], int] = {}

    @web.middleware
    async def middleware(self, request, handler):
        if not request.path.startswith("/_sim") and self.window is not None and self.calls_left > 0:
            self.calls_left -= 1
            self.calls_in_window[self.window] = self.calls_in_window.get(self.window, 0) + 1
            self.change(*self.window)
        return await handler(request)

    def change(self, start: int, end: int) -> None:
        world, now = self.world, now_ms()
        world.create_orders(SHOP, self.per_call, now)  # new orders arrive at the newest end
        live = [o for o in world.orders.values()
                if o.shop_id == SHOP and o.status in TRANSITIONS and o.updated_at <= now - 1000]
        for order in self.rng.sample(live, min(self.per_call, len(live))):  # older ones jump across pages
            world.step(order, now)
        second = end // 1000 * 1000
        for stamp in (end - 1, end, second - 1, second):
            if stamp < start:
                continue
            world.create_orders(SHOP, 1, stamp - 1000)  # a new order, paid exactly at the edge
            older = [o for o in world.orders.values()
                     if o.shop_id == SHOP and o.status in TRANSITIONS and o.updated_at <= stamp - 1000]
            if older and world.step(self.rng.choice(older), stamp):  # an existing one changed exactly there
                self.edge_stamps += 1
            self.edge_stamps += 1


def _latest_read(records, platform: str) -> dict[str, dict]:
    """The newest state (by updated_at, then by read order) of every order on raw.orders."""
    codec, latest = AvroCodec("RawRecord"), {}
    for value in records:
        raw = codec.decode(value)
        for order in platforms.map_payload(platform, open_body(raw), raw["content_type"], raw["shop_id"]):
            held = latest.get(order["external_id"])
            if held is None or order["updated_at"] >= held["updated_at"]:
                latest[order["external_id"]] = order
    return latest


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_no_order_is_lost_at_window_or_page_edges_while_orders_change(platform, kafka_bootstrap, topics,
                                                                           tmp_path):
    app = platforms.module(platform, "simulator").create_app()
    world = app[WORLD]
    shop = ensure_shop(app, SHOP)
    page_size = platforms.manifest(platform).limits.page_size_max
    churn = Churn(world, page_size, seed=zlib.crc32(platform.encode()))
    app.middlewares.append(churn.middleware)
    start = now_ms()
    for n in range(5):  # more than two pages of orders spread over the last few minutes
        world.create_orders(SHOP, page_size // 2 + 3, start - 300_000 + n * 50_000)
    runner, base = await serve_app(app)
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap}, **REPORT_DELIVERIES)
    archive = ArchiveWriter(tmp_path / "archive")
    try:
        async with aiohttp.ClientSession() as session:
            creds = ShopCredentials(platform=platform, shop_id=SHOP, base_url=base, app_key=shop.get("app_key", ""),
                                    app_secret=shop.get("app_secret", ""), access_token=shop.get("access_token", ""))
            # the simulator's own limits apply; ours is lifted so detail-per-order platforms finish quickly
            client = platforms.client(creds, HttpCaller(session, platform, SHOP, limiter=TokenBucket(1000, 1000)))
            scan = client.fetch_window

            def watched(start_ms: int, end_ms: int):
                churn.window = (start_ms, end_ms)
                churn.first_start = min(churn.first_start or start_ms, start_ms)
                return scan(start_ms, end_ms)

            client.fetch_window = watched
            poller = ShopPoller(client, SHOP, RawPublisher(publisher, topics.raw_orders, archive),
                                CheckpointStore(tmp_path / "checkpoints.json"), POLICY)
            deadline = time.monotonic() + 120
            while churn.calls_left > 0 and time.monotonic() < deadline:
                await poller.poll_once()
                await asyncio.sleep(0.05)
            assert churn.calls_left == 0, "the changes did not all happen within the time limit"
            newest = max(o.updated_at for o in world.orders.values() if o.shop_id == SHOP)
            while time.monotonic() < deadline and (poller.checkpoints.get(poller.key) or 0) <= newest:
                await poller.poll_once()  # caught up once a window has ended after the last change
                await asyncio.sleep(0.2)
            assert poller.checkpoints.get(poller.key) > newest, "the poller never caught up"
            # what the platform lists once nothing moves any more: one quiet scan of the whole time
            quiet, end = [], now_ms()
            for start_ms in range(churn.first_start, end, client.max_window_ms):
                quiet += [page.body async for page in scan(start_ms, min(end, start_ms + client.max_window_ms))]
    finally:
        await runner.cleanup()
        publisher.close()
        archive.close()
    # the scenario really happened: multi-page scans with changes in between, and edge stamps
    assert churn.edge_stamps >= 8 and max(churn.calls_in_window.values()) >= 3, churn.calls_in_window
    records = [m.value() for batch in read_to_end({"bootstrap.servers": kafka_bootstrap}, [topics.raw_orders],
                                                   timeout=60) for m in batch]
    read = _latest_read(records, platform)
    want = {o["external_id"]: o for body in quiet
            for o in platforms.map_payload(platform, body, content_type(body), SHOP)}
    assert len(want) >= 5 * (page_size // 2 + 3) + CHURNED_CALLS * churn.per_call  # the quiet scan saw them all
    assert all(order["updated_at"] // 1000 == world.orders[ext].updated_at // 1000 for ext, order in want.items())
    missing = sorted(set(want) - set(read))
    assert not missing, f"{platform}: {len(missing)} of {len(want)} orders never read, e.g. {missing[:3]}"
    stale = [ext for ext, order in want.items() if read[ext] != order]
    assert not stale, (f"{platform}: {len(stale)} of {len(want)} orders read only in an older state, e.g. "
                       f"{stale[0]}: read updated_at {read[stale[0]]['updated_at']}, latest {want[stale[0]]['updated_at']}")
