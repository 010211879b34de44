"""Receipts written together: many messages in flight, one produce batch per moment, each writer released only
once the broker acknowledged its records (a claim must be stored before its provider is called)."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from schemas.codec import AvroCodec
from schemas.kafka import Publisher


class Outbox:
    def __init__(self, publisher: Publisher, topic: str, noted: Callable[[dict], None]):
        """`noted(record)` runs for every record once it is acknowledged (the sender's ledger)."""
        self.publisher, self.topic, self.noted = publisher, topic, noted
        self.codec = AvroCodec("SmsReceipt")
        self._queue: list[tuple[list[dict], asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def flushed(self) -> None:
        """Return once everything written before this call is on the broker."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(([], done))
        self._wake.set()
        await done

    async def write(self, records: list[dict]) -> None:
        """Return once `records` are on the broker and noted."""
        if not records:
            return
        done = asyncio.get_running_loop().create_future()
        self._queue.append((records, done))
        self._wake.set()
        await done

    async def run(self) -> None:
        """Publish whatever queued, until `close` and the queue is empty."""
        while not (self._closed and not self._queue):
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            records = [r for rs, _ in batch for r in rs]
            if records:  # else only `flushed` callers: everything before them is already acknowledged
                try:
                    values = self.codec.encode_many(records)
                    await self.publisher.publish_async([(self.topic, r["key"].encode(), v)
                                                        for r, v in zip(records, values, strict=True)])
                except Exception as exc:  # noqa: BLE001 - every writer learns of it; nothing is noted
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
            for r in records:
                self.noted(r)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
