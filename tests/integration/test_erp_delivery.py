"""ERP delivery end to end: order.events on a real broker -> the deliverer process -> the ERP simulator over HTTP."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from connectors.erp.signing import verify_webhook
from connectors.erp.simulator import FaultPlan
from schemas.codec import AvroCodec
from tests.integration.erp_helpers import SECRET, SimServer, event_messages, routing_file, wait_until
from tests.integration.helpers import TopicReader, publish, start_worker, stop_worker, worker_env
from tests.samples import sample_event

pytestmark = pytest.mark.integration
QIMEN_SECRET = "qimen_demo_secret"  # the simulator's default


def _env(kafka_bootstrap, topics, routing, **extra) -> dict:
    return worker_env(kafka_bootstrap, topics, TONGLU_ERP_ROUTING=routing, TEST_ERP_SECRET=SECRET,
                      TONGLU_QIMEN_SECRET=QIMEN_SECRET, **extra)


def _versions_in_arrival_order(server: SimServer) -> dict[str, list[int]]:
    """Each order's versions as first received (repeats left out)."""
    seen, versions = set(), defaultdict(list)
    for _, raw in server.bodies():
        body = json.loads(raw)
        if body["event_id"] not in seen:
            seen.add(body["event_id"])
            versions[body["order_id"]].append(body["version"])
    return versions


async def test_every_event_arrives_signed_in_version_order_per_order(kafka_bootstrap, topics, tmp_path):
    server = await SimServer().start()
    routing = routing_file(tmp_path, [
        {"name": "erp", "url": f"{server.url}/hooks/tonglu"},
        {"name": "wms", "url": f"{server.url}/router/qimen", "format": "qimen", "secret_env": "TONGLU_QIMEN_SECRET",
         "events": ["OrderPaid"], "qimen": {"app_key": "k", "customer_id": "C1", "warehouse_code": "W1",
                                            "owner_code": "O1"}}])
    orders, versions = 60, 4
    messages = event_messages(topics.order_events, orders, versions)
    publish(kafka_bootstrap, messages)
    worker = start_worker("erp", _env(kafka_bootstrap, topics, routing), tmp_path / "erp.log")
    try:
        await wait_until(lambda: server.counts["received"] >= orders * versions
                         and server.counts["qimen_received"] >= orders, 60, "every event delivered")
    finally:
        stop_worker(worker)
        await server.stop()
    got = _versions_in_arrival_order(server)
    assert len(got) == orders and all(v == [1, 2, 3, 4] for v in got.values()), got
    codec = AvroCodec("OrderEvent")
    sent = {codec.decode(value)["event_id"] for _, _, value in messages}
    for headers, raw in server.bodies():
        body = json.loads(raw)
        assert body["event_id"] in sent
        assert headers["X-Tonglu-Event-Id"] == headers["Idempotency-Key"] == body["event_id"]
        assert headers["X-Tonglu-Event"] == body["event_type"]
        assert verify_webhook(SECRET, headers["X-Tonglu-Timestamp"], headers["X-Tonglu-Signature"], raw,
                              time.time()) is None
        assert list(body) == ["event_id", "event_type", "order_id", "version", "occurred_at", "order"]
    # the WMS got a signed deliveryorder.create per paid order (the simulator checked each sign)
    assert server.counts["qimen_rejected"] == 0
    codes = {body["deliveryOrderCode"] for _, _, body, _ in server.sim.qimen}
    assert len(codes) == orders and all(body["method"] == "taobao.qimen.deliveryorder.create"
                                        for _, _, body, _ in server.sim.qimen)


async def test_refused_events_are_retried_then_dead_lettered_and_replayed(kafka_bootstrap, topics, tmp_path):
    server = await SimServer().start()
    routing = routing_file(tmp_path, [{"name": "erp", "url": f"{server.url}/hooks/tonglu"}],
                           max_attempts=3, initial_s=0.05, max_s=0.2)
    env = _env(kafka_bootstrap, topics, routing)
    server.sim.faults.add("error_5xx", 0, 0, for_seconds=120.0, now=time.time())
    first = event_messages(topics.order_events, 5, 2, prefix="refused")
    publish(kafka_bootstrap, first)
    worker = start_worker("erp", env, tmp_path / "erp.log")
    dlq = TopicReader(kafka_bootstrap, topics.erp_dlq, "ErpDeadLetter")
    try:
        letters = [record for _, record in await asyncio.to_thread(dlq.until, 10, 60)]
        server.sim.faults = FaultPlan()  # the endpoint answers again
        # the deliverer went past what it gave up: later events still arrive
        later = event_messages(topics.order_events, 3, 1, prefix="later")
        await asyncio.to_thread(publish, kafka_bootstrap, later)
        await wait_until(lambda: server.counts["received"] >= 3, 30, "later events delivered")
    finally:
        stop_worker(worker)
        dlq.close()
    try:
        assert {r["endpoint"] for r in letters} == {"erp"}
        assert all(r["attempts"] == 3 and r["last_status"] == 500 and r["reason"].startswith("HTTP 500")
                   for r in letters), letters[0]
        codec = AvroCodec("OrderEvent")
        refused = {codec.decode(value)["event_id"] for _, _, value in first}
        assert {r["event_id"] for r in letters} == refused
        assert all(codec.decode(r["event"])["event_id"] == r["event_id"] for r in letters)
        assert {json.loads(raw)["order_id"] for _, raw in server.bodies()} == {
            key.decode() for _, key, _ in later}
        # replay: the dead letters arrive, each order's in version order, with their own event ids
        replayed = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "infra.cli", "erp", "replay", "--endpoint", "erp", "--json"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["delivered"] == 10
        by_id = {json.loads(raw)["event_id"]: headers for headers, raw in server.bodies()}
        assert refused <= set(by_id) and all(by_id[e]["X-Tonglu-Event-Id"] == e for e in refused)
        got = _versions_in_arrival_order(server)
        assert all(got[key.decode()] == [1, 2] for _, key, _ in first)
        unknown = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "infra.cli", "erp", "replay", "--endpoint", "nope"], env=env,
            capture_output=True, text=True, timeout=60, check=False)
        assert unknown.returncode == 2 and "unknown endpoint 'nope'" in unknown.stderr
    finally:
        await server.stop()


DOWN_S = float(os.environ.get("TONGLU_TEST_ERP_DOWN_S", "60"))  # the figure; shorter for a quick run


async def test_an_endpoint_down_gets_everything_in_order_after_and_slows_no_other(kafka_bootstrap, topics, tmp_path):
    down, other = await SimServer().start(), await SimServer().start()
    routing = routing_file(tmp_path, [{"name": "down", "url": f"{down.url}/hooks/tonglu"},
                                      {"name": "other", "url": f"{other.url}/hooks/tonglu"}],
                           initial_s=0.5, max_s=30.0, max_attempts=20)
    worker = start_worker("erp", _env(kafka_bootstrap, topics, routing), tmp_path / "erp.log")
    try:
        await asyncio.to_thread(publish, kafka_bootstrap, event_messages(topics.order_events, 20, 1, prefix="before"))
        await wait_until(lambda: down.counts["received"] >= 20 and other.counts["received"] >= 20, 60,
                         "both endpoints up")
        await down.stop()
        stopped, lags, batch = time.time(), [], 0
        while time.time() - stopped < DOWN_S:  # orders keep flowing while one endpoint is down
            batch += 1
            messages = event_messages(topics.order_events, 10, 3, prefix=f"during{batch}-")
            sent_at, expected = time.time(), other.counts["received"] + len(messages)
            await asyncio.to_thread(publish, kafka_bootstrap, messages)
            await wait_until(lambda e=expected: other.counts["received"] >= e, 30, "the other endpoint",
                             interval=0.02)
            lags.append(time.time() - sent_at)
            await asyncio.sleep(1.0)
        assert down.counts["received"] == 20  # positive control: nothing reached the dead endpoint
        await down.start()
        back, total = time.time(), other.counts["received"]
        await wait_until(lambda: down.counts["received"] >= total, 120, "everything after the outage")
        print(f"endpoint down {DOWN_S:.0f}s: the other endpoint took each batch within {max(lags):.2f}s; "
              f"the {total - 20} events of the outage arrived {time.time() - back:.1f}s after the restart")
    finally:
        stop_worker(worker)
        await down.stop()
        await other.stop()
    assert max(lags) < 5.0, lags  # the other endpoint kept its pace while one was down
    assert down.counts["out_of_order"] == 0
    got = _versions_in_arrival_order(down)
    assert all(v == [1, 2, 3] for order, v in got.items() if "during" in order)
    assert {json.loads(raw)["event_id"] for _, raw in down.bodies()} == {
        json.loads(raw)["event_id"] for _, raw in other.bodies()}
    assert "endpoint answers again" in (tmp_path / "erp.log").read_text()


async def test_kill_9_mid_stream_loses_nothing_and_repeats_carry_the_same_event_id(kafka_bootstrap, topics, tmp_path):
    server = await SimServer().start()
    routing = routing_file(tmp_path, [{"name": "erp", "url": f"{server.url}/hooks/tonglu"}])
    env = _env(kafka_bootstrap, topics, routing)
    messages = event_messages(topics.order_events, 2000, 5, prefix="k")
    publish(kafka_bootstrap, messages)
    worker = start_worker("erp", env, tmp_path / "erp1.log")
    try:
        await wait_until(lambda: server.counts["received"] >= 2500, 60, "the stream under way")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        at_kill = server.counts["received"]
        assert at_kill < len(messages)  # positive control: killed mid-stream
        worker = start_worker("erp", env, tmp_path / "erp2.log")
        await wait_until(lambda: len(server.seen) >= len(messages), 120, "every event after the restart")
    finally:
        stop_worker(worker)
        await server.stop()
    codec = AvroCodec("OrderEvent")
    assert {codec.decode(v)["event_id"] for _, _, v in messages} == server.seen
    assert server.counts["out_of_order"] == 0
    for headers, raw in server.bodies():
        assert headers["X-Tonglu-Event-Id"] == json.loads(raw)["event_id"]
    got = _versions_in_arrival_order(server)
    assert all(v == [1, 2, 3, 4, 5] for v in got.values())


async def test_an_undecodable_record_is_dead_lettered_with_the_reason_and_the_rest_delivered(
        kafka_bootstrap, topics, tmp_path):
    server = await SimServer().start()
    routing = routing_file(tmp_path, [{"name": "erp", "url": f"{server.url}/hooks/tonglu"}])
    good = event_messages(topics.order_events, 3, 2, prefix="fine")
    garbage = (topics.order_events, b"taobao:erp-test:broken", b"\xc3\x01not an order event at all")
    publish(kafka_bootstrap, [garbage, *good])
    worker = start_worker("erp", _env(kafka_bootstrap, topics, routing), tmp_path / "erp.log")
    dlq = TopicReader(kafka_bootstrap, topics.erp_dlq, "ErpDeadLetter")
    try:
        [(key, letter)] = await asyncio.to_thread(dlq.until, 1, 60)
        await wait_until(lambda: server.counts["received"] >= len(good), 30, "the good events")
    finally:
        stop_worker(worker)
        dlq.close()
        await server.stop()
    assert key == b"taobao:erp-test:broken" and letter["order_id"] == "taobao:erp-test:broken"
    assert letter["reason"].startswith("undecodable order event") and letter["event"] == garbage[2]
    assert letter["event_id"] == "" and letter["version"] == -1 and letter["attempts"] == 0
    assert server.counts["received"] == len(good) and server.counts["out_of_order"] == 0


def _turned(event: dict, event_type: str, **order) -> dict:
    """`event` as the next version of its order, of another type, with these order fields."""
    version = event["version"] + 1
    return {**event, "event_id": f"{event['order_id']}|{version}|{event_type}", "event_type": event_type,
            "version": version, "order": {**event["order"], **order, "version": version}}


async def test_a_paid_order_cancelled_or_refunded_before_shipping_is_cancelled_at_the_qimen_wms(
        kafka_bootstrap, topics, tmp_path):
    """OrderCancelled / OrderRefunded of a paid, unshipped order -> a signed `order.cancel` of its delivery
    order (after its deliveryorder.create); of a shipped or never-paid order nothing is sent."""
    server = await SimServer().start()
    routing = routing_file(tmp_path, [
        {"name": "wms", "url": f"{server.url}/router/qimen", "format": "qimen", "secret_env": "TONGLU_QIMEN_SECRET",
         "events": ["OrderPaid", "OrderCancelled", "OrderRefunded"],
         "qimen": {"app_key": "k", "customer_id": "C1", "warehouse_code": "W1", "owner_code": "O1"}}])
    codec = AvroCodec("OrderEvent")
    paid = {name: sample_event(shop_id="erp-test", external_id=name, version=2) for name in ("c", "r", "s")}
    unpaid = sample_event(shop_id="erp-test", external_id="u", version=1)
    shipped = sample_event(shop_id="erp-test", external_id="s", version=3)
    events = [*paid.values(), unpaid,
              _turned(paid["c"], "OrderCancelled", status="CANCELLED"),
              _turned(paid["r"], "OrderRefunded", refund_status="REFUNDED"),
              _turned(shipped, "OrderRefunded", refund_status="REFUNDED"),
              _turned(unpaid, "OrderCancelled", status="CANCELLED")]
    publish(kafka_bootstrap, [(topics.order_events, e["order_id"].encode(), codec.encode(e)) for e in events])
    worker = start_worker("erp", _env(kafka_bootstrap, topics, routing), tmp_path / "erp.log")
    try:
        await wait_until(lambda: server.counts["qimen_received"] >= 5, 60, "three creates and two cancels")
        await asyncio.sleep(1.0)  # whatever else would be sent arrives meanwhile (the counts below say not)
    finally:
        stop_worker(worker)
        await server.stop()
    assert server.counts["qimen_rejected"] == 0  # each signature verified
    got = [(body["method"].rsplit(".", 2)[-2], body["deliveryOrderCode"].rsplit(":", 1)[1])
           for _, _, body, _ in server.sim.qimen]
    assert sorted(got) == [("deliveryorder", "c"), ("deliveryorder", "r"), ("deliveryorder", "s"),
                           ("order", "c"), ("order", "r")], got
    assert got.index(("order", "c")) > got.index(("deliveryorder", "c"))
    cancels = {body["deliveryOrderCode"].rsplit(":", 1)[1]: (headers, raw, body)
               for headers, raw, body, _ in server.sim.qimen if body["method"] == "taobao.qimen.order.cancel"}
    headers, raw, body = cancels["c"]
    assert headers["_query"]["method"] == "taobao.qimen.order.cancel" and body["tongluEventId"].endswith("OrderCancelled")
    assert b"<warehouseCode>W1</warehouseCode>" in raw and b"<cancelReason>" in raw
    assert server.sim.cancelled == {paid["c"]["order_id"], paid["r"]["order_id"]}
