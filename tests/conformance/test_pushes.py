"""Pushes on every platform that pushes: each push carries its orders or names them, a client reads the
named orders, and the simulator resends a push until it gets the platform's acknowledgement — which is
what the receiver answers (`connectors.runtime.webhooks.acknowledgement`)."""
import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from connectors import platforms
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.webhooks import acknowledgement, authenticate
from connectors.simkit.server import WORLD, ensure_shop
from tests.conformance.common import content_type
from tests.integration.helpers import serve_app

PUSHING = [p for p in platforms.codes() if platforms.manifest(p).capabilities.push]


def _push_samples():
    for platform in PUSHING:
        for source, _ in platforms.samples(platform):
            if source.name.startswith(("push", "webhook")):
                yield platform, source


PUSH_SAMPLES = list(_push_samples())


def _authenticate(platform: str, headers: dict, body: bytes):
    """A push authenticated with any shop's secret `s3cret` (the test signs with it)."""
    return authenticate(platforms.module(platform, "webhooks"), headers, body, lambda shop: "s3cret")


def test_every_pushing_platform_has_recorded_pushes():
    assert {p for p, _ in PUSH_SAMPLES} == set(PUSHING)


@pytest.mark.parametrize("platform,source", PUSH_SAMPLES, ids=[f"{p}/{s.name}" for p, s in PUSH_SAMPLES])
def test_a_recorded_push_carries_its_orders_or_names_them(platform, source):
    """A push whose mapping gives no order names the orders it is about, digit for digit (ids above 2^53
    as bare JSON numbers included), and its platform's client can read them; one that carries its orders
    names none."""
    body = source.read_bytes()
    headers = platforms.module(platform, "webhooks").signed_headers(body, "conf", "s3cret")
    push = _authenticate(platform, headers, body)
    assert push is not None
    carried = platforms.map_payload(platform, body, content_type(body), push.shop_id)
    assert bool(carried) != bool(push.external_ids), (carried, push.external_ids)
    for external_id in push.external_ids:
        assert isinstance(external_id, str) and external_id.encode() in body
    if push.external_ids:
        assert callable(getattr(platforms.module(platform, "client").Client, "fetch_orders", None))


def test_named_ids_keep_every_digit():
    """Douyin names its orders with bare JSON numbers above 2^53 (douyin.md §5)."""
    body = json.dumps([{"tag": "101", "msg_id": "1", "data": json.dumps({"p_id": 6932187654321098765,
                                                                        "shop_id": 4463798})}]).encode()
    push = _authenticate("douyin", platforms.module("douyin", "webhooks").signed_headers(body, "x", "s3cret"), body)
    assert push.external_ids == ("6932187654321098765",)


async def _served_sim(platform: str):
    app = platforms.module(platform, "simulator").create_app()
    runner, url = await serve_app(app)
    return app, runner, url


@pytest.mark.parametrize("platform", [p for p in PUSHING
                                      if hasattr(platforms.module(p, "client").Client, "fetch_orders")])
async def test_a_client_reads_the_orders_a_push_named(platform):
    app, runner, url = await _served_sim(platform)
    shop = ensure_shop(app, "conf")
    orders = app[WORLD].create_orders("conf", 5, time.time_ns() // 1_000_000 - 60_000)
    named = [orders[3].external_id, orders[1].external_id]
    try:
        async with aiohttp.ClientSession() as session:
            creds = ShopCredentials(platform=platform, shop_id="conf", base_url=url, app_key=shop.get("app_key", ""),
                                    app_secret=shop.get("app_secret", ""), access_token=shop.get("access_token", ""))
            client = platforms.client(creds, HttpCaller(session, platform, "conf"))
            got = [o["external_id"] async for page in client.fetch_orders(named)
                   for o in platforms.map_payload(platform, page.body, page.content_type, "conf")]
    finally:
        await runner.cleanup()
    assert sorted(got) == sorted(named)


class _Receiver:
    """A push endpoint that answers either the platform's acknowledgement or something else."""

    def __init__(self, platform: str):
        self.hooks = platforms.module(platform, "webhooks")
        self.acknowledge = False
        self.got: list[tuple] = []  # (headers, query, body) of every request

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((request.headers.copy(), request.query.copy(), await request.read()))
        if self.acknowledge:
            return acknowledgement(self.hooks)
        # a 2xx that is not the acknowledgement; a platform content with any 2xx gets a 503
        status = 200 if hasattr(self.hooks, "ACKNOWLEDGEMENT") else 503
        return web.json_response({"received": False}, status=status)

    def about(self, external_id: str) -> list[tuple]:
        return [g for g in self.got if external_id.encode() in g[2]]


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("platform", PUSHING)
async def test_the_simulator_resends_a_push_until_the_receiver_acknowledges_it(platform):
    app, sim_runner, sim_url = await _served_sim(platform)
    receiver = _Receiver(platform)
    hook_app = web.Application()
    hook_app.router.add_post("/hook", receiver.handle)
    hook_runner, hook_url = await serve_app(hook_app)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": "conf",
                                                                     "address": f"{hook_url}/hook"}) as resp:
                assert resp.status == 200

            async def new_order() -> str:
                async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": "conf", "count": 1,
                                                                       "paid": False}) as resp:
                    (external_id,) = (await resp.json())["external_ids"]
                return external_id

            # not acknowledged: the same push comes again (the positive control for the quiet case below)
            unanswered = await new_order()
            await _until(lambda: len(receiver.about(unanswered)) >= 2)
            # acknowledged as the receiver does: one delivery, no resend within the simulator's backoff
            receiver.acknowledge = True
            answered = await new_order()
            await _until(lambda: receiver.about(answered))
            await asyncio.sleep(1.5)  # every simulator's first resend comes within 0.5 s
            assert len(receiver.about(answered)) == 1
    finally:
        await hook_runner.cleanup()
        await sim_runner.cleanup()
    # and what the simulator pushed verifies with the shop's secret and names (or carries) the order
    secret = app[WORLD].shops["conf"]["app_secret"]
    headers, query, body = receiver.about(answered)[0]
    push = authenticate(platforms.module(platform, "webhooks"), headers, body, {"conf": secret}.get, query)
    assert push is not None and push.shop_id == "conf"
    carried = {o["external_id"] for o in platforms.map_payload(platform, body, content_type(body), "conf")}
    assert answered in carried | set(push.external_ids)

