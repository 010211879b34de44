"""The shared simulated push hub (connectors/simkit/pushes.py) over real HTTP: new and changed orders,
retries until the style's acknowledgement, identical resends unless the style signs each attempt, forged
signatures counted per delivery, and the control API."""
from __future__ import annotations

import hashlib

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.pushes import FORGED_PREFIX, Outgoing, Push, PushHub, PushStyle
from connectors.simkit.server import new_sim_app
from connectors.simkit.world import World
from tests.integration.helpers import eventually, serve_app

SECRET = "s3cret"


class Style(PushStyle):
    """One push per order: `new` or `changed`, the body's digest with the secret as the signature."""

    def __init__(self, sign_each_attempt: bool = False):
        self.sign_each_attempt = sign_each_attempt

    def pushes(self, shop, changes):
        return [Push(orjson.dumps({"id": o.external_id, "kind": "new" if before is None else "changed"}),
                     {"id": o.external_id}) for before, o in changes]

    def sign(self, push, shop, address, secret, attempt):
        body = push.body + (b" #%d" % attempt if self.sign_each_attempt else b"")
        return Outgoing(address, {"X-Sign": hashlib.sha256(secret.encode() + body).hexdigest()}, body)

    def acked(self, status, reply):
        return status == 200 and reply == b"taken"

    def reply_log(self, status, reply):
        return {"reply": reply.decode()}


class Receiver:
    """Answers `fail` requests with 503, then 200 `taken`; keeps (path, headers, body) of each."""

    def __init__(self, fail: int = 0):
        self.fail, self.got = fail, []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((request.path, dict(request.headers), await request.read()))
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=503, text="busy")
        return web.Response(text="taken")


async def _setup(style: Style, receiver: Receiver):
    sim = new_sim_app(World(seed=3), lambda shop_id: {"app_secret": SECRET})
    hub = PushHub(sim, style, retries=2, backoff=0.01)
    hook = web.Application()
    hook.router.add_post("/{name}", receiver.handle)
    runners = [await serve_app(sim), await serve_app(hook)]
    return hub, runners, runners[0][1], runners[1][1]


def _signed(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


async def test_pushes_are_retried_with_the_same_bytes_until_acknowledged():
    receiver = Receiver(fail=2)
    hub, runners, sim_url, hook_url = await _setup(Style(), receiver)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": "a", "count": 1}) as resp:
                (before,) = (await resp.json())["external_ids"]  # exists before the subscription: not new
            async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": "a", "address": f"{hook_url}/x"}) as resp:
                assert (await resp.json())["addresses"] == [f"{hook_url}/x"]
            async with session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": "a"}) as resp:
                assert resp.status == 400 and "required" in await resp.text()
            async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": "a", "count": 1}) as resp:
                (new,) = (await resp.json())["external_ids"]
            await eventually(lambda: len(hub.deliveries) == 3)
            assert len({body for _, _, body in receiver.got}) == 1  # three sends, identical bytes
            assert orjson.loads(receiver.got[0][2]) == {"id": new, "kind": "new"}
            assert [(d["attempt"], d["status"], d["acked"], d["reply"]) for d in hub.deliveries] == \
                [(1, 503, False, "busy"), (2, 503, False, "busy"), (3, 200, True, "taken")]
            receiver.got.clear()
            async with session.post(f"{sim_url}/_sim/advance", json={"shop_id": "a", "steps": 2}) as resp:
                assert (await resp.json())["transitions"] == 2
            await eventually(lambda: len(receiver.got) == 2)
            assert {orjson.loads(b)["kind"] for _, _, b in receiver.got} == {"changed"}
            assert {orjson.loads(b)["id"] for _, _, b in receiver.got} == {before, new}
            async with session.get(f"{sim_url}/_sim/webhooks") as resp:
                listed = await resp.json()
            assert listed["subscriptions"] == {"a": [f"{hook_url}/x"]} and listed["deliveries"][-1]["acked"]
    finally:
        for runner, _ in runners:
            await runner.cleanup()


async def test_forged_signatures_count_deliveries_and_each_attempt_can_be_signed_afresh():
    receiver = Receiver(fail=1)
    hub, runners, sim_url, hook_url = await _setup(Style(sign_each_attempt=True), receiver)
    try:
        async with aiohttp.ClientSession() as session:
            for name in ("x", "y"):
                await session.post(f"{sim_url}/_sim/webhooks", json={"shop_id": "b", "address": f"{hook_url}/{name}"})
            async with session.post(f"{sim_url}/_sim/webhooks/faults", json={"forged_signature": 1}) as resp:
                assert (await resp.json())["forged_signature"] == 1
            await session.post(f"{sim_url}/_sim/orders", json={"shop_id": "b", "count": 1})
            await eventually(lambda: len(receiver.got) == 3)  # two addresses, the first send of one failed
        forged = [(path, body) for path, headers, body in receiver.got
                  if headers["X-Sign"] == _signed(FORGED_PREFIX + SECRET, body)]
        genuine = [(path, body) for path, headers, body in receiver.got if headers["X-Sign"] == _signed(SECRET, body)]
        assert len(forged) + len(genuine) == 3 and len({path for path, _ in forged}) == 1  # one delivery forged
        assert sorted(body[-2:] for _, _, body in receiver.got) == [b"#1", b"#1", b"#2"]  # the resend signed anew
        assert sum(d["forged"] for d in hub.deliveries if d["attempt"] == 1) == 1
    finally:
        for runner, _ in runners:
            await runner.cleanup()
