"""Detector and alert router processes on the real broker, alerts into the chat simulators over HTTP."""
import asyncio
import json
import time
import urllib.request
from pathlib import Path

from aiohttp import web

from connectors import platforms
from connectors.alerts.simulators import create_app as alert_sim_app
from connectors.simkit.server import WORLD
from infra.broker import free_port
from infra.config import local_alert_secrets, write_local_routing
from schemas.codec import AvroCodec
from schemas.topics import partition_for
from streams.derive import derive_events
from tests.integration.helpers import TopicReader, publish, start_worker, stop_worker, worker_env

NOW = int(time.time() * 1000)


def _mapped(orders, shop: str) -> list[dict]:
    """Simulator orders as the normalizer maps them from a Taobao page."""
    return platforms.map_payload("taobao", platforms.module("taobao", "render").page_body(orders), "json", shop)


def _events(defect: str | None, count: int, shop: str) -> list[tuple[bytes, bytes]]:
    world = platforms.module("taobao", "simulator").create_app()[WORLD]
    mapped = _mapped(world.create_orders(shop, count, NOW, defect=defect), shop)
    order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
    out = []
    for order in mapped:
        events = derive_events(None, order, NOW)
        body = order_codec.encode_body(order)
        out += [(order["order_id"].encode(), event_codec.encode_with_tail(e, body)) for e in events]
    return out


def _corrupt_events() -> list[tuple[bytes, bytes]]:
    """Garbage, and an update of an unseen order whose snapshot is broken where a light read skips."""
    sim = platforms.module("taobao", "simulator").create_app()[WORLD].create_orders("corrupt", 1, NOW)
    (order,) = _mapped(sim, "corrupt")
    later = dict(order, platform_status="SELLER_CONSIGNED_PART", updated_at=order["updated_at"] + 60_000)
    (event,) = derive_events(order, later, NOW)
    body = AvroCodec("Order").encode_body(later)
    title = body.index(later["lines"][0]["title"].encode())
    body = body[:title] + b"\xff" + body[title + 1:]  # not UTF-8 any more
    key = later["order_id"].encode()
    return [(key, b"not an order event"), (key, AvroCodec("OrderEvent").encode_with_tail(event, body))]


async def _alert_simulators(tmp_path: Path, **routing) -> tuple[web.AppRunner, str, Path]:
    """The chat/SMS simulators on a free port and a routing file pointing at them."""
    runner = web.AppRunner(alert_sim_app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    return runner, base, write_local_routing(tmp_path / "routing.toml", base, **routing)


def _one_per_partition(events: list[tuple[bytes, bytes]], partitions: int) -> list[tuple[bytes, bytes]]:
    """The events of one order per partition of a topic keyed by order id (a marker in every partition)."""
    chosen: dict[int, bytes] = {}
    for key, _ in events:
        chosen.setdefault(partition_for(key, partitions), key)
    assert len(chosen) == partitions, "too few orders to cover every partition"
    return [(key, value) for key, value in events if key in chosen.values()]


def _alerted_orders(messages: list[dict]) -> list[str]:
    return [m["text"].split("订单：[")[1].split("]")[0] for m in messages]


def _messages(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/_sim/messages?service=dingtalk", timeout=5) as resp:
        return json.loads(resp.read())["messages"]


async def test_defective_orders_raise_findings_and_one_alert_each_across_restarts(kafka_bootstrap, topics, tmp_path):
    runner, base, routing = await _alert_simulators(tmp_path, max_immediate_per_window=10)
    env = worker_env(kafka_bootstrap, topics, TONGLU_ALERT_ROUTING=routing, **local_alert_secrets())
    events = _corrupt_events() + _events(None, 20, "plain") + _events("zero_amount", 2, "bad")
    publish(kafka_bootstrap, [(topics.order_events, k, v) for k, v in events])
    detector = start_worker("detector", env, tmp_path / "detector.log")
    alerter = start_worker("alerter", env, tmp_path / "alerter.log")
    anomalies = TopicReader(kafka_bootstrap, topics.order_anomalies, "Anomaly")
    loop = asyncio.get_running_loop()
    try:
        found = await loop.run_in_executor(None, anomalies.until, 2, 60)
        assert {a["rule"] for _, a in found} == {"zero_amount"}
        assert all(a["state"] == "raised" and a["action"] == "hold" and a["order_id"].startswith("taobao:bad:")
                   for _, a in found)
        deadline = time.time() + 60
        while time.time() < deadline and len(await loop.run_in_executor(None, _messages, base)) < 2:
            await asyncio.sleep(0.5)
        sent = await loop.run_in_executor(None, _messages, base)
        assert len(sent) == 2 and all("订单金额为 0" in m["text"] for m in sent)
        assert {a["order_id"] for _, a in found} == set(_alerted_orders(sent))

        # restarting both replays the log, yet sends nothing twice
        assert stop_worker(alerter) == 0
        assert stop_worker(detector) == 0
        assert (tmp_path / "detector.log").read_text().count("undecodable order event skipped") == 2
        detector = start_worker("detector", env, tmp_path / "detector2.log")
        alerter = start_worker("alerter", env, tmp_path / "alerter2.log")
        await loop.run_in_executor(None, anomalies.until, 4, 60)  # the replayed findings
        # barrier: after the replay, a defective marker order in every partition; once their alerts are
        # out, the router has read every replayed finding before them
        markers = _one_per_partition(_events("zero_amount", 16, "marker"), 4)
        publish(kafka_bootstrap, [(topics.order_events, k, v) for k, v in markers])
        marker_ids = {k.decode() for k, _ in markers}
        deadline = time.time() + 60
        while time.time() < deadline and not marker_ids <= set(
                _alerted_orders(await loop.run_in_executor(None, _messages, base))):
            await asyncio.sleep(0.5)
        again = _alerted_orders(await loop.run_in_executor(None, _messages, base))
        assert marker_ids <= set(again), "the marker orders were never alerted"
        assert sorted(again) == sorted(set(_alerted_orders(sent)) | marker_ids)  # nothing twice

        # a person releases one held order: the finding resolves
        order_id = found[0][1]["order_id"]
        command = AvroCodec("OrderCommand").encode({"command_id": "c1", "order_id": order_id, "command": "release",
                                                    "issued_by": "值班同学", "reason": "checked with buyer",
                                                    "issued_at": int(time.time() * 1000)})
        publish(kafka_bootstrap, [(topics.order_commands, order_id.encode(), command)])
        deadline = time.time() + 60
        while time.time() < deadline and not any(a["state"] == "resolved" for _, a in anomalies.records):
            await loop.run_in_executor(None, anomalies.poll, 0.5)
        resolved = [a for _, a in anomalies.records if a["state"] == "resolved"]
        assert resolved and resolved[0]["order_id"] == order_id
        assert resolved[0]["evidence"]["released_by"] == "值班同学"
    finally:
        detector_code, alerter_code = stop_worker(detector), stop_worker(alerter)
        anomalies.close()
        await runner.cleanup()
    assert (detector_code, alerter_code) == (0, 0), "a worker did not exit cleanly on SIGTERM"


async def test_an_alert_survives_every_channel_being_down(kafka_bootstrap, topics, tmp_path):
    """DingTalk and Feishu down, no on-call phone configured: the alert fails, stays pending and is
    delivered once a channel is back."""
    runner, base, routing = await _alert_simulators(tmp_path)
    loop = asyncio.get_running_loop()

    def fault(service: str, count: int) -> None:
        request = urllib.request.Request(f"{base}/_sim/faults", method="POST",
                                         data=json.dumps({"service": service, "kind": "down",
                                                          "count": count}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()

    await loop.run_in_executor(None, fault, "dingtalk", 3)   # every attempt of the first round fails
    await loop.run_in_executor(None, fault, "feishu", 3)
    env = worker_env(kafka_bootstrap, topics, TONGLU_ALERT_ROUTING=routing, TONGLU_ALERT_RETRY_MS=3000, **local_alert_secrets())
    publish(kafka_bootstrap, [(topics.order_events, k, v) for k, v in _events("zero_amount", 1, "down")])
    detector = start_worker("detector", env, tmp_path / "detector.log")
    alerter = start_worker("alerter", env, tmp_path / "alerter.log")
    reports = TopicReader(kafka_bootstrap, topics.alerts, "AlertReport")
    try:
        got = await loop.run_in_executor(None, lambda: reports.until(2, 90))
        assert got[0][1]["ok"] is False and {a["channel"] for a in got[0][1]["attempts"]} >= {
            "dingtalk-ops", "feishu-ops"}
        assert got[-1][1]["ok"] is True
        sent = await loop.run_in_executor(None, _messages, base)
        assert len(sent) == 1 and "订单金额为 0" in sent[0]["text"]
    finally:
        detector_code, alerter_code = stop_worker(detector), stop_worker(alerter)
        reports.close()
        await runner.cleanup()
    assert (detector_code, alerter_code) == (0, 0), "a worker did not exit cleanly on SIGTERM"


def _duplicate_pair(shop: str, original_last: bool) -> tuple[list[tuple[bytes, bytes]], str, str]:
    """A re-placed order and its original as order events, in the order the detector judges them: the one
    that arrives last is first seen in a later state (shipped two minutes on), as a poll delivers it. With
    `original_last` the original arrives after the order that duplicates it (a platform listing newest
    first). Returns (events, original id, re-placed id)."""
    world = platforms.module("taobao", "simulator").create_app()[WORLD]
    (twin,) = world.create_orders(shop, 1, NOW, defect="duplicate_order")
    (original,) = [o for o in world.orders.values() if o is not twin]
    last = original if original_last else twin
    while last.status == "PAID":  # the detector orders a batch by when things happened
        world.step(last, NOW + 120_000)
    order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
    out = []
    for sim in ((twin, original) if original_last else (original, twin)):
        (order,) = _mapped([sim], shop)
        body = order_codec.encode_body(order)
        out += [(order["order_id"].encode(), event_codec.encode_with_tail(e, body))
                for e in derive_events(None, order, NOW)]
    return out, f"taobao:{shop}:{original.external_id}", f"taobao:{shop}:{twin.external_id}"


async def test_the_later_placed_order_of_a_duplicate_pair_is_flagged_in_either_arrival_order(kafka_bootstrap,
                                                                                           topics, tmp_path):
    in_order, original_a, again_a = _duplicate_pair("dup-in-order", original_last=False)
    reversed_, original_b, again_b = _duplicate_pair("dup-newest-first", original_last=True)
    publish(kafka_bootstrap, [(topics.order_events, k, v) for k, v in in_order + reversed_])
    detector = start_worker("detector", worker_env(kafka_bootstrap, topics), tmp_path / "detector.log")
    anomalies = TopicReader(kafka_bootstrap, topics.order_anomalies, "Anomaly")
    loop = asyncio.get_running_loop()
    try:
        found = await loop.run_in_executor(None, anomalies.until, 2, 60)
        assert sorted((a["order_id"], a["rule"], a["evidence"]["other_order_id"]) for _, a in found) == \
            sorted([(again_a, "duplicate_order", original_a), (again_b, "duplicate_order", original_b)])
        # positive control: a defective order published after the pairs is found, and still nothing flags
        # an original
        marker = _events("zero_amount", 1, "dup-marker")
        publish(kafka_bootstrap, [(topics.order_events, k, v) for k, v in marker])
        records = await loop.run_in_executor(None, anomalies.until, 3, 60)
        assert records[-1][1]["rule"] == "zero_amount"
        assert not {a["order_id"] for _, a in records} & {original_a, original_b}
    finally:
        code = stop_worker(detector)
        anomalies.close()
    assert code == 0
