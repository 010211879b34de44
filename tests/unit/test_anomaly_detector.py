"""The stateful detector: raise once, resolve later, duplicates, SKU learning, overdue ticks, release.

Every test runs twice: on the event dicts, and on the events as the detector's agent reads them from
order.events (Avro bytes; updates that change no rule input come with a light snapshot).
"""
import pytest

from schemas.canonical import with_tracking_fields
from schemas.codec import AvroCodec, EventDecoder
from streams.anomalies.config import parse_rules
from streams.anomalies.detector import LIGHT_FIELDS, LIGHT_READ, Detector, anomaly_id
from streams.derive import derive_events
from tests.factories import BASE_MS, canonical_order, changed

HOUR = 3_600_000
CODEC, EVENT_CODEC = AvroCodec("Anomaly"), AvroCodec("OrderEvent")


@pytest.fixture(autouse=True, params=["dicts", "avro"])
def _read(request, monkeypatch):
    if request.param == "avro":
        monkeypatch.setattr(Feed, "reader", EventDecoder(light=LIGHT_READ))


class Feed:
    """Feeds platform snapshots through derive_events into a detector, like the pipeline does."""

    reader: EventDecoder | None = None  # set: through Avro bytes and this reader

    def __init__(self, detector=None):
        self.detector = detector or Detector()
        self.held: dict[str, dict] = {}

    def push(self, order: dict, now_ms: int = BASE_MS) -> list[dict]:
        out = []
        events = derive_events(self.held.get(order["order_id"]), order, now_ms)
        for event in events:
            self.held[order["order_id"]] = event["order"]
        if self.reader is not None:
            events = self.reader.decode_firsts([EVENT_CODEC.encode(e) for e in events])
        for event in events:
            out += self.detector.detect(event, now_ms)
        for record in out:
            assert CODEC.decode(CODEC.encode(record)) == record  # every record is a valid Anomaly
        return out


def _states(records):
    return [(r["rule"], r["state"]) for r in records]


def test_raised_once_then_resolved_when_fixed():
    feed = Feed()
    bad = canonical_order(paid_total=15000)
    out = feed.push(bad)
    assert _states(out) == [("amount_mismatch", "raised")]
    raised = out[0]
    assert raised["anomaly_id"] == anomaly_id(bad["order_id"], "amount_mismatch")
    assert raised["action"] == "hold" and raised["event_id"] is not None and raised["order_version"] == 1
    assert feed.detector.hold_reasons(bad["order_id"]) == ["amount_mismatch"]
    # a later event that does not clear it raises nothing new
    assert feed.push(changed(bad, buyer=dict(bad["buyer"], message="快点")), BASE_MS + 1) == []
    fixed = changed(feed.held[bad["order_id"]], minutes=2, paid_total=15780)
    out = feed.push(fixed, BASE_MS + 2)
    assert _states(out) == [("amount_mismatch", "resolved")]
    assert out[0]["anomaly_id"] == raised["anomaly_id"] and out[0]["order_version"] == 3
    assert feed.detector.open_findings(bad["order_id"]) == [] and feed.detector.hold_reasons(bad["order_id"]) == []


def test_same_version_events_are_judged_once():
    detector = Detector()
    events = derive_events(None, canonical_order(paid_total=0), BASE_MS)
    assert [e["event_type"] for e in events] == ["OrderCreated", "OrderPaid"]
    out = [r for e in events for r in detector.detect(e, BASE_MS)]
    assert sorted(_states(out)) == [("amount_mismatch", "raised"), ("zero_amount", "raised")]
    assert detector.detect(events[0], BASE_MS) == []  # re-delivered


def test_address_fixed_resolves_invalid_address():
    feed = Feed()
    order = canonical_order()
    order["receiver"] = dict(order["receiver"], province="浙江省", city="北京市", district="朝阳区")
    assert _states(feed.push(order)) == [("invalid_address", "raised")]
    fixed = changed(feed.held[order["order_id"]])
    fixed["receiver"] = dict(fixed["receiver"], city="杭州市", district="西湖区")
    out = feed.push(fixed, BASE_MS + 1)
    assert _states(out) == [("invalid_address", "resolved")]
    assert out[0]["evidence"]["reason"] == "cleared"


def test_cancel_resolves_everything():
    feed = Feed()
    order = canonical_order(paid_total=0)
    order["receiver"] = dict(order["receiver"], phone_valid=False)
    assert len(feed.push(order)) == 3
    out = feed.push(changed(feed.held[order["order_id"]], status="CANCELLED"), BASE_MS + 1)
    assert sorted(_states(out)) == [("amount_mismatch", "resolved"), ("invalid_phone", "resolved"),
                                    ("zero_amount", "resolved")]
    assert all(r["evidence"]["reason"] == "cancelled" for r in out)


def test_duplicate_across_shops_and_platforms_but_not_a_resent_order():
    feed = Feed()
    first = canonical_order("1001", shop_id="shopA")
    assert feed.push(first) == []
    assert feed.push(changed(first, buyer=dict(first["buyer"], message="x")), BASE_MS + 1) == []  # re-sent, changed
    twin = canonical_order("2002", shop_id="shopB", created_at=first["created_at"] + 5 * 60_000)
    out = feed.push(twin, BASE_MS + 5 * 60_000)
    assert _states(out) == [("duplicate_order", "raised")]
    assert out[0]["order_id"] == twin["order_id"] and out[0]["evidence"]["other_order_id"] == first["order_id"]
    other_platform = canonical_order("3003", platform="jd", created_at=first["created_at"] + 6 * 60_000)
    assert _states(feed.push(other_platform, BASE_MS + 6 * 60_000)) == [("duplicate_order", "raised")]
    # the finding stays while the twin ages out of the window, and goes when the lines change
    later = changed(feed.held[twin["order_id"]], minutes=60, status="SHIPPED")
    assert feed.push(later, BASE_MS + 60 * 60_000) == []
    fewer = changed(feed.held[twin["order_id"]], minutes=61)
    fewer["lines"] = fewer["lines"][:1]
    fewer.update(items_total=7980, discount_total=600, paid_total=7380)
    assert _states(feed.push(fewer, BASE_MS + 61 * 60_000)) == [("duplicate_order", "resolved")]


@pytest.mark.parametrize("arrival", ["original first", "re-placed first"])
def test_the_later_placed_order_is_flagged_whatever_the_arrival_order(arrival):
    """A platform listing newest first hands the re-placed order to the detector before the original."""
    feed = Feed()
    original = canonical_order("1001", shop_id="shopA", created_at=BASE_MS)
    again = canonical_order("2002", shop_id="shopB", created_at=BASE_MS + 3 * 60_000)
    first, second = (original, again) if arrival == "original first" else (again, original)
    out = feed.push(first, BASE_MS + 5 * 60_000) + feed.push(second, BASE_MS + 5 * 60_000)
    assert [(r["order_id"], r["rule"], r["state"], r["evidence"]["other_order_id"]) for r in out] == \
        [(again["order_id"], "duplicate_order", "raised", original["order_id"])]
    assert out[0]["order_version"] == 1 and out[0]["action"] == feed.detector.rules.defaults.duplicate_order.action
    assert feed.detector.open_findings(original["order_id"]) == []
    # the finding stays on the re-placed order through its later versions, and goes when it changes its lines
    assert feed.push(changed(feed.held[again["order_id"]], status="SHIPPED"), BASE_MS + 6 * 60_000) == []
    fewer = changed(feed.held[again["order_id"]], minutes=2)
    fewer["lines"] = fewer["lines"][:1]
    fewer.update(items_total=7980, discount_total=600, paid_total=7380)
    assert _states(feed.push(fewer, BASE_MS + 7 * 60_000)) == [("duplicate_order", "resolved")]


def test_three_placements_arriving_newest_first_flag_the_two_later_ones():
    feed = Feed()
    orders = [canonical_order(str(n), shop_id=f"shop{n}", created_at=BASE_MS + n * 60_000) for n in range(3)]
    out = [r for order in reversed(orders) for r in feed.push(order, BASE_MS + 5 * 60_000)]
    assert sorted(r["order_id"] for r in out) == [orders[1]["order_id"], orders[2]["order_id"]]
    assert feed.detector.open_findings(orders[0]["order_id"]) == []


def test_a_released_later_order_is_not_flagged_again_by_its_original():
    feed = Feed()
    original = canonical_order("1001", shop_id="shopA", created_at=BASE_MS)
    again = canonical_order("2002", shop_id="shopB", created_at=BASE_MS + 60_000)
    feed.push(original, BASE_MS)
    assert _states(feed.push(again, BASE_MS + 60_000)) == [("duplicate_order", "raised")]
    feed.detector.release(again["order_id"], BASE_MS + 61_000)
    assert feed.push(changed(feed.held[original["order_id"]], buyer=dict(original["buyer"], message="改")),
                     BASE_MS + 62_000) == []


def test_reorder_after_cancel_is_not_a_duplicate():
    feed = Feed()
    first = canonical_order("1001")
    feed.push(first)
    feed.push(changed(first, status="CANCELLED"), BASE_MS + 1)
    assert feed.push(canonical_order("1002", created_at=first["created_at"] + 60_000), BASE_MS + 2) == []


def test_duplicate_index_is_bounded_by_the_window():
    feed = Feed()
    for i in range(50):
        order = canonical_order(str(i), created_at=BASE_MS + i * 3 * 60_000)
        order["buyer"] = dict(order["buyer"], id=f"b{i}")
        feed.push(order, BASE_MS + i * 3 * 60_000)
    assert len(feed.detector.dupes) <= 5


def _mug_order(n: int, unit_price: int = 3990, quantity: int = 1) -> dict:
    order = canonical_order(str(n), created_at=BASE_MS + n * 60_000)
    order["buyer"] = dict(order["buyer"], id=f"buyer{n}")
    line = dict(order["lines"][0], unit_price=unit_price, quantity=quantity, discount=0, total=unit_price * quantity)
    order.update(lines=[line], items_total=line["total"], discount_total=0, paid_total=line["total"])
    return order


def test_sku_stats_learn_then_judge_without_poisoning():
    feed = Feed()
    for n in range(19):
        assert feed.push(_mug_order(n)) == []
    assert feed.push(_mug_order(19, unit_price=100)) == []     # 19 samples: not judged yet, learns
    for n in range(20, 40):
        assert feed.push(_mug_order(n)) == []
    out = feed.push(_mug_order(40, unit_price=100))
    assert _states(out) == [("price_anomaly", "raised")] and out[0]["severity"] == "critical"
    samples = feed.detector.skus.samples(("CNY", "TL-MUG"))
    assert _states(feed.push(_mug_order(41, quantity=300))) == [("quantity_spike", "raised")]
    assert feed.detector.skus.samples(("CNY", "TL-MUG")) == samples  # findings are not learned from
    # the shop fixes the price on the flagged order: resolved
    fixed = changed(feed.held["taobao:shop1:40"])
    fixed["lines"] = [dict(fixed["lines"][0], unit_price=3990, total=3990)]
    fixed.update(items_total=3990, paid_total=3990)
    assert _states(feed.push(fixed, BASE_MS + 1)) == [("price_anomaly", "resolved")]


def test_ship_overdue_is_time_driven_and_resolves_on_shipping():
    feed = Feed()
    order = canonical_order(paid_at=BASE_MS)
    assert feed.push(order) == []
    detector = feed.detector
    assert detector.tick(BASE_MS + 47 * HOUR) == []
    out = detector.tick(BASE_MS + 52 * HOUR)
    assert _states(out) == [("ship_overdue", "raised")]
    assert out[0]["event_id"] is None and out[0]["message_zh"] == "超时未发货：已付款 52 小时（承诺 48 小时）"
    assert CODEC.decode(CODEC.encode(out[0])) == out[0]
    assert detector.tick(BASE_MS + 60 * HOUR) == []               # raised once
    assert detector.hold_reasons(order["order_id"]) == []         # flag only by default
    shipped = changed(feed.held[order["order_id"]], status="SHIPPED", shipped_at=BASE_MS + 53 * HOUR,
                      shipments=[{"carrier": "ZTO", "tracking_no": "7", "shipped_at": BASE_MS + 53 * HOUR,
                                  "line_ids": ["1", "2"]}])
    out = feed.push(shipped, BASE_MS + 53 * HOUR)
    assert _states(out) == [("ship_overdue", "resolved")] and out[0]["evidence"]["reason"] == "shipped"


def test_shipping_in_time_is_never_overdue_and_shop_promise_is_used():
    rules = parse_rules({"shops": {"taobao:fast": {"ship_overdue": {"promise_hours": 2, "action": "hold"}}}})
    feed = Feed(Detector(rules))
    slow = canonical_order("1", shop_id="fast", paid_at=BASE_MS)
    on_time = canonical_order("2", paid_at=BASE_MS)
    feed.push(slow)
    feed.push(on_time)
    feed.push(changed(on_time, status="SHIPPED"), BASE_MS + HOUR)
    out = feed.detector.tick(BASE_MS + 3 * HOUR)
    assert [(r["order_id"], r["action"]) for r in out] == [("taobao:fast:1", "hold")]
    assert feed.detector.hold_reasons("taobao:fast:1") == ["ship_overdue"]
    assert feed.detector.tick(BASE_MS + 100 * HOUR) == []


def test_release_resolves_and_keeps_them_released():
    feed = Feed()
    order = canonical_order(paid_total=15000)
    feed.push(order)
    out = feed.detector.release(order["order_id"], BASE_MS + 5, released_by="ops:li")
    assert _states(out) == [("amount_mismatch", "resolved")]
    assert out[0]["evidence"]["released_by"] == "ops:li" and out[0]["event_id"] is None
    assert feed.detector.hold_reasons(order["order_id"]) == []
    again = changed(feed.held[order["order_id"]], discount_total=1300)  # still does not add up
    assert feed.push(again, BASE_MS + 6) == []


def test_disabled_rule_raises_nothing():
    rules = parse_rules({"defaults": {"amount_mismatch": {"enabled": False}}})
    assert Feed(Detector(rules)).push(canonical_order(paid_total=15000)) == []


def test_reopened_order_is_judged_afresh():
    feed = Feed()
    order = canonical_order(paid_total=15000)
    assert _states(feed.push(order)) == [("amount_mismatch", "raised")]
    assert _states(feed.push(changed(feed.held[order["order_id"]], status="CANCELLED"), BASE_MS + 1)) == [
        ("amount_mismatch", "resolved")]
    reopened = changed(feed.held[order["order_id"]], minutes=2, status="PAID")
    assert _states(feed.push(reopened, BASE_MS + 2)) == [("amount_mismatch", "raised")]


def test_an_update_that_changes_no_rule_input_is_judged_from_a_light_snapshot():
    reader, detector = EventDecoder(light=LIGHT_READ), Detector()

    def read(before, after, now_ms):
        return reader.decode_firsts([EVENT_CODEC.encode(e) for e in derive_events(before, after, now_ms)])

    order = canonical_order(paid_total=15000, paid_at=BASE_MS)
    found = [r for e in read(None, order, BASE_MS) for r in detector.detect(e, BASE_MS)]
    assert _states(found) == [("amount_mismatch", "raised")]
    shipped = changed(order, status="SHIPPED", shipped_at=BASE_MS + HOUR,
                      shipments=[with_tracking_fields({"carrier": "ZTO", "tracking_no": "7",
                                                       "shipped_at": BASE_MS + HOUR, "line_ids": ["1", "2"]})])
    (event,) = read(order, shipped, BASE_MS + HOUR)
    assert set(event["order"]) == LIGHT_FIELDS and event["order"]["status"] == "SHIPPED"
    assert detector.detect(event, BASE_MS + HOUR) == []
    assert "snapshot" in event                                     # the rest was never decoded
    assert detector.hold_reasons(order["order_id"]) == ["amount_mismatch"]  # the verdict stands
    assert detector.tick(BASE_MS + 100 * HOUR) == []               # shipped: no longer watched
    # a detector that never saw the order (restarted on a compacted log) needs all of it: decoded then
    (event,) = read(order, shipped, BASE_MS + HOUR)
    assert _states(Detector().detect(event, BASE_MS + HOUR)) == [("amount_mismatch", "raised")]
    assert "snapshot" not in event and event["order"] == shipped
