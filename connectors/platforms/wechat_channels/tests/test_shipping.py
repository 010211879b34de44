"""WeChat Channels ship-back: which products `order/delivery/send` is given, how its refusals are read, and
what the shared conformance suite does not ask (an unknown delivery_id, a refused waybill, an expired
token, a busy API, the push)."""
import asyncio

import pytest
from aiohttp import web

from connectors.runtime.base import ShopCredentials
from connectors.runtime.shipping import ShipRefused, ShipRequest
from connectors.simkit.server import ensure_shop
from connectors.simkit.world import World
from tests.integration.helpers import serve_app
from tests.platform_helpers import SimHarness, serve_sim

from ..render import order_dict
from ..shipping import Shipper, products_to_send
from ..simulator import HUB, create_app

SHOP = "ship-shop"


class Sim(SimHarness):
    platform, default_shop = "wechat_channels", SHOP

    async def shipper(self) -> Shipper:
        shop = await self.shop()
        creds = ShopCredentials("wechat_channels", SHOP, self.base_url, app_key=shop["app_key"],
                                app_secret=shop["app_secret"], access_token=shop["access_token"])
        return Shipper(creds, self.caller())


@pytest.fixture
async def sim():
    app = create_app(World(seed=5))
    ensure_shop(app, SHOP)
    async with serve_sim(Sim, app) as sim:
        await sim.orders(1)
        yield sim


def _order(sim):
    return next(iter(sim.world.orders.values()))


def _request(order, lines=(), carrier="ZTO", waybill="TL0000000001"):
    return ShipRequest(order.external_id, carrier, "中通快递", waybill, tuple(lines))


def test_the_products_sent_are_the_ones_asked_for_or_every_one_neither_sent_nor_refunded():
    order = next(o for o in World(seed=2).create_orders("s", 20, 1_700_000_000_000) if len(o.lines) >= 3)
    first, second, third = order.lines[:3]
    first.tracking_no, first.carrier, first.shipped_at = "TL1", "ZTO", 1_700_000_001_000
    second.refund_status = "REFUNDED"
    doc = order_dict(order)
    sent = products_to_send(doc, _request(order))
    assert [p["sku_id"] for p in sent] == [line.line_id for line in order.lines[2:]]
    assert sent[0]["product_cnt"] == third.quantity and sent[0]["product_id"]
    assert [p["sku_id"] for p in products_to_send(doc, _request(order, [third.line_id + "#3"]))] == [third.line_id]
    with pytest.raises(ShipRefused) as unknown:
        products_to_send(doc, _request(order, ["1"]))
    assert unknown.value.kind == "unknown_lines"
    with pytest.raises(ShipRefused) as done:
        products_to_send(doc, _request(order, [first.line_id]))
    assert done.value.kind == "already_shipped"


async def test_an_unknown_delivery_id_and_a_bad_waybill_are_refused_in_the_platforms_words(sim):
    shipper, order = await sim.shipper(), _order(sim)
    with pytest.raises(ShipRefused) as unknown:
        await shipper.ship(_request(order, carrier="zhongtong"))
    assert unknown.value.kind == "unknown_carrier" and "invalid delivery_id" in str(unknown.value)
    with pytest.raises(ShipRefused) as waybill:
        await shipper.ship(_request(order, waybill="TL-1"))
    assert waybill.value.kind == "rejected" and "invalid waybill_id" in str(waybill.value)
    assert sim.world.uploads == []


async def test_an_expired_token_is_renewed_a_busy_api_retried_and_the_shipment_pushed(sim):
    async def acknowledge(request):
        return web.Response(text="success")

    receiver = web.Application()
    receiver.router.add_post("/push", acknowledge)
    runner, url = await serve_app(receiver)
    await sim.post("/_sim/webhooks", {"shop_id": SHOP, "address": url + "/push"})
    shipper, order = await sim.shipper(), _order(sim)
    await sim.post("/_sim/tokens/expire", {"shop_id": SHOP})
    await sim.fault("error_5xx", 2)
    assert await shipper.ship(_request(order)) == "accepted"
    assert order.status == "SHIPPED" and {line.tracking_no for line in order.lines} == {"TL0000000001"}
    assert [u["tracking_no"] for u in sim.world.uploads] == ["TL0000000001"]
    assert "42001" in sim.failed() and "502" in " ".join(sim.failed())
    for _ in range(200):
        if [d["event"] for d in sim.app[HUB].deliveries if d["acked"]] == ["channels_ec_order_deliver"]:
            break
        await asyncio.sleep(0.02)
    await runner.cleanup()
    assert [d["event"] for d in sim.app[HUB].deliveries if d["acked"]] == ["channels_ec_order_deliver"]
