"""The anomaly detector: runs the rules over order events and keeps findings open until cleared.

`detect(event, now_ms)` judges each new order version once and returns Anomaly records (schema
tonglu.Anomaly): `raised` the first time a rule fires for an order, `resolved` when a later
version no longer triggers it (or the order is cancelled). `tick(now_ms)` raises the time-driven
ship_overdue and parcel_stalled findings. No I/O: the agent around it reads order.events and
publishes the records.
"""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

from streams.anomalies.config import RULE_IDS, RuleBook, ShopRules
from streams.anomalies.rules import (
    DUPLICATE_INPUTS,
    EVENT_RULES,
    LIGHT_RULES,
    Finding,
    duplicate_finding,
    duplicate_roles,
    order_time,
    overdue_finding,
    ship_deadline,
    sku_key,
    stall_deadline,
    stalled_finding,
)
from streams.anomalies.state import DuplicateIndex, OverdueTracker, SkuStats, duplicate_key

_NO_LEARN = frozenset(("price_anomaly", "quantity_spike", "zero_amount"))
# A known order's update that changes none of SNAPSHOT_INPUTS runs no rule: it is judged from the
# LIGHT_FIELDS of its snapshot (who the order is, its status and shipping deadline). Readers pass
# LIGHT_READ to EventDecoder so that such events come with only those fields decoded.
SNAPSHOT_INPUTS = frozenset(DUPLICATE_INPUTS.union(*(inputs for _rule, _fn, inputs in EVENT_RULES)))  # lines too
LIGHT_FIELDS = frozenset(("order_id", "platform", "shop_id", "status", "refund_status", "paid_at",
                          "shipments", "version"))
LIGHT_READ = (LIGHT_FIELDS, SNAPSHOT_INPUTS)
_MAX_VERSIONS = 1_000_000   # orders whose last evaluated version is remembered (oldest dropped first)


def anomaly_id(order_id: str, rule: str) -> str:
    """Deterministic id of the finding of `rule` on `order_id` (32 hex chars)."""
    return hashlib.blake2b(f"{order_id}|{rule}".encode(), digest_size=16).hexdigest()


class Detector:
    """Holds the rule book and all detection state of one worker (its partitions' orders)."""

    def __init__(self, rules: RuleBook | None = None):
        self.rules = rules if rules is not None else RuleBook.default()
        windows = [s.duplicate_order.window_minutes for s in (self.rules.defaults, *self.rules.shops.values())]
        self.dupes = DuplicateIndex(int(max(windows) * 60_000))
        self.skus = SkuStats(self.rules.engine.sku_window)
        self.overdue = OverdueTracker()
        self.stalls = OverdueTracker()  # tracked parcels by when they must have moved again
        self._ctx = SimpleNamespace(dupes=self.dupes, skus=self.skus, now_ms=0, changed=None)
        self._open: dict[str, dict[str, dict]] = {}     # order_id -> rule -> the raised record
        self._released: dict[str, set[str]] = {}        # order_id -> rules a person released
        self._versions: dict[str, int] = {}             # order_id -> last version (-v-2: cancelled at v)
        self._dup_keys: dict[str, tuple] = {}           # order_id -> duplicate key when found a duplicate
        self._plans: dict[tuple, tuple] = {}            # (id(ShopRules), changed fields) -> _plan()

    def _plan(self, cfg: ShopRules, changed: tuple | None) -> tuple:
        """(rules to run, do they need the whole snapshot?, re-hash the duplicate key?, learn SKU stats?)
        for a shop and a set of changes."""
        key = (id(cfg), changed)
        plan = self._plans.get(key)
        if plan is None:
            fields = None if changed is None else frozenset(changed)

            def chosen(rules):
                return tuple((rule, fn, getattr(cfg, rule)) for rule, fn, inputs in rules
                             if getattr(cfg, rule).enabled and (fields is None or not fields.isdisjoint(inputs)))

            whole = chosen(EVENT_RULES)
            plan = self._plans[key] = (whole + chosen(LIGHT_RULES), bool(whole),
                                       fields is None or not fields.isdisjoint(DUPLICATE_INPUTS),
                                       fields is None or "lines" in fields)
        return plan

    def detect(self, event: dict, now_ms: int) -> list[dict]:
        """Anomaly records (raised/resolved) for one OrderEvent; [] for an already judged version.

        A known order's new version only re-runs the rules whose inputs are among the event's
        `changed_fields` (a shipment does not change whether the amounts add up); the verdicts of
        the others stand. An order seen for the first time runs every enabled rule. An event whose
        `order` holds only LIGHT_FIELDS carries `snapshot()`, called here when a rule needs the rest.
        """
        order_id, version = event["order_id"], event["version"]
        versions = self._versions
        last = versions.pop(order_id, -1)
        fresh = last < 0                      # never seen, or cancelled (verdicts dropped): run every rule
        if last < -1:
            last = -last - 2
        versions[order_id] = max(last, version)
        if version <= last:
            if fresh:
                versions[order_id] = -last - 2
            return []
        if len(versions) > _MAX_VERSIONS:
            for stale in list(versions)[: _MAX_VERSIONS // 10]:
                del versions[stale]
        order = event["order"]
        if order["status"] == "CANCELLED":
            versions[order_id] = -version - 2
            return self._close(order_id, event, now_ms, {"reason": "cancelled"})
        cfg = self.rules.for_shop(order["platform"], order["shop_id"])
        changed = None if fresh else tuple(event.get("changed_fields") or ()) or None
        run, whole, rekey, relearn = self._plan(cfg, changed)
        if (whole or rekey or relearn) and "snapshot" in event:  # only LIGHT_FIELDS were decoded
            order = event["order"] = event.pop("snapshot")()
        ctx = self._ctx
        ctx.now_ms, ctx.changed = now_ms, changed
        ctx.dup_key = duplicate_key(order) if rekey else None
        found: dict[str, tuple] = {}
        for rule, fn, settings in run:
            finding = fn(order, cfg, ctx)
            if finding is not None:
                found[rule] = (finding, settings)
        opened = self._open.get(order_id)
        if opened and "duplicate_order" in opened and "duplicate_order" not in found and (
                self._dup_keys.get(order_id) == ctx.dup_key):
            found["duplicate_order"] = (None, None)  # the twin left the window, but nothing changed here
        out = self._settle(order, event, now_ms, found, [r[0] for r in run]) if found or opened else []
        if relearn and found.keys().isdisjoint(_NO_LEARN):
            self._learn(order)
        if rekey:
            at = order_time(order, now_ms)
            out += self._flag_later_twins(order, event, ctx.dup_key, at, now_ms)
            self.dupes.record(order_id, ctx.dup_key, at, (order["platform"], order["shop_id"]))
            if "duplicate_order" in found:
                self._dup_keys[order_id] = ctx.dup_key
        self._track_deadline(order, cfg, event, now_ms, out)
        self._track_stall(order, cfg, event, now_ms, out)
        return out

    def _settle(self, order: dict, event: dict, now_ms: int, found: dict, ran: list) -> list[dict]:
        order_id = order["order_id"]
        opened = self._open.get(order_id) or {}
        released = self._released.get(order_id, ())
        out = []
        for rule, (finding, settings) in found.items():
            if rule not in opened and rule not in released:
                record = self._record(order, event["event_id"], finding, settings.severity, settings.action,
                                      now_ms)
                opened[rule] = record
                out.append(record)
        for rule in [r for r in opened if r not in found and r in ran]:
            out.append(self._resolved(opened.pop(rule), event["event_id"], now_ms, event["version"],
                                      {"reason": "cleared"}))
        if opened:
            self._open[order_id] = opened
        else:
            self._open.pop(order_id, None)
        if "duplicate_order" not in opened:
            self._dup_keys.pop(order_id, None)
        return out

    def _flag_later_twins(self, order: dict, event: dict, key: tuple, at: int, now_ms: int) -> list[dict]:
        """Raise duplicate_order on the orders already seen that were placed after this one with the same key
        (within their own shop's window): the later-placed order of a pair is the duplicate, also when it
        reached the detector first."""
        order_id, out = order["order_id"], []
        twins = self.dupes.matches(order_id, key, at, self.dupes.horizon_ms)
        if not twins:
            return out
        placed = {twin: twin_at for twin_at, twin in twins}
        for twin in duplicate_roles(order_id, at, twins)[1]:
            platform, shop_id = self.dupes.owner(twin)
            settings = self.rules.for_shop(platform, shop_id).duplicate_order
            opened = self._open.get(twin) or {}
            if (not settings.enabled or placed[twin] - at > settings.window_minutes * 60_000
                    or "duplicate_order" in opened or "duplicate_order" in self._released.get(twin, ())):
                continue
            stub = {"order_id": twin, "platform": platform, "shop_id": shop_id,
                    "version": max(self._versions.get(twin, 1), 1)}
            opened["duplicate_order"] = record = self._record(
                stub, event["event_id"], duplicate_finding(order_id, settings.window_minutes), settings.severity,
                settings.action, now_ms)
            self._open[twin] = opened
            self._dup_keys[twin] = key
            out.append(record)
        return out

    def _learn(self, order: dict) -> None:
        learn = self.skus.learn
        for line in order["lines"]:
            if line["unit_price"] > 0 and line["quantity"] > 0:
                key = sku_key(order, line)
                if key is not None:
                    learn(key, line["unit_price"], line["quantity"])

    def _track_deadline(self, order: dict, cfg: ShopRules, event: dict, now_ms: int, out: list) -> None:
        order_id = order["order_id"]
        deadline = ship_deadline(order, cfg) if cfg.ship_overdue.enabled else None
        if deadline is not None:
            opened = self._open.get(order_id)
            if not (opened and "ship_overdue" in opened):
                self.overdue.track(order_id, deadline, (order["platform"], order["shop_id"], order["paid_at"],
                                                        order["version"]))
            return
        self.overdue.untrack(order_id)
        opened = self._open.get(order_id)
        if opened and "ship_overdue" in opened:
            out.append(self._resolved(opened.pop("ship_overdue"), event["event_id"], now_ms, event["version"],
                                      {"reason": order["status"].lower()}))
            if not opened:
                del self._open[order_id]

    def _track_stall(self, order: dict, cfg: ShopRules, event: dict, now_ms: int, out: list) -> None:
        """Watch the order's tracked parcels for movement; a parcel that moved clears its stall."""
        order_id = order["order_id"]
        due = stall_deadline(order, cfg) if cfg.parcel_stalled.enabled else None
        opened = self._open.get(order_id)
        stalled = opened.get("parcel_stalled") if opened else None
        if due is not None:
            deadline, parcel = due
            if stalled is not None and stalled["evidence"].get("tracking_at") == str(parcel["tracking_at"]):
                return  # still the same stall
            self.stalls.track(order_id, deadline, (order["platform"], order["shop_id"], parcel["tracking_no"],
                                                   parcel["tracking_at"], order["version"]))
        else:
            self.stalls.untrack(order_id)
        if stalled is not None:
            out.append(self._resolved(opened.pop("parcel_stalled"), event["event_id"], now_ms, event["version"],
                                      {"reason": "moved" if due is not None else "arrived"}))
            if not opened:
                del self._open[order_id]

    def tick(self, now_ms: int) -> list[dict]:
        """Raise ship_overdue for every watched order whose shipping deadline has passed, and parcel_stalled
        for every tracked parcel that has not moved in time."""
        out = []
        for order_id, _deadline, (platform, shop_id, paid_at, version) in self.overdue.due(now_ms):
            settings = self.rules.for_shop(platform, shop_id).ship_overdue
            self._raise_due(order_id, platform, shop_id, version, "ship_overdue", settings, now_ms, out,
                            lambda s=settings, at=paid_at: overdue_finding(at, now_ms, s.promise_hours))
        for order_id, _deadline, (platform, shop_id, number, moved_at, version) in self.stalls.due(now_ms):
            settings = self.rules.for_shop(platform, shop_id).parcel_stalled
            self._raise_due(order_id, platform, shop_id, version, "parcel_stalled", settings, now_ms, out,
                            lambda s=settings, n=number, at=moved_at: stalled_finding(n, at, now_ms, s.stall_hours))
        return out

    def _raise_due(self, order_id: str, platform: str, shop_id: str, version: int, rule: str, settings, now_ms: int,
                   out: list, finding) -> None:
        opened = self._open.get(order_id) or {}
        if rule in opened or rule in self._released.get(order_id, ()):
            return
        order = {"order_id": order_id, "platform": platform, "shop_id": shop_id, "version": version}
        record = self._record(order, None, finding(), settings.severity, settings.action, now_ms)
        opened[rule] = record
        self._open[order_id] = opened
        out.append(record)

    def release(self, order_id: str, now_ms: int, released_by: str = "operator") -> list[dict]:
        """A person released the order: resolve every open finding; they are not raised again."""
        opened = self._open.get(order_id) or {}
        self._released.setdefault(order_id, set()).update(opened)
        return self._close(order_id, None, now_ms, {"released_by": released_by}, forget=False)

    def open_findings(self, order_id: str) -> list[dict]:
        """The raised records of the order's open findings."""
        return list((self._open.get(order_id) or {}).values())

    def hold_reasons(self, order_id: str) -> list[str]:
        """Rule ids of the order's open findings whose action is hold (empty: free to fulfil)."""
        return [rule for rule in RULE_IDS
                if (rec := (self._open.get(order_id) or {}).get(rule)) is not None and rec["action"] == "hold"]

    def _close(self, order_id: str, event: dict | None, now_ms: int, evidence: dict, forget: bool = True) -> list:
        opened = self._open.pop(order_id, None) or {}
        event_id = None if event is None else event["event_id"]
        out = []
        for record in opened.values():
            version = record["order_version"] if event is None else event["version"]
            out.append(self._resolved(record, event_id, now_ms, version, evidence))
        self.overdue.untrack(order_id)
        self.stalls.untrack(order_id)
        self._dup_keys.pop(order_id, None)
        if forget:
            self.dupes.forget(order_id)
            self._released.pop(order_id, None)
        return out

    @staticmethod
    def _record(order: dict, event_id: str | None, finding: Finding, severity: str, action: str,
                now_ms: int) -> dict:
        return {"anomaly_id": anomaly_id(order["order_id"], finding.rule), "order_id": order["order_id"],
                "event_id": event_id, "platform": order["platform"], "shop_id": order["shop_id"],
                "rule": finding.rule, "severity": severity, "action": action, "state": "raised",
                "message_zh": finding.message_zh, "message_en": finding.message_en,
                "evidence": finding.evidence, "detected_at": now_ms, "order_version": order["version"]}

    @staticmethod
    def _resolved(raised: dict, event_id: str | None, now_ms: int, version: int, evidence: dict) -> dict:
        return dict(raised, event_id=event_id, state="resolved", detected_at=now_ms, order_version=version,
                    message_zh=f"已解除：{raised['message_zh']}", message_en=f"resolved: {raised['message_en']}",
                    evidence={**raised["evidence"], **evidence})
