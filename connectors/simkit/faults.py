"""Faults a test or a demo can ask a simulator for: the next N API calls misbehave."""
from __future__ import annotations

from collections import deque

FAULT_KINDS = ("rate_limit", "error_5xx", "slow", "malformed", "duplicate_page")


class FaultPlan:
    def __init__(self):
        self._queue: deque[tuple[str, float]] = deque()

    def add(self, kind: str, count: int = 1, seconds: float = 2.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        self._queue.extend([(kind, seconds)] * count)

    def take(self) -> tuple[str, float] | None:
        """The fault for the next API call, if any."""
        return self._queue.popleft() if self._queue else None

    def pending(self) -> int:
        return len(self._queue)


def over_qps(calls: deque, limit: float | None, now: float, per_second: bool = False) -> bool:
    """Record a call at `now` (monotonic seconds) in `calls` and say whether more than `limit` calls fell
    in the last second — a simulated per-app QPS cap (`limit` None or 0: no cap, nothing recorded).
    `per_second` counts within the current whole second instead, as a gateway with a counter per second
    does (a burst straddling two seconds then gets twice the limit through)."""
    if not limit:
        return False
    floor = int(now) if per_second else now - 1.0
    while calls and calls[0] < floor:
        calls.popleft()
    calls.append(now)
    return len(calls) > limit
