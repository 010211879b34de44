"""Pure alert routing: which anomalies become which messages, when, to which channels. No I/O, no clock.

`AlertRouter.offer(anomaly, now_ms)` takes `order.anomalies` records; `due(now_ms)` returns the messages to
deliver now. Rules:
- dedup by `anomaly_id` (already pending or already emitted); `export_seen`/`restore_seen` carry the emitted
  ids over restarts (rebuild them from the alert reports topic), bounded by age and count;
- one message per (route, rule) per throttle window, aggregating every anomaly of that window; at most
  `max_messages` per route per window (ripe groups wait, and keep aggregating, until the budget allows);
- critical anomalies go out immediately as their own message, up to `max_immediate_per_window` per
  (route, rule) per window — beyond that a storm is aggregated like anything else;
- in quiet hours non-critical anomalies of routes with `quiet_hours = true` are held and sent as one digest
  per route when quiet hours end;
- resolved anomalies never page: a pending raised one with the same anomaly id (or order + rule) is dropped,
  otherwise it is counted ("同期已恢复 N 个") in its group's message.
"""
from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.alerting.config import Route, RoutingConfig, RoutingError, load_routing
from streams.alerting.messages import AlertMessage, render_digest, render_group, render_single

__all__ = ["AlertRouter", "Outgoing", "RoutingConfig", "RoutingError", "load_routing"]


class Outgoing(NamedTuple):
    """One message to deliver: a stable key (same anomalies → same key), ordered channels, the message."""

    key: str
    channels: tuple[str, ...]
    message: AlertMessage
    route: str = ""
    rule: str = ""
    kind: str = "batch"  # batch | immediate | digest


@dataclass
class _Group:
    opened_at: int
    items: dict[str, dict] = field(default_factory=dict)
    resolved: int = 0


@dataclass
class _Digest:
    until: int
    items: dict[str, dict[str, dict]] = field(default_factory=dict)  # rule → anomaly id → anomaly


def _key(route: str, rule: str, anomaly_ids: Iterable[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(anomaly_ids)).encode()).hexdigest()[:16]
    return f"{route}|{rule}|{digest}"


class AlertRouter:
    """The routing state machine for one consumer (see module docstring)."""

    def __init__(self, config: RoutingConfig):
        self.config = config
        self._routes = {route.name: route for route in config.routes}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._digests: dict[str, _Digest] = {}
        self._immediate: list[tuple[Route, dict]] = []
        self._immediate_log: dict[tuple[str, str], deque[int]] = {}
        self._sent_log: dict[str, deque[int]] = {}
        self._retries: list[tuple[int, Outgoing]] = []
        self._pending: set[str] = set()
        self._seen: dict[str, int | None] = {}
        self._unstamped: list[str] = []
        self.unrouted = 0

    # -- input ---------------------------------------------------------------------------------------------
    def offer(self, anomaly: Mapping, now_ms: int) -> None:
        """Take one anomaly record; duplicates and already-sent anomalies are ignored."""
        self._stamp(now_ms)
        anomaly = dict(anomaly)
        aid = str(anomaly["anomaly_id"])
        if anomaly.get("state", "raised") == "resolved":
            self._resolve(anomaly)
            return
        if aid in self._pending or aid in self._seen:
            return
        route = self.config.route_for(anomaly)
        if route is None:
            self.unrouted += 1
            return
        rule = str(anomaly.get("rule", "?"))
        self._pending.add(aid)
        if anomaly.get("severity") == "critical" and self._immediate_allowed(route, rule, now_ms):
            self._immediate.append((route, anomaly))
        elif anomaly.get("severity") != "critical" and route.quiet_hours and \
                self.config.quiet_hours.contains(now_ms):
            digest = self._digests.setdefault(route.name, _Digest(self.config.quiet_hours.next_end(now_ms)))
            digest.items.setdefault(rule, {})[aid] = anomaly
        else:
            self._groups.setdefault((route.name, rule), _Group(now_ms)).items[aid] = anomaly

    def _immediate_allowed(self, route: Route, rule: str, now_ms: int) -> bool:
        log = self._immediate_log.setdefault((route.name, rule), deque())
        while log and log[0] <= now_ms - self.config.window_ms(route):
            log.popleft()
        if len(log) >= self.config.max_immediate_per_window:
            return False
        log.append(now_ms)
        return True

    def _resolve(self, anomaly: dict) -> None:
        aid, order_id, rule = str(anomaly["anomaly_id"]), anomaly.get("order_id"), str(anomaly.get("rule"))

        def same(item: dict) -> bool:
            same_case = item.get("order_id") == order_id and item.get("rule") == rule
            return str(item["anomaly_id"]) == aid or same_case

        dropped = [a for _, a in self._immediate if same(a)]
        self._immediate = [(r, a) for r, a in self._immediate if not same(a)]
        for bucket in [g.items for g in self._groups.values()] + \
                [items for d in self._digests.values() for items in d.items.values()]:
            for key in [k for k, item in bucket.items() if same(item)]:
                dropped.append(bucket.pop(key))
        self._pending.difference_update(str(a["anomaly_id"]) for a in dropped)
        if not dropped and self.config.summarize_resolved:
            route = self.config.route_for({**anomaly, "severity": anomaly.get("severity", "warning")})
            group = self._groups.get((route.name, rule)) if route else None
            if group is not None:
                group.resolved += 1

    # -- output --------------------------------------------------------------------------------------------
    def due(self, now_ms: int) -> list[Outgoing]:
        """Messages to deliver now (immediate criticals, ripe window groups, ended digests, retries)."""
        self._stamp(now_ms)
        out: list[Outgoing] = []
        api = self.config.api_base
        for route, anomaly in self._immediate:
            rule = str(anomaly.get("rule", "?"))
            out.append(self._emit(route, rule, render_single(anomaly, api), "immediate", now_ms))
        self._immediate = []
        out.extend(self._ripe_groups(now_ms))
        for name, digest in list(self._digests.items()):
            if now_ms >= digest.until:
                del self._digests[name]
                by_rule = {rule: list(items.values()) for rule, items in digest.items.items() if items}
                if by_rule:
                    message = render_digest(by_rule, self.config.quiet_hours.label, api)
                    out.append(self._emit(self._routes[name], "*", message, "digest", now_ms))
        retry_now = [o for at, o in self._retries if at <= now_ms]
        self._retries = [(at, o) for at, o in self._retries if at > now_ms]
        self._prune(now_ms)
        return out + retry_now

    def _ripe_groups(self, now_ms: int) -> list[Outgoing]:
        out = []
        ripe = [(k, g) for k, g in self._groups.items() if now_ms >= g.opened_at + self.config.window_ms(
            self._routes[k[0]])]
        ripe.sort(key=lambda kg: (not any(a.get("severity") == "critical" for a in kg[1].items.values()),
                                  -len(kg[1].items)))
        for (name, rule), group in ripe:
            route = self._routes[name]
            if not group.items:
                del self._groups[(name, rule)]
                continue
            log = self._sent_log.setdefault(name, deque())
            while log and log[0] <= now_ms - self.config.window_ms(route):
                log.popleft()
            if len(log) >= self.config.budget(route):
                continue  # over budget: keep aggregating until a slot frees up
            del self._groups[(name, rule)]
            window_s = max(self.config.window_ms(route), now_ms - group.opened_at) // 1000
            message = render_group(rule, list(group.items.values()), window_s, self.config.api_base,
                                   group.resolved)
            out.append(self._emit(route, rule, message, "batch", now_ms))
        return out

    def _emit(self, route: Route, rule: str, message: AlertMessage, kind: str, now_ms: int) -> Outgoing:
        if kind == "batch":
            self._sent_log.setdefault(route.name, deque()).append(now_ms)
        for aid in message.anomaly_ids:
            self._pending.discard(aid)
            self._seen.pop(aid, None)
            self._seen[aid] = now_ms
        return Outgoing(_key(route.name, rule, message.anomaly_ids), tuple(route.channels), message,
                        route.name, rule, kind)

    def reschedule(self, outgoing: Outgoing, at_ms: int) -> None:
        """A delivery failed on every channel: hand the same message out again from `due(at_ms)` on."""
        self._retries.append((at_ms, outgoing))

    def next_due_ms(self) -> int | None:
        """When `due` will next have something (None: nothing pending) — for the caller's timer."""
        times = [g.opened_at + self.config.window_ms(self._routes[k[0]]) for k, g in self._groups.items()]
        times += [d.until for d in self._digests.values()] + [at for at, _ in self._retries]
        if self._immediate:
            return 0
        return min(times) if times else None

    # -- dedup state ---------------------------------------------------------------------------------------
    def pending_ids(self) -> set[str]:
        """Anomaly ids offered but not yet emitted (the caller must not commit their offsets)."""
        return set(self._pending)

    def export_seen(self) -> dict[str, int]:
        """Emitted anomaly ids → emitted at (ms); persist, or rebuild from delivered alert reports."""
        return {aid: ts for aid, ts in self._seen.items() if ts is not None}

    def restore_seen(self, ids: Iterable[str] | Mapping[str, int], now_ms: int | None = None) -> None:
        """Mark anomaly ids as already sent; plain ids are timestamped `now_ms` (or at the next call)."""
        stamped = list(ids.items()) if isinstance(ids, Mapping) else [(aid, now_ms) for aid in ids]
        stamped.sort(key=lambda pair: pair[1] or 0)
        merged = {**{str(aid): ts for aid, ts in stamped}, **self._seen}  # restored (older) first
        self._seen = merged
        self._unstamped.extend(str(aid) for aid, ts in stamped if ts is None)
        self._prune(now_ms)

    def _stamp(self, now_ms: int) -> None:
        for aid in self._unstamped:
            if aid in self._seen and self._seen[aid] is None:
                self._seen[aid] = now_ms
        self._unstamped.clear()

    def _prune(self, now_ms: int | None) -> None:
        """Drop the oldest ids (insertion order ≈ time order) beyond the age and count bounds; O(dropped)."""
        horizon = None if now_ms is None else now_ms - self.config.dedup_ttl_hours * 3_600_000
        while self._seen:
            oldest = next(iter(self._seen))
            ts = self._seen[oldest]
            expired = horizon is not None and ts is not None and ts < horizon
            if not expired and len(self._seen) <= self.config.dedup_max_ids:
                break
            del self._seen[oldest]
