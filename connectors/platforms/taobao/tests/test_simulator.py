"""The Taobao client against the simulated TOP gateway over real HTTP on loopback."""
import time

import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.world import World
from tests.platform_helpers import SimHarness, collect, recent_window, serve_sim

from ..client import TaobaoClient
from ..mapping import map_payload
from ..simulator import STATE, create_app

SHOP = "tonglu-home"
HOUR = 3_600_000


class Sim(SimHarness):
    platform, default_shop = "taobao", SHOP

    async def creds(self, shop_id=SHOP, **override) -> ShopCredentials:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"],
                  "access_token": shop["access_token"], **override}
        return ShopCredentials("taobao", shop_id, self.base_url, **fields)

    async def client(self, shop_id=SHOP, creds_override=None, **kwargs) -> TaobaoClient:
        return TaobaoClient(await self.creds(shop_id, **(creds_override or {})), self.caller(shop_id), **kwargs)


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(World(seed=99))) as sim:
        yield sim


async def test_window_returns_every_order_backwards(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await collect(map_payload, await sim.client())
    assert [p.page for p in pages] == ["1", "3", "2"]
    assert [p.records for p in pages] == [100, 50, 100]
    assert all(p.endpoint == "taobao.trades.sold.increment.get" and p.content_type == "json" for p in pages)
    assert all(p.request_id for p in pages)
    assert set(ids) == created and len(ids) == 250
    assert all(c["ok"] for c in sim.calls) and len(sim.calls) == 3


async def test_fetch_order_detail(sim):
    tid = min(await sim.orders(3))
    page = await (await sim.client()).fetch_order(tid)
    assert page.endpoint == "taobao.trade.fullinfo.get" and page.records == 1
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == tid and order["status"] == "PAID"


async def test_bad_signature_is_permanent(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"app_secret": "wrong"})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert err.value.code == "25"
    assert len(sim.calls) == 1


async def test_hmac_sha256_signing_is_accepted(sim):
    created = await sim.orders(7)
    _, ids = await collect(map_payload, await sim.client(sign_method="hmac-sha256"))
    assert set(ids) == created


async def test_window_over_one_day_is_rejected(sim):
    await sim.orders(1)
    client = await sim.client(max_window_ms=3 * 86_400_000)
    now = int(time.time() * 1000)
    with pytest.raises(PermanentError) as err:
        async for _ in client.fetch_window(now - 2 * 86_400_000, now):
            pass
    assert err.value.code == "41" and "one day" in str(err.value)
    with pytest.raises(ValueError):
        async for _ in (await sim.client()).fetch_window(now - 2 * 86_400_000, now):
            pass


async def test_invalid_session_and_unknown_method(sim):
    await sim.orders(1)
    bad = await sim.client(creds_override={"access_token": "6100nope"})
    with pytest.raises(PermanentError) as err:
        await bad.fetch_order("1")
    assert err.value.code == "27"
    client = await sim.client()
    spec = client.build("taobao.no.such.method", {"fields": "tid"})()
    async with sim.session.get(spec.url, params=spec.data) as resp:  # GET works too
        assert (await resp.json())["error_response"]["code"] == 22
    spec = client.build("taobao.trade.fullinfo.get", {"fields": "tid", "tid": "1"})()
    del spec.data["session"]
    async with sim.session.post(spec.url, data=spec.data) as resp:
        assert (await resp.json())["error_response"]["code"] in (25, 26)  # sign covers session too


async def test_rate_limit_is_retried_and_recorded(sim):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 1, "seconds": 1})
    started = time.monotonic()
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    assert time.monotonic() - started >= 0.9  # the ban from sub_msg was honoured
    failed = [c for c in sim.calls if not c["ok"]]
    assert [c["error_code"] for c in failed] == ["7"]
    assert len(sim.calls) == 4


@pytest.mark.parametrize("kind, count", [("malformed", 1), ("error_5xx", 2), ("slow", 1)])
async def test_faults_are_retried(sim, kind, count):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": kind, "count": count, "seconds": 0.2})
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    failed = [c for c in sim.calls if not c["ok"]]
    assert len(failed) == (0 if kind == "slow" else count)


async def test_xml_format(sim):
    created = await sim.orders()
    pages, ids = await collect(map_payload, await sim.client(fmt="xml"))
    assert [p.content_type for p in pages] == ["xml"] * 3 and [p.records for p in pages] == [100, 50, 100]
    assert set(ids) == created and len(ids) == 250


async def test_duplicate_page_does_not_lose_orders(sim):
    created = await sim.orders()
    client, ids = await sim.client(), []
    async for page in client.fetch_window(*recent_window()):
        if page.page == "1":  # the next answer replays page 1's body
            await sim.post("/_sim/faults", {"kind": "duplicate_page", "count": 1})
        ids += [o["external_id"] for o in map_payload(page.body, "json", SHOP)]
    assert set(ids) == created
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["duplicate_page"]


async def test_qps_limit_knob(sim):
    (tid,) = await sim.orders(1)
    sim.app[STATE]["qps_limit"] = 1
    client = await sim.client()
    for _ in range(3):
        await client.fetch_order(tid)
    assert "7" in [c["error_code"] for c in sim.calls if not c["ok"]]
