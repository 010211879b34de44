"""The Xiaohongshu client against the simulated gateway over real HTTP on loopback: paging, windows,
details, receivers, tokens and every fault the gateway answers."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import World
from tests.platform_helpers import SimHarness, recent_window, serve_sim

from .. import errors
from ..client import XiaohongshuClient
from ..mapping import map_payload
from ..render import decrypt, virtual_number, xhs_order_id
from ..signing import sign
from ..simulator import PATH, STATE, create_app

SHOP = "tonglu-xiaohongshu-home"
HOUR = 3_600_000


class Sim(SimHarness):
    """A running simulator, the session to it and the connector.calls records of the clients made here."""

    platform, default_shop = "xiaohongshu", SHOP

    async def client(self, shop_id=SHOP, creds_override=None, **kwargs) -> XiaohongshuClient:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"], "access_token": shop["access_token"],
                  "extra": {"refresh_token": shop["refresh_token"]}, **(creds_override or {})}
        return XiaohongshuClient(ShopCredentials("xiaohongshu", shop_id, self.base_url, **fields), self.caller(shop_id),
                                 **kwargs)

    async def raw(self, body: dict) -> dict:
        async with self.session.post(self.base_url + PATH, data=orjson.dumps(body)) as resp:
            assert resp.status == 200
            return await resp.json()


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(World(seed=99, id_factory=xhs_order_id))) as sim:
        yield sim


async def _collect(client, window=None):
    pages, orders = [], []
    async for page in client.fetch_window(*(window or recent_window())):
        pages.append(page)
        orders += map_payload(page.body, page.content_type, client.creds.shop_id)
    return pages, orders


async def test_pages_backwards_with_a_detail_per_order_and_receivers_per_page(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, orders = await _collect(await sim.client())
    assert [p.page for p in pages] == ["1", "3", "2"] and [p.records for p in pages] == [100, 50, 100]
    assert all(p.endpoint == "order.getOrderList" and p.content_type == "json" for p in pages)
    assert {o["external_id"] for o in orders} == created and len(orders) == 250
    assert all(o["external_id"].startswith("P") and len(o["external_id"]) == 19 for o in orders)
    endpoints = [c["endpoint"] for c in sim.calls]
    assert endpoints.count("order.getOrderList") == 3 and endpoints.count("order.getOrderDetail") == 250
    assert endpoints.count("order.getOrderReceiverInfo") == 3 and all(c["ok"] for c in sim.calls)
    assert endpoints.count("data.batchDesensitise") == 3 + 2 + 3  # 3 ciphertexts an order, 100 a call
    for order in orders:  # receivers as the platform masks their ciphertexts
        receiver, sim_order = order["receiver"], sim.app[WORLD].orders[order["external_id"]]
        shown = virtual_number(SHOP, sim_order.receiver_phone) or sim_order.receiver_phone
        assert receiver["phone_masked"].startswith(shown[:3] + "****" + shown[7:11]) and receiver["phone_valid"]
        assert receiver["name_masked"] == sim_order.receiver_name[0] + "*" * (len(sim_order.receiver_name) - 1)
        assert receiver["address_vague"] is False and receiver["secure_token"] and receiver["city"]
        assert order["paid_total"] == sim_order.paid_total and order["lines"]
    assert any("-" in o["receiver"]["phone_masked"] for o in orders)  # privacy numbers with an extension


async def test_refused_masks_leave_the_ciphertexts(sim):
    created = await sim.orders(30)
    sim.app[STATE]["masks_allowed"] = False
    client = await sim.client()
    _, orders = await _collect(client)
    assert {o["external_id"] for o in orders} == created
    assert sim.failed() == [str(errors.NO_PERMISSION)]  # asked once, then not for an hour
    for order in orders:
        receiver = order["receiver"]
        assert decrypt(SHOP, receiver["phone_masked"]) == sim.app[WORLD].orders[order["external_id"]].receiver_phone
        assert receiver["name_masked"].startswith("#") and receiver["phone_valid"] is None


async def test_the_list_holds_summaries_only(sim):
    await sim.orders(3)
    client = await sim.client()
    now = int(time.time())
    _, data = await client._list(now - 3600, now + 2, 1)
    assert data["total"] == 3 and data["maxPageNo"] == 1
    assert all("skuList" not in s and "totalPayAmount" not in s and "receiverName" not in s for s in data["orderList"])


async def test_fetch_order(sim):
    order_id = min(await sim.orders(3))
    page = await (await sim.client()).fetch_order(order_id)
    assert page.endpoint == "order.getOrderDetail" and page.records == 1
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == order_id and order["status"] == "PAID" and order["receiver"]["phone_masked"]


async def test_a_bad_sign_is_refused_in_the_platforms_words(sim):
    await sim.orders(1)
    with pytest.raises(PermanentError) as err:
        await _collect(await sim.client(creds_override={"app_secret": "wrong"}))
    assert err.value.code == str(errors.INVALID_SIGN) and "签名错误" in str(err.value)
    assert len(sim.calls) == 1
    stamp = str(int(time.time()))
    body = {"method": "order.getOrderList", "appId": "xhs_demo_app_01", "timestamp": stamp, "version": "2.0",
            "sign": sign("order.getOrderList", "xhs_demo_app_01", stamp, "wrong")}
    assert await sim.raw(body) == {"success": False, "error_code": errors.INVALID_SIGN, "error_msg": "签名错误",
                                   "data": None}
    stale = str(int(time.time()) - 3600)  # the body is not signed, so the gateway insists on a fresh timestamp
    body.update(timestamp=stale, sign=sign("order.getOrderList", "xhs_demo_app_01", stale, "xhs_demo_secret_e7"))
    assert (await sim.raw(body))["error_code"] == errors.INVALID_TIMESTAMP


async def test_an_expired_token_is_refreshed_and_the_call_repeated(sim):
    created = await sim.orders(30)
    client = await sim.client()
    shop = sim.app[WORLD].shops[SHOP]
    shop["access_token_expires_at"] = 0
    _, orders = await _collect(client)
    assert {o["external_id"] for o in orders} == created
    assert sim.failed() == [str(errors.TOKEN_EXPIRED)]
    assert [c["endpoint"] for c in sim.calls][:3] == ["order.getOrderList", "oauth.refreshToken", "order.getOrderList"]
    assert client.token == shop["access_token"] and shop["access_token_expires_at"] > time.time() * 1000


async def test_an_expired_token_without_refresh_token_says_to_reauthorise(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"extra": {}})
    sim.app[WORLD].shops[SHOP]["access_token_expires_at"] = 0
    with pytest.raises(PermanentError, match="re-authorise the shop"):
        await _collect(client)
    bad = await sim.client(creds_override={"access_token": "token-nope"})
    with pytest.raises(PermanentError) as err:
        await _collect(bad)
    assert err.value.code == str(errors.INVALID_TOKEN)


async def test_a_wide_window_is_cut_into_slices_the_platform_accepts(sim):
    created = await sim.orders(40)
    sim.app[STATE]["window_max_s"] = 600
    client = await sim.client(max_window_ms=30 * 60_000)  # the client thinks 30 min are fine
    now = int(time.time() * 1000)
    _, orders = await _collect(client, (now - 2 * HOUR, now + 2000))
    assert {o["external_id"] for o in orders} == created
    # 30 min refused, 15 min refused, then every slice 7.5 min
    assert sim.failed() == [str(errors.WINDOW_TOO_WIDE)] * 2 and client.max_window_ms == 450_000


async def test_more_pages_than_page_numbers_reach_are_split_by_time(sim):
    world = sim.app[WORLD]
    ensure_shop(sim.app, SHOP)
    now = int(time.time() * 1000)
    created = set()
    for n in range(5):  # 5 batches of 60 orders, a minute apart
        created |= {o.external_id for o in world.create_orders(SHOP, 60, now - (n + 1) * 60_000)}
    sim.app[STATE]["max_page_no"] = 2
    pages, orders = await _collect(await sim.client(page_size=50, max_page_no=2), (now - 10 * 60_000, now + 1000))
    assert {o["external_id"] for o in orders} == created
    assert max(int(p.page) for p in pages) <= 2


async def test_rate_limit_is_backed_off_and_retried(sim):
    created = await sim.orders(20)
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 1})
    started = time.monotonic()
    _, orders = await _collect(await sim.client())
    assert {o["external_id"] for o in orders} == created
    assert sim.failed() == ["-100"] and time.monotonic() - started >= 0.9


async def test_qps_limit_knob(sim):
    (order_id,) = await sim.orders(1)
    sim.app[STATE]["qps_limit"] = 1
    client = await sim.client()
    for _ in range(3):
        await client.fetch_order(order_id)
    assert "-100" in sim.failed()


@pytest.mark.parametrize("kind, count, codes", [("malformed", 1, {"malformed"}), ("error_5xx", 2, {"http_502", "-1"}),
                                                ("slow", 1, set()), ("duplicate_page", 3, {"duplicate_page"})])
async def test_faults_are_retried(sim, kind, count, codes):
    created = await sim.orders(120)
    client = await sim.client()
    await client.fetch_order(min(created))  # something for a duplicate page to replay
    sim.calls.clear()
    await sim.post("/_sim/faults", {"kind": kind, "count": count, "seconds": 0.2})
    _, orders = await _collect(client)
    assert {o["external_id"] for o in orders} == created
    assert set(sim.failed()) == codes


async def test_no_order_is_lost_while_orders_change_during_the_scan(sim):
    world = sim.app[WORLD]
    ensure_shop(sim.app, SHOP)
    now = int(time.time() * 1000)
    orders = world.create_orders(SHOP, 230, now - 30 * 60_000)
    start, end = now - HOUR, now - 1000
    client = await sim.client()
    seen = set()
    async for page in client.fetch_window(start, end):
        seen |= {o["external_id"] for o in map_payload(page.body, "json", SHOP)}
        for order in orders[:: 7]:  # some orders change: their new update time leaves the window
            world.step(order, int(time.time() * 1000))
    assert sum(o.updated_at >= end for o in orders) >= 30  # changed orders left the window mid-scan
    untouched = {o.external_id for n, o in enumerate(orders) if n % 7}
    assert untouched <= seen, f"{len(untouched - seen)} orders lost at page edges"


async def test_decrypt_stub_opens_ciphertexts_with_virtual_numbers(sim):
    ids = sorted(await sim.orders(12))
    client = await sim.client()
    phones = []
    for order_id in ids:
        capture = orjson.loads((await client.fetch_order(order_id)).body)
        (info,) = capture["order.getOrderReceiverInfo"]["data"]["receiverInfos"]
        phones.append({"dataTag": order_id, "encryptedData": info["receiverPhone"]})
    _, data = await client._call("data.batchDecrypt", {"baseInfos": phones, "actionType": "4", "appUserId": "t"})
    plain = [d["decryptedData"] for d in data["dataInfoList"]]
    assert any("-" in p for p in plain) and all(p[:3].isdigit() for p in plain)
    virtual = next(p for p in plain if "-" in p)
    assert sim.app[WORLD].orders[ids[plain.index(virtual)]].receiver_phone != virtual


async def test_duplicate_order_defect_keeps_the_id_shape(sim):
    made = (await sim.post("/_sim/orders", {"shop_id": SHOP, "count": 2, "anomaly": "duplicate_order"}))["external_ids"]
    assert len(made) == 2 and all(i.startswith("P") and len(i) == 19 for i in made)
