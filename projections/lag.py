"""Consumer lag of the normalizer on raw.orders, from counted ends rather than broker watermarks.

The local broker's high watermark can be wrong, so a group-less reader consumes every partition
of raw.orders from the beginning (values are never decoded) and takes the last offset it saw + 1
as the true end. Lag per partition = counted end - the normalizer group's committed offset.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas.kafka import consumer_config, usable

log = logging.getLogger(__name__)
_REFRESH_SECONDS = 1.0
_METADATA_SECONDS = 30.0


class LagTracker:
    """Counts raw records per partition and compares the counted end with the group's commits."""

    def __init__(self, kafka_config: dict, topic: str, group: str, session_timeout_ms: int = 6000):
        self.topic = topic
        self.group = group
        self._kafka_config = dict(kafka_config)
        self._session_timeout_ms = session_timeout_ms
        self._lock = threading.Lock()
        self._ends: dict[int, int] = {}
        self._counts: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tonglu-lag", daemon=True)

    def start(self) -> None:
        """Start the counting thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop and join the counting thread."""
        self._stop.set()
        self._thread.join(timeout)

    def snapshot(self) -> dict:
        """{"partitions": {p: {"end", "committed", "lag"}}, "total": lag, "raw_records": counted}."""
        with self._lock:
            parts = {}
            for p in sorted(set(self._ends) | set(self._committed)):
                end, committed = self._ends.get(p, 0), self._committed.get(p, -1)
                # Nothing committed yet: everything counted in the partition is still to do.
                lag = self._counts.get(p, 0) if committed < 0 else max(end - committed, 0)
                parts[p] = {"end": end, "committed": committed, "lag": lag}
            raw = sum(self._counts.values())
        return {"partitions": parts, "total": sum(v["lag"] for v in parts.values()), "raw_records": raw}

    def _config(self, group_id: str) -> dict:
        return consumer_config(self._kafka_config, group_id, **{"session.timeout.ms": self._session_timeout_ms})

    def _run(self) -> None:
        counter = Consumer(
            {**self._config(f"tonglu-lag-counter-{uuid.uuid4().hex[:8]}"), "enable.auto.offset.store": False}
        )
        # Never subscribes, so it never joins or disturbs the normalizer's group: it only reads commits.
        reader = Consumer(self._config(self.group))
        assigned: set[int] = set()
        next_metadata = next_refresh = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_metadata:
                    assigned = self._assign_new(counter, assigned)
                    next_metadata = now + _METADATA_SECONDS
                self._count(counter.consume(num_messages=10_000, timeout=0.2))
                if now >= next_refresh and assigned:
                    self._refresh_committed(reader, assigned)
                    next_refresh = now + _REFRESH_SECONDS
        except Exception:  # the dashboard loses lag figures, the projector keeps running
            log.exception("lag tracker stopped")
        finally:
            counter.close()
            reader.close()

    def _assign_new(self, counter: Consumer, assigned: set[int]) -> set[int]:
        try:
            meta = counter.list_topics(self.topic, timeout=5.0).topics.get(self.topic)
        except KafkaException as exc:  # broker briefly unreachable
            log.warning("lag tracker: no metadata for %s: %s", self.topic, exc)
            return assigned
        if meta is None or meta.error is not None:
            return assigned
        new = sorted(set(meta.partitions) - assigned)
        if new:
            counter.incremental_assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in new])
        return assigned | set(new)

    def _count(self, messages) -> None:
        ends: dict[int, int] = {}
        counts: dict[int, int] = {}
        for msg in usable(messages):
            p = msg.partition()
            ends[p] = msg.offset() + 1
            counts[p] = counts.get(p, 0) + 1
        if ends:
            with self._lock:
                for p, end in ends.items():
                    self._ends[p] = max(self._ends.get(p, 0), end)
                    self._counts[p] = self._counts.get(p, 0) + counts[p]

    def _refresh_committed(self, reader: Consumer, assigned: set[int]) -> None:
        try:
            tps = reader.committed([TopicPartition(self.topic, p) for p in sorted(assigned)], timeout=5.0)
        except KafkaException as exc:  # coordinator not available yet
            log.debug("lag tracker: committed offsets of %s unavailable: %s", self.group, exc)
            return
        with self._lock:
            for tp in tps:
                self._committed[tp.partition] = tp.offset
