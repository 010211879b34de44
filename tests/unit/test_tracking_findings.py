"""Findings about parcels and late changes: parcel_exception, parcel_returned, parcel_stalled (time-driven)
and changed_after_shipment, through the detector as its agent reads events (dicts, and Avro bytes with
light snapshots)."""
import pytest

from schemas.canonical import with_tracking_fields
from schemas.codec import AvroCodec, EventDecoder
from streams.anomalies.config import parse_rules
from streams.anomalies.detector import LIGHT_READ, Detector
from streams.anomaly_agent import in_order_of_happening
from streams.derive import derive_events
from streams.tracking import apply_tracking
from tests.factories import BASE_MS, canonical_order, changed

HOUR = 3_600_000
EVENTS = AvroCodec("OrderEvent")


@pytest.fixture(params=["dicts", "avro"])
def feed(request):
    return Feed(EventDecoder(light=LIGHT_READ) if request.param == "avro" else None)


class Feed:
    """Platform snapshots and tracking updates into one detector, as the normalizer and the agent do."""

    def __init__(self, reader=None, detector=None):
        self.reader, self.detector = reader, detector or Detector()
        self.held: dict | None = None
        self.seen: list[dict] = []  # the events as the detector got them

    def _judge(self, events, now_ms):
        if events:
            self.held = events[0]["order"]
        if self.reader is not None:
            events = self.reader.decode_firsts([EVENTS.encode(e) for e in events])
        self.seen += events
        return [(r["rule"], r["state"]) for e in events for r in self.detector.detect(e, now_ms)]

    def platform(self, order, now_ms=BASE_MS):
        return self._judge(derive_events(self.held, order, now_ms), now_ms)

    def carrier(self, state, at, number="ZT1", step="快件在途"):
        update = {"tracking_no": number, "company": "zhongtong", "carrier": "中通快递", "state": state,
                  "status": state, "step": step, "step_at": at, "delivered_at": at if state == "DELIVERED" else None,
                  "monitoring": "polling", "steps": 1}
        _order, events = apply_tracking(self.held, update, at)
        return self._judge(events, at)


def shipped(*numbers, **overrides):
    return canonical_order(status="SHIPPED", shipped_at=BASE_MS, **overrides, shipments=[with_tracking_fields(
        {"carrier": "中通快递", "tracking_no": n, "shipped_at": BASE_MS, "line_ids": ["1", "2"]}) for n in numbers])


def test_a_parcel_in_trouble_is_found_and_clears_when_it_moves_on(feed):
    assert feed.platform(shipped("ZT1")) == []
    assert feed.carrier("PICKED_UP", BASE_MS + HOUR) == []
    assert feed.carrier("EXCEPTION", BASE_MS + 2 * HOUR, step="地址不详，待联系") == [("parcel_exception", "raised")]
    assert feed.carrier("OUT_FOR_DELIVERY", BASE_MS + 3 * HOUR) == [("parcel_exception", "resolved")]
    if feed.reader is not None:  # judged from the light snapshot: the rest was never decoded
        assert all("snapshot" in e for e in feed.seen[1:])


@pytest.mark.parametrize("state", ["RETURNING", "RETURNED", "REFUSED"])
def test_a_returned_or_refused_parcel_is_critical(feed, state):
    feed.platform(shipped("ZT1"))
    feed.carrier("IN_TRANSIT", BASE_MS + HOUR)
    found = feed.carrier(state, BASE_MS + 2 * HOUR)
    assert found == [("parcel_returned", "raised")]
    (opened,) = feed.detector.open_findings(feed.held["order_id"])
    assert opened["severity"] == "critical" and opened["evidence"]["tracking_no"] == "ZT1"


def test_a_parcel_without_movement_stalls_and_clears_when_it_moves(feed):
    feed.platform(shipped("ZT1", "ZT2"))
    feed.carrier("IN_TRANSIT", BASE_MS + HOUR, "ZT1")
    feed.carrier("IN_TRANSIT", BASE_MS + 10 * HOUR, "ZT2")
    detector = feed.detector
    assert detector.tick(BASE_MS + 48 * HOUR) == []  # 47 h since ZT1 moved
    (stalled,) = detector.tick(BASE_MS + 49 * HOUR + 1)
    assert (stalled["rule"], stalled["state"]) == ("parcel_stalled", "raised")
    assert stalled["evidence"]["tracking_no"] == "ZT1" and stalled["evidence"]["hours_since_movement"] == "48"
    assert detector.tick(BASE_MS + 60 * HOUR) == []  # raised once
    assert feed.carrier("OUT_FOR_DELIVERY", BASE_MS + 61 * HOUR, "ZT1") == [("parcel_stalled", "resolved")]
    (again,) = detector.tick(BASE_MS + 62 * HOUR)  # ZT2 has not moved since 10 h either
    assert again["evidence"]["tracking_no"] == "ZT2" and again["evidence"]["hours_since_movement"] == "52"


def test_delivered_and_untracked_parcels_never_stall(feed):
    feed.platform(shipped("ZT1"))
    assert feed.detector.tick(BASE_MS + 500 * HOUR) == []  # never tracked: not ours to judge
    feed.carrier("IN_TRANSIT", BASE_MS + 501 * HOUR)
    assert feed.carrier("DELIVERED", BASE_MS + 502 * HOUR) == []
    assert feed.held["status"] == "DELIVERED"
    assert feed.detector.tick(BASE_MS + 1000 * HOUR) == []


def test_the_stall_threshold_is_a_shop_setting():
    rules = parse_rules({"shops": {"taobao:shop1": {"parcel_stalled": {"stall_hours": 2}}}})
    feed = Feed(detector=Detector(rules))
    feed.platform(shipped("ZT1"))
    feed.carrier("PICKED_UP", BASE_MS + HOUR)
    (stalled,) = feed.detector.tick(BASE_MS + 3 * HOUR)
    assert stalled["rule"] == "parcel_stalled" and stalled["evidence"]["stall_hours"] == "2"


def test_an_address_changed_after_shipment_is_found(feed):
    order = shipped("ZT1")
    feed.platform(order)
    moved = changed(order, receiver=dict(order["receiver"], city="宁波市", district="鄞州区"))
    assert feed.platform(moved, BASE_MS + HOUR) == [("changed_after_shipment", "raised")]
    (opened,) = feed.detector.open_findings(order["order_id"])
    assert opened["evidence"] == {"status": "SHIPPED", "tracking_no": "ZT1"}


def test_an_address_changed_before_shipment_is_no_finding(feed):
    order = canonical_order()
    feed.platform(order)
    moved = changed(order, receiver=dict(order["receiver"], city="宁波市", district="鄞州区"))
    assert feed.platform(moved, BASE_MS + HOUR) == []
    assert [e["event_type"] for e in feed.seen[-1:]] == ["AddressChanged"]
    # nor is an address that changes in the same update that ships the order
    ships = changed(moved, status="SHIPPED", receiver=dict(order["receiver"]), shipments=[with_tracking_fields(
        {"carrier": "中通快递", "tracking_no": "ZT1", "shipped_at": BASE_MS, "line_ids": ["1", "2"]})])
    assert feed.platform(ships, BASE_MS + 2 * HOUR) == []


def test_the_new_rules_can_be_switched_off():
    rules = parse_rules({"defaults": {"parcel_exception": {"enabled": False},
                                      "changed_after_shipment": {"enabled": False}}})
    feed = Feed(detector=Detector(rules))
    order = shipped("ZT1")
    feed.platform(order)
    assert feed.carrier("EXCEPTION", BASE_MS + HOUR) == []
    moved = changed(feed.held, minutes=120, receiver=dict(order["receiver"], city="宁波市", district="鄞州区"))
    assert feed.platform(moved) == [] and feed.seen[-1]["event_type"] == "AddressChanged"


def test_the_agent_judges_each_orders_events_in_their_sequence():
    """A carrier's step may carry a later time than the platform update after it; across orders the
    batch is judged in the order things happened."""
    events = [{"order_id": "a", "version": 2, "occurred_at": 50}, {"order_id": "b", "version": 1, "occurred_at": 20},
              {"order_id": "a", "version": 3, "occurred_at": 30}, {"order_id": "b", "version": 2, "occurred_at": 60}]
    assert [(e["order_id"], e["version"]) for e in in_order_of_happening(events)] == [
        ("b", 1), ("a", 2), ("a", 3), ("b", 2)]
