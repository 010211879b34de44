"""WeChat message pushes: the fact sheet's worked example, replayed and forged pushes, the simulator's pushes."""
import hashlib
from pathlib import Path
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop
from tests.integration.helpers import eventually, serve_app

from ..mapping import map_payload
from ..simulator import HUB, app_secret, create_app
from ..webhooks import authenticate, push_query, signature, signed_headers, verify_url

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
TOKEN = "wx_demo_token"
SHOP = "tonglu-wechat_channels-home"


def _fixture():
    body = (SAMPLES / "push_order_pay.json").read_bytes()
    query = dict(parse_qsl((SAMPLES / "push_order_pay.query.txt").read_text().splitlines()[0]))
    return body, {**query, "shop_id": SHOP}


def test_the_worked_example_by_hand():
    """wechat_channels.md §2: token, timestamp 1710728160, nonce 1598763420, sorted and joined, sha1 hex."""
    joined = "1598763420" + "1710728160" + "wx_demo_token"  # sorted as strings: digits before letters
    assert sorted([TOKEN, "1710728160", "1598763420"]) == ["1598763420", "1710728160", "wx_demo_token"]
    by_hand = hashlib.sha1(joined.encode()).hexdigest()
    assert by_hand == "7efb990df2f240a67e802418e4e9a8b513e63322"
    assert signature(TOKEN, "1710728160", "1598763420") == by_hand
    _, query = _fixture()
    assert query["signature"] == by_hand


def test_the_recorded_push_is_accepted_once_and_carries_no_order():
    body, query = _fixture()
    secret_of = {SHOP: TOKEN}.get
    push = authenticate({}, body, secret_of, query=query, now=1710728165)
    assert push is not None and (push.shop_id, push.endpoint, push.kind, push.content_type) == \
        (SHOP, "channels_ec_order_pay", "order", "json")
    assert map_payload(body, push.content_type, SHOP) == []
    assert push.external_ids == ("3718421563829481254",)  # read with order/get at once
    # the signature does not cover the body: the same signature again (with another body) is a replay
    assert authenticate({}, body, secret_of, query=query, now=1710728166) is None
    other = body.replace(b"3718421563829481254", b"3718421563829481255")
    assert authenticate({}, other, secret_of, query=query, now=1710728166) is None


@pytest.mark.parametrize("change", [
    {"signature": "7efb990df2f240a67e802418e4e9a8b513e63323"},   # one digit off
    {"nonce": "1598763421"},                                     # signed with another nonce
    {"shop_id": "another-shop"},                                 # a shop without a token here
    {"shop_id": ""},
    {"timestamp": "not-a-time"},
])
def test_forged_pushes_are_refused(change):
    body, query = _fixture()
    assert authenticate({}, body, {SHOP: TOKEN}.get, query={**query, **change}, now=1710728161) is None


def test_a_stale_push_is_refused():
    body, query = _fixture()
    assert authenticate({}, body, {SHOP: TOKEN}.get, query=query, now=1710728160 + 301) is None
    assert authenticate({}, body, {SHOP: TOKEN}.get, query=query) is None  # today: long past


def test_safe_mode_signs_the_encrypted_message_too():
    body = b'{"ToUserName":"gh_0a1b2c3d4e5f","Encrypt":"q0Zl3XbS+8mE2wQ=="}'
    query = push_query(SHOP, TOKEN)
    good = {**query, "encrypt_type": "aes",
            "msg_signature": signature(TOKEN, query["timestamp"], query["nonce"], "q0Zl3XbS+8mE2wQ==")}
    assert authenticate({}, body, {SHOP: TOKEN}.get, query={**good, "msg_signature": "0" * 40}) is None
    push = authenticate({}, body, {SHOP: TOKEN}.get, query=good)
    assert push is not None and push.external_ids == ()  # the order is inside what Tonglu cannot decrypt
    assert map_payload(body, "json", SHOP) == []


def test_an_xml_push_is_named_by_its_event():
    body = (b"<xml><ToUserName><![CDATA[gh_0a1b2c3d4e5f]]></ToUserName><MsgType><![CDATA[event]]></MsgType>"
            b"<Event><![CDATA[channels_ec_aftersale_update]]></Event></xml>")
    push = authenticate(signed_headers(body, SHOP, TOKEN), body, {SHOP: TOKEN}.get)
    assert (push.content_type, push.endpoint, push.kind) == ("xml", "channels_ec_aftersale_update", "refund")
    body = body.replace(b"</xml>", b"<order_info><order_id>3718421563829481254</order_id></order_info></xml>")
    assert authenticate(signed_headers(body, SHOP, TOKEN), body, {SHOP: TOKEN}.get).external_ids == \
        ("3718421563829481254",)


def test_the_message_server_url_check_echoes_echostr_only_when_signed():
    """WeChat's GET on the configured URL: echo `echostr` when the signature verifies with the shop's token."""
    query = {**push_query(SHOP, TOKEN, timestamp=1710728160, nonce="1598763420"), "echostr": "4213617598"}
    assert query["signature"] == "7efb990df2f240a67e802418e4e9a8b513e63322"  # the sheet's worked example
    secret_of = {SHOP: TOKEN}.get
    assert verify_url(query, secret_of, now=1710728161) == "4213617598"
    assert verify_url(query, secret_of, now=1710728161) == "4213617598"  # WeChat may check again
    for change in ({"signature": "0" * 40}, {"nonce": "1"}, {"shop_id": "another-shop"}, {"echostr": ""},
                   {"timestamp": "x"}):
        assert verify_url({**query, **change}, secret_of, now=1710728161) is None, change
    assert verify_url(query, secret_of, now=1710728160 + 301) is None  # stale


async def test_the_simulator_pushes_signed_events_to_the_configured_message_server():
    """A message server built like the runtime's receiver (query parameters handed to `authenticate`)
    gets one signed event per order change; pushes signed with a wrong token are refused."""
    accepted, refused = [], []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        push = authenticate(request.headers, body, {SHOP: app_secret(SHOP)}.get, query=request.query)
        (accepted if push else refused).append((push, body))
        return web.Response(text="success") if push else web.Response(status=401)

    server = web.Application()
    server.router.add_post("/webhooks/wechat_channels", receive)
    sim_app = create_app()
    ensure_shop(sim_app, SHOP)
    runners = [await serve_app(server), await serve_app(sim_app)]
    (_, hub_url), (_, sim_url) = runners
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sim_url}/_sim/webhooks", json={
                    "shop_id": SHOP, "address": f"{hub_url}/webhooks/wechat_channels"}) as resp:
                assert (await resp.json())["addresses"] == [f"{hub_url}/webhooks/wechat_channels?shop_id={SHOP}"]
            async with session.post(f"{sim_url}/_sim/orders", json={"shop_id": SHOP, "count": 3}) as resp:
                made = (await resp.json())["external_ids"]
            await eventually(lambda: len(accepted) == 3)
            assert {p.endpoint for p, _ in accepted} == {"channels_ec_order_pay"}
            assert all(map_payload(body, p.content_type, SHOP) == [] for p, body in accepted)
            assert {b'"order_id":"%s"' % i.encode() in b"".join(b for _, b in accepted) for i in made} == {True}
            async with session.post(f"{sim_url}/_sim/webhooks/faults", json={"forged_signature": 1}):
                pass
            order = sim_app[WORLD].orders[made[0]]
            async with session.post(f"{sim_url}/_sim/advance", json={"shop_id": SHOP, "steps": 3}):
                pass
            await eventually(lambda: len(refused) >= 1 and len(accepted) + len(refused) >= 3 + 3 + 3)
            assert len(refused) == 4  # the forged push, and its three retries
            deliveries = sim_app[HUB].deliveries
            assert all(d["replied_success"] for d in deliveries if d["status"] == 200)
            assert order.external_id in made
    finally:
        for runner, _ in runners:
            await runner.cleanup()
