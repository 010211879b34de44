"""The Youzan client against the simulated open platform over real HTTP on loopback: tokens, paging,
windows, every fault the platform answers with."""
import time

import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.errors import PermanentError
from connectors.runtime.ratelimit import TokenBucket
from connectors.simkit.server import ensure_shop
from tests.platform_helpers import SimHarness, collect, recent_window, serve_sim

from .. import api
from ..client import YouzanClient
from ..mapping import map_payload
from ..simulator import STATE, create_app
from ..simworld import YouzanWorld

SHOP = "tonglu-youzan-home"
HOUR = 3_600_000


class Sim(SimHarness):
    platform, default_shop = "youzan", SHOP

    def make(self, count: int, at_ms: int, shop_id=SHOP) -> list:
        """Orders placed at `at_ms` (earlier than the control API would place them)."""
        ensure_shop(self.app, shop_id)
        return self.world.create_orders(shop_id, count, at_ms)

    async def creds(self, shop_id=SHOP, **override) -> ShopCredentials:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"], "access_token": "",
                  "extra": {"kdt_id": shop["kdt_id"]}, **override}
        return ShopCredentials("youzan", shop_id, self.base_url, **fields)

    def caller(self, shop_id=SHOP, cls=HttpCaller):
        return super().caller(shop_id, cls, limiter=TokenBucket(1000, 1000))

    async def client(self, shop_id=SHOP, creds_override=None, caller=None, **kwargs) -> YouzanClient:
        creds = await self.creds(shop_id, **(creds_override or {}))
        return YouzanClient(creds, caller or self.caller(shop_id), **kwargs)

    def endpoints(self) -> list[str]:
        return [c["endpoint"] for c in self.calls]


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(YouzanWorld(seed=99), qps_limit=None)) as sim:
        yield sim


async def test_a_window_lists_backwards_and_publishes_one_detail_per_order(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await collect(map_payload, await sim.client())
    assert sorted(ids) == sorted(created) and len(ids) == 250
    assert all(p.endpoint == api.TRADE_GET and p.records == 1 and p.request_id and p.api_version == "4.0.2"
               for p in pages)
    listed = [c for c in sim.calls if c["endpoint"] == api.SOLD_GET]
    assert [c["records"] for c in listed] == [100, 50, 100]  # page 1 gives the total, then 3, then 2
    assert sim.endpoints()[0] == "auth/token" and sim.endpoints().count("auth/token") == 1
    assert sim.endpoints().count(api.TRADE_GET) == 250 and all(c["ok"] for c in sim.calls)


async def test_a_re_read_window_gives_the_kept_details_without_calling_again(sim):
    created = await sim.orders(30)
    client = await sim.client()
    first, _ = await collect(map_payload, client)
    sim.calls.clear()
    again, ids = await collect(map_payload, client)
    assert set(ids) == created and [p.body for p in again] == [p.body for p in first]
    assert sim.endpoints() == [api.SOLD_GET]
    changed = next(iter(sim.world.orders.values()))
    sim.world.step(changed, int(time.time() * 1000) + 1500)  # a newer update_time, still inside the window
    sim.calls.clear()
    _, ids = await collect(map_payload, client, (recent_window()[0], int(time.time() * 1000) + 5000))
    assert sim.endpoints() == [api.SOLD_GET, api.TRADE_GET] and set(ids) == created


async def test_fetch_order_reads_one_detail(sim):
    tid = min(await sim.orders(3))
    page = await (await sim.client()).fetch_order(tid)
    assert page.endpoint == api.TRADE_GET and page.page == tid
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == tid and order["status"] == "PAID"
    with pytest.raises(PermanentError) as err:
        await (await sim.client()).fetch_order("E00000000000000000000000")
    assert err.value.code == str(api.ORDER_NOT_FOUND)


async def test_an_expired_token_is_renewed_and_the_call_repeated(sim):
    created = await sim.orders(20)
    client = await sim.client()
    await collect(map_payload, client)
    assert (await sim.post("/_sim/tokens/expire", {"shop_id": SHOP}))["expired"] == 1
    sim.calls.clear()
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert sim.failed() == [str(api.GW_TOKEN_EXPIRED)] and sim.endpoints()[:3] == [api.SOLD_GET, "auth/token",
                                                                                    api.SOLD_GET]


async def test_a_token_that_cannot_be_renewed_is_a_clear_error(sim):
    await sim.orders(2)
    token = (await sim.client())
    await collect(map_payload, token)
    given = token._token
    await sim.post("/_sim/tokens/expire")
    client = await sim.client(creds_override={"app_secret": "", "access_token": given})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert "access_token" in str(err.value) and "client_secret" in str(err.value)


async def test_a_refresh_token_is_used_when_the_shop_has_one(sim):
    created = await sim.orders(5)
    client = await sim.client()
    await collect(map_payload, client)
    await sim.post("/_sim/tokens/expire")
    refreshed = await sim.client(creds_override={"extra": {"refresh_token": client._refresh_token}})
    sim.calls.clear()
    _, ids = await collect(map_payload, refreshed)
    assert set(ids) == created and sim.endpoints().count("auth/token") == 1 and not sim.failed()


async def test_a_wrong_client_secret_is_refused_with_the_platform_error(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"app_secret": "wrong"})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert err.value.code == str(api.BAD_CLIENT) and sim.endpoints() == ["auth/token"]
    forged = await sim.client(creds_override={"access_token": "0" * 32, "app_secret": ""})
    with pytest.raises(PermanentError):
        await collect(map_payload, forged)
    assert sim.failed()[-1] == str(api.GW_TOKEN_INVALID)


async def test_rate_limit_is_backed_off_and_retried(sim):
    created = await sim.orders(30)
    client = await sim.client()
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 2})
    started = time.monotonic()
    _, ids = await collect(map_payload, client)
    assert set(ids) == created and time.monotonic() - started >= 0.9  # one second's pause per refusal
    assert sim.failed() == [str(api.GW_RATE_LIMITED)] * 2


async def test_the_qps_limit_of_the_platform_is_survived(sim):
    created = await sim.orders(40)
    sim.app[STATE]["qps_limit"] = 15
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    assert str(api.GW_RATE_LIMITED) in sim.failed()


@pytest.mark.parametrize("kind, count", [("malformed", 1), ("error_5xx", 2), ("slow", 1)])
async def test_faults_are_retried(sim, kind, count):
    created = await sim.orders(150)
    client = await sim.client()
    await sim.post("/_sim/faults", {"kind": kind, "count": count, "seconds": 0.2})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert len(sim.failed()) == (0 if kind == "slow" else count)


async def test_a_replayed_answer_is_refused_and_asked_again(sim):
    created = await sim.orders(150)
    client = await sim.client()
    first = await client._sold_page(*_bounds(), 1)  # the next call replays this answer
    await sim.post("/_sim/faults", {"kind": "duplicate_page", "count": 1})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created and first["total_results"] == 150
    assert sim.failed() == ["duplicate_page"]


def _bounds():
    from schemas.canonical import ms_to_beijing

    start, end = recent_window()
    return ms_to_beijing(start), ms_to_beijing(end)


async def test_a_window_the_platform_calls_too_wide_is_halved(sim):
    sim.app[STATE]["max_window_s"] = 3600
    now = int(time.time() * 1000)
    spread = {o.external_id for t in range(0, 5 * HOUR, 20 * 60_000)
              for o in sim.make(3, now - 5 * HOUR + t)}
    client = await sim.client()
    _, ids = await collect(map_payload, client, (now - 6 * HOUR, now + 1000))
    assert set(ids) == spread
    assert str(api.WINDOW_TOO_WIDE) in sim.failed() and client.max_window_ms <= HOUR


async def test_a_window_deeper_than_the_paging_cap_is_sliced(sim):
    sim.app[STATE]["deep_page_cap"] = 120
    now = int(time.time() * 1000)
    spread = {o.external_id for t in range(0, 2 * HOUR, 10 * 60_000)
              for o in sim.make(30, now - 2 * HOUR + t)}
    for cap in (120, api.DEEP_PAGE_CAP):  # told the cap, or finding it out from the refusal
        sim.calls.clear()
        _, ids = await collect(map_payload, await sim.client(page_size=40, deep_page_cap=cap, kept_details=0),
                                (now - 3 * HOUR, now + 1000))
        assert set(ids) == spread and len(spread) == 360
        assert (str(api.PAGE_TOO_DEEP) in sim.failed()) == (cap != 120)


async def test_an_unknown_api_version_is_a_permanent_error(sim):
    await sim.orders(1)
    client = await sim.client(versions={**api.VERSIONS, api.SOLD_GET: "9.9.9"})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert err.value.code == str(api.GW_API_NOT_FOUND)


class _Churning(HttpCaller):
    """A real caller that, after the first list page, moves orders along (they leave the window)."""

    moved: set

    async def request(self, endpoint, build, classify):
        response = await super().request(endpoint, build, classify)
        if endpoint == api.SOLD_GET and not self.moved:
            world = self.world
            now = int(time.time() * 1000) + 10_000
            for order in sorted(world.orders.values(), key=lambda o: o.external_id)[::3]:
                world.step(order, now)
                self.moved.add(order.external_id)
        return response


async def test_no_order_is_lost_at_page_edges_while_orders_change_during_the_scan(sim):
    created = await sim.orders(95)
    caller = sim.caller(cls=_Churning)
    caller.world, caller.moved = sim.world, set()
    start, _ = recent_window()
    _, ids = await collect(map_payload, await sim.client(caller=caller, page_size=10), (start, int(time.time() * 1000) + 5000))
    assert caller.moved and created - caller.moved <= set(ids)


async def test_the_detail_of_a_partly_shipped_order_says_so(sim):
    now = int(time.time() * 1000)
    (order,) = sim.make(1, now - 60_000)
    while len(order.lines) < 2:
        (order,) = sim.make(1, now - 60_000)
    sim.world._apply(order, "ship_part", now - 30_000)
    page = await (await sim.client()).fetch_order(order.external_id)
    (got,) = map_payload(page.body, "json", SHOP)
    assert got["status"] == "PARTIALLY_SHIPPED" and len(got["shipments"]) == 1
    assert got["shipments"][0]["line_ids"] == [order.lines[0].line_id]
    _, listed = await (await sim.client())._call(api.SOLD_GET, {"tid": order.external_id})
    assert listed["data"]["full_order_info_list"][0]["full_order_info"]["order_info"]["status"] == \
        "WAIT_SELLER_SEND_GOODS"
