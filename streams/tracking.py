"""Pure: what a courier's tracking update does to an order, and keeping it when the platform speaks next.

`apply_tracking(previous, update, recorded_at)` is to a tracking push what `derive_events` is to a
platform snapshot: the order's next version with the parcel's latest step on its shipment, and the
events `TrackingUpdated` (every new step) and `OrderDelivered` (when the last parcel of a shipped order
was signed for: status DELIVERED, `delivered_at`), or nothing for a stale or repeated push.

The platform does not know what the carrier said, so each platform snapshot passes through
`carry_tracking(previous, current)` before it is derived: the tracking fields of its shipments, the
parcels known only from the carrier, and DELIVERED (while the platform still says SHIPPED) are kept.
Tracking never touches `updated_at`: that is the platform's clock, by which stale platform updates are
recognised.
"""
from __future__ import annotations

from schemas.canonical import TRACKING_FIELDS, with_tracking_fields
from streams.derive import make_events

_IGNORED = frozenset(("version",))


def _delivered(shipments: list[dict]) -> bool:
    return bool(shipments) and all(s.get("tracking_state") == "DELIVERED" for s in shipments)


def _latest_delivery(shipments: list[dict]) -> int | None:
    return max((s["delivered_at"] for s in shipments if s.get("delivered_at") is not None), default=None)


def _known_from_carrier_only(shipment: dict) -> bool:
    """A parcel the carrier told us about before the platform listed it (see `apply_tracking`)."""
    return shipment.get("tracking_state") is not None and shipment.get("shipped_at") is None


def carry_tracking(previous: dict | None, current: dict) -> dict:
    """`current` (a platform's snapshot, changed in place and returned) with what tracking told us kept.

    Its shipments get the tracking fields of the held shipment with the same tracking number (empty
    ones otherwise); held parcels known from the carrier alone and still missing from the platform's list
    stay; and a SHIPPED order whose every parcel was signed for stays DELIVERED.
    """
    shipments = current["shipments"]
    held = [s for s in previous["shipments"] if s.get("tracking_state") is not None] if previous else []
    if not held:
        if shipments:
            current["shipments"] = [with_tracking_fields(s) for s in shipments]
        return current
    by_number = {s["tracking_no"]: s for s in held}
    merged = []
    for shipment in shipments:
        tracked = by_number.pop(shipment.get("tracking_no"), None)
        merged.append(dict(shipment, **{k: tracked.get(k) for k in TRACKING_FIELDS}) if tracked
                      else with_tracking_fields(shipment))
    merged += [s for s in by_number.values() if _known_from_carrier_only(s)]
    current["shipments"] = merged
    if current["status"] == "SHIPPED" and _delivered(merged):
        current["status"] = "DELIVERED"
        current["delivered_at"] = current.get("delivered_at") or _latest_delivery(merged)
    return current


def _tracked(shipment: dict, update: dict) -> dict:
    delivered = update["delivered_at"] if update["state"] == "DELIVERED" else shipment.get("delivered_at")
    return {"tracking_state": update["state"], "tracking_status": update["status"],
            "tracking_step": update["step"], "tracking_at": update["step_at"], "delivered_at": delivered}


def apply_tracking(previous: dict, update: dict, recorded_at: int, raw_record_id: str | None = None,
                   source: str | None = "push") -> tuple[dict | None, list[dict]]:
    """(the order's next version, its events) for a tracking update (see `kuaidi100.tracking_update`), or
    (None, []) when the update is older than the parcel's latest step or says nothing new.

    A parcel the order does not list yet (the carrier can be faster than the platform's next update)
    is added as a shipment of the carrier with no lines and no `shipped_at`. The events happened when the
    newest step did.
    """
    shipments = [with_tracking_fields(s) for s in previous["shipments"]]
    number = update["tracking_no"]
    index = next((i for i, s in enumerate(shipments) if s.get("tracking_no") == number), None)
    if index is None:
        shipments.append(with_tracking_fields({"carrier": update.get("carrier"), "tracking_no": number,
                                               "shipped_at": None, "line_ids": []}))
        index = len(shipments) - 1
    shipment = shipments[index]
    held_at, step_at = shipment.get("tracking_at"), update["step_at"]
    if held_at is not None and step_at is not None and step_at < held_at:
        return None, []
    news = _tracked(shipment, update)
    if all(shipment.get(k) == v for k, v in news.items()):
        return None, []
    shipments[index] = {**shipment, **news}
    order = dict(previous, shipments=shipments, version=previous["version"] + 1)
    names = ["TrackingUpdated"]
    if order["status"] == "SHIPPED" and _delivered(shipments):
        order["status"] = "DELIVERED"
        order["delivered_at"] = previous.get("delivered_at") or _latest_delivery(shipments)
        names.append("OrderDelivered")
    fields = sorted(k for k, v in order.items() if k not in _IGNORED and previous.get(k) != v)
    return order, make_events(order, names, step_at or recorded_at, recorded_at, fields, raw_record_id, source)
