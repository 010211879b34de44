"""The Pinduoduo client against the simulated PDD gateway over real HTTP on loopback: paging, windows,
every fault the gateway answers and how the client handles it."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.server import WORLD, ensure_shop
from tests.platform_helpers import SimHarness, collect, recent_window, serve_sim

from ..client import INCREMENT, PinduoduoClient
from ..mapping import map_payload
from ..render import decrypt, virtual_number
from ..signing import sign
from ..simulator import STATE, PddWorld, create_app, expire_token

SHOP = "tonglu-pinduoduo-home"
MINUTE, HOUR = 60_000, 3_600_000


class Sim(SimHarness):
    """The running gateway, its HTTP session and the call records of the clients made here."""

    platform, default_shop = "pinduoduo", SHOP

    async def client(self, shop_id=SHOP, creds_override=None, drop_refresh=False, **kwargs) -> PinduoduoClient:
        """A client with the shop's credentials as the connectors read them (GET /_sim/shops)."""
        shop = await self.shop(shop_id)
        creds = ShopCredentials("pinduoduo", shop_id, self.base_url, app_key=shop.pop("app_key"),
                                app_secret=shop.pop("app_secret"), access_token=shop.pop("access_token"),
                                extra=shop)
        for name, value in (creds_override or {}).items():
            setattr(creds, name, value)
        if drop_refresh:
            del creds.extra["refresh_token"]
        return PinduoduoClient(creds, self.caller(shop_id), **kwargs)

    async def raw(self, client: PinduoduoClient, api_type: str, business: dict, edit=None) -> dict:
        """One signed call as the client would send it (`edit` may change the form after signing)."""
        spec = client.build(api_type, business)()
        if edit:
            edit(spec.data)
        async with self.session.post(spec.url, data=spec.data) as resp:
            return await resp.json()


@pytest.fixture
async def sim():
    app = create_app(PddWorld(seed=99))
    ensure_shop(app, SHOP)
    async with serve_sim(Sim, app) as sim:
        yield sim


def _window(back=HOUR // 2 - 1000):
    return recent_window(back, ahead_ms=1000)


async def _collect(client, window=None):
    return await collect(map_payload, client, window or _window())


async def test_window_returns_every_order_backwards(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await _collect(await sim.client())
    assert [p.page for p in pages] == ["1", "3", "2", "1"]  # page 1 for the total, then from the last back
    assert [p.records for p in pages] == [100, 50, 100, 100]
    assert all(p.endpoint == INCREMENT and p.content_type == "json" and p.request_id for p in pages)
    assert set(ids) == created and len(ids) == 350  # page 1 twice
    assert all(c["ok"] for c in sim.calls) and len(sim.calls) == 4
    assert all("-" in sn and sn[:6].isdigit() for sn in created)  # order_sn like 240318-512347896540213


async def test_a_wide_window_is_read_in_30_minute_slices(sim):
    created = await sim.orders(30)
    now = int(time.time() * 1000) + 1000
    pages, ids = await _collect(await sim.client(), (now - 2 * HOUR, now))
    assert set(ids) == created
    assert len(pages) == 4 and all(c["ok"] for c in sim.calls)  # four slices, none refused


async def test_a_window_the_platform_refuses_is_halved(sim):
    created = await sim.orders(30)
    client = await sim.client(max_window_ms=2 * HOUR)  # configured wider than PDD allows
    _, ids = await _collect(client, _window(2 * HOUR))
    assert set(ids) == created
    refused = [c for c in sim.calls if not c["ok"]]
    assert refused and {c["error_code"] for c in refused} == {"10000"}
    answer = await sim.raw(client, INCREMENT, {"start_updated_at": int(time.time()) - 1801,
                                               "end_updated_at": int(time.time())})
    err = answer["error_response"]
    assert (err["error_code"], err["error_msg"]) == (10000, "参数错误") and "30分钟" in err["sub_msg"]
    assert set(err) == {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}


async def test_orders_changing_during_the_scan_are_not_lost(sim):
    world = sim.app[WORLD]
    start = int(time.time() * 1000) - 20 * MINUTE
    created = {o.external_id for o in world.create_orders(SHOP, 260, start + 5 * MINUTE)}
    client, seen, moved, pages = await sim.client(), set(), [], 0
    window = (start, start + 10 * MINUTE)
    async for page in client.fetch_window(*window):
        seen |= {o["external_id"] for o in map_payload(page.body, "json", SHOP)}
        pages += 1
        if pages == 2:  # mid-scan, orders change and leave the window: the rows after them move up
            for order in list(world.orders.values())[:40]:
                world.step(order, int(time.time() * 1000))
                moved.append(order.external_id)
    assert created - set(moved) <= seen  # none of the orders still in the window was skipped
    _, later = await _collect(client, (window[1], int(time.time() * 1000) + 1000))
    assert seen | set(later) == created  # and the moved ones are in the next window


async def test_fetch_order_detail_and_unpaid_orders_are_invisible(sim):
    created = await sim.orders(3)
    unpaid = set((await sim.post("/_sim/orders", {"shop_id": SHOP, "count": 2, "paid": False}))["external_ids"])
    client = await sim.client()
    page = await client.fetch_order(min(created))
    (order,) = map_payload(page.body, "json", SHOP)
    assert page.endpoint == "pdd.order.information.get" and order["external_id"] == min(created)
    _, ids = await _collect(client)
    assert set(ids) == created  # PDD shows an order only once paid
    with pytest.raises(PermanentError, match="不存在"):
        await client.fetch_order(min(unpaid))


async def test_bad_signature_is_refused_with_pdds_error_body(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"app_secret": "wrong"})
    with pytest.raises(PermanentError) as err:
        await _collect(client)
    assert err.value.code == "10016" and len(sim.calls) == 1
    answer = await sim.raw(await sim.client(), INCREMENT, {"page": 1}, edit=lambda d: d.update(page="2"))
    assert answer["error_response"]["error_code"] == 10016  # a parameter changed after signing


async def test_a_millisecond_timestamp_is_refused(sim):
    client = await sim.client()

    def to_ms(data):
        data["timestamp"] = str(int(time.time() * 1000))
        data["sign"] = sign({k: v for k, v in data.items() if k != "sign"}, client.creds.app_secret)

    answer = await sim.raw(client, "pdd.order.information.get", {"order_sn": "x"}, edit=to_ms)
    assert answer["error_response"]["error_code"] == 10030 and "秒" in answer["error_response"]["sub_msg"]


async def test_an_expired_token_is_refreshed_once(sim):
    created = await sim.orders(20)
    client = await sim.client()
    old = client.creds.access_token
    expire_token(sim.app, SHOP)
    _, ids = await _collect(client)
    assert set(ids) == created
    assert client.creds.access_token != old
    assert [(c["endpoint"], c["ok"], c["error_code"]) for c in sim.calls][:2] == [
        (INCREMENT, False, "10019"), ("pdd.pop.auth.token.refresh", True, None)]
    assert sim.app[WORLD].shops[SHOP]["access_token"] == client.creds.access_token


async def test_an_expired_token_without_refresh_token_is_a_clear_error(sim):
    await sim.orders(1)
    await sim.post("/_sim/expire_token", {"shop_id": SHOP})
    with pytest.raises(PermanentError) as err:
        await _collect(await sim.client(drop_refresh=True))
    assert err.value.code == "token_expired" and "重新授权" in str(err.value)


async def test_rate_limit_is_backed_off_and_retried(sim):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 1})
    started = time.monotonic()
    _, ids = await _collect(await sim.client())
    assert set(ids) == created
    assert time.monotonic() - started >= 0.9  # the caller paused the shop for the throttle
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["70031"]


async def test_qps_limit_knob(sim):
    created = await sim.orders(1)
    sim.app[STATE]["qps_limit"] = 1
    client = await sim.client()
    for _ in range(3):
        await client.fetch_order(min(created))
    assert "70031" in [c["error_code"] for c in sim.calls if not c["ok"]]


@pytest.mark.parametrize("kind, refused", [
    ("malformed", ["malformed"]),  # half a body: asked again
    ("error_5xx", ["http_502", "50000"]),  # a gateway 502, then PDD's system-busy answer
    ("slow", []),  # a slow answer is still an answer
])
async def test_faults_are_retried(sim, kind, refused):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": kind, "count": max(len(refused), 1), "seconds": 0.2})
    _, ids = await _collect(await sim.client())
    assert set(ids) == created
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == refused


async def test_a_replayed_page_is_asked_again(sim):
    created = await sim.orders()
    pages = (await sim.client()).fetch_window(*_window())
    first = await anext(pages)
    await sim.post("/_sim/faults", {"kind": "duplicate_page"})  # the gateway answers page 1's body again
    read = [first] + [page async for page in pages]
    assert {o["external_id"] for p in read for o in map_payload(p.body, "json", SHOP)} == created
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["duplicate_page"]


async def test_receivers_are_ciphertext_and_decrypt_only_by_the_decrypt_api(sim):
    (sn,) = await sim.orders(1)
    sim_order = sim.app[WORLD].orders[sn]
    client = await sim.client()
    page = await client.fetch_order(sn)
    info = orjson.loads(page.body)["order_info_get_response"]["order_info"]
    assert info["receiver_name"].startswith("~") and info["receiver_phone"].startswith("$")
    assert sim_order.receiver_name not in page.body.decode() and sim_order.street not in page.body.decode()
    data = [{"data_tag": sn, "encrypted_data": info["receiver_name"]},
            {"data_tag": sn, "encrypted_data": info["receiver_address"]}]
    answer = await sim.raw(client, "pdd.open.decrypt.batch", {"data_list": orjson.dumps(data).decode()})
    plain = [d["decrypted_data"] for d in answer["open_decrypt_batch_response"]["data_decrypt_list"]]
    assert plain == [sim_order.receiver_name, sim_order.town + sim_order.street]
    # the buyer's mobile, or the virtual number with an extension standing in for it
    assert decrypt(info["receiver_phone"]) == (virtual_number(sim_order) or sim_order.receiver_phone)


async def test_order_list_get_by_confirm_time(sim):
    created = await sim.orders(12)
    client = await sim.client()
    now = int(time.time())
    page, _ = await client._call("pdd.order.list.get", {"start_confirm_at": now - 600, "end_confirm_at": now + 5,
                                                        "order_status": 5, "refund_status": 5, "page": 1,
                                                        "page_size": 100}, "1")
    assert {o["external_id"] for o in map_payload(page.body, "json", SHOP)} == created
