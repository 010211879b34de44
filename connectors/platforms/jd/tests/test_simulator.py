"""The JD client against the simulated JOS router over real HTTP on loopback: paging, windows, summaries,
tokens, and every fault answered as JD does and handled."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.server import WORLD
from schemas.canonical import ms_to_beijing
from tests.platform_helpers import SimHarness, collect, recent_window, serve_sim

from ..client import JdClient, TokenExpired
from ..mapping import map_payload
from ..render import order_state
from ..signing import PARAM_JSON, param_json
from ..simulator import STATE, create_app
from ..world import JdWorld

SHOP = "tonglu-jd-home"
HOUR, DAY = 3_600_000, 86_400_000


class Sim(SimHarness):
    platform, default_shop = "jd", SHOP

    async def creds(self, shop_id=SHOP, **override) -> ShopCredentials:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"], "access_token": shop["access_token"],
                  **override}
        extra = {k: v for k, v in shop.items() if k not in ("shop_id", "app_key", "app_secret", "access_token")}
        return ShopCredentials("jd", shop_id, self.base_url, **fields, extra=extra)

    async def client(self, shop_id=SHOP, creds_override=None, **kwargs) -> JdClient:
        return JdClient(await self.creds(shop_id, **(creds_override or {})), self.caller(shop_id), **kwargs)


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(JdWorld(seed=99))) as sim:
        yield sim


async def test_window_is_paged_from_the_last_page_back(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await collect(map_payload, await sim.client())
    assert [p.page for p in pages] == ["1", "3", "2"] and [p.records for p in pages] == [100, 50, 100]
    assert all(p.endpoint == "jingdong.pop.order.enSearch" and p.content_type == "json" for p in pages)
    assert set(ids) == created and len(ids) == 250
    assert len(sim.calls) == 3 and all(c["ok"] for c in sim.calls)


async def test_no_order_is_lost_while_orders_change_during_the_scan(sim):
    """Orders modified between pages leave the window (the rows behind them move up a page): every order
    that stayed is read in this window, and the ones that left are read in the next."""
    created = await sim.orders()
    client, ids, moved = await sim.client(), [], set()
    window = recent_window()
    async for page in client.fetch_window(*window):
        if page.page in ("1", "3") and len(moved) < 40:  # between pages, rows of every page are modified
            world = sim.app[WORLD]
            for order in sorted(world.orders.values(), key=lambda o: o.updated_at)[::25][:10]:
                world._apply(order, "request_refund", window[1] + 5_000)
                moved.add(order.external_id)
        ids += [o["external_id"] for o in map_payload(page.body, "json", SHOP)]
    assert len(moved) >= 20
    assert created - moved <= set(ids)
    later = [o["external_id"] for p in (await collect(map_payload, client, (window[1], window[1] + 60_000)))[0]
             for o in map_payload(p.body, "json", SHOP)]
    assert moved <= set(later)


async def test_the_detail_call(sim):
    number = min(await sim.orders(3))
    page = await (await sim.client()).fetch_order(number)
    assert page.endpoint == "jingdong.pop.order.enGet" and page.records == 1
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == number and order["status"] == "PAID" and order["receiver"]["secure_token"]


async def test_summaries_are_completed_by_detail_calls(sim):
    created = await sim.orders(30)
    pages, ids = await collect(map_payload, await sim.client(optional_fields="orderId,orderState,modified", page_size=20))
    assert {p.endpoint for p in pages} == {"jingdong.pop.order.enGet"} and len(pages) == 30
    assert set(ids) == created
    assert [c["endpoint"] for c in sim.calls].count("jingdong.pop.order.enSearch") == 2


async def test_forgetting_optional_fields_gives_nearly_empty_orders(sim):
    await sim.orders(2)
    client = await sim.client()
    now = int(time.time() * 1000)
    spec = client.build("jingdong.pop.order.enSearch", {"start_date": ms_to_beijing(now - HOUR),
                                                         "end_date": ms_to_beijing(now + 2000)})()
    async with sim.session.post(spec.url, data=spec.data) as resp:
        body = await resp.json()
    infos = body["jingdong_pop_order_enSearch_responce"]["searchorderinfo_result"]["orderInfoList"]
    assert len(infos) == 2 and all(set(i) == {"orderId"} for i in infos)


async def test_unpaid_orders_are_not_listed_unless_asked_for(sim):
    paid = await sim.orders(3)
    unpaid = await sim.orders(2, paid=False)
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == paid
    _, ids = await collect(map_payload, await sim.client(order_states="NOT_PAY,WAIT_SELLER_STOCK_OUT"))
    assert set(ids) == paid | unpaid


async def test_a_bad_signature_is_answered_by_jds_envelope_and_is_permanent(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"app_secret": "wrong"})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert err.value.code == "29" and len(sim.calls) == 1
    spec = (await sim.client()).build("jingdong.pop.order.enGet", {"order_id": "1"})()
    spec.data[PARAM_JSON] = param_json({"order_id": "2"})  # tampered after signing
    async with sim.session.post(spec.url, data=spec.data) as resp:
        assert resp.status == 200
        assert await resp.json() == {"error_response": {"code": "29", "zh_desc": "签名无效",
                                                        "en_desc": "Invalid signature"}}
    async with sim.session.get(spec.url, params={**spec.data, "method": "jingdong.no.such"}) as resp:
        assert (await resp.json())["error_response"]["code"] == "22"  # GET works too


async def test_an_expired_token_is_refreshed_and_the_scan_goes_on(sim):
    created = await sim.orders(120)
    client = await sim.client()
    old = client.creds.access_token
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert sim.failed() == ["19"] and "oauth2.refresh_token" in [c["endpoint"] for c in sim.calls]
    assert client.creds.access_token != old
    assert sim.app[WORLD].shops[SHOP]["access_token"] == client.creds.access_token  # kept by the platform
    again = await sim.client()  # a restarted connector reads the new token
    assert again.creds.access_token == client.creds.access_token


async def test_an_expired_token_without_refresh_token_is_a_clear_permanent_error(sim):
    await sim.orders(1)
    client = await sim.client()
    client.creds.extra.pop("refresh_token")
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    with pytest.raises(TokenExpired, match="re-authorise shop tonglu-jd-home") as err:
        await collect(map_payload, client)
    assert err.value.code == "19" and "\n" not in str(err.value)
    bad = await sim.client(creds_override={"access_token": "jd_tok_nope"})
    bad.creds.extra["refresh_token"] = "jd_rtk_nope"  # refused by the OAuth endpoint
    with pytest.raises(TokenExpired):
        await bad.fetch_order("1")


async def test_rate_limit_backs_off_and_retries(sim):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 1})
    started = time.monotonic()
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    assert time.monotonic() - started >= 0.9  # paused before retrying
    assert sim.failed() == ["66"] and len(sim.calls) == 4


async def test_the_qps_knob(sim):
    (number,) = await sim.orders(1)
    sim.app[STATE]["qps_limit"] = 1
    client = await sim.client()
    for _ in range(3):
        await client.fetch_order(number)
    assert "66" in sim.failed()


@pytest.mark.parametrize("kind, count, codes", [("malformed", 1, ["malformed"]), ("error_5xx", 2, ["http_502", "1"]),
                                                ("slow", 1, []), ("duplicate_page", 1, [])])
async def test_faults_are_retried(sim, kind, count, codes):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": kind, "count": count, "seconds": 0.2})
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    assert sim.failed() == codes


async def test_a_replayed_page_is_caught(sim):
    created = await sim.orders()
    client, ids = await sim.client(), []
    async for page in client.fetch_window(*recent_window()):
        if page.page == "1":  # the next answer replays page 1
            await sim.post("/_sim/faults", {"kind": "duplicate_page", "count": 1})
        ids += [o["external_id"] for o in map_payload(page.body, "json", SHOP)]
    assert set(ids) == created and sim.failed() == ["duplicate_page"]


async def test_a_window_wider_than_a_month_is_cut_into_pieces(sim):
    created = await sim.orders(5)
    now = int(time.time() * 1000)
    _, ids = await collect(map_payload, await sim.client(), (now - 70 * DAY, now + 2000))
    assert set(ids) == created
    assert len(sim.calls) == 3 and not sim.failed()  # 30 + 30 + 10 days


async def test_a_window_the_router_calls_too_wide_is_split(sim):
    created = await sim.orders(5)
    now = int(time.time() * 1000)
    client = await sim.client(max_window_ms=45 * DAY)  # believes in a longer month than the router
    _, ids = await collect(map_payload, client, (now + 2000 - 45 * DAY, now + 2000))
    assert set(ids) == created
    assert sim.failed() == ["10400"] and len(sim.calls) == 3


async def test_beyond_the_lookback_is_a_business_failure(sim):
    await sim.orders(1)
    now = int(time.time() * 1000)
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, await sim.client(), (now - 100 * DAY, now - 95 * DAY))
    assert err.value.code == "10401" and "jingdong_pop_order_enSearch_responce" in str(err.value)


async def test_plaintext_search_gives_receivers_in_clear(sim):
    await sim.orders(3)
    pages, _ = await collect(map_payload, await sim.client(encrypted=False))
    doc = orjson.loads(pages[0].body)
    info = doc["jingdong_pop_order_search_responce"]["searchorderinfo_result"]["orderInfoList"][0]
    sim_order = sim.app[WORLD].orders[info["orderId"]]
    assert info["consigneeInfo"]["fullname"] == sim_order.receiver_name and "desen_mobile" not in info["consigneeInfo"]


async def test_order_shipment_moves_a_waiting_order(sim):
    number = min(await sim.orders(2))
    client = await sim.client()

    async def ship(order_id, tracking="JDV000000000001|JDV000000000002"):
        spec = client.build("jingdong.pop.order.shipment", {"order_id": order_id, "logiCoprId": "2087",
                                                            "logiNo": tracking})()
        async with sim.session.post(spec.url, data=spec.data) as resp:
            return (await resp.json())["jingdong_pop_order_shipment_responce"]["sopjosshipment_result"]

    assert await ship(number) == {"success": True, "chineseErrCode": "成功", "englishErrCode": "success"}
    order = sim.app[WORLD].orders[number]
    assert order_state(order) == "WAIT_GOODS_RECEIVE_CONFIRM"
    (mapped,) = map_payload((await client.fetch_order(number)).body, "json", SHOP)
    assert mapped["status"] == "SHIPPED"
    assert {(s["carrier"], s["tracking_no"]) for s in mapped["shipments"]} == \
        {("京东快递", "JDV000000000001"), ("京东快递", "JDV000000000002")}
    assert (await ship(number))["success"] is False  # not waiting any more
    assert (await ship("404"))["englishErrCode"] == "order not found"


async def test_by_created_and_ascending(sim):
    created = await sim.orders(30)
    client = await sim.client(page_size=100)
    now = int(time.time() * 1000)
    business = client._business(ms_to_beijing(now - HOUR), ms_to_beijing(now + 2000), 1)
    business.update(dateType=1, sortType=0)
    _page, answer = await client._call("jingdong.pop.order.enSearch", business)
    listed = [o["orderId"] for o in answer.orders]
    assert set(listed) == created
    world = sim.app[WORLD].orders
    assert listed == sorted(listed, key=lambda i: (world[i].created_at, i))
