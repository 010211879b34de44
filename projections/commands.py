"""Publishing people's decisions about orders (OrderCommand records) to the `order.commands` topic."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import KafkaException, Producer

from schemas.codec import AvroCodec

FLUSH_TIMEOUT_SECONDS = 10.0


class CommandError(RuntimeError):
    """A command could not be delivered to the broker."""


def release_command(order_id: str, issued_by: str, reason: str | None, now_ms: int | None = None) -> dict:
    """An OrderCommand record releasing the held order `order_id`."""
    return {
        "command_id": uuid.uuid4().hex,
        "order_id": order_id,
        "command": "release",
        "issued_by": issued_by,
        "reason": reason,
        "issued_at": int(time.time() * 1000) if now_ms is None else now_ms,
    }


class CommandPublisher:
    """A lazily created confluent-kafka Producer writing OrderCommand records keyed by order_id."""

    def __init__(self, kafka_config: dict, topic: str):
        self.topic = topic
        self._config = {**kafka_config, "partitioner": "murmur2_random"}
        self._codec = AvroCodec("OrderCommand")
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def publish(self, command: dict) -> None:
        """Produce one command and wait until the broker acknowledged it (blocking: call off the loop)."""
        value = self._codec.encode(command)
        failures: list = []

        def delivered(err, _msg):
            if err is not None:
                failures.append(err)

        with self._lock:
            if self._producer is None:
                self._producer = Producer(self._config)
            try:
                self._producer.produce(
                    self.topic, key=command["order_id"].encode(), value=value, on_delivery=delivered
                )
            except (BufferError, KafkaException) as exc:
                raise CommandError(f"cannot produce to {self.topic}: {exc}") from exc
            if self._producer.flush(FLUSH_TIMEOUT_SECONDS) != 0:
                raise CommandError(f"command not acknowledged within {FLUSH_TIMEOUT_SECONDS:.0f}s")
        if failures:
            raise CommandError(f"command delivery failed: {failures[0]}")

    def close(self) -> None:
        """Flush what is pending and drop the producer."""
        with self._lock:
            if self._producer is not None:
                self._producer.flush(FLUSH_TIMEOUT_SECONDS)
                self._producer = None
