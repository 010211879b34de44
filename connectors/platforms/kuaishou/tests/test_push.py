"""Kuaishou message pushes: the signature on the raw bytes, and the connectors process on the simulator and
the real broker (polled orders and signed pushes published, forged pushes refused and not published)."""
import asyncio
from pathlib import Path

import aiohttp
import orjson

from connectors.runtime.service import ConnectorService
from connectors.simkit.server import WORLD
from tests.conftest import kafka_bootstrap, topics  # noqa: F401 - the shared broker fixtures
from tests.integration import helpers

from ..delivery import events_for
from ..simulator import create_app
from ..webhooks import authenticate, sign_body, signed_headers

SAMPLE = (Path(__file__).resolve().parents[1] / "samples" / "push_order_pay_success.json").read_bytes()
SECRET = "ks_demo_signsecret_55"


def test_the_signature_covers_the_raw_bytes():
    headers = signed_headers(SAMPLE, "tonglu-kuaishou-home", SECRET, event_id="evt_2403181016000001")
    secret_of = {"tonglu-kuaishou-home": SECRET}.get
    push = authenticate(headers, SAMPLE, secret_of)
    assert (push.shop_id, push.endpoint, push.request_id) == \
        ("tonglu-kuaishou-home", "kwaishop_order_paySuccess", "evt_2403181016000001")
    assert headers["X-Ks-Sign"] == sign_body(SAMPLE, SECRET) and len(headers["X-Ks-Sign"]) == 64
    assert authenticate(headers, SAMPLE.replace(b"2414900123456789", b"2414900123456788", 1), secret_of) is None
    assert authenticate({**headers, "X-Ks-Shop-Id": "someone-else"}, SAMPLE, secret_of) is None
    assert authenticate({**headers, "X-Ks-Sign": ""}, SAMPLE, secret_of) is None
    assert authenticate(signed_headers(SAMPLE, "tonglu-kuaishou-home", "ks_demo_appsecret_77"), SAMPLE,
                        secret_of) is None  # signed with another secret


def test_events_follow_what_changed():
    app = create_app()
    world = app[WORLD]
    (order,) = world.create_orders("s", 1, 1_710_000_000_000, paid=True)
    assert events_for(None, order) == ["kwaishop_order_addOrder", "kwaishop_order_paySuccess"]
    before = (order.status, tuple(line.refund_status for line in order.lines))
    order.status = "SHIPPED"
    assert events_for(before, order) == ["kwaishop_order_delivering"]
    order.lines[0].refund_status = "REQUESTED"
    assert events_for(("SHIPPED", ("NONE",)), order) == ["kwaishop_aftersales_addRefund"]


def _pushed_oids(records) -> set[int]:
    return {orjson.loads(raw["body"])["bizId"] for raw in helpers.raw_records(records, "push")}


async def test_connectors_poll_and_receive_signed_pushes_and_refuse_forged_ones(kafka_bootstrap, topics, tmp_path):  # noqa: F811
    app = create_app(push_backoff=0.05)
    runner, url = await helpers.serve_app(app)
    settings = helpers.connector_settings(kafka_bootstrap, topics, tmp_path, {"kuaishou": url})
    raw = helpers.TopicReader(kafka_bootstrap, topics.raw_orders)
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        async def post(path, body):
            return await helpers.post_json(session, url + path, body)

        first = set((await post("/_sim/orders", {"shop_id": "home", "count": 30}))["external_ids"])
        service = ConnectorService(settings)
        task = asyncio.create_task(service.run(stop))
        try:
            await helpers.read_until(raw, lambda recs: first <= helpers.raw_ids(recs, "poll"))
            # the service subscribed the shop: new orders arrive as signed pushes naming them
            pushed = {int(i) for i in (await post("/_sim/orders", {"shop_id": "home", "count": 3}))["external_ids"]}
            await helpers.read_until(raw, lambda recs: pushed <= _pushed_oids(recs))
            # a push with a forged signature is refused by the receiver and never published
            await post("/_sim/webhooks/faults", {"forged_signature": 2})  # addOrder + paySuccess of one order
            (forged,) = (await post("/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"]
            deadline = asyncio.get_running_loop().time() + 20
            while service.receiver.rejected < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            assert service.receiver.rejected >= 2  # (the platform retries a refused delivery)
            # barrier: a genuine push of the same shop after the refusals; once it is on raw.orders, a
            # published forged push (same shop key, same partition) would be there before it
            marker = {int(i) for i in (await post("/_sim/orders", {"shop_id": "home", "count": 1}))["external_ids"]}
            await helpers.read_until(raw, lambda recs: marker <= _pushed_oids(recs))
            assert int(forged) not in _pushed_oids(raw.records), "a forged push was published"
            # the order still arrives by polling
            await helpers.read_until(raw, lambda recs: forged in helpers.raw_ids(recs, "poll"))
            log = (await (await session.get(url + "/_sim/webhooks")).json())["deliveries"]
            assert any(d["status"] == 401 for d in log) and any(d["status"] == 200 for d in log)
        finally:
            stop.set()
            await task
    raw.close()
    await runner.cleanup()
