"""Tracking updates applied to an order (streams/tracking.py): events, versions, ids, and the platform's
next snapshot keeping what the carrier said."""
import copy
import io

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema

from schemas import registry
from schemas.canonical import with_tracking_fields
from schemas.codec import AvroCodec
from streams.derive import derive_events, event_ids
from streams.tracking import apply_tracking, carry_tracking
from tests.factories import BASE_MS, canonical_order, changed

MIN = 60_000


def shipped_order(*numbers: str, version: int = 3) -> dict:
    shipments = [{"carrier": "中通快递", "tracking_no": n, "shipped_at": BASE_MS, "line_ids": ["1", "2"]}
                 for n in numbers or ("ZT1001",)]
    return canonical_order(status="SHIPPED", shipped_at=BASE_MS, version=version,
                           shipments=[with_tracking_fields(s) for s in shipments])


def update(state: str, at: int, number: str = "ZT1001", status: str = "在途", step: str = "快件已发车") -> dict:
    return {"tracking_no": number, "company": "zhongtong", "carrier": "中通快递", "state": state, "status": status,
            "step": step, "step_at": at, "delivered_at": at if state == "DELIVERED" else None,
            "monitoring": "shutdown" if state == "DELIVERED" else "polling", "steps": 1}


def test_a_step_is_tracking_updated_at_the_next_version():
    order = shipped_order()
    new, events = apply_tracking(order, update("PICKED_UP", BASE_MS + MIN, status="揽收", step="已揽收"),
                                 BASE_MS + 2 * MIN, "raw-1")
    assert [e["event_type"] for e in events] == ["TrackingUpdated"]
    (event,) = events
    assert event["version"] == new["version"] == 4 and event["seq"] == 0
    assert event["event_id"] == event_ids(order["order_id"], 4, ["TrackingUpdated"])[0]
    assert event["occurred_at"] == BASE_MS + MIN and event["recorded_at"] == BASE_MS + 2 * MIN
    assert event["raw_record_id"] == "raw-1" and event["source"] == "push"
    assert event["changed_fields"] == ["shipments"]
    shipment = new["shipments"][0]
    assert (shipment["tracking_state"], shipment["tracking_status"], shipment["tracking_step"],
            shipment["tracking_at"]) == ("PICKED_UP", "揽收", "已揽收", BASE_MS + MIN)
    assert new["updated_at"] == order["updated_at"] and new["status"] == "SHIPPED"
    assert order["shipments"][0]["tracking_state"] is None  # the held state is not changed in place
    assert AvroCodec("Order").decode(AvroCodec("Order").encode(new)) == new


def test_the_last_parcel_signed_for_delivers_the_order():
    order, _ = apply_tracking(shipped_order(), update("IN_TRANSIT", BASE_MS + MIN), BASE_MS + MIN)
    new, events = apply_tracking(order, update("DELIVERED", BASE_MS + 9 * MIN, status="签收", step="已签收"),
                                 BASE_MS + 9 * MIN)
    assert [(e["event_type"], e["seq"]) for e in events] == [("TrackingUpdated", 0), ("OrderDelivered", 1)]
    assert len({e["event_id"] for e in events}) == 2
    assert new["status"] == "DELIVERED" and new["delivered_at"] == BASE_MS + 9 * MIN
    assert new["shipments"][0]["delivered_at"] == BASE_MS + 9 * MIN
    assert events[1]["changed_fields"] == ["delivered_at", "shipments", "status"]


def test_one_of_two_parcels_signed_for_is_not_yet_delivered():
    order = shipped_order("ZT1", "ZT2")
    order, events = apply_tracking(order, update("DELIVERED", BASE_MS + MIN, "ZT1"), BASE_MS + MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated"] and order["status"] == "SHIPPED"
    order, events = apply_tracking(order, update("DELIVERED", BASE_MS + 5 * MIN, "ZT2"), BASE_MS + 5 * MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated", "OrderDelivered"]
    assert order["delivered_at"] == BASE_MS + 5 * MIN


def test_a_repeated_or_older_push_changes_nothing():
    order, _ = apply_tracking(shipped_order(), update("OUT_FOR_DELIVERY", BASE_MS + 5 * MIN), BASE_MS)
    assert apply_tracking(order, update("OUT_FOR_DELIVERY", BASE_MS + 5 * MIN), BASE_MS + MIN) == (None, [])
    assert apply_tracking(order, update("IN_TRANSIT", BASE_MS + 2 * MIN), BASE_MS + MIN) == (None, [])
    # the same second with something new (two steps a carrier stamped alike) is news
    new, events = apply_tracking(order, update("EXCEPTION", BASE_MS + 5 * MIN, status="疑难"), BASE_MS + MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated"] and new["version"] == order["version"] + 1


def test_a_parcel_the_platform_does_not_list_yet_is_added():
    order = canonical_order(status="PAID", version=2)
    new, events = apply_tracking(order, update("PICKED_UP", BASE_MS + MIN), BASE_MS + MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated"] and new["status"] == "PAID"
    (shipment,) = new["shipments"]
    assert shipment["carrier"] == "中通快递" and shipment["tracking_no"] == "ZT1001"
    assert shipment["shipped_at"] is None and shipment["line_ids"] == []
    # signed for before the platform said SHIPPED: not delivered yet ...
    new, events = apply_tracking(new, update("DELIVERED", BASE_MS + 3 * MIN), BASE_MS + 3 * MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated"] and new["status"] == "PAID"
    # ... until the platform's next snapshot says SHIPPED: then it is, in the same version
    platform = changed(canonical_order(status="PAID"), minutes=10, status="SHIPPED", shipped_at=BASE_MS + 2 * MIN,
                       shipments=[{"carrier": "ZTO", "tracking_no": "ZT1001", "shipped_at": BASE_MS + 2 * MIN,
                                   "line_ids": ["1", "2"]}])
    names = [e["event_type"] for e in derive_events(new, carry_tracking(new, platform), BASE_MS + 10 * MIN)]
    assert names == ["OrderShipped", "OrderDelivered"]
    assert platform["status"] == "DELIVERED" and platform["delivered_at"] == BASE_MS + 3 * MIN
    assert platform["shipments"][0]["carrier"] == "ZTO"  # the platform's word for the shipment itself


def test_the_platforms_next_snapshot_keeps_what_the_carrier_said():
    held = shipped_order()
    held["updated_at"] = BASE_MS
    held, _ = apply_tracking(held, update("DELIVERED", BASE_MS + 9 * MIN), BASE_MS + 9 * MIN)
    # the platform repeats its SHIPPED snapshot (mapped without tracking fields): nothing happened
    platform = copy.deepcopy(held)
    platform.update(status="SHIPPED", delivered_at=None, version=0)
    platform["shipments"] = [{k: s[k] for k in ("carrier", "tracking_no", "shipped_at", "line_ids")}
                             for s in held["shipments"]]
    assert derive_events(held, carry_tracking(held, copy.deepcopy(platform)), BASE_MS + 10 * MIN) == []
    # and when it moves on, only its own news is an event
    completed = changed(platform, minutes=30, status="COMPLETED")
    events = derive_events(held, carry_tracking(held, completed), BASE_MS + 40 * MIN)
    assert [e["event_type"] for e in events] == ["OrderCompleted"]
    assert completed["shipments"][0]["tracking_state"] == "DELIVERED"


def test_parcels_the_platform_drops_go_unless_only_the_carrier_knew_them():
    held = shipped_order("ZT1")
    held, _ = apply_tracking(held, update("IN_TRANSIT", BASE_MS + MIN, "ZT1"), BASE_MS + MIN)
    held, _ = apply_tracking(held, update("PICKED_UP", BASE_MS + 2 * MIN, "ZT9"), BASE_MS + 2 * MIN)
    platform = changed(canonical_order(status="SHIPPED"), shipments=[
        {"carrier": "中通快递", "tracking_no": "ZT2", "shipped_at": BASE_MS, "line_ids": ["1", "2"]}])
    numbers = [s["tracking_no"] for s in carry_tracking(held, platform)["shipments"]]
    assert numbers == ["ZT2", "ZT9"]  # ZT1 was the platform's and it replaced it; ZT9 only the carrier knows


def test_an_untracked_order_gets_empty_tracking_fields():
    order = changed(canonical_order(), status="SHIPPED", shipments=[
        {"carrier": "中通快递", "tracking_no": "ZT1", "shipped_at": BASE_MS, "line_ids": ["1"]}])
    carried = carry_tracking(None, order)
    assert carried["shipments"][0]["tracking_state"] is None and "delivered_at" in carried["shipments"][0]
    assert carry_tracking(None, canonical_order())["shipments"] == []


@pytest.mark.parametrize("state", ["EXCEPTION", "RETURNING", "REFUSED"])
def test_trouble_is_a_step_not_a_status(state):
    new, events = apply_tracking(shipped_order(), update(state, BASE_MS + MIN), BASE_MS + MIN)
    assert [e["event_type"] for e in events] == ["TrackingUpdated"]
    assert new["status"] == "SHIPPED" and new["shipments"][0]["tracking_state"] == state


def _written_with(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(registry.plain(schema)), record)
    return b"\xc3\x01" + registry.fingerprint_of(schema) + buf.getvalue()


def test_order_v3_readers_read_tracked_orders():
    v3 = registry.historical()["Order"][-1]
    tracked, _ = apply_tracking(shipped_order(), update("DELIVERED", BASE_MS + MIN), BASE_MS + MIN)
    data = AvroCodec("Order").encode(tracked)
    old = schemaless_reader(io.BytesIO(data[10:]), parse_schema(registry.plain(registry.current("Order"))),
                            parse_schema(registry.plain(v3)))
    assert old["status"] == "DELIVERED" and set(old["shipments"][0]) == {"carrier", "tracking_no", "shipped_at",
                                                                          "line_ids"}


def test_orders_and_events_written_before_tracking_read_with_empty_tracking():
    order = canonical_order(status="SHIPPED", version=1, shipments=[
        {"carrier": "中通快递", "tracking_no": "ZT1", "shipped_at": BASE_MS, "line_ids": ["1"]}])
    decoded = AvroCodec("Order").decode(_written_with(registry.historical()["Order"][-1], order))
    assert decoded["shipments"] == [with_tracking_fields(order["shipments"][0])]
    event = dict(derive_events(None, copy.deepcopy(order), BASE_MS)[0])
    decoded = AvroCodec("OrderEvent").decode(_written_with(registry.historical()["OrderEvent"][-1], event))
    assert decoded["order"]["shipments"][0]["tracking_state"] is None and decoded["event_id"] == event["event_id"]
