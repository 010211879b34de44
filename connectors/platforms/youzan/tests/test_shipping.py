"""Youzan ship-back: how `youzan.logistics.online.confirm` refusals are read (a 3.x API, legacy envelope), and
what the shared conformance suite does not ask (an unknown express id, a refused waybill, an expired token,
a busy gateway, the push)."""
import asyncio

import pytest
from aiohttp import web

from connectors.runtime.base import Response, ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.runtime.shipping import ShipRefused, ShipRequest
from tests.integration.helpers import serve_app
from tests.platform_helpers import SimHarness, serve_sim

from .. import api
from ..shipping import Shipper, decode, refusal_kind
from ..simulator import HUB, create_app
from ..simworld import YouzanWorld

SHOP = "ship-shop"


class Sim(SimHarness):
    platform, default_shop = "youzan", SHOP

    async def shipper(self) -> Shipper:
        shop = await self.shop()
        creds = ShopCredentials("youzan", SHOP, self.base_url, app_key=shop["app_key"], app_secret=shop["app_secret"],
                                access_token="", extra={"kdt_id": shop["kdt_id"]})
        return Shipper(creds, self.caller())


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(YouzanWorld(seed=3), qps_limit=None)) as sim:
        await sim.orders(1)
        yield sim


def _order(sim):
    return next(iter(sim.world.orders.values()))


@pytest.mark.parametrize("code, words, kind", [
    (api.SHIP_CLOSED, "订单已关闭，不能发货", "cancelled"),
    (api.SHIP_DONE, "商品已发货，请勿重复发货", "already_shipped"),
    (api.ORDER_NOT_FOUND, "订单不存在", "not_found"),
    (999, "商品已退款，不能发货", "refunded"),  # another number, the same words
    ("x", "订单未付款，不能发货", "unpaid"),
    (api.BAD_PARAMETER, "参数 tid 不能为空", None),  # a malformed call is no refusal
])
def test_refusals_are_read_by_code_or_words(code, words, kind):
    assert refusal_kind(code, words) == kind


def test_the_legacy_envelope_is_read_and_gateway_errors_as_every_api():
    assert decode(Response(200, {}, b'{"response":{"is_success":true}}'))
    with pytest.raises(ShipRefused) as refused:
        decode(Response(200, {}, '{"error_response":{"code":101301001,"msg":"订单已关闭，不能发货"}}'.encode()))
    assert refused.value.kind == "cancelled" and "订单已关闭" in str(refused.value)
    with pytest.raises(PermanentError) as odd:
        decode(Response(200, {}, '{"error_response":{"code":101300203,"msg":"参数 tid 不能为空"}}'.encode()))
    assert not isinstance(odd.value, ShipRefused)
    with pytest.raises(ShipRefused):
        decode(Response(200, {}, b'{"response":{"is_success":false}}'))


async def test_an_unknown_express_id_and_a_bad_waybill_are_refused_in_the_platforms_words(sim):
    shipper, order = await sim.shipper(), _order(sim)
    with pytest.raises(ShipRefused) as unknown:
        await shipper.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "TL0000000001"))
    assert unknown.value.kind == "unknown_carrier" and "快递公司不存在" in str(unknown.value)
    with pytest.raises(ShipRefused) as waybill:
        await shipper.ship(ShipRequest(order.external_id, "3", "中通快递", "TL-1"))
    assert waybill.value.kind == "rejected" and "运单号" in str(waybill.value)
    assert sim.world.uploads == []


async def test_an_expired_token_is_renewed_a_busy_gateway_retried_and_the_shipment_pushed(sim):
    shipper, order = await sim.shipper(), _order(sim)
    async def acknowledge(request):
        return web.json_response({"code": 0, "msg": "success"})

    receiver = web.Application()
    receiver.router.add_post("/push", acknowledge)
    runner, url = await serve_app(receiver)
    await sim.post("/_sim/webhooks", {"shop_id": SHOP, "address": url + "/push"})
    assert await shipper.ship(ShipRequest(order.external_id, "3", "中通快递", "TL0000000001",
                                          (order.lines[0].line_id,))) == "accepted"
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    await sim.fault("error_5xx", 2)
    assert await shipper.ship(ShipRequest(order.external_id, "3", "中通快递", "TL0000000002")) == "accepted"
    assert order.status == "SHIPPED" and {line.tracking_no for line in order.lines} >= {"TL0000000002"}
    assert [u["tracking_no"] for u in sim.world.uploads] == ["TL0000000001", "TL0000000002"]
    assert str(api.GW_TOKEN_EXPIRED) in sim.failed() and "502" in " ".join(sim.failed())
    wanted = ["trade_TradePartlySellerShip", "trade_TradeSellerShip"]
    for _ in range(200):
        if [d["type"] for d in sim.app[HUB].deliveries if d["acked"]] == wanted:
            break
        await asyncio.sleep(0.02)
    await runner.cleanup()
    assert [d["type"] for d in sim.app[HUB].deliveries if d["acked"]] == wanted
