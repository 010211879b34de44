"""Rebuild the normalizer's order store from the compacted `order.state` topic.

The broker's high watermark may lag (Tansu), so "caught up" means: every partition reached the
watermark it reported AND the topic stayed quiet for `idle` seconds.
"""
from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.state import OrderStore


def restore_store(kafka_config: dict, state_topic: str, store: OrderStore, owned, idle: float = 0.5,
                  timeout: float = 120.0) -> int:
    """Load every latest order whose id satisfies `owned(order_id)`; returns how many were loaded."""
    consumer = Consumer({**kafka_config, "group.id": f"tonglu-restore-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": False})
    try:
        meta = consumer.list_topics(state_topic, timeout=10).topics[state_topic]
        parts = [TopicPartition(state_topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        consumer.assign(parts)
        targets = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        reached = {p: hw <= 0 for p, hw in targets.items()}
        loaded, quiet_since, deadline = 0, time.time(), time.time() + timeout
        while time.time() < deadline:
            batch = consumer.consume(10000, 0.2)
            if not batch:
                if all(reached.values()) and time.time() - quiet_since >= idle:
                    break
                continue
            quiet_since = time.time()
            for msg in batch:
                if msg.error():
                    continue
                if msg.offset() + 1 >= targets.get(msg.partition(), 0):
                    reached[msg.partition()] = True
                key = msg.key()
                if key is None:
                    continue
                order_id = key.decode()
                if owned(order_id):
                    value = msg.value()
                    if value is None:
                        store.discard(order_id)
                    else:
                        store.put_encoded(order_id, value)
                        loaded += 1
        return loaded
    finally:
        consumer.close()
