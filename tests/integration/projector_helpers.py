"""A running projector + API on chdb for integration tests, and async wait-until."""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiohttp

from infra.broker import free_port
from projections.access import Role
from projections.clickhouse import ChdbBackend
from projections.tokens import TokenStore
from tests.integration.helpers import publish


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Deliver (key, value) records to one topic (see `publish`)."""
    publish(bootstrap, [(topic, key, value) for key, value in records])


async def wait_for(check, timeout: float = 45.0, interval: float = 0.2):
    """Await `check()` until it returns something truthy (returned), or fail after `timeout`."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@contextlib.asynccontextmanager
async def running_projector(kafka_bootstrap: str, topic_names: dict, data_path: str, normalizer_group: str,
                            tokens: TokenStore, expect_healthy: bool = True, **options):
    """Start `run_projector` on chdb at `data_path` (with `options`, e.g. its health monitor) whose API
    accepts the tokens of `tokens`; yields the API base URL once /healthz answers (200, or anything with
    `expect_healthy=False`)."""
    from projections.api_auth import AuthConfig
    from projections.service import run_projector

    backend = ChdbBackend(data_path)
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(run_projector(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, topics=topic_names, normalizer_group=normalizer_group,
        backend=backend, http_host="127.0.0.1", http_port=port, group_id=f"proj-{uuid.uuid4().hex[:6]}", stop=stop,
        auth=AuthConfig(tokens), **options))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:

        async def up():
            if task.done():
                task.result()
            try:
                async with http.get(f"{base}/healthz") as resp:
                    return resp.status == 200 or not expect_healthy
            except aiohttp.ClientConnectionError:
                return False

        await wait_for(up, 20)
    try:
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        backend.close()


def bearer(store: TokenStore, role: Role, name: str | None = None) -> dict:
    """Headers carrying a new token of `role` from `store`."""
    token, _ = store.create(name or role.label, role)
    return {"Authorization": f"Bearer {token}"}
