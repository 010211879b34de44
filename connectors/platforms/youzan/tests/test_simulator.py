"""The simulated Youzan platform: its ids, its answers to bad requests, its signed pushes."""
import re
import time

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors.simkit.defects import DEFECTS
from connectors.simkit.server import WORLD
from streams.anomalies.detector import Detector
from streams.derive import derive_events
from tests.integration.helpers import eventually, serve_app

from .. import api
from ..mapping import map_payload
from ..render import page_body
from ..simulator import create_app
from ..simworld import YouzanWorld, kdt_id
from ..webhooks import authenticate

SHOP = "tonglu-youzan-home"
NOW = 1_764_000_000_000


def test_the_world_gives_youzan_ids_and_now_and_then_a_virtual_number():
    world = YouzanWorld(seed=3)
    orders = world.create_orders(SHOP, 200, 1_704_038_399_000)  # 2023-12-31 23:59:59 in Beijing
    assert all(re.fullmatch(r"E20231231235959\d{9}", o.external_id) for o in orders)
    oids = [line.line_id for o in orders for line in o.lines]
    assert len(set(oids)) == len(oids) and all(oid.isdigit() and int(oid) > 2**53 for oid in oids)
    virtual = [o.receiver_phone for o in orders if "-" in o.receiver_phone]
    assert 20 < len(virtual) < 70 and all(re.fullmatch(r"170\d{8}-\d{4}", p) for p in virtual)
    (twin,) = world.create_orders(SHOP, 1, NOW, defect="duplicate_order")  # a prefixed id counts up too
    assert twin.external_id.startswith("E") and twin.external_id in world.orders


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_raises_its_rule_through_the_youzan_shape(defect):
    world = create_app()[WORLD]
    detector = Detector()
    background = world.create_orders("plain", 40, NOW - 600_000)
    defective = world.create_orders("shop", 3, NOW, defect=defect)
    everything = sorted(world.orders.values(), key=lambda o: o.updated_at, reverse=True)
    mapped = map_payload(page_body(everything, plaintext=True), "json", "x")  # an app allowed to read receivers
    raised: dict = {}
    for order in sorted(mapped, key=lambda o: o["updated_at"]):
        for event in derive_events(None, order, NOW):
            for finding in detector.detect(event, NOW):
                raised.setdefault(order["external_id"], set()).add(finding["rule"])
    assert len(mapped) == len(everything)
    for order in defective:
        assert raised.get(order.external_id) == {defect}, (order.external_id, raised.get(order.external_id))
    assert not {o.external_id for o in background} & {e for e, rules in raised.items() if rules - {"duplicate_order"}}


@pytest.fixture
async def served():
    app = create_app(YouzanWorld(seed=5), push_backoff=0.05)
    runner, url = await serve_app(app)
    async with aiohttp.ClientSession() as session:
        yield app, url, session
    await runner.cleanup()


async def _shop(session, base, shop_id=SHOP) -> dict:
    async with session.post(f"{base}/_sim/orders", json={"shop_id": shop_id, "count": 1}) as resp:
        assert resp.status == 200
    async with session.get(f"{base}/_sim/shops") as resp:
        return next(s for s in (await resp.json())["shops"] if s["shop_id"] == shop_id)


async def _token(session, base, shop) -> str:
    async with session.post(f"{base}{api.TOKEN_PATH}", json={
            "client_id": shop["app_key"], "client_secret": shop["app_secret"], "authorize_type": "silent",
            "grant_id": shop["kdt_id"], "refresh": True}) as resp:
        doc = await resp.json()
    assert doc["success"] and doc["data"]["expires"] > time.time() * 1000 + 6 * 86_400_000  # 7 days
    return doc["data"]["access_token"]


async def _api(session, base, name, body, token=None, version=None):
    url = f"{base}/api/{name}/{version or api.VERSIONS[name]}"
    async with session.post(url, params={"access_token": token} if token else None, json=body) as resp:
        return resp.status, await resp.json()


async def test_the_gateway_answers_as_youzan_does(served):
    _, base, session = served
    shop = await _shop(session, base)
    assert shop["kdt_id"] == kdt_id(SHOP) and shop["app_key"] == SHOP
    token = await _token(session, base, shop)
    status, doc = await _api(session, base, api.SOLD_GET, {}, None)
    assert (status, doc["gw_err_resp"]["err_code"]) == (200, api.GW_TOKEN_INVALID)
    status, doc = await _api(session, base, api.SOLD_GET, {}, token, version="4.0.0")
    assert (status, doc["gw_err_resp"]["err_code"]) == (404, api.GW_API_NOT_FOUND)
    cases = [
        ({"page_size": 101}, api.BAD_PARAMETER),
        ({"page_no": 31, "page_size": 100}, api.PAGE_TOO_DEEP),
        ({"start_update": "2024-01-01 00:00:00", "end_update": "2024-06-01 00:00:00"}, api.WINDOW_TOO_WIDE),
        ({"start_update": "2024/01/01"}, api.BAD_PARAMETER),
    ]
    for body, code in cases:
        status, doc = await _api(session, base, api.SOLD_GET, body, token)
        assert (status, doc["success"], doc["code"], doc["data"]) == (200, False, code, None), body
    status, doc = await _api(session, base, api.TRADE_GET, {"tid": "E404"}, token)
    assert (doc["code"], doc["message"]) == (api.ORDER_NOT_FOUND, "订单不存在")
    status, doc = await _api(session, base, api.SOLD_GET, {"status": "WAIT_SELLER_SEND_GOODS"}, token)
    assert doc["success"] and doc["data"]["total_results"] == 1
    info = doc["data"]["full_order_info_list"][0]["full_order_info"]
    assert info["address_info"]["receiver_name"].startswith("$") and info["address_info"]["receiver_tel"].endswith("==$")
    async with session.post(f"{base}{api.TOKEN_PATH}", json={"client_id": SHOP, "client_secret": "nope",
                                                             "authorize_type": "silent"}) as resp:
        assert (await resp.json())["code"] == api.BAD_CLIENT


class Receiver:
    """A real HTTP endpoint standing in for Tonglu's: records what arrives, answers as told."""

    def __init__(self, answers=()):
        self.answers, self.got = list(answers), []

    async def handle(self, request):
        self.got.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response({"code": 0, "msg": "success"}, status=status)


async def _receiver(receiver):
    app = web.Application()
    app.router.add_post("/webhooks/youzan", receiver.handle)
    runner, url = await serve_app(app)
    return runner, url + "/webhooks/youzan"


async def test_pushes_are_signed_resent_until_taken_and_forgeable_on_request(served):
    _, base, session = served
    shop = await _shop(session, base)
    receiver = Receiver(answers=[500])  # the first delivery fails: Youzan sends it again
    runner, address = await _receiver(receiver)
    try:
        async with session.post(f"{base}/_sim/webhooks", json={"shop_id": SHOP, "address": address}) as resp:
            assert resp.status == 200
        async with session.post(f"{base}/_sim/orders", json={"shop_id": SHOP, "count": 1}) as resp:
            (tid,) = (await resp.json())["external_ids"]
        await eventually(lambda: len(receiver.got) >= 3)  # create + pay, one of them twice
        secrets = {SHOP: shop["app_secret"]}.get
        kinds = []
        for headers, body in receiver.got:
            push = authenticate(headers, body, secrets)
            assert push is not None and push.shop_id == SHOP and push.kind == "order"
            doc = orjson.loads(body)
            kinds.append((doc["type"], doc["sendCount"]))
            (order,) = map_payload(body, "json", SHOP)
            assert order["external_id"] == tid and order["status"] == "PAID"
        assert sorted(kinds) == [("trade_TradeBuyerPay", 0), ("trade_TradeCreate", 0), ("trade_TradeCreate", 1)] or \
            sorted(kinds) == [("trade_TradeBuyerPay", 0), ("trade_TradeBuyerPay", 1), ("trade_TradeCreate", 0)]
        receiver.got.clear()
        async with session.post(f"{base}/_sim/webhooks/faults", json={"forged_signature": 2}) as resp:
            assert resp.status == 200
        async with session.post(f"{base}/_sim/orders", json={"shop_id": SHOP, "count": 1}) as resp:
            assert resp.status == 200
        await eventually(lambda: len(receiver.got) >= 2)
        assert all(authenticate(h, b, secrets) is None for h, b in receiver.got)
        async with session.get(f"{base}/_sim/webhooks") as resp:
            log = (await resp.json())["deliveries"]
        assert {entry["forged"] for entry in log[-2:]} == {True} and all(e["acknowledged"] for e in log if e["status"] == 200)
    finally:
        await runner.cleanup()
