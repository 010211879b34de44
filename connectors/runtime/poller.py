"""Incremental polling of one shop: windows with lookback, checkpoints, every page published as received.

A window is [start, end) of modification time. It ends `settle` before now (platform indexes lag) and
is never longer than the client allows. It starts `overlap` before the checkpoint, and every
`sweep_every` seconds one window starts `lookback` before it instead: writes that reach the platform's
index late are caught again, and duplicates are harmless downstream. Re-reading the whole lookback on
every poll read each order about lookback / interval times (60 at one poll a second): at 1,500 new
orders/s the normalizer mapped three to eight times the orders created, and the calls ate the
platform's rate budget. The checkpoint moves to the window end only after every page of the window was
archived and acknowledged by Kafka.

Orders a push named without carrying them (`fetch_soon`) are read at once with the client's
`fetch_orders` and published like polled pages, between polls (a client is not made for two callers at
once: token renewal) and within the shop's rate budget; ids named while a read or a poll is under way
are read together next. A read that fails is tried again after 1 s and 2 s (a platform may push before
its detail call shows the order), then left to the poll.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from connectors.runtime.base import Page, PlatformClient
from connectors.runtime.checkpoints import CheckpointStore
from connectors.runtime.errors import ConnectorError
from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.records import raw_record
from schemas.topics import shop_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    interval: float = 1.0  # seconds between polls of one shop
    overlap_ms: int = 2_000  # every window re-reads this much before the checkpoint
    lookback_ms: int = 60_000  # ... and a sweep window this much
    sweep_every: float = 30.0  # seconds between two sweep windows of one shop
    settle_ms: int = 1_000
    window_ms: int = 30 * 60_000  # Taobao advises ≤ 30 min slices; clients may cap lower
    first_sync_ms: int = 24 * 3600_000  # how far back a new shop starts


def next_window(checkpoint: int | None, now_ms: int, policy: PollPolicy, max_window_ms: int,
                sweep: bool = False) -> tuple[int, int]:
    """The modification-time window to poll next (pure); `sweep` re-reads the whole lookback."""
    end_limit = now_ms - policy.settle_ms
    back = policy.lookback_ms if sweep else policy.overlap_ms
    start = (end_limit - policy.first_sync_ms) if checkpoint is None else checkpoint - back
    return start, min(end_limit, start + min(policy.window_ms, max_window_ms))


class ShopPoller:
    def __init__(self, client: PlatformClient, shop_id: str, raw: RawPublisher, checkpoints: CheckpointStore,
                 policy: PollPolicy = PollPolicy()):
        self.client, self.shop_id, self.raw = client, shop_id, raw
        self.checkpoints, self.policy = checkpoints, policy
        self.key = f"{client.platform}:{shop_id}"
        self.pages = self.orders = self.fetched = 0
        self._swept = float("-inf")  # the first window after a (re)start sweeps
        self._named: dict[str, None] = {}  # ids pushes named, not read yet (ordered, each once)
        self._reader: asyncio.Task | None = None
        self._client_busy = asyncio.Lock()  # polls and reads of named orders take turns

    def _record(self, page: Page) -> tuple[bytes, bytes]:
        return shop_key(self.client.platform, self.shop_id), raw_record(
            self.client.platform, self.shop_id, page.body, source="poll", content_type=page.content_type,
            kind=page.kind, endpoint=page.endpoint, page=page.page, request_id=page.request_id,
            api_version=page.api_version)

    def fetch_soon(self, external_ids: Iterable[str]) -> bool:
        """Read these orders now (a push named them) unless the client cannot read single orders (False)."""
        if not hasattr(self.client, "fetch_orders"):
            return False
        self._named.update(dict.fromkeys(external_ids))
        if self._named and (self._reader is None or self._reader.done()):
            self._reader = asyncio.get_running_loop().create_task(self._read_named())
        return True

    async def _read_named(self) -> None:
        while self._named:
            ids, self._named = list(self._named), {}
            for delay in (1.0, 2.0, None):
                try:
                    async with self._client_busy:
                        batch = [self._record(page) async for page in self.client.fetch_orders(ids) if page.records]
                    await self.raw.publish_async(batch)
                    self.fetched += len(ids)
                    break
                except ConnectorError as exc:
                    if delay is None:
                        log.warning("%s: reading pushed orders %s failed, the poll will: %s", self.key,
                                    ",".join(ids[:5]), exc)
                        break
                    await asyncio.sleep(delay)
                except Exception:  # the poll still reads them
                    log.exception("%s: unexpected failure reading pushed orders", self.key)
                    break

    async def poll_once(self) -> int:
        """Poll one window; returns the number of orders published."""
        sweep = time.monotonic() - self._swept >= self.policy.sweep_every
        start, end = next_window(self.checkpoints.get(self.key), int(time.time() * 1000), self.policy, self.client.max_window_ms,
                                 sweep)
        if end <= start:
            return 0
        batch, count = [], 0
        async for page in self.client.fetch_window(start, end):
            if page.records == 0:  # an empty listing carries nothing to normalize
                continue
            batch.append(self._record(page))
            count += page.records
            if len(batch) >= 20:
                await self.raw.publish_async(batch)
                batch = []
        await self.raw.publish_async(batch)
        await asyncio.to_thread(self.checkpoints.set, self.key, end)  # fsynced: off the event loop
        if sweep:
            self._swept = time.monotonic()
        self.orders += count
        return count

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._poll_until(stop)
        finally:
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)

    async def _poll_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            caught_up = True
            try:
                async with self._client_busy:
                    await self.poll_once()
                caught_up = self.checkpoints.get(self.key) >= time.time() * 1000 - self.policy.settle_ms - 5000
            except ConnectorError as exc:
                log.warning("%s: poll failed, will retry: %s", self.key, exc)
            except Exception:  # keep polling the other shops; this one retries next round
                log.exception("%s: unexpected poll failure", self.key)
            if caught_up:
                try:
                    await asyncio.wait_for(stop.wait(), self.policy.interval)
                except TimeoutError:
                    pass
