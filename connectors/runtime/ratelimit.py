"""Per-shop request budget: a token bucket that a platform's throttling answer can pause."""
from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp, self.blocked_until = burst, time.monotonic(), 0.0

    def pause(self, seconds: float) -> None:
        """The platform said wait: no request before `seconds` from now."""
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)
        self.tokens = 0

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            if now < self.blocked_until:
                await asyncio.sleep(self.blocked_until - now)
                continue
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)
