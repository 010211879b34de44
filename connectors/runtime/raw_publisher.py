"""The one way raw records leave a connector: archived on disk first, then produced to raw.orders.

Order matters (write-ahead): a batch is appended to the archive and fsynced, then produced and
confirmed by the broker, and only then does the caller move its poll checkpoint (or answer a push).
So nothing the broker acknowledged is missing from the archive, and a lost broker can be rebuilt
from it (`tonglu replay`). The broker's partition and offset of each record are archived after it.
"""
from __future__ import annotations

import asyncio

from connectors.runtime.archive import ArchiveWriter
from connectors.runtime.records import raw_fetched_at
from schemas.kafka import Publisher

# success reports carry the offsets the archive records; raw records are few (one per API page)
REPORT_DELIVERIES = {"delivery.report.only.error": False}


class RawPublisher:
    def __init__(self, publisher: Publisher, raw_topic: str, archive: ArchiveWriter):
        """`publisher` must report successful deliveries (created with `**REPORT_DELIVERIES`)."""
        self.publisher, self.raw_topic, self.archive = publisher, raw_topic, archive

    def publish(self, records: list[tuple[bytes, bytes]], also: list[tuple[str, bytes, bytes]] = ()) -> None:
        """Archive (fsync), then produce and confirm, (key, encoded RawRecord) pairs; then archive their offsets.

        `also`: (topic, key, value) records produced and confirmed with them but not archived (copies
        for other topics, e.g. a tracking push on logistics.updates)."""
        if not records:
            return
        ref = self.archive.append([(key, value, raw_fetched_at(value)) for key, value in records])
        where: dict[bytes, tuple[int, int]] = {}

        def delivered(msg) -> None:
            if msg.topic() == self.raw_topic:
                where[msg.value()] = (msg.partition(), msg.offset())

        self.publisher.publish([(self.raw_topic, key, value) for key, value in records] + list(also),
                               delivered=delivered)
        self.archive.acknowledge(ref, [where.get(value, (-1, -1)) for _, value in records])

    async def publish_async(self, records: list[tuple[bytes, bytes]],
                            also: list[tuple[str, bytes, bytes]] = ()) -> None:
        """`publish` off the event loop."""
        if records:
            await asyncio.get_running_loop().run_in_executor(None, self.publish, records, also)
