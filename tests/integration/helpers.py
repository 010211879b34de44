"""Helpers for integration tests: worker processes, consuming until N records, waiting on conditions."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from schemas.codec import AvroCodec
from schemas.kafka import Publisher, consumer_from_start, usable
from schemas.topics import Topics


async def serve_app(app) -> tuple:
    """Serve an aiohttp app on a free loopback port: (runner to clean up, base URL)."""
    from aiohttp import web

    from infra.broker import free_port

    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def worker_env(kafka_bootstrap: str, topics: Topics, **extra) -> dict:
    return {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": kafka_bootstrap, "TONGLU_TOPIC_PREFIX": topics.prefix,
            "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in extra.items()}}


def start_worker(name: str, env: dict, log_path=None) -> subprocess.Popen:
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen, timeout: float = 15) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


class TopicReader:
    """Reads a topic from the beginning and keeps everything; `until(n)` waits for n records."""

    def __init__(self, kafka_bootstrap: str, topic: str, codec_name: str | None = None):
        self.consumer = consumer_from_start({"bootstrap.servers": kafka_bootstrap}, [topic], "test")
        self.codec = AvroCodec(codec_name) if codec_name else None
        self.records: list = []

    def poll(self, seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            for msg in usable(self.consumer.consume(1000, 0.2)):
                value = self.codec.decode(msg.value()) if self.codec else msg.value()
                self.records.append((msg.key(), value))

    def until(self, count: int, timeout: float = 60.0) -> list:
        deadline = time.time() + timeout
        while len(self.records) < count and time.time() < deadline:
            self.poll(0.5)
        assert len(self.records) >= count, f"only {len(self.records)} of {count} records within {timeout}s"
        return self.records

    async def until_true(self, predicate, timeout: float = 60.0) -> list:
        """The records once `predicate(records)` holds, reading off the event loop; fails after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await loop.run_in_executor(None, self.poll, 0.3)
            if predicate(self.records):
                return self.records
        raise AssertionError(f"condition not met within {timeout}s ({len(self.records)} records)")

    def close(self) -> None:
        self.consumer.close()


def publish(kafka_bootstrap: str, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    """Deliver (topic, key, value) messages and wait until the broker acknowledged every one."""
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap})
    publisher.publish(messages)
    publisher.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")
