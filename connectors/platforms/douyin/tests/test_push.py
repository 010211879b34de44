"""Douyin pushes: the recorded push verifies, forged ones are refused, and the simulator delivers signed
message batches to a registered address over HTTP, retrying until it reads `{"code": 0}`."""
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors.simkit.server import WORLD
from connectors.simkit.world import World
from tests.integration.helpers import eventually, serve_app

from ..delivery import tags_for
from ..simulator import HUB, create_app, douyin_order_id
from ..webhooks import ACKNOWLEDGEMENT, authenticate, sign_push, signed_headers

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
APP_KEY, SECRET = "7300000000000000001", "dd_demo_secret_ab12"
SHOP = "tonglu-douyin-home"


def _recorded() -> tuple[dict, bytes]:
    lines = (SAMPLES / "push_trade_paid.http").read_text().split("\n\n", 1)[0].splitlines()[1:]
    headers = dict(line.split(": ", 1) for line in lines)
    return headers, (SAMPLES / "push_trade_paid.body.json").read_bytes()


def test_the_recorded_push_names_its_shop_and_verifies():
    headers, body = _recorded()
    push = authenticate(headers, body, {"4463798": SECRET}.get)
    assert push is not None
    assert (push.shop_id, push.endpoint, push.request_id, push.kind) == ("4463798", "101", "7345678901234567890", "order")


def test_forged_tampered_and_unsigned_pushes_are_refused():
    headers, body = _recorded()
    secret_of = {"4463798": SECRET}.get
    assert authenticate(headers, body, {"4463798": "another-secret"}.get) is None
    assert authenticate(headers, body.replace(b"15800", b"1580"), secret_of) is None
    assert authenticate({**headers, "app-id": "7300000000000000002"}, body, secret_of) is None
    assert authenticate({k: v for k, v in headers.items() if k != "event-sign"}, body, secret_of) is None
    assert authenticate({**headers, "sign-method": "sha1"}, body, secret_of) is None
    assert authenticate(headers, body, {}.get) is None  # a shop we do not know
    assert authenticate(headers, b"not json", secret_of) is None


def test_the_sha256_variant_and_a_batch_naming_two_shops():
    _, body = _recorded()
    headers = signed_headers(body, "4463798", SECRET, APP_KEY, "hmac-sha256")
    assert authenticate(headers, body, {"4463798": SECRET}.get).shop_id == "4463798"
    two = orjson.loads(body) * 2
    two[1] = {**two[1], "data": two[1]["data"].replace("4463798", "4463799")}
    raw = orjson.dumps(two)
    secrets = {"4463798": SECRET, "4463799": SECRET}.get
    assert authenticate(signed_headers(raw, "4463798", SECRET, APP_KEY), raw, secrets) is None


def test_tags_follow_what_changed():
    world = World(seed=3, id_factory=douyin_order_id)
    (order,) = world.create_orders(SHOP, 1, 1_710_000_000_000, paid=False)
    assert tags_for(None, order) == ["100"]
    before = ("PENDING_PAYMENT", ("NONE",) * len(order.lines))
    world._apply(order, "pay", 1_710_000_060_000)
    assert tags_for(before, order) == ["101"]
    paid = ("PAID", before[1])
    world._apply(order, "request_refund", 1_710_000_120_000)
    assert tags_for(paid, order) == ["200"]
    world._apply(order, "approve_refund", 1_710_000_180_000)
    assert tags_for(("PAID", tuple(line.refund_status if line.refund_status != "REFUNDED" else "REQUESTED"
                                   for line in order.lines)), order)[-1] == "206"


class Receiver:
    """A push address: records every delivery and answers as told."""

    def __init__(self, reply):
        self.reply, self.got = reply, []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.json_response(self.reply)


@pytest.fixture
async def pushing():
    sim = create_app(World(seed=5, id_factory=douyin_order_id), push_retries=2, push_backoff=0.05)
    sim_runner, sim_url = await serve_app(sim)
    runners = [sim_runner]

    async def address(reply):
        receiver = Receiver(reply)
        app = web.Application()
        app.router.add_post("/webhooks/douyin", receiver.handle)
        runner, url = await serve_app(app)
        runners.append(runner)
        return receiver, url + "/webhooks/douyin"

    async with aiohttp.ClientSession() as session:
        yield sim, sim_url, session, address
    for runner in runners:
        await runner.cleanup()


async def test_the_simulator_pushes_signed_batches_that_name_the_orders(pushing):
    sim, sim_url, session, address = pushing
    receiver, url = await address(ACKNOWLEDGEMENT)
    async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": SHOP, "address": url}) as resp:
        assert resp.status == 200
    shop = sim[WORLD].shops[SHOP]
    async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 2}) as resp:
        made = (await resp.json())["external_ids"]
    await eventually(lambda: len(receiver.got) == 1)
    headers, body = receiver.got[0]
    assert (headers["app-id"], headers["sign-method"]) == (shop["app_key"], "md5")
    assert headers["event-sign"] == sign_push(shop["app_key"], body, shop["app_secret"])
    push = authenticate(headers, body, {SHOP: shop["app_secret"]}.get)
    assert push is not None and push.shop_id == SHOP and push.endpoint == "100,101"
    messages = orjson.loads(body)
    assert [m["tag"] for m in messages] == ["100", "101", "100", "101"]
    data = [orjson.loads(m["data"]) for m in messages]
    assert [str(d["p_id"]) for d in data[::2]] == made  # ids as bare numbers above 2^53
    assert all(isinstance(d["p_id"], int) and d["p_id"] > 2**53 for d in data)
    assert b'\\"p_id\\":' + made[0].encode() + b"," in body
    orders = list(sim[WORLD].orders.values())
    for order in orders:  # paid -> shipped: tag 102
        sim[WORLD]._apply(order, "ship", order.updated_at + 1000)
    await sim[HUB].on_change(SHOP, orders)
    await eventually(lambda: len(receiver.got) == 2)
    assert {m["tag"] for m in orjson.loads(receiver.got[1][1])} == {"102"}
    assert all(d["acked"] and d["attempt"] == 1 for d in sim[HUB].deliveries)


async def test_a_push_is_retried_until_the_answer_is_code_0(pushing):
    sim, sim_url, session, address = pushing
    receiver, url = await address({"ok": True})
    async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": SHOP, "address": url}):
        pass
    async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 1}):
        pass
    await eventually(lambda: len(receiver.got) == 3)  # the first try and two retries
    assert len({body for _, body in receiver.got}) == 1  # the same bytes every time
    assert [d["acked"] for d in sim[HUB].deliveries] == [False, False, False]


async def test_a_forged_delivery_does_not_verify(pushing):
    sim, sim_url, session, address = pushing
    receiver, url = await address(ACKNOWLEDGEMENT)
    async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": SHOP, "address": url}):
        pass
    async with session.post(f"{sim_url}/_sim/webhooks/faults", json={"forged_signature": 1}):
        pass
    for _ in range(2):
        async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 1}):
            pass
    await eventually(lambda: len(receiver.got) == 2)
    secret_of = {SHOP: sim[WORLD].shops[SHOP]["app_secret"]}.get
    assert [authenticate(h, b, secret_of) is not None for h, b in receiver.got] == [False, True]
