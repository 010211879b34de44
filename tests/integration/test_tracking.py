"""Courier tracking on the real broker, over HTTP: the receiver refuses forged pushes and publishes the
others raw; an uploaded shipment is subscribed, the simulated carrier moves the parcel, and the order
gets TrackingUpdated and OrderDelivered at its next versions."""
import asyncio
import json
import re
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.runtime.service import ConnectorService, ConnectorSettings
from connectors.simkit.world import World
from connectors.tracking import kuaidi100
from connectors.tracking.receiver import PATH
from connectors.tracking.simulator import create_app
from infra.broker import free_port
from schemas.codec import AvroCodec
from schemas.sealing import open_body
from schemas.topics import shop_key
from tests.integration.helpers import TopicReader, publish, serve_app, start_worker, stop_worker, worker_env

RAW, EVENT, RESULT = AvroCodec("RawRecord"), AvroCodec("OrderEvent"), AvroCodec("ShipmentResult")
SECRET = "tracking-test-secret"
PUSH = (Path(kuaidi100.__file__).parent / "samples" / "kuaidi100_push.param.json").read_text(encoding="utf-8")


def _receiver(kafka_bootstrap, topics, tmp_path) -> ConnectorService:
    return ConnectorService(ConnectorSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, raw_topic=topics.raw_orders,
        calls_topic=topics.connector_calls, data_dir=tmp_path, webhook_port=free_port(),
        logistics_topic=topics.logistics_updates, tracking_secret=SECRET))


async def test_forged_pushes_are_refused_and_accepted_ones_published_raw(kafka_bootstrap, topics, tmp_path):
    service = _receiver(kafka_bootstrap, topics, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    raw, updates = TopicReader(kafka_bootstrap, topics.raw_orders), TopicReader(kafka_bootstrap,
                                                                                 topics.logistics_updates)
    param = PUSH
    order_id, other = "taobao:shop-t:4001", "taobao:shop-t:4002"
    base = f"http://127.0.0.1:{service.s.webhook_port}{PATH}"
    salt = kuaidi100.subscription_salt(SECRET, order_id, "SF1402938475610")
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(0.5)  # the receiver starts listening

            async def post(order, form):
                url = kuaidi100.callback_url(base, order) if order else base
                async with session.post(url, data=urlencode(form), headers={
                        "Content-Type": "application/x-www-form-urlencoded"}) as resp:
                    return resp.status, await resp.json(content_type=None)

            assert (await post(None, kuaidi100.push_form(json.loads(param), salt)))[0] == 400
            assert (await post(order_id, {"param": param, "sign": "0" * 32}))[0] == 401
            assert (await post(order_id, {"param": param}))[0] == 400
            # signed for one order, replayed for another: its salt is the other's, so it is refused
            assert (await post(other, {"param": param, "sign": kuaidi100.push_sign(param, salt)}))[0] == 401
            assert service.tracking.rejected == 2 and service.tracking.received == 0
            status, reply = await post(order_id, {"param": param, "sign": kuaidi100.push_sign(param, salt)})
            assert (status, reply) == (200, kuaidi100.ACKNOWLEDGEMENT)
        # the accepted push is the first record of the shop's partition: the refused ones, sent before it
        # on the same key, published nothing
        records = await raw.until_true(lambda recs: recs)
        (key, value), = records
        record = RAW.decode(value)
        assert key == shop_key("taobao", "shop-t")
        assert (record["kind"], record["endpoint"], record["source"], record["content_type"]) == (
            "logistics", "kuaidi100", "push", "form")
        assert (record["platform"], record["shop_id"], record["external_id"]) == ("taobao", "shop-t", "4001")
        body = open_body(record)
        assert kuaidi100.read_push(body) == (param, kuaidi100.push_sign(param, salt))
        (ukey, uvalue), = await updates.until_true(lambda recs: recs)
        assert ukey == b"SF1402938475610" and uvalue == value
    finally:
        stop.set()
        await task
        raw.close()
        updates.close()


def _shipped_order(shop: str):
    """A paid order the simulated platform then shipped whole (one parcel)."""
    world = World(seed=21)
    for order in world.create_orders(shop, 20, int(time.time() * 1000) - 600_000):
        if world.step(order, int(time.time() * 1000) - 300_000) == "ship":
            return order
    raise AssertionError("no order of the simulated world was shipped whole")


async def test_an_uploaded_shipment_is_tracked_to_delivery(kafka_bootstrap, topics, tmp_path):
    shop = "track-shop"
    order = _shipped_order(shop)
    order_id = f"taobao:{shop}:{order.external_id}"
    publish(kafka_bootstrap, [(topics.raw_orders, shop_key("taobao", shop),
                               raw_record("taobao", shop, page_body([order]), source="poll"))])
    sim_runner, sim_url = await serve_app(create_app(key="test-key", demo_shops=frozenset({("taobao", shop)}),
                                                     demo_pace=0.4))
    service = _receiver(kafka_bootstrap, topics, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    callback = f"http://127.0.0.1:{service.s.webhook_port}{PATH}"
    env = worker_env(kafka_bootstrap, topics, TONGLU_DATA_DIR=tmp_path / "data", TONGLU_KUAIDI100_KEY="test-key",
                     TONGLU_KUAIDI100_URL=f"{sim_url}/poll", TONGLU_TRACKING_SECRET=SECRET,
                     TONGLU_TRACKING_CALLBACK_URL=callback)
    normalizer = start_worker("normalizer", env, tmp_path / "normalizer.log")
    tracker = start_worker("tracker", env, tmp_path / "tracker.log")
    events = TopicReader(kafka_bootstrap, topics.order_events, "OrderEvent")
    try:
        shipped = await events.until_true(lambda recs: any(e["event_type"] == "OrderShipped" for _, e in recs))
        number = next(e for _, e in shipped)["order"]["shipments"][0]["tracking_no"]
        publish(kafka_bootstrap, [(topics.fulfillment_results, order_id.encode(), RESULT.encode({
            "shipment_id": "s1", "order_id": order_id, "status": "UPLOADED", "carrier_code": "ZTO",
            "tracking_no": number, "line_ids": [], "attempt": 1, "reason": None,
            "recorded_at": int(time.time() * 1000)}))])
        records = await events.until_true(lambda recs: any(e["event_type"] == "OrderDelivered" for _, e in recs),
                                    timeout=90)
        mine = [e for _, e in records if e["order_id"] == order_id]
        tracked = [e for e in mine if e["event_type"] == "TrackingUpdated"]
        states = [e["order"]["shipments"][0]["tracking_state"] for e in tracked]
        assert states[0] == "PICKED_UP" and states[-1] == "DELIVERED" and len(states) >= 3
        versions = [e["version"] for e in mine]
        assert versions == sorted(versions) and set(versions) == set(range(1, max(versions) + 1))
        delivered = next(e for e in mine if e["event_type"] == "OrderDelivered")
        assert delivered["version"] == tracked[-1]["version"] == max(versions)
        assert delivered["order"]["status"] == "DELIVERED"
        assert delivered["order"]["delivered_at"] == delivered["occurred_at"] == tracked[-1]["order"][
            "shipments"][0]["delivered_at"]
        steps = [e["order"]["shipments"][0]["tracking_step"] for e in tracked]
        assert not re.search(r"1\d{10}", json.dumps(steps, ensure_ascii=False))  # the courier's mobile is masked
        async with aiohttp.ClientSession() as session, session.get(
                f"{sim_url}/_sim/parcels", params={"tracking_no": number}) as resp:
            (parcel,) = (await resp.json())["parcels"]
        assert parcel["state"] == "DELIVERED" and parcel["pushes"][-1]["status"] == 200
        assert parcel["callback"] == kuaidi100.callback_url(callback, order_id)
    finally:
        stop.set()
        await task
        for proc in (tracker, normalizer):
            stop_worker(proc)
        events.close()
        await sim_runner.cleanup()


async def test_the_simulator_answers_subscriptions_and_pushes_until_acknowledged(kafka_bootstrap, topics, tmp_path):
    """Subscriptions answered as Kuaidi100 does; a turn (`/_sim/advance`) pushed at once; a push the
    receiver does not take (it is not up yet) retried until it is."""
    sim_runner, sim_url = await serve_app(create_app(key="test-key", pace=3600.0))
    service = _receiver(kafka_bootstrap, topics, tmp_path)
    callback = kuaidi100.callback_url(f"http://127.0.0.1:{service.s.webhook_port}{PATH}", "taobao:s9:77")
    salt = kuaidi100.subscription_salt(SECRET, "taobao:s9:77", "YT7412589630147")
    updates = TopicReader(kafka_bootstrap, topics.logistics_updates)
    stop = asyncio.Event()
    task = None
    try:
        async with aiohttp.ClientSession() as session:
            async def subscribe(**overrides):
                args = {"company": "yuantong", "number": "YT7412589630147", "key": "test-key",
                        "callback": callback, "salt": salt, **overrides}
                async with session.post(f"{sim_url}/poll", data=kuaidi100.subscribe_form(**args)) as resp:
                    return (await resp.json())["returnCode"]

            async def advance(state):
                async with session.post(f"{sim_url}/_sim/advance",
                                        json={"tracking_no": "YT7412589630147", "state": state}) as resp:
                    return resp.status

            assert await subscribe(key="wrong") == "600"
            assert await subscribe(company="nobody") == "700"
            assert await subscribe() == "200"
            assert await subscribe() == "501"
            assert await advance("lost") == 400
            assert await advance("exception") == 200  # the receiver is not listening yet: pushed again later
            await asyncio.sleep(1.5)
            task = asyncio.create_task(service.run(stop))
            (_, first), = await updates.until_true(lambda recs: recs, timeout=30)
            assert kuaidi100.tracking_update(kuaidi100.read_push(open_body(RAW.decode(first)))[0])["state"] == (
                "EXCEPTION")
            assert await advance("returned") == 200
            records = await updates.until_true(lambda recs: len(recs) >= 2, timeout=30)
            news = [kuaidi100.tracking_update(kuaidi100.read_push(open_body(RAW.decode(v)))[0]) for _, v in records]
            assert [n["state"] for n in news] == ["EXCEPTION", "RETURNING"] and news[1]["steps"] == 2
            async with session.get(f"{sim_url}/_sim/parcels") as resp:
                (parcel,) = (await resp.json())["parcels"]
            refused = [p for p in parcel["pushes"] if p["status"] != 200]
            assert refused and all(p.get("error") for p in refused)  # connection refused, then retried
    finally:
        stop.set()
        if task is not None:
            await task
        updates.close()
        await sim_runner.cleanup()


async def test_a_restarted_simulator_keeps_its_parcels_and_their_next_steps(tmp_path):
    """The parcels are saved under the data dir (on a clean stop here); a simulator started again on the
    same file has each parcel where it was, and moves it on with its next step of life."""
    saved = tmp_path / "simulators" / "tracking.json"
    demo = frozenset({("taobao", "s1")})
    callback = kuaidi100.callback_url(f"http://127.0.0.1:{free_port()}{PATH}", "taobao:s1:5")  # nobody listens

    async def parcel(url, session) -> dict:
        async with session.get(f"{url}/_sim/parcels", params={"tracking_no": "ZT5550001112"}) as resp:
            (found,) = (await resp.json())["parcels"]
        return found

    runner, url = await serve_app(create_app(key="k", demo_shops=demo, demo_pace=0.4, path=saved))
    async with aiohttp.ClientSession() as session:
        form = kuaidi100.subscribe_form("zhongtong", "ZT5550001112", "k", callback, "salt")
        async with session.post(f"{url}/poll", data=form) as resp:
            assert (await resp.json())["returnCode"] == "200"
        deadline = time.time() + 10
        while len((before := await parcel(url, session))["steps"]) < 2 and time.time() < deadline:
            await asyncio.sleep(0.1)
        await runner.cleanup()
        assert saved.exists() and len(before["steps"]) == 2

        runner, url = await serve_app(create_app(key="k", demo_shops=demo, demo_pace=0.4, path=saved))
        try:
            after = await parcel(url, session)
            assert {k: after[k] for k in ("state", "steps", "done")} == {k: before[k] for k in ("state", "steps", "done")}
            async with session.post(f"{url}/poll", data=form) as resp:
                assert (await resp.json())["returnCode"] == "501"  # still tracked: the subscription was kept
            deadline = time.time() + 10
            while len((moved := await parcel(url, session))["steps"]) < 3 and time.time() < deadline:
                await asyncio.sleep(0.1)
            assert [s["status"] for s in reversed(moved["steps"])] == ["揽收", "在途", "在途"]  # the third of its life
            assert moved["steps"][1:] == before["steps"]
        finally:
            await runner.cleanup()


async def test_a_step_whose_push_did_not_land_before_a_restart_is_pushed_by_the_restarted_simulator(tmp_path):
    """A parcel signed for while its callback refused the push, then the simulator stops: the simulator
    started again pushes that step at once (a final step has no later push to carry it) and, once it is
    acknowledged, saves that it was."""
    from aiohttp import web

    from connectors.tracking.parcels import Parcels

    saved = tmp_path / "simulators" / "tracking.json"
    got, accept = [], {"now": False}

    async def callback(request):
        got.append(json.loads((await request.post())["param"])["lastResult"]["state"])
        return web.json_response({"result": accept["now"], "returnCode": "200", "message": "ok"})

    receiver = web.Application()
    receiver.router.add_post(PATH, callback)
    receiver_runner, receiver_url = await serve_app(receiver)
    form = kuaidi100.subscribe_form("zhongtong", "ZT5550002223", "k",
                                    kuaidi100.callback_url(f"{receiver_url}{PATH}", "taobao:s2:6"), "salt")
    runner, url = await serve_app(create_app(key="k", pace=3600.0, path=saved))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/poll", data=form) as resp:
                assert (await resp.json())["returnCode"] == "200"
            async with session.post(f"{url}/_sim/advance", json={"tracking_no": "ZT5550002223",
                                                                 "state": "delivered"}) as resp:
                assert resp.status == 200
            deadline = time.time() + 10
            while not got and time.time() < deadline:
                await asyncio.sleep(0.05)
            assert got == ["3"]  # pushed and refused
            await runner.cleanup()
            accept["now"] = True
            runner, url = await serve_app(create_app(key="k", pace=3600.0, path=saved))
            deadline = time.time() + 10
            while len(got) < 2 and time.time() < deadline:
                await asyncio.sleep(0.05)
            assert got == ["3", "3"]  # pushed again by the restarted simulator, and taken
        await runner.cleanup()
        parcels = Parcels("k")
        parcels.restore(saved.read_bytes())
        assert parcels.unacknowledged() == [] and parcels.parcels["ZT5550002223"].acked == 1
    finally:
        await runner.cleanup()
        await receiver_runner.cleanup()
