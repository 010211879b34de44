"""Consumer defaults and reading topics from their first offset without a consumer group.

Warm-ups and replays (the normalizer's order store from order.state, the detector's event log, the alert
router's sent reports, the benchmarks' checks) assign every partition at the beginning: no group to join,
nothing committed, nothing rebalanced.

"Caught up" cannot rest on the high watermark alone: Tansu's may lag behind what a fetch returns. A read
is caught up when every partition reached the watermark it reported at the start AND nothing arrived
for `idle` seconds.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

CONSUMER_DEFAULTS = {
    # offsets are the application's business: committed, if at all, only once the output is confirmed
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}


def consumer_config(kafka_config: dict, group_id: str, **overrides) -> dict:
    """Consumer settings: our defaults, then the deployment's (`kafka_config`), then the caller's."""
    return {**CONSUMER_DEFAULTS, **kafka_config, "group.id": group_id, **overrides}


def usable(messages: list[Message]) -> list[Message]:
    """The records of a consumed batch; end-of-partition markers dropped, other errors logged and dropped
    (librdkafka retries them), a fatal error raised."""
    good = []
    for msg in messages:
        err = msg.error()
        if err is None:
            good.append(msg)
        elif err.fatal():
            raise KafkaException(err)
        elif err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer: %s", err.str())
    return good


def consumer_from_start(kafka_config: dict, topics: Iterable[str], group: str, **overrides) -> Consumer:
    """A consumer assigned every partition of `topics` at its first offset (no group membership).

    `group` names the reader in the broker's logs; a unique suffix keeps two readers apart.
    """
    consumer = Consumer(consumer_config(kafka_config, f"{group}-{uuid.uuid4().hex[:8]}", **overrides))
    try:
        parts = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            if not meta.partitions:
                raise KafkaException(f"topic {topic} has no partitions ({meta.error}); create it first: tonglu topics")
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        consumer.assign(parts)
    except BaseException:
        consumer.close()
        raise
    return consumer


def consumer_from_now(kafka_config: dict, topics: Iterable[str], group: str, join_seconds: float = 8.0,
                      **overrides) -> Consumer:
    """A consumer of what `topics` receive from now on: a fresh group at the latest offsets, returned once
    it had `join_seconds` to join and look its offsets up (what arrives meanwhile is skipped)."""
    consumer = Consumer(consumer_config(kafka_config, f"{group}-{uuid.uuid4().hex[:8]}",
                                        **{"auto.offset.reset": "latest", **overrides}))
    consumer.subscribe(list(topics))
    consumer.consume(1, join_seconds)
    return consumer


class CatchUp:
    """When a read from the start is caught up (pure: offsets and clock readings in, a verdict out)."""

    def __init__(self, watermarks: dict[tuple[str, int], tuple[int, int]], idle: float, now: float):
        """`watermarks`: (topic, partition) -> (low, high) as reported when the read began."""
        self.pending = {tp: high for tp, (low, high) in watermarks.items() if high > low}
        self.idle, self.heard = idle, now

    def seen(self, positions: Iterable[tuple[str, int, int]], now: float) -> None:
        """Records at these (topic, partition, offset) arrived; `now` restarts the quiet period."""
        for topic, partition, offset in positions:
            end = self.pending.get((topic, partition))
            if end is not None and offset + 1 >= end:
                del self.pending[(topic, partition)]
        self.heard = now

    def done(self, now: float) -> bool:
        return not self.pending and now - self.heard >= self.idle


def read_to_end(kafka_config: dict, topics: Iterable[str], *, idle: float = 0.5, timeout: float = 120.0,
                batch: int = 10_000, group: str = "tonglu-read", **overrides) -> Iterator[list[Message]]:
    """Yield every record of `topics` from the first offset, in batches, until caught up (see the module).

    Records without errors only (`usable`), tombstones included (value None). Raises TimeoutError when not
    caught up within `timeout` seconds, e.g. while a producer keeps writing. The quiet period counts from
    when the caller hands back control, so slow processing of a batch never passes for quiet.
    """
    topics = list(topics)
    consumer = consumer_from_start(kafka_config, topics, group, **overrides)
    try:
        marks = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)
                 for tp in consumer.assignment()}
        progress = CatchUp(marks, idle, time.monotonic())
        deadline = time.monotonic() + timeout
        while not progress.done(time.monotonic()):
            if time.monotonic() >= deadline:
                behind = ", ".join(f"{t}[{p}]" for t, p in sorted(progress.pending)) or "none (never quiet)"
                raise TimeoutError(f"reading {', '.join(topics)} from the start: not caught up within "
                                   f"{timeout:.0f}s; partitions behind their watermark: {behind}")
            messages = usable(consumer.consume(batch, 0.2))
            if messages:
                positions = [(m.topic(), m.partition(), m.offset()) for m in messages]
                yield messages
                progress.seen(positions, time.monotonic())
    finally:
        consumer.close()
