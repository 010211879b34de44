"""Pure event derivation: what happened to an order between two platform snapshots.

`derive_events(previous, current, recorded_at)` returns the past-tense domain events of the change,
or nothing when the platform update is stale or repeated. Like a command in an event-sourced model,
it does no I/O; `evolve(state, event)` folds an event back into state.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

# forward progress of the order's life; PARTIALLY_SHIPPED is a waypoint, not a milestone
_RANK = {"PENDING_PAYMENT": 0, "PAID": 1, "PARTIALLY_SHIPPED": 2, "SHIPPED": 3, "DELIVERED": 4, "COMPLETED": 5}
_MILESTONES = ((1, "OrderPaid"), (3, "OrderShipped"), (4, "OrderDelivered"), (5, "OrderCompleted"))
_REFUND_EVENTS = {"REQUESTED": "RefundRequested", "PARTIALLY_REFUNDED": "OrderPartiallyRefunded",
                  "REFUNDED": "OrderRefunded", "REJECTED": "RefundRejected"}
_MONEY = ("items_total", "shipping_fee", "discount_total", "tax_total", "paid_total", "currency")
_IGNORED = frozenset(("version",))


def event_ids(order_id: str, version: int, event_types: list[str]) -> list[str]:
    """Deterministic ids, blake2b-128 of `order_id|version|event_type` in hex: replaying the same platform
    facts yields the same ids. The hash of the shared `order_id|version|` prefix is computed once."""
    prefix = hashlib.blake2b(f"{order_id}|{version}|".encode(), digest_size=16)
    ids = []
    for event_type in event_types:
        digest = prefix.copy()
        digest.update(event_type.encode())
        ids.append(digest.hexdigest())
    return ids


def is_stale(previous: dict | None, current: dict) -> bool:
    """An update older than what we already hold (platforms re-send and reorder)."""
    if previous is None:
        return False
    prev_at, cur_at = previous.get("updated_at"), current.get("updated_at")
    return prev_at is not None and cur_at is not None and cur_at < prev_at


def changed_fields(previous: dict | None, current: dict) -> list[str]:
    """Top-level fields that differ from the held snapshot; empty for a new order (all of it is new)."""
    if previous is None:
        return []
    return sorted(k for k, v in current.items() if k not in _IGNORED and previous.get(k) != v)


def _status_events(prev_status: str | None, status: str, paid: bool, prev_paid: bool) -> list[str]:
    if status == "CANCELLED":
        head = ["OrderPaid"] if paid and not prev_paid else []
        return head + ([] if prev_status == "CANCELLED" else ["OrderCancelled"])
    if prev_status == "CANCELLED":
        return ["OrderReopened"]
    start = -1 if prev_status is None else _RANK.get(prev_status, 0)
    end = _RANK.get(status, 0)
    types = [name for rank, name in _MILESTONES if start < rank <= end]
    if end == 2 and start < 2:
        types.append("OrderPartiallyShipped")
    if "OrderPaid" in types and prev_paid:
        types.remove("OrderPaid")
    if "OrderPaid" not in types and paid and not prev_paid:
        types.insert(0, "OrderPaid")
    return types


@lru_cache(maxsize=256)
def _first_status_events(status: str, paid: bool) -> tuple[str, ...]:
    return tuple(_status_events(None, status, paid, False))


def _refund_events(previous: dict | None, current: dict) -> list[str]:
    types = []
    prev_lines = {line["line_id"]: line for line in previous["lines"]} if previous else {}
    for line in current["lines"]:
        before = prev_lines.get(line["line_id"], {}).get("refund_status", "NONE")
        if line["refund_status"] != before and line["refund_status"] in ("REQUESTED", "REJECTED"):
            types.append(_REFUND_EVENTS[line["refund_status"]])
    prev_refund = previous["refund_status"] if previous else "NONE"
    if current["refund_status"] != prev_refund:
        name = _REFUND_EVENTS.get(current["refund_status"])
        if name:
            types.append(name)
        elif prev_refund in ("REQUESTED",) and current["refund_status"] == "NONE":
            types.append("RefundWithdrawn")
    return list(dict.fromkeys(types))


def _without_refunds(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "refund_status"} for line in lines]


def event_types(previous: dict | None, current: dict) -> list[str]:
    """The past-tense event names for a change from `previous` (None: first sight) to `current`."""
    paid = current.get("paid_at") is not None or _RANK.get(current["status"], 0) >= 1
    prev_paid = previous is not None and (
        previous.get("paid_at") is not None or _RANK.get(previous["status"], 0) >= 1)
    if previous is None:
        return list(dict.fromkeys(["OrderCreated", *_first_status_events(current["status"], paid),
                                   *_refund_events(None, current)]))
    types = []
    prev_status = previous["status"]
    if prev_status != current["status"] or (paid and not prev_paid):
        types += _status_events(prev_status, current["status"], paid, prev_paid)
    types += _refund_events(previous, current)
    if previous["receiver"] != current["receiver"]:
        types.append("AddressChanged")
    if _without_refunds(previous["lines"]) != _without_refunds(current["lines"]):
        types.append("LinesChanged")
    if any(previous.get(k) != current.get(k) for k in _MONEY):
        types.append("AmountsChanged")
    if previous["shipments"] != current["shipments"] and not any(
            t in types for t in ("OrderShipped", "OrderPartiallyShipped")):
        types.append("ShipmentsChanged")
    if not types:
        types.append("OrderUpdated")
    return list(dict.fromkeys(types))


def derive_events(previous: dict | None, current: dict, recorded_at: int, raw_record_id: str | None = None,
                  source: str | None = None) -> list[dict]:
    """OrderEvent records for `current` (a canonical order, version ignored) given the held `previous`.

    Returns [] for a stale or repeated update. Otherwise every event carries the order snapshot with
    `version` = previous version + 1 (the caller's `current` dict is updated in place).
    """
    if is_stale(previous, current):
        return []
    if previous is not None:
        current["version"] = previous["version"]
        if current == previous:
            return []
    fields = changed_fields(previous, current)
    version = 1 if previous is None else previous["version"] + 1
    current["version"] = version
    return make_events(current, event_types(previous, current), current.get("updated_at") or recorded_at,
                       recorded_at, fields, raw_record_id, source)


def make_events(order: dict, names: list[str], occurred_at: int, recorded_at: int, fields: list[str],
                raw_record_id: str | None, source: str | None) -> list[dict]:
    """The OrderEvent records `names` of one new order version (`order["version"]`), in that order (seq),
    each carrying the snapshot `order` and its deterministic id."""
    oid, version = order["order_id"], order["version"]
    common = {"event_id": "", "event_type": "", "order_id": oid, "version": version, "seq": 0,
              "occurred_at": occurred_at, "recorded_at": recorded_at, "changed_fields": fields,
              "raw_record_id": raw_record_id, "source": source, "order": order}
    events = []
    for seq, (name, eid) in enumerate(zip(names, event_ids(oid, version, names), strict=True)):
        event = common.copy()  # cheaper than building each event dict key by key
        event["event_id"], event["event_type"], event["seq"] = eid, name, seq
        events.append(event)
    return events


def evolve(state: dict | None, event: dict) -> dict:
    """Fold one event into the order state: events carry the full snapshot after the change."""
    if state is not None and event["version"] < state["version"]:
        return state
    return event["order"]
