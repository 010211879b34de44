"""Fulfillment orders and `POST /fulfillments.json` in the simulator over HTTP, the webhook a fulfilment
sends, and the folder's Shipper on top (the shared behaviour is in tests/conformance/test_shipping.py)."""
import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.shipping import ShipRequest
from connectors.simkit.server import WORLD, ensure_shop

from ..mapping import map_payload
from ..shipping import Shipper, fulfillment_request
from ..simulator import create_app

SHOP = "ship-us"


@pytest.fixture
async def shop():
    app = create_app(webhook_backoff=0.05)
    token = ensure_shop(app, SHOP)["access_token"]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    async with aiohttp.ClientSession(headers={"X-Shopify-Access-Token": token}) as session:
        yield app, base, session
    await runner.cleanup()


def _paid(app, lines=2):
    while True:
        (order,) = app[WORLD].create_orders(SHOP, 1, int(time.time() * 1000))
        if len(order.lines) >= lines:
            return order


async def _call(session, method, url, body=None):
    async with session.request(method, url, json=body) as resp:
        return resp.status, await resp.json()


async def test_fulfillment_orders_mirror_the_lines_and_a_fulfillment_closes_them(shop):
    app, base, session = shop
    order = _paid(app)
    api = f"{base}/admin/api/2024-10"
    status, body = await _call(session, "GET", f"{api}/orders/{order.external_id}/fulfillment_orders.json")
    (fo,) = body["fulfillment_orders"]
    assert status == 200 and fo["status"] == "open" and "create_fulfillment" in fo["supported_actions"]
    assert [i["line_item_id"] for i in fo["line_items"]] == [int(line.line_id) for line in order.lines]
    first = fo["line_items"][0]
    status, body = await _call(session, "POST", f"{api}/fulfillments.json", {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": [
            {"id": first["id"], "quantity": first["quantity"]}]}],
        "tracking_info": {"number": "1Z999AA10123456784", "company": "UPS"}, "notify_customer": True}})
    assert status == 201 and body["fulfillment"]["status"] == "success"
    assert body["fulfillment"]["tracking_number"] == "1Z999AA10123456784"
    assert [li["id"] for li in body["fulfillment"]["line_items"]] == [first["line_item_id"]]
    _, body = await _call(session, "GET", f"{api}/orders/{order.external_id}/fulfillment_orders.json")
    assert body["fulfillment_orders"][0]["status"] == "in_progress"
    status, _ = await _call(session, "POST", f"{api}/fulfillments.json", {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"]}],
        "tracking_info": {"number": "1Z999AA10123456785", "company": "UPS"}}})
    assert status == 201 and order.status == "SHIPPED"
    status, body = await _call(session, "POST", f"{api}/fulfillments.json", {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"]}]}})
    assert status == 422 and body["errors"] == [f"Fulfillment order {fo['id']} has an unfulfillable status= closed."]


@pytest.mark.parametrize("body,status", [
    ({}, 400),
    ({"fulfillment": {}}, 400),
    ({"fulfillment": {"line_items_by_fulfillment_order": []}}, 400),
    ({"fulfillment": {"line_items_by_fulfillment_order": [{"fulfillment_order_id": 42}]}}, 404),
])
async def test_malformed_and_unknown_fulfillments_are_refused(shop, body, status):
    app, base, session = shop
    assert (await _call(session, "POST", f"{base}/admin/api/2024-10/fulfillments.json", body))[0] == status
    assert app[WORLD].uploads == []


async def test_a_line_quantity_other_than_what_is_left_is_refused(shop):
    app, base, session = shop
    order = _paid(app)
    (fo,) = (await _call(session, "GET", f"{base}/admin/api/2024-10/orders/{order.external_id}/"
                                         "fulfillment_orders.json"))[1]["fulfillment_orders"]
    item = fo["line_items"][0]
    status, body = await _call(session, "POST", f"{base}/admin/api/2024-10/fulfillments.json", {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": [
            {"id": item["id"], "quantity": item["quantity"] + 1}]}]}})
    assert status == 422 and "quantity" in body["errors"][0]


async def test_a_fulfilment_by_the_shipper_is_pushed_as_orders_updated(shop):
    app, base, session = shop
    received = []

    async def hook(request):
        received.append((request.headers["X-Shopify-Topic"], await request.read()))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hooks", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        hook_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hooks"
        order = _paid(app)
        await session.post(f"{base}/_sim/webhooks", json={"shop_id": SHOP, "address": hook_url})
        creds = ShopCredentials("shopify", SHOP, base, access_token=session.headers["X-Shopify-Access-Token"])
        shipper = Shipper(creds, HttpCaller(session, "shopify", SHOP))
        assert await shipper.ship(ShipRequest(order.external_id, "UPS", "UPS", "1Z999AA10123456786")) == "accepted"
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        (topic, body), = received
        (pushed,) = map_payload(body, "json", SHOP)
        assert topic == "orders/updated" and pushed["status"] == "SHIPPED"
        assert [s["tracking_no"] for s in pushed["shipments"]] == ["1Z999AA10123456786"]
    finally:
        await runner.cleanup()


def test_the_request_body_lists_only_what_can_still_be_fulfilled():
    fos = [{"id": 9, "status": "in_progress", "line_items": [
        {"id": 91, "line_item_id": 1, "fulfillable_quantity": 0, "quantity": 1},
        {"id": 92, "line_item_id": 2, "fulfillable_quantity": 2, "quantity": 2}]}]
    request = ShipRequest("7", "UPS", "UPS", "1Z1")
    assert fulfillment_request(fos, request)["fulfillment"]["line_items_by_fulfillment_order"] == [
        {"fulfillment_order_id": 9}]
    narrowed = fulfillment_request(fos, ShipRequest("7", "UPS", "UPS", "1Z1", ("2",)))
    assert narrowed["fulfillment"]["line_items_by_fulfillment_order"] == [
        {"fulfillment_order_id": 9, "fulfillment_order_line_items": [{"id": 92, "quantity": 2}]}]
    assert narrowed["fulfillment"]["tracking_info"] == {"number": "1Z1", "company": "UPS"}
    assert fulfillment_request(fos, ShipRequest("7", "UPS", "UPS", "1Z1", ("1",))) is None  # fulfilled already
    assert fulfillment_request([dict(fos[0], status="closed")], request) is None
