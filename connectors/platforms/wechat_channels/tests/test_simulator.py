"""The channels/ec client against the simulated API over real HTTP on loopback: paging, windows, faults."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited
from connectors.runtime.ratelimit import TokenBucket
from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import World
from tests.platform_helpers import SimHarness, serve_sim

from ..client import DETAIL, LIST, TOKEN, WeChatChannelsClient, _seconds_to_beijing_midnight
from ..mapping import map_payload
from ..render import product_id
from ..shipping import ORDER_STATE, SKU_DELIVERED
from ..simulator import STATE, create_app

SHOP = "tonglu-wechat_channels-home"
HOUR, DAY = 3_600_000, 86_400_000


class Sim(SimHarness):
    platform, default_shop = "wechat_channels", SHOP

    async def client(self, shop_id=SHOP, override=None, **kwargs) -> WeChatChannelsClient:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"], "access_token": shop["access_token"],
                  **(override or {})}
        return WeChatChannelsClient(ShopCredentials("wechat_channels", shop_id, self.base_url, **fields),
                                    self.caller(shop_id, limiter=TokenBucket(1000, 1000)), **kwargs)

    def endpoints(self, name, ok=None):
        return [c for c in self.calls if c["endpoint"] == name and (ok is None or c["ok"] == ok)]


@pytest.fixture
async def sim():
    app = create_app(World(seed=11))
    ensure_shop(app, SHOP)
    async with serve_sim(Sim, app) as sim:
        yield sim


def _now() -> int:
    return int(time.time() * 1000)


async def _read(client, start, end) -> tuple[set[str], int]:
    ids, pages = set(), 0
    async for page in client.fetch_window(start, end):
        pages += 1
        ids |= {o["external_id"] for o in map_payload(page.body, page.content_type, SHOP)}
    return ids, pages


async def test_ids_then_details_over_every_page(sim):
    created = await sim.orders(250)
    client = await sim.client()
    ids, pages = await _read(client, _now() - HOUR, _now() + 1000)
    assert ids == created and pages == 250  # one order/get answer per order
    # three pages of 100, then one confirming pass that finds nothing new
    assert len(sim.endpoints(LIST)) == 6 and len(sim.endpoints(DETAIL)) == 250
    assert all(c["ok"] and c["platform"] == "wechat_channels" for c in sim.calls)


async def test_a_single_page_is_not_listed_twice(sim):
    created = await sim.orders(30)
    ids, _ = await _read(await sim.client(), _now() - HOUR, _now() + 1000)
    assert ids == created and len(sim.endpoints(LIST)) == 1


@pytest.mark.parametrize("passes, complete", [(4, True), (1, False)])
async def test_no_order_is_lost_when_orders_change_during_the_scan(sim, passes, complete):
    """The cursor counts positions: orders updated after they were listed leave the window and shift the
    rest back. The confirming pass finds what the first one skipped (and with one pass, orders are lost:
    the positive control)."""
    world = sim.app[WORLD]
    past = _now() - 2 * HOUR
    made = world.create_orders(SHOP, 300, past)
    for n, order in enumerate(made):  # distinct update times, newest first in the list
        order.updated_at = past + n * 1000
    client = await sim.client(page_size=50, max_passes=passes)
    ids = set()
    async for page in client.fetch_window(past - 60_000, past + 600_000):
        (order,) = map_payload(page.body, "json", SHOP)
        ids.add(order["external_id"])
        if len(ids) % 50 == 1:  # while the pages are read, earlier listed orders change (and leave the window)
            moved = next(o for o in made if o.external_id in ids and o.updated_at < past + 600_000)
            world.step(moved, _now())
    assert (ids == {o.external_id for o in made}) is complete


async def test_wide_windows_are_cut_to_seven_days(sim):
    world = sim.app[WORLD]
    now = _now()
    made = [o for days in (1, 8, 15, 19) for o in world.create_orders(SHOP, 5, now - days * DAY)]
    ids, _ = await _read(await sim.client(), now - 20 * DAY, now)
    assert ids == {o.external_id for o in made}
    assert len(sim.endpoints(LIST)) == 3  # 20 days in three pieces of at most 7


async def test_a_window_the_api_calls_too_wide_is_halved(sim):
    world = sim.app[WORLD]
    now = _now()
    made = [o for days in (1, 9) for o in world.create_orders(SHOP, 5, now - days * DAY)]
    client = await sim.client(max_window_ms=10 * DAY)  # more than the API allows
    ids, _ = await _read(client, now - 10 * DAY, now)
    assert ids == {o.external_id for o in made}
    refused = sim.endpoints(LIST, ok=False)
    assert len(refused) == 1 and refused[0]["error_code"] == "40097"


async def test_an_expired_token_is_renewed_with_the_app_secret(sim):
    created = await sim.orders(20)
    client = await sim.client()
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    ids, _ = await _read(client, _now() - HOUR, _now() + 1000)
    assert ids == created
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["42001"]
    assert len(sim.endpoints(TOKEN, ok=True)) == 1
    assert client.token == (await sim.shop())["access_token"]


async def test_no_token_at_start_fetches_one_and_a_wrong_token_is_replaced(sim):
    created = await sim.orders(5)
    ids, _ = await _read(await sim.client(override={"access_token": ""}), _now() - HOUR, _now() + 1000)
    assert ids == created and len(sim.endpoints(TOKEN)) == 1
    sim.calls.clear()
    ids, _ = await _read(await sim.client(override={"access_token": "86_not_a_token"}), _now() - HOUR, _now() + 1000)
    assert ids == created and [c["error_code"] for c in sim.calls if not c["ok"]] == ["40001"]


async def test_a_refused_token_without_a_valid_secret_is_a_clear_error(sim):
    await sim.orders(5)
    client = await sim.client(override={"access_token": "86_stale", "app_secret": "0" * 32})
    with pytest.raises(PermanentError, match="40125"):
        await _read(client, _now() - HOUR, _now() + 1000)
    client = await sim.client(override={"access_token": "86_stale", "app_key": "", "app_secret": ""})
    with pytest.raises(PermanentError, match="access_token 无效且无法刷新"):
        await _read(client, _now() - HOUR, _now() + 1000)


@pytest.mark.parametrize("kind, code", [("rate_limit", "45011"), ("error_5xx", "http_502"), ("malformed", "malformed"),
                                        ("slow", None)])
async def test_faults_are_answered_as_wechat_answers_and_retried(sim, kind, code):
    created = await sim.orders(12)
    client = await sim.client(minute_quota_wait_s=0.05)
    await sim.fault(kind, count=1 if kind != "error_5xx" else 2)
    ids, _ = await _read(client, _now() - HOUR, _now() + 1000)
    assert ids == created
    failed = [c["error_code"] for c in sim.calls if not c["ok"]]
    if code is None:
        assert failed == []
    elif kind == "error_5xx":
        assert failed == ["http_502", "-1"]  # a gateway error page, then errcode -1 (system busy)
    else:
        assert failed == [code]


async def test_a_repeated_answer_for_another_order_is_refused_and_retried(sim):
    first, second = sorted(await sim.orders(2))
    client = await sim.client()
    await client.fetch_order(first)
    await sim.fault("duplicate_page")  # the next order/get answers with the previous order/get answer
    page = await client.fetch_order(second)
    assert [o["external_id"] for o in map_payload(page.body, "json", SHOP)] == [second]
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["duplicate_page"]


async def test_the_minute_quota_of_a_shop(sim):
    await sim.orders(8)
    sim.app[STATE]["minute_quota"] = 5
    with pytest.raises(RateLimited) as limited:
        await _read(await sim.client(minute_quota_wait_s=0.01), _now() - HOUR, _now() + 1000)
    assert limited.value.code == "45011"
    assert [c["error_code"] for c in sim.calls if not c["ok"]][-6:] == ["45011"] * 6  # every attempt refused
    # unless told otherwise, the client waits for the next minute, as the answer says
    with pytest.raises(RateLimited) as limited:
        (await sim.client())._raise(45011, "api minute-quota reach limit  mustslower  retry next minute")
    assert 0 < limited.value.retry_after <= 60.5


def test_a_daily_quota_waits_for_beijing_midnight():
    at = 1_735_660_000  # 2024-12-31 23:46:40 Beijing: 800 s to midnight
    assert _seconds_to_beijing_midnight(at) == 801.0


async def test_the_simulator_answers_errors_as_wechat_does(sim):
    await sim.orders(3)
    token = (await sim.shop())["access_token"]
    body = {"update_time_range": {"start_time": 0, "end_time": 8 * 86400}}
    for params, payload, code in [({}, body, 41001), ({"access_token": "x"}, body, 40001),
                                  ({"access_token": token}, body, 40097),
                                  ({"access_token": token}, {"page_size": 10}, 40097),
                                  ({"access_token": token}, {**body, "update_time_range": {"start_time": 0,
                                                                                           "end_time": 10},
                                                             "page_size": 101}, 40097),
                                  ({"access_token": token}, {"update_time_range": {"start_time": 0, "end_time": 10},
                                                             "next_key": "forged"}, 40097),
                                  ({"access_token": token}, {"order_id": "1"}, 10020001)]:
        path = "/channels/ec/order/get" if "order_id" in payload else "/channels/ec/order/list/get"
        answer = await sim.post(path, payload, **params)
        assert answer["errcode"] == code and " rid: " in answer["errmsg"], answer
    async with sim.session.get(sim.base_url + "/cgi-bin/token",
                               params={"grant_type": "client_credential", "appid": "wx0", "secret": "s"}) as resp:
        assert (await resp.json())["errcode"] == 40013


async def test_cgi_bin_token_keeps_the_previous_token_five_minutes_and_stable_tokens_stay(sim):
    shop = await sim.shop()
    first = shop["access_token"]
    stable = await sim.post("/cgi-bin/stable_token", {"grant_type": "client_credential", "appid": shop["app_key"],
                                                      "secret": shop["app_secret"]})
    assert stable["access_token"] == first and 7000 < stable["expires_in"] <= 7200
    async with sim.session.get(sim.base_url + "/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": shop["app_key"], "secret": shop["app_secret"]}) as resp:
        fresh = await resp.json()
    assert fresh["access_token"] != first and fresh["expires_in"] == 7200
    listing = {"update_time_range": {"start_time": 0, "end_time": 10}}
    assert (await sim.post("/channels/ec/order/list/get", listing, access_token=first))["errcode"] == 0
    sim.app[WORLD].shops[SHOP]["previous_expires_at"] = time.time() - 1
    assert (await sim.post("/channels/ec/order/list/get", listing, access_token=first))["errcode"] == 42001


async def test_partial_shipments_through_delivery_send(sim):
    world = sim.app[WORLD]
    order = next(o for o in world.create_orders(SHOP, 40, _now()) if len(o.lines) >= 2)
    token = (await sim.shop())["access_token"]
    first, *rest = order.lines

    async def ship(lines, waybill):
        return await sim.post("/channels/ec/order/delivery/send", {"order_id": order.external_id, "delivery_list": [
            {"delivery_id": "YD", "waybill_id": waybill, "deliver_type": 1,
             "product_infos": [{"product_id": product_id(line), "sku_id": line.line_id, "product_cnt": line.quantity}
                               for line in lines]}]}, access_token=token)

    async def state():
        answer = await sim.post("/channels/ec/order/get", {"order_id": order.external_id}, access_token=token)
        (mapped,) = map_payload(orjson.dumps(answer), "json", SHOP)
        return answer["order"]["status"], mapped

    assert (await ship([first], "YD4300000000001"))["errcode"] == 0
    status, mapped = await state()
    assert (status, mapped["status"]) == (21, "PARTIALLY_SHIPPED")
    assert mapped["shipments"] == [{"carrier": "韵达快递", "tracking_no": "YD4300000000001",
                                    "shipped_at": mapped["shipped_at"], "line_ids": [first.line_id]}]
    assert (await ship([first], "YD4300000000009"))["errcode"] == SKU_DELIVERED
    assert (await ship(rest, "YD4300000000002"))["errcode"] == 0
    status, mapped = await state()
    assert (status, mapped["status"], len(mapped["shipments"])) == (30, "SHIPPED", 2)
    assert (await ship(rest, "YD4300000000003"))["errcode"] == ORDER_STATE  # 30: nothing left to ship


async def test_sensitive_info_decode_is_plaintext_within_a_daily_quota(sim):
    (external_id,) = await sim.orders(1)
    order = sim.app[WORLD].orders[external_id]
    token = (await sim.shop())["access_token"]
    answer = await sim.post("/channels/ec/order/sensitiveinfo/decode", {"order_id": external_id}, access_token=token)
    assert answer["address_info"]["tel_number"] == order.receiver_phone
    sim.app[STATE]["daily_quota"] = 1
    answer = await sim.post("/channels/ec/order/sensitiveinfo/decode", {"order_id": external_id}, access_token=token)
    assert answer["errcode"] == 45009
