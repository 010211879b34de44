"""State shared by the alert simulators (HTTP app and SMTP sink): robots, received messages, limits, faults.

Default robots (the demo credentials of erp_and_messaging.md and the fixtures, plus short names):
- DingTalk tokens `demo-dingtalk` and the fixture token, secret `SECdemo1f2e…8f9` (DINGTALK_DEMO_SECRET)
- Feishu tokens `demo-feishu` and the fixture token `3f2c1b0a-demo-…`, secret `fsDemoSecret8Kq2`
- WeCom keys `demo-wecom` and the fixture key `693a91f6-7xxx-…`
- Aliyun SMS AccessKeyId `LTAI5tDemoKeyId0001`, secret `demoAccessKeySecret`
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DINGTALK_DEMO_SECRET = "SECdemo1f2e3d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f9"
FEISHU_DEMO_SECRET = "fsDemoSecret8Kq2"
SMS_DEMO_KEY_ID, SMS_DEMO_SECRET = "LTAI5tDemoKeyId0001", "demoAccessKeySecret"
SERVICES = ("dingtalk", "feishu", "wecom", "sms", "email")
FAULT_KINDS = ("down", "error_5xx", "slow")


def default_robots() -> dict[str, dict[str, dict]]:
    """service → robot id (token / key / AccessKeyId) → options (`secret`, `keyword`, limits)."""
    return {
        "dingtalk": {"demo-dingtalk": {"secret": DINGTALK_DEMO_SECRET},
                     "9f3ce0b7demo5a1d2e8c4b6f0a7d3e9c1b5f8a2d4e6c0b9a7f3e1d5c8b2a4f6e":
                         {"secret": DINGTALK_DEMO_SECRET}},
        "feishu": {"demo-feishu": {"secret": FEISHU_DEMO_SECRET},
                   "3f2c1b0a-demo-4e5d-9c8b-7a6f5e4d3c2b": {"secret": FEISHU_DEMO_SECRET}},
        "wecom": {"demo-wecom": {}, "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa": {}},
        "sms": {SMS_DEMO_KEY_ID: {"secret": SMS_DEMO_SECRET}},
    }


class SimStore:
    """Thread-safe: the SMTP sink runs its own event loop in a thread and writes here too."""

    def __init__(self, clock: Callable[[], float] = time.time, max_messages: int = 10_000):
        self.clock = clock
        self.robots = default_robots()
        self._lock = threading.Lock()
        self._messages: deque[dict] = deque(maxlen=max_messages)
        self._hits: dict[tuple, deque[float]] = {}
        self._blocked: dict[tuple, float] = {}
        self._faults: dict[str, deque[tuple[str, float]]] = {s: deque() for s in SERVICES}
        self._nonces: dict[str, float] = {}

    # -- received messages ---------------------------------------------------------------------------------
    def record(self, service: str, robot: str, text: str, title: str = "", **extra) -> dict:
        """Keep one accepted message (newest last)."""
        entry = {"service": service, "robot": robot, "title": title, "text": text,
                 "received_at": int(self.clock() * 1000), **extra}
        with self._lock:
            self._messages.append(entry)
        return entry

    def messages(self, service: str | None = None, robot: str | None = None) -> list[dict]:
        """Accepted messages, oldest first, optionally of one service / robot."""
        with self._lock:
            return [m for m in self._messages
                    if service in (None, m["service"]) and robot in (None, m["robot"])]

    def clear(self, service: str | None = None) -> None:
        """Forget received messages (of one service or all), rate windows and throttles."""
        with self._lock:
            kept = [m for m in self._messages if service is not None and m["service"] != service]
            self._messages.clear()
            self._messages.extend(kept)
            self._hits = {k: v for k, v in self._hits.items() if service is not None and k[0] != service}
            self._blocked = {k: v for k, v in self._blocked.items()
                             if service is not None and k[0] != service}

    # -- robots ----------------------------------------------------------------------------------------------
    def configure(self, service: str, robot: str, options: dict) -> None:
        """Add or replace one robot / key / access key."""
        if service not in SERVICES or service == "email":
            raise ValueError(f"unknown service {service!r}; one of dingtalk, feishu, wecom, sms")
        with self._lock:
            self.robots[service][robot] = dict(options)

    def robot(self, service: str, robot: str) -> dict | None:
        """Options of a known robot, None when unknown."""
        return self.robots.get(service, {}).get(robot)

    # -- rate limits -----------------------------------------------------------------------------------------
    def admit(self, key: tuple, limits: list[tuple[int, float]], penalty: float = 0.0) -> bool:
        """Sliding-window limiter: True and count the hit when every `(count, seconds)` limit allows it.

        A refused hit blocks `key` for `penalty` seconds (DingTalk throttles a robot ~10 minutes).
        """
        now = self.clock()
        with self._lock:
            if self._blocked.get(key, 0.0) > now:
                return False
            hits = self._hits.setdefault(key, deque())
            horizon = max(seconds for _, seconds in limits)
            while hits and hits[0] <= now - horizon:
                hits.popleft()
            for count, seconds in limits:
                if sum(1 for t in hits if t > now - seconds) >= count:
                    if penalty:
                        self._blocked[key] = now + penalty
                    return False
            hits.append(now)
            return True

    def nonce_fresh(self, nonce: str, ttl: float = 900.0) -> bool:
        """False when `nonce` was already used within `ttl` seconds."""
        now = self.clock()
        with self._lock:
            self._nonces = {n: t for n, t in self._nonces.items() if t > now - ttl}
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now
            return True

    # -- faults ----------------------------------------------------------------------------------------------
    def add_fault(self, service: str, kind: str, count: int = 1, seconds: float = 2.0) -> int:
        """The next `count` requests to `service` misbehave; returns how many are pending."""
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults[service].extend([(kind, seconds)] * count)
            return len(self._faults[service])

    def take_fault(self, service: str) -> tuple[str, float] | None:
        """The fault for the next request to `service`, if any."""
        with self._lock:
            queue = self._faults.get(service)
            return queue.popleft() if queue else None

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            for queue in self._faults.values():
                queue.clear()
