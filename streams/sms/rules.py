"""Whether a message leaves now, waits, or is held back, and why — a pure function of the message, the time, the
recipient's history and the shop's rules.

Order of the checks: nobody to reach (`unreachable`); marketing to a number that opted out (`opt_out`, at once,
never queued) or a member without consent (`no_consent`); marketing outside the shop's window (`quiet_hours`,
queued until it opens, `expired` once older than the shop's limit); caps per number (`cap`); the shop's daily
budget (`budget`). Service messages (confirmations, shipping, delivery, refunds) ignore the window and opt-outs
but have their own cap.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from streams.sms.templates import Kind, ShopRules

DAY_MS, WEEK_MS = 86_400_000, 7 * 86_400_000
Action = Literal["send", "queue", "suppress", "unreachable"]


@dataclass(frozen=True)
class Candidate:
    """A message about to be decided."""

    kind: Kind
    reachable: bool
    created_at: int  # epoch ms the trigger fired
    segments: int = 1
    consent: bool | None = None  # a member's marketing consent; None: not a member message (order buyers)


@dataclass(frozen=True)
class RecipientHistory:
    """What the sender knows about the number: opted out, and when it was sent what (epoch ms, kind)."""

    opted_out: bool = False
    sent: tuple[tuple[int, Kind], ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None  # quiet_hours | opt_out | no_consent | expired | cap | budget | unreachable
    release_at: int | None = None  # for `queue`: when the window opens


_DAYS: dict[str, tuple[int, int]] = {}  # timezone -> (start, end) of the day last asked about


def day_start(now_ms: int, timezone: str) -> int:
    """Epoch ms of the local midnight that began the day of `now_ms` in `timezone` (caps and budgets count days).

    The sender asks several times per message; the day last asked about is kept per zone."""
    held = _DAYS.get(timezone)
    if held is not None and held[0] <= now_ms < held[1]:
        return held[0]
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now_ms / 1000, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int(local.timestamp() * 1000)
    following = (local + timedelta(days=1, hours=3)).replace(hour=0)  # the next midnight, on any DST day
    _DAYS[timezone] = (start, int(following.timestamp() * 1000))
    return start


def _count(sent: Iterable[tuple[int, Kind]], kind: Kind, since: int) -> int:
    return sum(1 for at, k in sent if k == kind and at >= since)


def decide(msg: Candidate, now_ms: int, history: RecipientHistory, rules: ShopRules,
           shop_segments_today: int = 0) -> Decision:
    """The decision for `msg` at `now_ms` (see the module's docstring for the order of the checks)."""
    if not msg.reachable:
        return Decision("unreachable", "unreachable")
    marketing = msg.kind == "marketing"
    if marketing and history.opted_out:
        return Decision("suppress", "opt_out")
    if marketing and rules.require_consent and msg.consent is False:
        return Decision("suppress", "no_consent")
    if marketing:
        if now_ms - msg.created_at > rules.queue_max_age_hours * 3_600_000:
            return Decision("suppress", "expired")
        quiet = rules.quiet_hours()
        if quiet.contains(now_ms):
            return Decision("queue", "quiet_hours", release_at=quiet.next_end(now_ms))
    today = day_start(now_ms, rules.timezone)
    caps = rules.caps
    if marketing and (_count(history.sent, "marketing", today) >= caps.marketing_per_day
                      or _count(history.sent, "marketing", now_ms - WEEK_MS) >= caps.marketing_per_week):
        return Decision("suppress", "cap")
    if not marketing and _count(history.sent, "service", today) >= caps.service_per_day:
        return Decision("suppress", "cap")
    if rules.daily_budget is not None and shop_segments_today + msg.segments > rules.daily_budget:
        return Decision("suppress", "budget")
    return Decision("send")
