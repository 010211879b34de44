"""Xiaohongshu ship-back: how `order.orderDeliver` refusals are read, and what the shared conformance suite
does not ask (an unknown express company, a refused waybill, an expired token, a busy gateway, a push)."""
import time

import pytest

from connectors.runtime.base import ShopCredentials
from connectors.runtime.shipping import ShipRefused, ShipRequest
from connectors.simkit.world import World
from tests.platform_helpers import SimHarness, serve_sim

from .. import errors
from ..render import xhs_order_id
from ..shipping import Shipper, refusal_kind, sku_ids
from ..simulator import create_app

SHOP = "ship-shop"


class Sim(SimHarness):
    platform, default_shop = "xiaohongshu", SHOP

    async def shipper(self, **creds) -> Shipper:
        shop = await self.shop()
        fields = {"app_key": shop["app_key"], "app_secret": shop["app_secret"], "access_token": shop["access_token"],
                  "extra": {"refresh_token": shop["refresh_token"]}, **creds}
        return Shipper(ShopCredentials("xiaohongshu", SHOP, self.base_url, **fields), self.caller())


@pytest.fixture
async def sim():
    async with serve_sim(Sim, create_app(World(seed=3, id_factory=xhs_order_id))) as sim:
        await sim.orders(1)
        yield sim


def _order(sim):
    return next(iter(sim.world.orders.values()))


@pytest.mark.parametrize("code, words, kind", [
    (errors.DELIVER_CANCELLED, "订单已取消，不能发货", "cancelled"),
    (errors.DELIVER_DONE, "订单已发货，不能重复发货", "already_shipped"),
    (errors.ORDER_NOT_FOUND, "订单不存在", "not_found"),
    (999, "商品已退款，不能发货", "refunded"),  # another number, the same words
    (None, "skuId不属于该订单", "unknown_lines"),
    (errors.INVALID_SIGN, "签名错误", None),  # not a refusal: credentials
    (errors.PARAM_ERROR, "参数错误：orderId 不能为空", None),
])
def test_refusals_are_read_by_code_or_words(code, words, kind):
    assert refusal_kind(code, words) == kind


def test_a_sku_listed_twice_is_shipped_once():
    assert sku_ids(["a1", "a1#", "b2"]) == ["a1", "b2"]


async def test_an_unknown_company_and_a_bad_waybill_are_refused_in_the_platforms_words(sim):
    shipper, order = await sim.shipper(), _order(sim)
    with pytest.raises(ShipRefused) as unknown:
        await shipper.ship(ShipRequest(order.external_id, "ZTO", "中通快递", "TL0000000001"))
    assert unknown.value.kind == "unknown_carrier" and "物流公司编码不存在" in str(unknown.value)
    with pytest.raises(ShipRefused) as waybill:
        await shipper.ship(ShipRequest(order.external_id, "zhongtong", "中通快递", "TL-1"))
    assert waybill.value.kind == "rejected" and "运单号" in str(waybill.value)
    assert sim.world.uploads == []


async def test_an_expired_token_is_refreshed_and_a_busy_gateway_retried(sim):
    sim.world.shops[SHOP]["access_token_expires_at"] = int(time.time() * 1000) - 1
    shipper, order = await sim.shipper(), _order(sim)
    await sim.fault("error_5xx", 2)
    assert await shipper.ship(ShipRequest(order.external_id, "zhongtong", "中通快递", "TL0000000001")) == "accepted"
    assert order.status == "SHIPPED" and {line.tracking_no for line in order.lines} == {"TL0000000001"}
    assert len(sim.world.uploads) == 1
    assert str(errors.TOKEN_EXPIRED) in sim.failed()
    assert [c["endpoint"] for c in sim.calls if c["ok"]][-1] == "order.orderDeliver"
