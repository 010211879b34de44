"""Which gateway takes a message: per-provider health and the order to try them in (pure).

A gateway that failed `down_after` times in a row without answering properly (transport errors, 5xx, broken
credentials) is down for `down_for_ms`; after that one message probes it again. Flow control and a sign or
template the gateway does not know send that message to the next gateway without marking anyone down.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class Health:
    down_after: int = 3
    down_for_ms: int = 5000
    failures: int = 0  # in a row
    down_until: int = 0
    sent: int = 0
    failed: int = 0

    def up(self, now_ms: int) -> bool:
        return now_ms >= self.down_until

    def record(self, ok: bool, unhealthy: bool, now_ms: int) -> None:
        """Note one answer of the gateway."""
        if ok:
            self.failures, self.down_until, self.sent = 0, 0, self.sent + 1
            return
        self.failed += 1
        if unhealthy:
            self.failures += 1
            if self.failures >= self.down_after:
                self.down_until = now_ms + self.down_for_ms


def try_order(providers: Sequence[str], health: Mapping[str, Health], now_ms: int) -> list[str]:
    """The configured order with gateways that are up first; those down come last, as a last resort."""
    up = [p for p in providers if health[p].up(now_ms)]
    return up + [p for p in providers if p not in up]
