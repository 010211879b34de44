"""Helpers for integration tests: worker processes, consuming until N records, waiting on conditions, and
the connectors process against platform simulators (its settings, the raw records it published)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from schemas.codec import AvroCodec
from schemas.kafka import Publisher, consumer_from_start, usable
from schemas.sealing import open_body
from schemas.topics import Topics

_RAW = AvroCodec("RawRecord")


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


async def eventually(condition, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait (without blocking the loop) until `condition()` is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(interval)


async def post_json(session, url: str, body: dict | None = None, params: dict | None = None) -> dict:
    """POST `body` as JSON (a simulator's control API) and return the JSON answer; it must be 200."""
    async with session.post(url, json=body or {}, params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def make_orders(session, base_url: str, shop_id: str, count: int, **fields) -> list[str]:
    """External ids of `count` orders a simulator makes in a shop through its control API (`/_sim/orders`)."""
    body = {"shop_id": shop_id, "count": count, **fields}
    return (await post_json(session, f"{base_url}/_sim/orders", body))["external_ids"]


async def read_until(reader: TopicReader, predicate, timeout: float = 60.0) -> list:
    """Poll `reader` (in a thread) until `predicate(reader.records)` holds; its records then."""
    return await reader.until_true(predicate, timeout)


def raw_records(records, source: str | None = None) -> list[dict]:
    """The RawRecords of (key, value) pairs read from raw.orders (of one `source`: poll or push), each with
    its `body` opened (unsealed)."""
    out = []
    for _, value in records:
        raw = _RAW.decode(value)
        if source is None or raw["source"] == source:
            out.append({**raw, "body": open_body(raw)})
    return out


def raw_ids(records, source: str | None = None) -> set[str]:
    """External ids of every order the raw records (of one `source`) carry, through their platform's mapping."""
    from connectors import platforms

    return {o["external_id"] for raw in raw_records(records, source)
            for o in platforms.map_payload(raw["platform"], raw["body"], raw["content_type"], raw["shop_id"])}


def connector_settings(kafka_bootstrap: str, topics: Topics, data_dir, simulators: dict, policy=None):
    """ConnectorSettings for the connectors process on simulators: a free webhook port and quick polls
    (unless `policy` says otherwise)."""
    from connectors.runtime.poller import PollPolicy
    from connectors.runtime.service import ConnectorSettings
    from infra.broker import free_port

    return ConnectorSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, raw_topic=topics.raw_orders,
        calls_topic=topics.connector_calls, data_dir=data_dir, webhook_port=free_port(), simulators=simulators,
        policy=policy or PollPolicy(interval=0.3, settle_ms=0, overlap_ms=500, lookback_ms=1_000))
