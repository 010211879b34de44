import copy

from streams.derive import derive_events, event_types, evolve
from tests.factories import BASE_MS, canonical_order, changed


def types(events):
    return [e["event_type"] for e in events]


def test_first_sight_of_paid_order_creates_and_pays():
    events = derive_events(None, canonical_order(), BASE_MS)
    assert types(events) == ["OrderCreated", "OrderPaid"]
    assert {e["version"] for e in events} == {1}
    assert [e["seq"] for e in events] == [0, 1]


def test_first_sight_of_unpaid_order_only_creates():
    assert types(derive_events(None, canonical_order(status="PENDING_PAYMENT"), BASE_MS)) == ["OrderCreated"]


def test_repeated_update_gives_nothing_and_keeps_version():
    first = canonical_order()
    derive_events(None, first, BASE_MS)
    again = canonical_order()
    assert derive_events(first, again, BASE_MS + 5) == []


def test_stale_update_gives_nothing():
    held = changed(canonical_order(), status="SHIPPED", version=3)
    older = canonical_order(status="PAID")
    assert derive_events(held, older, BASE_MS) == []


def test_version_increments_once_per_accepted_change():
    held = canonical_order(version=4)
    events = derive_events(held, changed(held, status="SHIPPED"), BASE_MS)
    assert types(events) == ["OrderShipped"] and {e["version"] for e in events} == {5}


def test_skipped_milestones_are_filled_in():
    held = canonical_order(version=1)
    assert types(derive_events(held, changed(held, status="COMPLETED"), BASE_MS)) == [
        "OrderShipped", "OrderDelivered", "OrderCompleted"]


def test_partial_then_full_shipment():
    held = canonical_order(version=1)
    part = changed(held, status="PARTIALLY_SHIPPED")
    assert types(derive_events(held, part, BASE_MS)) == ["OrderPartiallyShipped"]
    assert types(derive_events(part, changed(part, status="SHIPPED"), BASE_MS)) == ["OrderShipped"]


def test_refund_lifecycle():
    held = canonical_order(version=1)
    requested = changed(held)
    requested["lines"][0]["refund_status"] = "REQUESTED"
    requested["refund_status"] = "REQUESTED"
    assert types(derive_events(held, requested, BASE_MS)) == ["RefundRequested"]
    refunded = changed(requested, refund_status="PARTIALLY_REFUNDED", refunded_total=7380)
    refunded["lines"][0]["refund_status"] = "REFUNDED"
    assert types(derive_events(requested, refunded, BASE_MS)) == ["OrderPartiallyRefunded"]
    rejected = changed(held, refund_status="REJECTED")
    rejected["lines"][1]["refund_status"] = "REJECTED"
    assert types(derive_events(held, rejected, BASE_MS)) == ["RefundRejected"]


def test_cancel_after_payment_with_full_refund():
    held = canonical_order(version=2)
    closed = changed(held, status="CANCELLED", refund_status="REFUNDED", platform_status="TRADE_CLOSED")
    assert types(derive_events(held, closed, BASE_MS)) == ["OrderCancelled", "OrderRefunded"]


def test_address_lines_and_amount_changes_before_shipping():
    held = canonical_order(version=1)
    moved = changed(held)
    moved["receiver"] = dict(moved["receiver"], city="宁波市", district="鄞州区")
    assert types(derive_events(held, moved, BASE_MS)) == ["AddressChanged"]
    relined = changed(held, items_total=20980, paid_total=19780)
    relined["lines"][0]["quantity"] = 3
    assert types(derive_events(held, relined, BASE_MS)) == ["LinesChanged", "AmountsChanged"]
    noted = changed(held, platform_status="PAID_FORBID_CONSIGN")
    events = derive_events(held, noted, BASE_MS)
    assert types(events) == ["OrderUpdated"] and events[0]["changed_fields"] == ["platform_status", "updated_at"]


def test_event_ids_are_deterministic_and_distinct():
    a = derive_events(None, canonical_order(), BASE_MS)
    b = derive_events(None, canonical_order(), BASE_MS + 999)
    assert [e["event_id"] for e in a] == [e["event_id"] for e in b]
    assert len({e["event_id"] for e in a}) == len(a)


def test_evolve_folds_to_latest_snapshot_and_ignores_older():
    held = canonical_order()
    events = derive_events(None, held, BASE_MS)
    state = None
    for event in events:
        state = evolve(state, event)
    assert state["version"] == 1
    older = copy.deepcopy(events[0])
    older["version"] = 0
    assert evolve(state, older) is state


def test_event_types_reopened():
    held = canonical_order(status="CANCELLED", version=1)
    assert event_types(held, changed(held, status="PAID")) == ["OrderReopened"]
