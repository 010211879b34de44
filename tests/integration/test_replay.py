"""Replay from the raw record archive: a no-op on an intact broker, an identical rebuild on a fresh one."""
import dataclasses
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.platforms.shopify.render import page_body as shopify_page
from connectors.platforms.shopify.simulator import shopify_id
from connectors.platforms.taobao.render import page_body as taobao_page
from connectors.runtime.archive import ArchiveWriter, read_archive
from connectors.runtime.raw_publisher import REPORT_DELIVERIES, RawPublisher
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from infra.broker import ensure_topics, free_port, start_broker
from infra.config import Settings
from infra.replay import rebuild_after_broker_loss, replay
from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from schemas.topics import shop_key
from tests.integration.helpers import start_worker, stop_worker, wait_for, worker_env

NOW = 1_780_000_000_000
SHOPS = {"taobao": ("home", World(seed=3), taobao_page),
         "shopify": ("demo", World(seed=4, region="US", currency="USD", id_factory=shopify_id), shopify_page)}


def _capture_history(raw: RawPublisher) -> dict[str, int]:
    """Three rounds of platform pages (new orders, then two rounds of changes) through the archive path;
    returns how many records of each platform."""
    published = dict.fromkeys(SHOPS, 0)
    for round_no in range(3):
        for platform, (shop, world, render) in SHOPS.items():
            now = NOW + round_no * 60_000
            if round_no == 0:
                orders = world.create_orders(shop, 25, now, paid=False)
            else:
                orders = [o for o in world.orders.values() if world.step(o, now)]
            records = [(shop_key(platform, shop), raw_record(platform, shop, render(orders[i:i + 10]), source="poll"))
                       for i in range(0, len(orders), 10)]
            raw.publish(records)
            published[platform] += len(records)
    return published


def _raw_ends(bootstrap: str, topic: str, count: int) -> dict[int, int]:
    """Read all `count` raw records; the next offset of each partition (Tansu's watermarks count batches)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)])
    ends, seen = {}, 0
    try:
        deadline = time.time() + 60
        while seen < count and time.time() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if not msg.error():
                    seen += 1
                    ends[msg.partition()] = msg.offset() + 1
        assert seen == count, f"{seen} of {count} raw records on {topic}"
        return ends
    finally:
        consumer.close()


def _caught_up(bootstrap: str, topics, ends: dict[int, int]) -> bool:
    """The normalizer has committed every raw record (it commits only after its output was confirmed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topics.prefix}tonglu-normalizer",
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topics.raw_orders, p) for p in ends], timeout=10)
        return all(c.offset == ends[c.partition] for c in committed)
    finally:
        consumer.close()


def _wait_caught_up(bootstrap, topics, count: int) -> None:
    ends = _raw_ends(bootstrap, topics.raw_orders, count)
    wait_for(lambda: _caught_up(bootstrap, topics, ends), timeout=120, interval=1, what="normalizer caught up")


def _read_all(bootstrap: str, topic: str, codec: AvroCodec) -> list[tuple[bytes, dict]]:
    """Everything a topic holds: read until each partition reached its last batch, then drained."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)]
    last_batch = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] - 1 for tp in parts}
    consumer.assign(parts)
    reached, records = {p: -1 for p in last_batch}, []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            msgs = [m for m in consumer.consume(10_000, 1.0) if not m.error()]
            for msg in msgs:
                reached[msg.partition()] = msg.offset()
                records.append((msg.key(), codec.decode(msg.value())))
            if not msgs and all(reached[p] >= last_batch[p] for p in reached):
                return records
        raise AssertionError(f"{topic}: not read to its end within 60 s")
    finally:
        consumer.close()


def _log_of(bootstrap: str, topics) -> tuple[list, dict]:
    """(every event without recorded_at, the latest order.state per order) as the broker holds them."""
    events = _read_all(bootstrap, topics.order_events, AvroCodec("OrderEvent"))
    state = _read_all(bootstrap, topics.order_state, AvroCodec("Order"))
    return [{k: v for k, v in e.items() if k != "recorded_at"} for _, e in events], dict(state)


def _run_until_caught_up(bootstrap, topics, count, data_dir, log_path):
    worker = start_worker("normalizer", worker_env(bootstrap, topics, TONGLU_DATA_DIR=data_dir), log_path)
    try:
        _wait_caught_up(bootstrap, topics, count)
    except AssertionError:
        stop_worker(worker)
        raise
    return worker


def test_replay_is_a_no_op_on_an_intact_broker_and_rebuilds_a_lost_one_with_the_same_event_ids(
        kafka_bootstrap, topics, tmp_path):
    settings = Settings(kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path / "data", topics=topics,
                        archive_retention_days=0)
    archive = ArchiveWriter(settings.archive_dir)
    raw = RawPublisher(Publisher(settings.kafka(), **REPORT_DELIVERIES), topics.raw_orders, archive)
    per_platform = _capture_history(raw)
    published = sum(per_platform.values())
    archive.close()
    assert len(list(read_archive(settings.archive_dir))) == published

    worker = _run_until_caught_up(kafka_bootstrap, topics, published, tmp_path / "n1", tmp_path / "normalizer1.log")
    try:
        original, original_state = _log_of(kafka_bootstrap, topics)
        assert len(original) > 100 and len(original_state) == 50
        # the whole archive again on the intact broker: processed (caught up again), and no new event
        assert replay(settings) == published
        _wait_caught_up(kafka_bootstrap, topics, 2 * published)
        again, _ = _log_of(kafka_bootstrap, topics)
        assert len(again) == len(original)
        # filters: one shop, and nothing fetched after now
        assert replay(settings, platform="shopify", shop="demo") == per_platform["shopify"]
        assert replay(settings, since_ms=NOW * 2) == 0
        _wait_caught_up(kafka_bootstrap, topics, 2 * published + per_platform["shopify"])
        assert len(_log_of(kafka_bootstrap, topics)[0]) == len(original)
    finally:
        assert stop_worker(worker) == 0

    # the broker is lost: a fresh one, with empty topics, rebuilt from the archive
    port = free_port()
    fresh = start_broker(port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        fresh_settings = dataclasses.replace(settings, kafka_bootstrap=bootstrap)
        ensure_topics(fresh_settings.kafka(), topics.specs(), partitions=4)
        assert rebuild_after_broker_loss(fresh_settings) == published
        assert rebuild_after_broker_loss(fresh_settings) == 0  # raw.orders holds records now
        worker = _run_until_caught_up(bootstrap, topics, published, tmp_path / "n2", tmp_path / "normalizer2.log")
        try:
            rebuilt, rebuilt_state = _log_of(bootstrap, topics)
        finally:
            assert stop_worker(worker) == 0
    finally:
        fresh.terminate()
        fresh.wait(10)
    ids = [e["event_id"] for e in rebuilt]
    assert len(ids) == len(set(ids)) == len(original)
    assert {e["event_id"]: e for e in rebuilt} == {e["event_id"]: e for e in original}
    assert rebuilt_state == original_state


def test_rebuild_does_nothing_without_an_archive(kafka_bootstrap, topics, tmp_path):
    settings = Settings(kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path / f"d{uuid.uuid4().hex}", topics=topics)
    assert rebuild_after_broker_loss(settings) == 0


def test_cli_replay_prints_its_count_and_reset_refuses_while_a_stack_runs(kafka_bootstrap, topics, tmp_path):
    import json
    import socket

    from typer.testing import CliRunner

    from infra.cli import app

    data = tmp_path / "data"
    archive = ArchiveWriter(data / "archive")
    value = raw_record("taobao", "home", b"{}", source="poll")
    archive.append([(shop_key("taobao", "home"), value, 1_000)] * 3)
    archive.close()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    busy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {"TONGLU_DATA_DIR": str(data), "TONGLU_KAFKA_BOOTSTRAP": kafka_bootstrap, "TONGLU_TOPIC_PREFIX": topics.prefix,
           "TONGLU_SIMULATORS": "none", "TONGLU_ARCHIVE_RETENTION_DAYS": "0", "TONGLU_HTTP": busy,
           "TONGLU_WEBHOOK_HTTP": f"http://127.0.0.1:{free_port()}"}
    runner = CliRunner()
    result = runner.invoke(app, ["replay", "--json", "--platform", "taobao"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["published"] == 3
    result = runner.invoke(app, ["replay", "--since", "1970-01-01T00:00:01.001Z"], env=env)
    assert result.exit_code == 0 and "republished 0 archived raw records" in result.output
    assert runner.invoke(app, ["replay", "--since", "soon"], env=env).exit_code == 2

    result = runner.invoke(app, ["reset", "--yes"], env=env)
    assert result.exit_code == 2 and "stop it first" in result.output and data.exists()
    listener.close()
    env["TONGLU_HTTP"] = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["reset"], env=env, input="n\n")
    assert result.exit_code != 0 and data.exists()  # not confirmed
    result = runner.invoke(app, ["reset"], env=env, input="y\n")
    assert result.exit_code == 0 and "wiped" in result.output and not data.exists()
