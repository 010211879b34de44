"""`tonglu replay`: re-publish archived raw records to raw.orders, and rebuild a lost broker from them.

The connectors archive every RawRecord before producing it (connectors/runtime/archive.py). Replaying
it is safe at any time: event ids are deterministic (streams/derive.py `event_ids`) and the normalizer
holds each order's latest snapshot, so records it has seen produce no new events, while on an empty
broker they rebuild order.events and order.state with the same ids. The same replay, filtered by
platform, shop and time, re-normalizes history after a mapping fix.
"""
from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.runtime.archive import read_archive, retention_cutoff
from infra.config import Settings
from schemas.kafka import Publisher

log = logging.getLogger(__name__)

# Few, large produce batches: Tansu lists every batch a partition ever stored on each fetch, so a
# replay in small batches would slow every later fetch. `publish` flushes each chunk at once, which
# makes one batch per partition per chunk (up to the 16 MiB request limit of PRODUCER_DEFAULTS).
REPLAY_PRODUCER = {"batch.size": 16 * 1024 * 1024 - 64 * 1024, "batch.num.messages": 500_000, "linger.ms": 1000}
CHUNK_BYTES = 48 * 1024 * 1024
CHUNK_RECORDS = 200_000


def replay(settings: Settings, platform: str | None = None, shop: str | None = None,
           since_ms: int | None = None) -> int:
    """Publish the archived raw records matching the filters (within the retention) in archive order;
    returns how many."""
    cutoff = retention_cutoff(settings.archive_retention_days, int(time.time() * 1000))
    bounds = [x for x in (since_ms, cutoff) if x is not None]
    since = max(bounds) if bounds else None
    topic = settings.topics.raw_orders
    publisher = Publisher(settings.kafka(), **REPLAY_PRODUCER)
    published, chunk, size = 0, [], 0
    try:
        for record in read_archive(settings.archive_dir, platform, shop, since):
            chunk.append((topic, record.key, record.value))
            size += len(record.value)
            if size >= CHUNK_BYTES or len(chunk) >= CHUNK_RECORDS:
                publisher.publish(chunk)
                published, chunk, size = published + len(chunk), [], 0
        publisher.publish(chunk)
        published += len(chunk)
    finally:
        publisher.close()
    return published


def raw_topic_holds_records(settings: Settings) -> bool | None:
    """Whether raw.orders holds any record (None: the topic does not exist).

    Only emptiness is judged: Tansu's high watermark is the base offset of the last stored batch + 1,
    not the record count.
    """
    topic = settings.topics.raw_orders
    meta = AdminClient(settings.kafka()).list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return None
    consumer = Consumer(settings.kafka(**{"group.id": f"tonglu-replay-{uuid.uuid4().hex}",
                                           "enable.auto.commit": False}))
    try:
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                return True
        return False
    finally:
        consumer.close()


def rebuild_after_broker_loss(settings: Settings) -> int:
    """After a (re)started broker and its topics are up: if raw.orders holds no records at all and the
    archive is not empty, republish the whole archive (within the retention); returns how many."""
    topic = settings.topics.raw_orders
    held = raw_topic_holds_records(settings)
    if held is None:
        log.warning("未找到 %s，未重放 %s does not exist: nothing replayed (create the topics first)", topic, topic)
        return 0
    if held:
        log.info("%s 已有记录，无需重放 %s holds records: nothing replayed", topic, topic)
        return 0
    started = time.monotonic()
    count = replay(settings)
    if count:
        log.info("%s 为空：已从归档重放 %d 条原始记录（%.1f 秒）%s was empty: republished %d archived raw records "
                 "(%.1f s)", topic, count, time.monotonic() - started, topic, count, time.monotonic() - started)
    else:
        log.info("%s 为空，归档也为空，无需重放 %s is empty and so is the archive: nothing replayed", topic, topic)
    return count
