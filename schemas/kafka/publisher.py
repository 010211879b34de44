"""Batched Kafka publishing with confluent-kafka: produce many, wait for all, re-send what failed.

The one producer of every process: connectors, the normalizer, the detector, the alert router, the
API's commands, the benchmarks and the tests all publish through `Publisher` with these defaults.

Nothing is acknowledged upstream until `publish` returns, so a caller that commits its input offsets
afterwards gets at-least-once delivery; sinks downstream are idempotent.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from confluent_kafka import KafkaException, Producer

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS = {
    # same partition for the same key as Java clients and Faust (murmur2), random for null keys
    "partitioner": "murmur2_random",
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.max.bytes": 16 * 1024 * 1024,
    "acks": "all",
    # lz4 batches: the broker stores and serves fewer bytes (locally its CPU per order fell by a quarter
    # and its memory by half) for about the same client CPU; every consumer decompresses transparently
    "compression.type": "lz4",
    # only failures reach Python: a callback per delivered message costs more than producing it
    "delivery.report.only.error": True,
}


class Publisher:
    """One producer per process; delivery failures are collected by one shared callback, so
    concurrent `publish` calls (several pollers of one connector process) take turns."""

    def __init__(self, kafka_config: dict, **overrides):
        self._failed: list[tuple[str, bytes | None, bytes]] = []
        self._on_success = None  # set during one `publish(delivered=...)`; needs delivery.report.only.error off
        self._turn = threading.Lock()
        self.producer = Producer({**PRODUCER_DEFAULTS, **kafka_config, **overrides, "on_delivery": self._delivered})

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self._failed.append((msg.topic(), msg.key(), msg.value()))
        elif self._on_success is not None:
            self._on_success(msg)

    def publish(self, messages: list[tuple[str, bytes | None, bytes]], retry_forever: bool = True,
                timeout: float = 30.0, delivered=None) -> None:
        """Deliver (topic, key, value) messages; blocks until every one is acknowledged by the broker.

        `delivered(msg)` is called with each acknowledged message (partition, offset) when the producer
        was created with `delivery.report.only.error` off.
        """
        with self._turn:
            self._on_success = delivered
            try:
                self._publish(messages, retry_forever, timeout)
            finally:
                self._on_success = None

    def _publish(self, messages, retry_forever: bool, timeout: float) -> None:
        pending = messages
        attempt = 0
        while pending:
            for topic, key, value in pending:
                self._produce(topic, key, value)
            remaining = self.producer.flush(timeout)
            failed, self._failed = self._failed, []
            if remaining:
                raise KafkaException(f"{remaining} messages still undelivered after {timeout:.0f}s")
            if failed and not retry_forever:
                raise KafkaException(f"{len(failed)} messages failed delivery")
            if failed:
                attempt += 1
                log.warning("re-sending %d messages that failed delivery (attempt %d)", len(failed), attempt)
                time.sleep(min(5.0, 0.1 * 2 ** attempt))
            pending = failed

    def send(self, messages: list[tuple[str, bytes | None, bytes]]) -> None:
        """Queue messages without waiting; `confirm` then waits until all sent so far are acknowledged.

        Lets a worker hand over each piece of output as soon as it is ready and wait once per batch.
        """
        with self._turn:
            for topic, key, value in messages:
                self._produce(topic, key, value)

    def confirm(self, timeout: float = 30.0) -> None:
        """Block until everything sent is acknowledged, re-sending what failed (forever, like `publish`)."""
        with self._turn:
            remaining = self.producer.flush(timeout)
            failed, self._failed = self._failed, []
            if remaining:
                raise KafkaException(f"{remaining} messages still undelivered after {timeout:.0f}s")
            self._publish(failed, True, timeout)

    async def confirm_async(self) -> None:
        """`confirm` off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.confirm)

    async def publish_async(self, messages: list[tuple[str, bytes | None, bytes]]) -> None:
        """`publish` off the event loop."""
        if messages:
            await asyncio.get_running_loop().run_in_executor(None, self.publish, messages)

    def _produce(self, topic, key, value) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key)
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self.producer.poll(0.05)

    def close(self) -> None:
        self.producer.flush(10)
