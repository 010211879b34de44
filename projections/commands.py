"""Publishing people's decisions about orders: OrderCommand records to `order.commands`, and the
ShipmentCommands of the API's ship-back requests to `fulfillment.commands`."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import KafkaException

from schemas.codec import AvroCodec
from schemas.kafka import Publisher

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
    """Command records (`schema`: OrderCommand, ShipmentCommand) keyed by order_id, through a `Publisher`
    created on first use (an API that never publishes a command never connects a producer)."""

    def __init__(self, kafka_config: dict, topic: str, schema: str = "OrderCommand"):
        self.topic = topic
        self._config = kafka_config
        self._codec = AvroCodec(schema)
        self._publisher: Publisher | None = None
        self._lock = threading.Lock()

    def publish(self, command: dict) -> None:
        """Produce one command and wait until the broker acknowledged it (blocking: call off the loop)."""
        value = self._codec.encode(command)
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(self._config)
            try:
                self._publisher.publish([(self.topic, command["order_id"].encode(), value)],
                                        retry_forever=False, timeout=FLUSH_TIMEOUT_SECONDS)
            except KafkaException as exc:
                raise CommandError(f"command not delivered to {self.topic}: {exc}") from exc

    def close(self) -> None:
        """Flush what is pending and drop the producer."""
        with self._lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
