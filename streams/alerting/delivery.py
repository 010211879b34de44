"""Deliver one routed message: retries with backoff on the primary channel, then failover down the list.

The report lists every attempt so the agent can publish it (Kafka `alerts` reports, ClickHouse) and rebuild
the router's dedup state from the delivered ones (`AlertRouter.restore_seen(report.anomaly_ids)`).
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field

from connectors.alerts.channels import Channel, SendResult
from streams.alerting.policy import Outgoing


@dataclass
class Attempt:
    """One try on one channel."""

    channel: str
    attempt: int
    ok: bool
    error: str | None = None
    code: str | None = None
    retryable: bool = False
    started_at: int = 0
    latency_ms: float = 0.0


@dataclass
class DeliveryReport:
    """Outcome of delivering one `Outgoing`; `channel` took it (None: every channel failed)."""

    key: str
    ok: bool
    channel: str | None
    route: str
    rule: str
    kind: str
    severity: str
    title: str
    anomaly_ids: list[str]
    order_ids: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    finished_at: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


async def deliver(outgoing: Outgoing, channels: Mapping[str, Channel], attempts: int = 3,
                  backoff: float = 0.5, max_backoff: float = 30.0, max_retry_after: float = 30.0,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> DeliveryReport:
    """Try `outgoing.channels` in order; up to `attempts` tries each for retryable errors.

    Between tries wait `backoff * 2**n` (jittered, capped by `max_backoff`), or the service's `retry_after`
    when it is longer. A permanent error, or a `retry_after` beyond `max_retry_after` (DingTalk throttles a
    robot ~10 minutes, WeCom/SMS say a minute), moves on to the next channel at once.
    Never raises for channel failures.
    """
    message = outgoing.message
    report = DeliveryReport(outgoing.key, False, None, outgoing.route, outgoing.rule, outgoing.kind,
                            message.severity, message.title, list(message.anomaly_ids),
                            list(message.order_ids))
    for name in outgoing.channels:
        channel = channels.get(name)
        if channel is None:
            report.attempts.append(Attempt(name, 1, False, "channel not configured", "unknown_channel",
                                           started_at=int(time.time() * 1000)))
            continue
        for attempt in range(1, attempts + 1):
            result = await _try(channel, name, attempt, message, report)
            if result.ok:
                report.ok, report.channel = True, name
                report.finished_at = int(time.time() * 1000)
                return report
            if not result.retryable or attempt == attempts:
                break
            if result.retry_after is not None and result.retry_after > max_retry_after:
                break
            delay = min(max_backoff, backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            await sleep(max(delay, result.retry_after or 0.0))
    report.finished_at = int(time.time() * 1000)
    return report


async def _try(channel: Channel, name: str, attempt: int, message, report: DeliveryReport) -> SendResult:
    started = time.time()
    try:
        result = await channel.send(message)
    except Exception as exc:  # noqa: BLE001 — a channel bug must not lose the alert: retry, then fail over
        result = SendResult.retry(f"{exc.__class__.__name__}: {exc}", "exception")
    report.attempts.append(Attempt(name, attempt, result.ok, result.error, result.code, result.retryable,
                                   int(started * 1000), round((time.time() - started) * 1000, 3)))
    return result
