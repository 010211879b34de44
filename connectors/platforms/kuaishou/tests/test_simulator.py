"""The Kuaishou client against the simulated open platform over real HTTP on loopback: paging, windows,
signatures, token refresh and every fault, each answered as the platform does and handled."""
import time

import orjson
import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.simkit.server import WORLD
from tests.platform_helpers import SimHarness, collect, recent_window, serve_sim

from ..client import KuaishouClient
from ..mapping import map_payload
from ..render import decrypt
from ..signing import sign
from ..simulator import STATE, create_app
from ..world import KuaishouWorld

SHOP = "tonglu-kuaishou-home"
HOUR, DAY = 3_600_000, 86_400_000


class Sim(SimHarness):
    platform, default_shop = "kuaishou", SHOP

    async def client(self, shop_id=SHOP, extra=None, secret=None, **kwargs) -> KuaishouClient:
        shop = await self.shop(shop_id)
        creds = ShopCredentials("kuaishou", shop_id, self.base_url, app_key=shop["app_key"],
                                app_secret=secret or shop["app_secret"], access_token=shop["access_token"],
                                extra=extra if extra is not None else {
                                    "refresh_token": shop["refresh_token"],
                                    "oauth_app_secret": shop["oauth_app_secret"]})
        return KuaishouClient(creds, self.caller(shop_id), **kwargs)

    async def raw_get(self, api: str, business: dict, shop_id=SHOP, **override) -> dict:
        """One hand-built request (to see the platform's own answers)."""
        shop = await self.shop(shop_id)
        params = {"appkey": shop["app_key"], "access_token": shop["access_token"], "method": api, "version": "1",
                  "signMethod": "MD5", "timestamp": str(int(time.time() * 1000)),
                  "param": orjson.dumps(business).decode()}
        params["sign"] = sign(params, shop["app_secret"])
        params.update(override)
        async with self.session.get(f"{self.base_url}/{api.replace('.', '/')}", params=params) as resp:
            assert resp.status == 200
            return await resp.json()


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(KuaishouWorld(seed=99))) as sim:
        yield sim


async def test_cursor_pages_read_every_order_once(sim):
    created = await sim.orders()
    await sim.orders(5, shop_id="other-shop")
    pages, ids = await collect(map_payload, await sim.client())
    assert sorted(ids) == sorted(created)
    assert [p.records for p in pages] == [100, 100, 50]
    assert pages[0].page == "first" and all(p.page not in ("first", "nomore") for p in pages[1:])
    assert all(p.endpoint == "open.order.cursor.list" and p.content_type == "json" and p.request_id for p in pages)
    assert orjson.loads(pages[-1].body)["data"]["cursor"] == "nomore"
    assert all(c["ok"] for c in sim.calls) and len(sim.calls) == 3


async def test_multi_sku_carts_are_orders_of_one_item_paid_together(sim):
    created = await sim.orders(60)
    _, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created
    sim_orders = [sim.app[WORLD].orders[i] for i in created]
    assert all(len(o.lines) == 1 for o in sim_orders)
    paid_together = {}
    for order in sim_orders:
        paid_together.setdefault((order.buyer_id, order.paid_at), []).append(order)
    assert any(len(group) > 1 for group in paid_together.values()), "no cart of several SKUs among 60 orders"
    assert all(int(o.external_id) > 2**53 for o in sim_orders)


async def test_orders_changing_during_the_scan_are_not_lost(sim):
    created = await sim.orders(240)
    client = await sim.client(page_size=40)
    seen, first = set(), True
    async for page in client.fetch_window(*recent_window()):
        seen |= {o["external_id"] for o in map_payload(page.body, "json", SHOP)}
        if first:  # between pages, orders not read yet and orders already read change (update time moves on)
            moved = await sim.post("/_sim/advance", {"shop_id": SHOP, "steps": 120})
            assert moved["transitions"] > 0
            first = False
    assert seen == created


async def test_a_window_wider_than_the_limit_is_split_by_the_client(sim):
    created = await sim.orders(30)
    client = await sim.client()
    _pages, ids = await collect(map_payload, client, recent_window(20 * DAY))
    assert set(ids) == created
    assert all(c["ok"] for c in sim.calls) and len(sim.calls) == 3  # 7 + 7 + 6 days


async def test_a_window_the_platform_refuses_as_too_wide_is_halved(sim):
    created = await sim.orders(30)
    client = await sim.client(max_window_ms=30 * DAY)  # a client that believes in a wider limit
    _pages, ids = await collect(map_payload, client, recent_window(20 * DAY))
    assert set(ids) == created
    refused = [c for c in sim.calls if not c["ok"]]
    assert refused and {c["error_code"] for c in refused} == {"2001"}
    answer = await sim.raw_get("open.order.cursor.list", {"pageSize": 10, "queryType": 2, "beginTime": 1,
                                                          "endTime": 1 + 8 * DAY, "cursor": ""})
    assert (answer["result"], answer["subCode"], answer["success"]) == (2001, "2001", False)
    assert "beginTime" in answer["error_msg"]


async def test_bad_signature_and_stale_timestamp_are_refused_in_the_platforms_words(sim):
    await sim.orders(3)
    business = {"pageSize": 10, "queryType": 2, "beginTime": 1, "endTime": 2, "cursor": ""}
    bad = await sim.raw_get("open.order.cursor.list", business, sign="0" * 32)
    assert bad["result"] == 24 and bad["sub_code"] == "sign.invalid" and "data" not in bad
    stale = await sim.raw_get("open.order.cursor.list", business, timestamp=str(int(time.time() * 1000) - HOUR))
    assert stale["result"] == 25
    wrong_path = await sim.raw_get("open.order.cursor.list", business, method="open.order.detail")
    assert wrong_path["result"] == 22  # the path names the method: /open/order/cursor/list is not the detail
    with pytest.raises(PermanentError, match="result=24"):
        await collect(map_payload, await sim.client(secret="ks_demo_appsecret_77"))  # the OAuth secret does not sign


async def test_hmac_sha256_signing_works_end_to_end(sim):
    created = await sim.orders(12)
    _, ids = await collect(map_payload, await sim.client(sign_method="HMAC_SHA256"))
    assert set(ids) == created


async def test_an_expired_token_is_refreshed_and_the_call_repeated(sim):
    created = await sim.orders(20)
    client = await sim.client()
    old = client.access_token
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    answer = await sim.raw_get("open.order.detail", {"oid": int(next(iter(created)))})
    assert (answer["result"], answer["sub_code"]) == (28, "access_token.expired")
    _, ids = await collect(map_payload, client)
    assert set(ids) == created and client.access_token != old
    assert [c["endpoint"] for c in sim.calls][:3] == ["open.order.cursor.list", "oauth2.refresh_token",
                                                      "open.order.cursor.list"]
    assert not sim.calls[0]["ok"] and sim.calls[0]["error_code"] == "28"
    assert (await sim.shop())["access_token"] == client.access_token  # the old token no longer works


async def test_an_expired_token_without_a_refresh_token_is_a_clear_error(sim):
    await sim.orders(2)
    client = await sim.client(extra={})
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    with pytest.raises(PermanentError, match="authorise it again"):
        await collect(map_payload, client)


@pytest.mark.parametrize("kind", ["rate_limit", "error_5xx", "malformed", "duplicate_page", "slow"])
async def test_every_fault_is_answered_and_the_client_recovers(sim, kind):
    created = await sim.orders(150)
    await sim.post("/_sim/faults", {"kind": kind, "count": 2, "seconds": 0.2})
    _pages, ids = await collect(map_payload, await sim.client())
    assert sorted(ids) == sorted(created)  # nothing lost, nothing read twice
    failed = [c for c in sim.calls if not c["ok"]]
    if kind == "slow":
        assert not failed
    elif kind == "duplicate_page":  # the first call has nothing to replay yet
        assert [c["error_code"] for c in failed] == ["duplicate_page"]
    else:
        assert len(failed) == 2, failed
        assert {c["error_code"] for c in failed} <= {"803", "http_502", "http_503", "malformed"}


async def test_the_platforms_rate_limit_answer(sim):
    await sim.orders(2)
    sim.app[STATE]["qps_limit"] = 1
    business = {"pageSize": 10, "queryType": 2, "beginTime": 1, "endTime": 2, "cursor": ""}
    answers = [await sim.raw_get("open.order.cursor.list", business) for _ in range(3)]
    limited = [a for a in answers if a["result"] != 1]
    assert limited and limited[0]["result"] == 803 and limited[0]["sub_code"] == "flow.limit"


async def test_summaries_are_replaced_by_detail_pages(sim):
    created = await sim.orders(15)
    await sim.post("/_sim/settings", {"summaries": True})
    pages, ids = await collect(map_payload, await sim.client())
    assert set(ids) == created and len(ids) == 15
    assert {p.endpoint for p in pages} == {"open.order.detail"}
    assert all(p.page in created and p.records == 1 for p in pages)


async def test_the_receivers_are_ciphertext_and_the_decrypt_stub_opens_them(sim):
    (oid,) = await sim.orders(1)
    detail = await sim.raw_get("open.order.detail", {"oid": int(oid)})
    address = detail["data"]["orderAddress"]
    order = sim.app[WORLD].orders[oid]
    assert address["consignee"] == address["mobile"] == address["address"] == ""
    assert address["encryptedMobile"].startswith("#") and order.receiver_phone not in str(address)
    assert address["desensitiseMobile"][3:7] == "****"
    opened = await sim.raw_get("open.security.order.decrypt.batch", {"batchDecryptList": [
        {"bizId": int(oid), "encryptedData": address["encryptedMobile"]}]})
    assert opened["data"]["batchDecryptList"][0]["decryptedData"] == order.receiver_phone
    assert decrypt(address["encryptedConsignee"]) == order.receiver_name
    other = await sim.orders(1, shop_id="other-shop")
    refused = await sim.raw_get("open.security.order.decrypt.batch", {"batchDecryptList": [
        {"bizId": int(next(iter(other))), "encryptedData": address["encryptedMobile"]}]})
    assert refused["result"] == 2001  # another shop's order


async def test_a_single_order_by_detail(sim):
    created = await sim.orders(3)
    oid = min(created)
    page = await (await sim.client()).fetch_order(oid)
    assert page.endpoint == "open.order.detail" and page.records == 1
    (order,) = map_payload(page.body, "json", SHOP)
    assert order["external_id"] == oid
