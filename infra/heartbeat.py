"""Every worker process says it is alive: one `Heartbeat` record every few seconds on tonglu.heartbeats.

The API (`projections.health`) reads them and reports a stage down when none of its processes has
beaten for a while; that works wherever the processes run. A process beats only while its `alive`
check passes, so a worker whose consuming thread died falls silent although its process lives on.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from confluent_kafka import Producer

from schemas.codec import AvroCodec

log = logging.getLogger(__name__)


def heartbeat_record(stage: str, host: str, pid: int, started_at_ms: int, now_ms: int,
                     progress: int | None = None) -> dict:
    """One `Heartbeat` (instance id = host:pid:started_at, unique per process run)."""
    return {"stage": stage, "instance_id": f"{host}:{pid}:{started_at_ms}", "host": host, "pid": pid,
            "started_at": started_at_ms, "sent_at": now_ms, "progress": progress}


class HeartbeatSender:
    """A daemon thread producing this process's heartbeat every `interval` seconds."""

    def __init__(self, kafka_config: dict, topic: str, stage: str, interval: float = 2.0,
                 alive: Callable[[], bool] = lambda: True, progress: Callable[[], int | None] = lambda: None):
        self._topic, self._stage, self._interval = topic, stage, interval
        self._alive, self._progress = alive, progress
        # A heartbeat that cannot be delivered within a few seconds is stale: drop it rather than
        # deliver it late, and keep only a few queued while the broker is away.
        self._producer = Producer({**kafka_config, "linger.ms": 0, "message.timeout.ms": int(interval * 2500),
                                   "queue.buffering.max.messages": 100, "reconnect.backoff.max.ms": 1000})
        self._codec = AvroCodec("Heartbeat")
        self._host, self._pid, self._started = socket.gethostname(), os.getpid(), int(time.time() * 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tonglu-heartbeat-{stage}", daemon=True)

    def start(self) -> HeartbeatSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._alive():
                record = heartbeat_record(self._stage, self._host, self._pid, self._started,
                                          int(time.time() * 1000), self._progress())
                try:
                    self._producer.produce(self._topic, key=f"{self._stage}:{record['instance_id']}".encode(),
                                           value=self._codec.encode(record))
                except BufferError:  # the broker has been away for a while: this beat is skipped
                    pass
            self._producer.poll(0)
            self._stop.wait(self._interval)
        self._producer.flush(1)
