"""`read_to_end` on the real broker: an empty topic, several partitions, a producer still writing, a timeout."""
from __future__ import annotations

import threading
import time

import pytest

from schemas.kafka import Publisher, read_to_end
from schemas.topics import partition_for

pytestmark = pytest.mark.integration


def _read(bootstrap: str, topic: str, **kwargs) -> list[tuple[bytes | None, bytes | None]]:
    return [(m.key(), m.value()) for batch in read_to_end({"bootstrap.servers": bootstrap}, [topic], **kwargs)
            for m in batch]


def _records(start: int, count: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{n % 37}".encode(), f"v{n}".encode()) for n in range(start, start + count)]


def test_an_empty_topic_ends_after_the_quiet_period(kafka_bootstrap, topics):
    t0 = time.monotonic()
    assert _read(kafka_bootstrap, topics.order_state, idle=0.5, timeout=20) == []
    assert 0.5 <= time.monotonic() - t0 < 5


def test_every_record_of_every_partition_with_tombstones(kafka_bootstrap, topics):
    records = [*_records(0, 2000), (b"gone", None)]
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap})
    publisher.publish([(topics.order_state, k, v) for k, v in records])
    assert len({partition_for(k, 4) for k, _ in records}) == 4  # the read must cover all four partitions
    got = _read(kafka_bootstrap, topics.order_state, idle=0.5, timeout=30, batch=300)
    assert sorted(got, key=repr) == sorted(records, key=repr)
    publisher.close()


def test_a_producer_still_writing_is_read_until_it_stops(kafka_bootstrap, topics):
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap}, **{"linger.ms": 0})
    publisher.publish([(topics.raw_orders, k, v) for k, v in _records(0, 100)])

    def keep_writing():
        for step in range(1, 16):  # 1.5 s of writing, a batch every 0.1 s (well under the 1 s quiet period)
            time.sleep(0.1)
            publisher.publish([(topics.raw_orders, k, v) for k, v in _records(step * 100, 100)])

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        got = _read(kafka_bootstrap, topics.raw_orders, idle=1.0, timeout=30)
    finally:
        writer.join()
    assert sorted(v for _, v in got) == sorted(v for _, v in _records(0, 1600))
    publisher.close()


def test_a_read_that_never_goes_quiet_times_out(kafka_bootstrap, topics):
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap}, **{"linger.ms": 0})
    stop = threading.Event()

    def write_forever():
        n = 0
        while not stop.is_set():
            publisher.publish([(topics.alerts, b"k", f"v{n}".encode())])
            n += 1
            time.sleep(0.05)

    writer = threading.Thread(target=write_forever)
    writer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="not caught up within 2s"):
            _read(kafka_bootstrap, topics.alerts, idle=0.5, timeout=2)
    finally:
        stop.set()
        writer.join()
        publisher.close()
    assert 2 <= time.monotonic() - t0 < 6
