"""The ERP/WMS simulator over real HTTP: signatures, what it records, faults, and its warehouse posting
shipments to a real HTTP receiver standing in for Tonglu's API."""
from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web

from connectors.erp import payloads, qimen
from connectors.erp.warehouse import Warehouse
from tests.factories import canonical_order
from tests.integration.erp_helpers import SECRET, SimServer, wait_until
from tests.integration.helpers import serve_app
from tests.samples import sample_event

pytestmark = pytest.mark.integration


def _signed(event: dict, secret: str = SECRET, ts: int | None = None) -> tuple[bytes, dict]:
    body = payloads.webhook_body(event)
    headers = dict(payloads.webhook_headers(event["event_id"], event["event_type"], body, secret,
                                            ts or int(time.time()), "d-1"))
    return body, headers


@pytest.fixture
async def server():
    server = await SimServer().start()
    yield server
    await server.stop()


async def _post(session, url, body: bytes, headers: dict) -> tuple[int, dict]:
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_signed_webhooks_are_recorded_forged_ones_refused(server):
    genuine, other = sample_event(external_id="g1", version=2), sample_event(external_id="g2", version=1)
    async with aiohttp.ClientSession() as session:
        body, headers = _signed(genuine)
        assert (await _post(session, f"{server.url}/hooks/tonglu", body, headers))[0] == 200
        assert (await _post(session, f"{server.url}/anything", *_signed(other)))[0] == 200
        tampered = body.replace(b'"version":2', b'"version":3')
        status, answer = await _post(session, f"{server.url}/hooks/tonglu", tampered, headers)
        assert status == 401 and "signature does not match" in answer["error"]
        status, answer = await _post(session, f"{server.url}/hooks/tonglu", *_signed(genuine, "wrong-secret"))
        assert status == 401
        status, answer = await _post(session, f"{server.url}/hooks/tonglu", *_signed(genuine, ts=int(time.time()) - 301))
        assert status == 401 and "300s" in answer["error"]
        unsigned = {k: v for k, v in headers.items() if k != "X-Tonglu-Signature"}
        assert (await _post(session, f"{server.url}/hooks/tonglu", body, unsigned))[0] == 401
        async with session.get(f"{server.url}/_sim/received") as resp:
            everything = (await resp.json())["received"]
        async with session.get(f"{server.url}/_sim/received", params={"order_id": genuine["order_id"]}) as resp:
            one = (await resp.json())["received"]
    assert [r["body"]["order_id"] for r in everything] == [genuine["order_id"], other["order_id"]]
    assert len(one) == 1 and one[0]["raw"] == body.decode("utf-8") and one[0]["body"] == json.loads(body)
    assert one[0]["headers"]["X-Tonglu-Event-Id"] == genuine["event_id"]
    assert one[0]["headers"]["X-Tonglu-Signature"] == headers["X-Tonglu-Signature"]
    assert server.counts["rejected"] == 4


async def test_qimen_requests_are_checked_and_answered_idempotently(server):
    party = qimen.QimenParty("k", "C1", "W1", "O1")
    event = sample_event(external_id="q1", version=2)
    body = qimen.deliveryorder_xml(event, party, "TB", "淘宝")
    async with aiohttp.ClientSession() as session:
        answers = []
        for secret in ("qimen_demo_secret", "qimen_demo_secret", "forged"):
            query = qimen.request_query(party, secret, body, int(time.time() * 1000))
            async with session.post(f"{server.url}/router/qimen?{query}", data=body) as resp:
                answers.append(await resp.read())
    assert qimen.response_error(answers[0]) is None and qimen.response_error(answers[1]) is None
    order_id = [a.split(b"<deliveryOrderId>")[1].split(b"<")[0] for a in answers[:2]]
    assert order_id[0] == order_id[1]  # the same deliveryOrderCode -> the same delivery order
    assert "sign-check-failure" in qimen.response_error(answers[2])
    assert server.counts["qimen_received"] == 2 and server.counts["qimen_rejected"] == 1


async def test_faults_down_5xx_and_slow(server):
    event = sample_event(external_id="f1")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/_sim/faults", json={"kind": "down", "count": 1}) as resp:
            assert resp.status == 200
        async with session.post(f"{server.url}/_sim/faults", json={"kind": "error_5xx", "count": 1}) as resp:
            assert resp.status == 200
        async with session.post(f"{server.url}/_sim/faults", json={"kind": "slow", "count": 1, "seconds": 0.5}) as r:
            assert r.status == 200
        async with session.post(f"{server.url}/_sim/faults", json={"kind": "sideways"}) as resp:
            assert resp.status == 400
        with pytest.raises(aiohttp.ClientError):  # down: the connection drops without an answer
            await _post(session, f"{server.url}/hooks/tonglu", *_signed(event))
        assert (await _post(session, f"{server.url}/hooks/tonglu", *_signed(event)))[0] == 500
        started = time.monotonic()
        assert (await _post(session, f"{server.url}/hooks/tonglu", *_signed(event)))[0] == 200
        assert time.monotonic() - started >= 0.5
        assert (await _post(session, f"{server.url}/hooks/tonglu", *_signed(event)))[0] == 200  # faults used up
    assert server.counts["received"] == 2


class FakeTonglu:
    """A real HTTP receiver of `POST /api/orders/{order_id}/shipments`: 404 for the first `unknown_for`
    calls of each order (not yet visible), then 202."""

    def __init__(self, unknown_for: int = 2):
        self.calls: list[dict] = []
        self.unknown_for = unknown_for
        self.app = web.Application()
        self.app.router.add_post("/api/orders/{order_id}/shipments", self.shipments)

    async def shipments(self, request: web.Request) -> web.Response:
        order_id = unquote(request.match_info["order_id"])
        self.calls.append({"order_id": order_id, "auth": request.headers.get("Authorization"),
                           "body": await request.json()})
        if request.headers.get("Authorization") != "Bearer tl_operator":
            return web.json_response({"error": "unauthenticated"}, status=401)
        if sum(c["order_id"] == order_id for c in self.calls) <= self.unknown_for:
            return web.json_response({"error": f"unknown order {order_id}"}, status=404)
        return web.json_response({"shipment_id": "shp-1", "status": "PENDING"}, status=202)


def _paid(shop: str, external_id: str, **order) -> dict:
    event = sample_event(shop_id=shop, external_id=external_id, version=2)
    event["order"] = canonical_order(shop_id=shop, external_id=external_id, status="PAID", **order)
    return event


async def test_the_warehouse_posts_the_shipment_of_a_paid_demo_order_to_tonglu():
    tonglu = FakeTonglu()
    runner, api = await serve_app(tonglu.app)
    warehouse = Warehouse(api, lambda: "tl_operator", frozenset({("taobao", "demo")}), delay_s=(0.2, 0.3),
                          retry_s=0.2)
    server = await SimServer(warehouse=warehouse).start()
    try:
        async with aiohttp.ClientSession() as session:
            for event in (_paid("demo", "w1"), _paid("someone", "w2"), _paid("demo", "w3"),
                          _paid("demo", "w3", refund_status="REQUESTED")):
                assert (await _post(session, f"{server.url}/hooks/tonglu", *_signed(event)))[0] == 200
            await wait_until(lambda: warehouse.pickings["taobao:demo:w1"].status == "POSTED", 15, "the shipment")
            async with session.get(f"{server.url}/_sim/shipments") as resp:
                shipments = {s["order_id"]: s for s in (await resp.json())["shipments"]}
        await asyncio.sleep(0.5)  # w3's pick time has passed: it must stay intercepted
    finally:
        await server.stop()
        await runner.cleanup()
    posted = [c for c in tonglu.calls if c["order_id"] == "taobao:demo:w1"]
    assert len(posted) == 3 and all(c["auth"] == "Bearer tl_operator" for c in posted)  # 404, 404, 202
    body = posted[-1]["body"]
    assert body["carrier"] == "ZTO" and body["line_ids"] == ["1", "2"] and body["tracking_no"].startswith("75")
    assert shipments["taobao:demo:w1"]["status"] == "POSTED" and shipments["taobao:demo:w1"]["attempts"] == 3
    assert "taobao:someone:w2" not in shipments  # not a demo shop
    assert shipments["taobao:demo:w3"]["status"] == "INTERCEPTED"  # refund requested before the parcel left
    assert {c["order_id"] for c in tonglu.calls} == {"taobao:demo:w1"}


async def test_the_warehouse_gives_up_on_a_refusal():
    tonglu = FakeTonglu(unknown_for=0)
    runner, api = await serve_app(tonglu.app)
    warehouse = Warehouse(api, lambda: "tl_not_a_token", frozenset({("taobao", "demo")}), delay_s=(0.1, 0.1))
    server = await SimServer(warehouse=warehouse).start()
    try:
        async with aiohttp.ClientSession() as session:
            assert (await _post(session, f"{server.url}/hooks/tonglu", *_signed(_paid("demo", "r1"))))[0] == 200
        await wait_until(lambda: warehouse.pickings["taobao:demo:r1"].status != "PICKING", 10, "an answer")
    finally:
        await server.stop()
        await runner.cleanup()
    picking = warehouse.pickings["taobao:demo:r1"]
    assert picking.status == "REFUSED" and picking.answer["status"] == 401 and len(tonglu.calls) == 1
