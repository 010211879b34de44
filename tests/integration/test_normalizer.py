"""The Faust normalizer on the real broker: pages in, events out, dead letters, restart without duplicates,
a batch whose output the broker never acknowledged normalized again after a restart, two workers
rebalancing."""
import json
import random
import time
from pathlib import Path

from connectors.runtime.records import raw_record
from infra.broker import ensure_topics
from schemas.topics import shop_key
from streams.normalize import Normalizer, RawIn
from tests.integration.helpers import TopicReader, publish, start_worker, stop_worker, wait_for, worker_env
from tests.integration.produce_blocker import ProduceBlocker
from tests.poison import BAD, taobao_page

SAMPLES = Path(__file__).parents[2] / "connectors" / "platforms" / "taobao" / "samples"


def _page(body: bytes, shop="home") -> tuple:
    return (shop_key("taobao", shop), raw_record("taobao", shop, body, source="poll"))


def test_pages_become_events_bad_records_become_dead_letters_and_restarts_emit_nothing_twice(
        kafka_bootstrap, topics, tmp_path):
    page = (SAMPLES / "trades_sold_increment_get.json").read_bytes()
    garbage = raw_record("taobao", "home", b"{\"trades_sold_increment_get_response\": {\"trades\": ", source="poll")
    publish(kafka_bootstrap, [(topics.raw_orders, *_page(page)),
                              (topics.raw_orders, shop_key("taobao", "home"), garbage),
                              (topics.raw_orders, b"x", b"not avro at all")])
    env = worker_env(kafka_bootstrap, topics)
    worker = start_worker("normalizer", env, tmp_path / "normalizer1.log")
    events = TopicReader(kafka_bootstrap, topics.order_events, "OrderEvent")
    dead = TopicReader(kafka_bootstrap, topics.raw_orders_dlq, "DeadLetter")
    try:
        # 3 trades: paid (Created, Paid), shipped (Created, Paid, Shipped), closed after refund
        # (Created, Paid, Cancelled, Refunded)
        got = events.until(9, timeout=90)
        by_order = {}
        for key, event in got:
            assert key.decode() == event["order_id"]
            by_order.setdefault(event["order_id"], []).append(event["event_type"])
        assert by_order["taobao:home:2841736650118523691"] == ["OrderCreated", "OrderPaid"]
        assert by_order["taobao:home:2840915522076839412"] == ["OrderCreated", "OrderPaid", "OrderShipped"]
        assert by_order["taobao:home:2839550187413367205"] == [
            "OrderCreated", "OrderPaid", "OrderCancelled", "OrderRefunded"]
        letters = dead.until(2, timeout=30)
        stages = sorted(letter["stage"] for _, letter in letters)
        assert stages == ["decode", "map"]
        assert all(letter["error"] for _, letter in letters)
        assert any(letter["value"] == b"not avro at all" for _, letter in letters)
    finally:
        assert stop_worker(worker) == 0  # a clean stop, not a crash that happened to leave the events

    # a restarted worker restores its state: the same page again gives nothing, a change gives version 2
    changed = json.loads(page)
    trade = changed["trades_sold_increment_get_response"]["trades"]["trade"][0]
    trade["status"], trade["modified"], trade["consign_time"] = "WAIT_BUYER_CONFIRM_GOODS", "2024-03-18 10:30:00", \
        "2024-03-18 10:29:59"
    publish(kafka_bootstrap, [(topics.raw_orders, *_page(page)),
                              (topics.raw_orders, *_page(json.dumps(changed).encode()))])
    worker = start_worker("normalizer", env, tmp_path / "normalizer2.log")
    try:
        got = events.until(10, timeout=90)
        events.poll(3)
        new = events.records[9:]
        assert [(e["event_type"], e["version"]) for _, e in new] == [("OrderShipped", 2)]
        assert new[0][1]["order"]["status"] == "SHIPPED"
    finally:
        code = stop_worker(worker)
        events.close()
        dead.close()
    assert code == 0


def _expected_event_ids(messages) -> dict:
    """What the pure normalizer makes of the same records in the same per-shop order: event_id -> (order, version)."""
    normalizer, out = Normalizer(), {}
    for offset, (_, key, value) in enumerate(messages):
        for _, event in normalizer.process([RawIn("raw.orders", 0, offset, key, value)]).events:
            decoded = normalizer.event_codec.decode(event)
            out[decoded["event_id"]] = (decoded["order_id"], decoded["version"], decoded["event_type"])
    return out


def _normalize_until(bootstrap: str, topics, env: dict, log_path, events: int, dead: int) -> tuple[list, list]:
    """Run one normalizer until `events` events and `dead` dead letters arrived (and 2 s more, for any
    extra one), stop it, and return what arrived; the worker must stop cleanly."""
    event_reader = TopicReader(bootstrap, topics.order_events, "OrderEvent")
    dead_reader = TopicReader(bootstrap, topics.raw_orders_dlq, "DeadLetter")
    worker = start_worker("normalizer", env, log_path)
    try:
        event_reader.until(events, timeout=120)
        dead_reader.until(dead, timeout=60)
        event_reader.poll(2)
        dead_reader.poll(2)
    finally:
        code = stop_worker(worker)
        event_reader.close()
        dead_reader.close()
    assert code == 0
    return [e for _, e in event_reader.records], [letter for _, letter in dead_reader.records]


def test_hundreds_of_mixed_records_bad_in_equals_dead_letters_out(kafka_bootstrap, topics, tmp_path):
    rng = random.Random(13)
    bad_kinds = list(BAD.values())
    messages, bad = [], 0
    for i in range(300):
        if rng.random() < 0.6:
            value = bad_kinds[i % len(bad_kinds)][0]
            messages.append((topics.raw_orders, shop_key("taobao", f"shop{i % 7}"), value))
            bad += 1
        else:
            shop = f"shop{i % 7}"
            messages.append((topics.raw_orders, shop_key("taobao", shop), raw_record(
                "taobao", shop, taobao_page(i), source="poll")))
    expected = _expected_event_ids(messages)
    publish(kafka_bootstrap, messages)
    got_events, letters = _normalize_until(kafka_bootstrap, topics, worker_env(kafka_bootstrap, topics),
                                           tmp_path / "normalizer.log", len(expected), bad)
    assert len(letters) == bad and bad > 150
    assert len({(letter["partition"], letter["offset"]) for letter in letters}) == bad
    assert sum(letter["tombstone"] for letter in letters) == sum(m[2] is None for m in messages)
    got = {e["event_id"]: (e["order_id"], e["version"], e["event_type"]) for e in got_events}
    assert got == expected and len(got_events) == len(expected)


def test_a_batch_the_broker_never_acknowledged_is_normalized_again_after_a_restart(tmp_path):
    blocker = ProduceBlocker().start()
    try:
        from schemas.topics import Topics

        topics = Topics(prefix="undelivered.")
        ensure_topics({"bootstrap.servers": blocker.bootstrap}, topics.specs(), partitions=4)
        publish(blocker.bootstrap, [(topics.raw_orders, shop_key("taobao", "home"), raw_record(
            "taobao", "home", taobao_page(0), source="poll")), (topics.raw_orders, b"x", b"not avro at all")])
        env = worker_env(blocker.bootstrap, topics, TONGLU_CONFIRM_TIMEOUT_S=3)
        blocker.blocking = True
        first = start_worker("normalizer", env, tmp_path / "normalizer1.log")
        try:
            code = first.wait(120)
        finally:
            stop_worker(first)
        log = (tmp_path / "normalizer1.log").read_text()
        assert code == 75 and "not acknowledged by the broker" in log, log[-2000:]
        assert blocker.dropped >= 1
        blocker.blocking = False
        got_events, letters = _normalize_until(blocker.bootstrap, topics, env, tmp_path / "normalizer2.log", 9, 1)
        # exactly the page's events, first versions: nothing of the first attempt landed, nothing was lost
        assert len(got_events) == 9 and {e["version"] for e in got_events} == {1}
        assert [letter["value"] for letter in letters] == [b"not avro at all"]
    finally:
        blocker.stop()


def test_two_normalizers_rebalancing_lose_nothing_and_never_restart_versions(kafka_bootstrap, topics, tmp_path):
    shops = [f"shop{i}" for i in range(8)]  # on all four partitions of raw.orders
    steps = 15
    waves = [[(topics.raw_orders, shop_key("taobao", shop), raw_record("taobao", shop, taobao_page(step),
                                                                         source="poll"))
              for step in range(w * 5, w * 5 + 5) for shop in shops] for w in range(steps // 5)]
    for wave in waves:  # a repeated page changes nothing
        wave.append(wave[-1])
    expected = _expected_event_ids([m for wave in waves for m in wave])
    env = worker_env(kafka_bootstrap, topics)
    events = TopicReader(kafka_bootstrap, topics.order_events, "OrderEvent")
    a = start_worker("normalizer", env, tmp_path / "a.log")
    b = None
    try:
        publish(kafka_bootstrap, waves[0])
        events.until(len(_expected_event_ids([m for m in waves[0]])), timeout=120)
        b = start_worker("normalizer", env, tmp_path / "b.log")
        publish(kafka_bootstrap, waves[1][: len(waves[1]) // 2])
        wait_for(lambda: "warmed raw.orders partitions" in (tmp_path / "b.log").read_text(), timeout=90,
                 what="the second normalizer taking partitions")
        publish(kafka_bootstrap, waves[1][len(waves[1]) // 2:])
        time.sleep(1)
        assert stop_worker(a) == 0  # mid-stream: the third wave goes only to the survivor
        publish(kafka_bootstrap, waves[2])
        wait_for(lambda: (events.poll(0.5), {e["event_id"] for _, e in events.records} >= set(expected))[1],
                 timeout=180, what="every expected event")
        events.poll(2)
    finally:
        stop_worker(a)
        code = stop_worker(b) if b is not None else None
        events.close()
    assert code == 0
    got: dict = {}
    for _, e in events.records:  # a repeat after a rebalance is the same event, never a different one
        got.setdefault(e["event_id"], set()).add((e["order_id"], e["version"], e["event_type"]))
    assert {eid: next(iter(v)) for eid, v in got.items()} == expected
    assert all(len(v) == 1 for v in got.values())
    versions: dict = {}
    for order_id, version, _ in expected.values():
        versions.setdefault(order_id, set()).add(version)
    assert all(v == set(range(1, max(v) + 1)) for v in versions.values())
    assert max(max(v) for v in versions.values()) == steps  # the first trade: created, then one change per step
