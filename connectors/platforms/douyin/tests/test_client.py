"""The Douyin client against the simulated Doudian gateway over real HTTP on loopback: paging, windows,
tokens and every fault answered as the platform does."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.server import ensure_shop
from connectors.simkit.world import World
from tests.platform_helpers import SimHarness, collect, serve_sim

from ..client import DouyinClient
from ..mapping import map_payload
from ..signing import param_json, sign
from ..simulator import STATE, create_app, douyin_order_id

SHOP = "tonglu-douyin-home"
HOUR = 3_600_000


class Sim(SimHarness):
    platform, default_shop = "douyin", SHOP

    async def creds(self, shop_id=SHOP, **override) -> ShopCredentials:
        shop = await self.shop(shop_id)
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"],
                  "access_token": shop["access_token"], "extra": {"refresh_token": shop["refresh_token"]}, **override}
        return ShopCredentials("douyin", shop_id, self.base_url, **fields)

    async def client(self, shop_id=SHOP, creds_override=None, **kwargs) -> DouyinClient:
        return DouyinClient(await self.creds(shop_id, **(creds_override or {})), self.caller(shop_id), **kwargs)


@pytest.fixture
async def sim():
    app = create_app(World(seed=99, id_factory=douyin_order_id))
    ensure_shop(app, SHOP)
    async with serve_sim(Sim, app) as sim:
        yield sim


async def test_a_window_is_read_page_0_first_then_from_the_last_page_back(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await collect(map_payload, await sim.client())
    assert [p.page for p in pages] == ["0", "2", "1"]
    assert [p.records for p in pages] == [100, 50, 100]
    assert all(p.endpoint == "order.searchList" and p.api_version == "2" and p.request_id for p in pages)
    assert set(ids) == created and len(ids) == 250
    assert all(c["ok"] for c in sim.calls) and len(sim.calls) == 3
    first = orjson.loads(pages[0].body)["data"]
    assert (first["page"], first["size"], first["total"]) == (0, 100, 250)


async def test_no_order_is_lost_while_orders_change_during_the_scan(sim):
    start = int(time.time() * 1000) - 600_000
    for n in range(250):  # one order a second, ten minutes ago
        sim.world.create_orders(SHOP, 1, start + n * 1000)
    client = await sim.client()
    window = (start - 1000, start + 300_000)
    in_window = {o.external_id for o in sim.world.orders.values() if window[0] <= o.updated_at < window[1]}
    moved = []

    def change_some(call):  # after every call, three orders of the window change now: they leave it
        for order in sorted(sim.world.orders.values(), key=lambda o: o.external_id)[len(moved) * 3:][:3]:
            sim.world.step(order, int(time.time() * 1000))
            moved.append(order.external_id)

    sim.after_call = change_some
    _, ids = await collect(map_payload, client, window)
    unchanged = in_window - set(moved)
    assert unchanged <= set(ids), f"{len(unchanged - set(ids))} orders lost"
    assert len(sim.calls) > 3  # the total moved, so a second backward pass ran


async def test_summaries_are_replaced_by_detail_calls(sim):
    created = await sim.orders(12)
    sim.app[STATE]["summaries"] = True
    pages, ids = await collect(map_payload, await sim.client())
    assert [p.endpoint for p in pages] == ["order.orderDetail"] * 12
    assert set(ids) == created and all(p.records == 1 for p in pages)
    assert [c["endpoint"] for c in sim.calls] == ["order.searchList"] + ["order.orderDetail"] * 12


async def test_a_window_deeper_than_the_paging_cap_is_split(sim):
    start = int(time.time() * 1000) - 600_000
    for n in range(120):
        sim.world.create_orders(SHOP, 1, start + n * 1000)
    sim.app[STATE]["depth_max"] = 40  # the gateway refuses (page + 1) × size > 40
    client = await sim.client(page_size=20, depth_max=40)
    _, ids = await collect(map_payload, client, (start, start + 120_000))
    assert len(ids) == len(set(ids)) == 120
    client = await sim.client(page_size=20, depth_max=10_000)  # a client that believes in a deeper cap
    _, ids = await collect(map_payload, client, (start, start + 120_000))
    assert set(ids) == {o.external_id for o in sim.world.orders.values()}
    assert any(c["error_code"] == "isv.parameter-invalid" for c in sim.calls)


async def test_fetch_order_detail(sim):
    oid = min(await sim.orders(3))
    page = await (await sim.client()).fetch_order(oid)
    assert page.endpoint == "order.orderDetail" and page.records == 1
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == oid and order["status"] == "PAID"


async def test_a_bad_signature_is_answered_and_permanent(sim):
    await sim.orders(1)
    client = await sim.client(creds_override={"app_secret": "wrong"})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, client)
    assert err.value.code == "isv.signature-invalid" and "code=40003" in str(err.value)
    assert len(sim.calls) == 1


async def test_md5_signing_is_accepted_and_the_body_must_be_the_signed_text(sim):
    created = await sim.orders(7)
    _, ids = await collect(map_payload, await sim.client(sign_method="md5"))
    assert set(ids) == created
    client = await sim.client()
    spec = client.build("order.orderDetail", {"shop_order_id": min(created)})()
    respaced = b'{"shop_order_id": "' + min(created).encode() + b'"}'  # same JSON, other spacing
    async with sim.session.post(spec.url, params=spec.params, data=respaced) as resp:
        assert (await resp.json())["sub_code"] == "isv.signature-invalid"
    spec.params["method"] = "order.searchList"  # the method must be the path
    async with sim.session.post(spec.url, params=spec.params, data=spec.data) as resp:
        assert (await resp.json())["sub_code"] == "isv.method-invalid"


async def test_an_expired_token_is_refreshed_once_and_the_call_repeated(sim):
    created = await sim.orders(5)
    client = await sim.client()
    old = client.access_token
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created and client.access_token != old
    assert [(c["endpoint"], c["ok"], c["error_code"]) for c in sim.calls] == [
        ("order.searchList", False, "isv.access-token-expired"), ("token.refresh", True, None),
        ("order.searchList", True, None)]
    assert sim.world.shops[SHOP]["access_token"] == client.access_token


async def test_without_a_refresh_token_a_self_use_app_asks_for_a_new_token_or_says_what_to_do(sim):
    created = await sim.orders(1)
    client = await sim.client(creds_override={"extra": {}})
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert [(c["endpoint"], c["ok"]) for c in sim.calls] == [
        ("order.searchList", False), ("token.create", True), ("order.searchList", True)]
    other = await sim.client(creds_override={"extra": {"douyin_shop_id": "4463000"}})  # not this app's shop
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    with pytest.raises(PermanentError, match="re-authorise the shop") as err:
        await collect(map_payload, other)
    assert err.value.code == "isv.access-token-expired"


async def test_a_refreshed_token_replaces_the_old_one_after_a_grace(sim):
    await sim.orders(1)
    client = await sim.client()
    old = client.access_token
    await client.refresh()
    assert client.access_token != old
    stale = await sim.client(creds_override={"access_token": old, "extra": {"douyin_shop_id": "4463000"}})
    await collect(map_payload, stale)  # within the grace period the old token still works
    sim.world.shops[SHOP]["previous_valid_until"] = 0
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, stale)
    assert err.value.code == "isv.access-token-expired"
    unknown = await sim.client(creds_override={"access_token": "00000000-0000-0000-0000-000000000000", "extra": {}})
    with pytest.raises(PermanentError) as err:
        await collect(map_payload, unknown)
    assert err.value.code == "isv.access-token-no-existed"


async def test_a_self_use_app_without_a_token_creates_one(sim):
    created = await sim.orders(3)
    client = await sim.client(creds_override={"access_token": ""})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created and client.access_token == sim.world.shops[SHOP]["access_token"]
    assert sim.calls[0]["endpoint"] == "token.create"


async def test_rate_limit_code_60000_is_retried_and_recorded(sim):
    created = await sim.orders()
    await sim.post("/_sim/faults", {"kind": "rate_limit", "count": 1})
    started = time.monotonic()
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    assert time.monotonic() - started >= 0.9  # the shop paused for a second
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == ["60000"] and len(sim.calls) == 4


async def test_the_qps_limit_answers_60000_and_the_client_backs_off(sim):
    created = await sim.orders(30)
    sim.app[STATE]["qps_limit"] = 2
    client = await sim.client(page_size=5)
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert any(c["error_code"] == "60000" for c in sim.calls)


@pytest.mark.parametrize("kind, count, codes", [("malformed", 1, ["malformed"]), ("error_5xx", 2, ["http_502", "20000"]),
                                                ("slow", 1, []), ("duplicate_page", 1, ["duplicate_page"])])
async def test_faults_are_retried(sim, kind, count, codes):
    created = await sim.orders(150)
    client = await sim.client()
    if kind == "duplicate_page":
        await collect(map_payload, client)  # the gateway now has a last answer to replay
        sim.calls.clear()
    await sim.post("/_sim/faults", {"kind": kind, "count": count, "seconds": 0.2})
    _, ids = await collect(map_payload, client)
    assert set(ids) == created
    assert [c["error_code"] for c in sim.calls if not c["ok"]] == codes


async def test_a_window_wider_than_allowed_is_refused_before_calling(sim):
    now = int(time.time() * 1000)
    with pytest.raises(ValueError, match="exceeds"):
        await collect(map_payload, await sim.client(), (now - 2 * 86_400_000, now))
    assert sim.calls == []


async def test_the_gateway_checks_types_timestamps_and_filters(sim):
    created = await sim.orders(4)
    shop = sim.world.shops[SHOP]

    async def call(method, params, stamp=None, text=None):
        text = text if text is not None else param_json(params)
        stamp = str(stamp or int(time.time()))
        query = {"app_key": shop["app_key"], "method": method, "timestamp": stamp, "v": "2",
                 "sign_method": "hmac-sha256", "access_token": shop["access_token"],
                 "sign": sign(shop["app_key"], shop["app_secret"], method, text, stamp)}
        async with sim.session.post(f"{sim.base_url}/{method.replace('.', '/')}", params=query,
                                    data=text.encode()) as resp:
            assert resp.status == 200
            return await resp.json()

    assert (await call("order.searchList", {"page": "zero"}))["sub_code"] == "isv.parameter-format-invalid"
    assert (await call("order.searchList", {"size": 101}))["code"] == 40004
    assert (await call("order.searchList", {}, stamp=int(time.time()) - 3600))["sub_code"] == "isv.timestamp-invalid"
    assert (await call("order.searchList", {"page": "0", "size": "10"}))["data"]["total"] == 4  # strings were usual
    one = await call("order.searchList", {"combine_status": [{"order_status": "2"}], "size": 100})
    assert {o["order_id"] for o in one["data"]["shop_order_list"]} == created
    none = await call("order.searchList", {"combine_status": [{"order_status": "1"}]})
    assert none["data"] == {"page": 0, "size": 10, "total": 0, "shop_order_list": []}
    assert map_payload(orjson.dumps(none), "json", SHOP) == []
    assert (await call("order.noSuchThing", {}))["sub_code"] == "isv.method-invalid"
    missing = await call("order.orderDetail", {"shop_order_id": "6900000000000000000"})
    assert (missing["code"], missing["sub_msg"]) == (50002, "订单不存在")


async def test_batch_decrypt_gives_plaintext_within_its_limits(sim):
    oid = min(await sim.orders(1))
    order = sim.world.orders[oid]
    client = await sim.client()
    detail = orjson.loads((await client.fetch_order(oid)).body)["data"]["shop_order_detail"]
    infos = [{"auth_id": oid, "cipher_text": detail["encrypt_post_receiver"]},
             {"auth_id": oid, "cipher_text": detail["post_addr"]["encrypt_detail"]},
             {"auth_id": oid, "cipher_text": "#forged#x*y#1##"}]
    _, doc = await client.call("order.batchDecrypt", {"cipher_infos": infos})
    got = [(d["decrypt_text"], d["err_no"]) for d in doc["data"]["decrypt_infos"]]
    assert got == [(order.receiver_name, 0), (order.street, 0), ("", 300008)]
    with pytest.raises(PermanentError, match="最多 50"):
        await client.call("order.batchDecrypt", {"cipher_infos": infos * 17})
    sim.app[STATE]["decrypt_quota"] = 4
    with pytest.raises(PermanentError, match="解密额度"):
        await client.call("order.batchDecrypt", {"cipher_infos": infos})
