"""Per-partition bookkeeping of one endpoint's deliveries: order per order, and what may be committed (pure).

Events of one order share a partition (key order_id) and arrive in version order. A lane lets the
first undelivered event of each order go and holds the others behind it, so events of different
orders travel concurrently while one order's events reach the endpoint one after another, in order.
An offset is committed only once every event before it is delivered or dead-lettered: after a crash
the deliverer starts again from there, and what it repeats carries the same event id.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(eq=False)
class Delivery:
    """One event on its way to one endpoint."""

    partition: int
    offset: int
    order_id: str
    value: bytes  # the order.events record, as read
    event: dict | None = None  # the event without its order (None: undecodable, dead-lettered at once)
    order_at: int | None = None  # where the order snapshot starts in `value`
    order: dict | None = None  # the order snapshot once decoded (until the body is rendered)
    body: bytes = b""  # rendered; stays empty when the endpoint has nothing to do with the event
    method: str | None = None  # the Qimen method of the body
    failed_attempts: int = 0
    first_attempt_at: float | None = None
    done: bool = False
    down: bool = False  # its last failure said the endpoint is down (no answer, 5xx)
    lane: PartitionLane | None = None  # set when a lane takes it


class PartitionLane:
    """The deliveries of one partition not yet committed, in offset order."""

    def __init__(self, partition: int):
        self.partition = partition
        self._queue: deque[Delivery] = deque()
        self._orders: dict[str, deque[Delivery]] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, delivery: Delivery) -> bool:
        """Take the next record of the partition; True when it may be sent now (no earlier event of its
        order is still on its way)."""
        delivery.lane = self
        self._queue.append(delivery)
        line = self._orders.get(delivery.order_id)
        if line is None:
            self._orders[delivery.order_id] = deque((delivery,))
            return True
        line.append(delivery)
        return False

    def skip(self, delivery: Delivery) -> None:
        """Take a record this endpoint does not want: done at once, it only holds its place for commits."""
        delivery.done, delivery.lane = True, self
        self._queue.append(delivery)

    def finish(self, delivery: Delivery) -> Delivery | None:
        """`delivery` was delivered or dead-lettered; the next event of its order, which may go now."""
        line = self._orders[delivery.order_id]
        if line[0] is not delivery:
            raise ValueError(f"{delivery.order_id}: offset {delivery.offset} finished before offset {line[0].offset}")
        delivery.done = True
        line.popleft()
        if line:
            return line[0]
        del self._orders[delivery.order_id]
        return None

    def committable(self) -> int | None:
        """The offset to commit (the next to read) if finished deliveries moved it, else None."""
        moved = None
        while self._queue and self._queue[0].done:
            moved = self._queue.popleft().offset + 1
        return moved
