"""Helpers for the ERP delivery tests: order events on a topic, routing files, the simulator on a port."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from connectors.erp.simulator import SIM, create_app
from infra.broker import free_port
from schemas.codec import AvroCodec
from tests.samples import sample_event

SECRET = "whsec_test_secret"


def event_messages(topic: str, orders: int, versions: int, prefix: str = "o") -> list[tuple[str, bytes, bytes]]:
    """Every order's events 1..versions (key order_id), interleaved across orders as a busy log would be."""
    codec = AvroCodec("OrderEvent")
    messages = []
    for version in range(1, versions + 1):
        for n in range(orders):
            event = sample_event(shop_id="erp-test", external_id=f"{prefix}{n}", version=version)
            messages.append((topic, event["order_id"].encode(), codec.encode(event)))
    return messages


def routing_file(tmp_path: Path, endpoints: list[dict], max_attempts: int = 20, initial_s: float = 0.2,
                 max_s: float = 2.0, timeout_s: float = 5.0) -> Path:
    """An ERP routing file with these endpoints ({name, url, ...}; secret_env defaults to TEST_ERP_SECRET)."""
    lines = [(f"[defaults]\ntimeout_s = {timeout_s}\n[defaults.retry]\nmax_attempts = {max_attempts}\n"
             f"initial_s = {initial_s}\nmax_s = {max_s}\n")]
    for endpoint in endpoints:
        lines.append("[[endpoints]]")
        for key, value in {"secret_env": "TEST_ERP_SECRET", **endpoint}.items():
            if isinstance(value, dict):
                continue
            lines.append(f"{key} = {value!r}" if not isinstance(value, list) else
                         f"{key} = [{', '.join(repr(v) for v in value)}]")
        for key, value in endpoint.items():
            if isinstance(value, dict):
                lines.append(f"[endpoints.{key}]")
                lines += [f"{k} = {v!r}" for k, v in value.items()]
    path = tmp_path / f"erp-{time.monotonic_ns()}.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return path


class SimServer:
    """The ERP simulator on a fixed loopback port, which can be stopped (port closed) and started again."""

    def __init__(self, warehouse=None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(secret=SECRET, warehouse=warehouse, keep=1_000_000)
        self.runner: web.AppRunner | None = None

    @property
    def sim(self):
        return self.app[SIM]

    @property
    def counts(self) -> dict:
        return self.sim.tally.counts

    @property
    def seen(self) -> set:
        """Every event id accepted."""
        return self.sim.tally.seen_events

    async def start(self) -> SimServer:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """The port closes and open connections drop, as when the endpoint crashed (`start` brings it back)."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def bodies(self) -> list[tuple[dict, bytes]]:
        """(headers, raw body) of every accepted webhook, in arrival order."""
        return [(headers, raw) for headers, raw, _, _ in self.sim.received]


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Await (serving the simulator meanwhile) until `predicate()` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")
