"""`taobao.logistics.offline.send` in the simulated TOP gateway, signed calls over HTTP, and how the folder's
Shipper reads its answers (the shared behaviour is in tests/conformance/test_shipping.py)."""
import time

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.errors import PermanentError, TransientError
from connectors.runtime.shipping import ShipRefused, ShipRequest
from connectors.simkit.server import FAULTS, WORLD, ensure_shop
from connectors.simkit.world import World
from schemas.canonical import ms_to_beijing

from ..shipping import ENDPOINT, Shipper
from ..signing import sign
from ..simulator import create_app

SHOP = "tonglu-home"


@pytest.fixture
async def top():
    app = create_app(World(seed=21))
    shop = ensure_shop(app, SHOP)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    async with aiohttp.ClientSession() as session:
        creds = ShopCredentials("taobao", SHOP, url, app_key=shop["app_key"], app_secret=shop["app_secret"],
                                access_token=shop["access_token"])
        yield app, creds, session
    await runner.cleanup()


async def _send(top, secret=None, **business) -> dict:
    """A signed offline.send with these business params; the decoded answer."""
    _app, creds, session = top
    params = {"method": ENDPOINT, "app_key": creds.app_key, "session": creds.access_token, "format": "json",
              "timestamp": ms_to_beijing(int(time.time() * 1000)), "v": "2.0", "sign_method": "md5", **business}
    params["sign"] = sign(params, secret or creds.app_secret)
    async with session.post(f"{creds.base_url}/router/rest", data=params) as resp:
        assert resp.status == 200
        return orjson.loads(await resp.read())


def _paid(app, lines=2):
    while True:
        (order,) = app[WORLD].create_orders(SHOP, 1, int(time.time() * 1000))
        if len(order.lines) >= lines:
            return order


async def test_the_gateway_ships_a_trade_or_its_sub_orders_and_answers_like_top(top):
    app = top[0]
    order = _paid(app)
    first = order.lines[0].line_id
    answer = await _send(top, tid=order.external_id, out_sid="ZT7700000001", company_code="ZTO", is_split="1",
                         sub_tid=first)
    assert answer["logistics_offline_send_response"]["shipping"] == {"is_success": True}
    assert answer["logistics_offline_send_response"]["request_id"]
    assert order.status == "PARTIALLY_SHIPPED" and order.lines[0].carrier_name == "中通快递"
    answer = await _send(top, tid=order.external_id, out_sid="SF1402938475610", company_code="SF")
    assert "shipping" in answer["logistics_offline_send_response"] and order.status == "SHIPPED"


@pytest.mark.parametrize("business,code,sub_code", [
    ({"out_sid": "ZT7700000001", "company_code": "ZTO"}, 40, "isv.missing-parameter"),  # no tid
    ({"tid": "1", "company_code": "ZTO"}, 40, "isv.missing-parameter"),
    ({"tid": "1", "out_sid": "ZT7700000001"}, 40, "isv.missing-parameter"),
    ({"tid": "abc", "out_sid": "ZT7700000001", "company_code": "ZTO"}, 41, "isv.invalid-parameter"),
    ({"tid": "1", "out_sid": "ZT7700000001", "company_code": "NOPE"}, 41, "isv.invalid-parameter:company_code"),
    ({"tid": "1", "out_sid": "ZT7700000001", "company_code": "ZTO"}, 15, "isv.logistics-offline-service-error:B01"),
])
async def test_required_fields_and_unknown_things_are_refused(top, business, code, sub_code):
    err = (await _send(top, **business))["error_response"]
    assert (err["code"], err["sub_code"]) == (code, sub_code)


async def test_refusals_of_a_real_trade(top):
    app = top[0]
    order = _paid(app)
    bad_waybill = await _send(top, tid=order.external_id, out_sid="ZT 77", company_code="ZTO")
    assert bad_waybill["error_response"]["sub_code"].endswith(":B60")
    split_without_lines = await _send(top, tid=order.external_id, out_sid="ZT7700000002", company_code="ZTO",
                                      is_split="1")
    assert split_without_lines["error_response"]["sub_code"].endswith(":P38")
    forged = await _send(top, secret="forged", tid=order.external_id, out_sid="ZT7700000002", company_code="ZTO")
    assert forged["error_response"]["code"] == 25
    app[WORLD].perform(order, "cancel", int(time.time() * 1000))
    closed = await _send(top, tid=order.external_id, out_sid="ZT7700000002", company_code="ZTO")
    assert closed["error_response"]["sub_code"] == "isv.logistics-offline-service-error:B04"
    assert app[WORLD].uploads == []


async def test_the_shipper_reads_each_answer_as_what_it_means(top):
    app, creds, session = top
    calls = []
    shipper = Shipper(creds, HttpCaller(session, "taobao", SHOP, on_call=calls.append, max_attempts=1))
    order = _paid(app)
    with pytest.raises(ShipRefused) as unknown:
        await shipper.ship(ShipRequest(order.external_id, "NOPE", "?", "ZT7700000003"))
    assert unknown.value.kind == "unknown_carrier"
    with pytest.raises(ShipRefused) as waybill:
        await shipper.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "ZT-77"))
    assert waybill.value.kind == "rejected" and "B60" in str(waybill.value)
    app[FAULTS].add("error_5xx", 1)
    with pytest.raises(TransientError):
        await shipper.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "ZT7700000003"))
    bad = Shipper(ShopCredentials("taobao", SHOP, creds.base_url, app_key=creds.app_key, app_secret=creds.app_secret,
                                  access_token="6100nope"), HttpCaller(session, "taobao", SHOP, max_attempts=1))
    with pytest.raises(PermanentError) as session_error:
        await bad.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "ZT7700000003"))
    assert "27" in str(session_error.value) and not isinstance(session_error.value, ShipRefused)
    assert await shipper.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "ZT7700000003")) == "accepted"
    assert {c["endpoint"] for c in calls} == {ENDPOINT}
