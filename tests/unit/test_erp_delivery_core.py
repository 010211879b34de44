"""The deliverer's pure core: routing file, retry policy, per-order lanes and commits, the warehouse."""
from __future__ import annotations

import pytest

from connectors.erp.warehouse import intercepted, shipment_for, tracking_number
from infra.config import INFRA_DIR
from streams.erp.config import ErpConfigError, Retry, load_erp_routing
from streams.erp.lanes import Delivery, PartitionLane
from streams.erp.policy import backoff_s, exhausted, judge, retry_after
from tests.factories import canonical_order

# -- routing file ---------------------------------------------------------------------------------------------


def test_the_shipped_routing_file_follows_the_simulator_address():
    endpoints = load_erp_routing(INFRA_DIR / "erp.toml", {"TONGLU_ERP_SIM_HTTP": "http://127.0.0.1:9999/"})
    by_name = {e.name: e for e in endpoints}
    assert by_name["erp-sim"].url == "http://127.0.0.1:9999/hooks/tonglu" and by_name["erp-sim"].format == "json"
    assert by_name["erp-sim"].wants("OrderCancelled") and by_name["erp-sim"].retry.max_attempts == 20
    qimen = by_name["wms-qimen"]
    assert qimen.format == "qimen" and qimen.qimen.warehouse_code == "HZ-WH-01"
    assert qimen.wants("OrderPaid") and not qimen.wants("OrderCreated")
    assert qimen.secret({"TONGLU_QIMEN_SECRET": "x"}) == "x"
    with pytest.raises(ErpConfigError, match="TONGLU_QIMEN_SECRET"):
        qimen.secret({})


def _write(tmp_path, text: str):
    path = tmp_path / "erp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_endpoint_values_override_the_defaults(tmp_path):
    path = _write(tmp_path, """
[defaults]
connections = 2
[defaults.retry]
max_attempts = 5
[[endpoints]]
name = "a"
url = "http://h/x"
secret_env = "S"
pipeline = 1
retry = { max_attempts = 2, initial_s = 0.1, max_s = 1 }
[[endpoints]]
name = "b"
url = "https://h/y"
secret_env = "S"
enabled = false
""")
    [a] = load_erp_routing(path, {})
    assert (a.connections, a.pipeline, a.timeout_s) == (2, 1, 10.0)
    assert a.retry == Retry(max_attempts=2, initial_s=0.1, max_s=1)


@pytest.mark.parametrize(("text", "message"), [
    ("[[endpoints]]\nname='A b'\nurl='http://h'\nsecret_env='S'\n", "endpoints.0.name"),
    ("[[endpoints]]\nname='a'\nurl='ftp://h'\nsecret_env='S'\n", "url 'ftp://h' is not an http"),
    ("[[endpoints]]\nname='a'\nurl='http://h'\nsecret_env='S'\nformat='qimen'\n", "needs a [endpoints.qimen] table"),
    ("[[endpoints]]\nname='a'\nurl='http://h'\nsecret_env='S'\ncolour='red'\n", "endpoints.0.colour"),
    (("[[endpoints]]\nname='a'\nurl='http://h'\nsecret_env='S'\n[[endpoints]]\nname='a'\nurl='http://h'\n"
     "secret_env='S'\n"), "unique"),
    ("[[endpoints]]\nname='a'\nurl='${NOPE}/x'\nsecret_env='S'\n", "variable NOPE is not set"),
    ("[[endpoints\n", "not valid TOML"),
])
def test_a_bad_routing_file_is_refused_in_one_line(tmp_path, text, message):
    with pytest.raises(ErpConfigError, match=message.replace("[", r"\[")) as caught:
        load_erp_routing(_write(tmp_path, text), {})
    assert "\n" not in str(caught.value) and str(tmp_path) in str(caught.value)


def test_a_missing_routing_file(tmp_path):
    with pytest.raises(ErpConfigError, match="file not found"):
        load_erp_routing(tmp_path / "none.toml", {})


# -- retry policy ---------------------------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jittered_within_half():
    retry = Retry(max_attempts=10, initial_s=1.0, max_s=30.0)
    assert [backoff_s(n, retry, 0.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert [backoff_s(n, retry, 0.999999) for n in (1, 6, 60, 1000)] == pytest.approx([1, 30, 30, 30])
    assert backoff_s(1, retry, 0.0, retry_after_s=12) == 12
    assert backoff_s(1, retry, 0.0, retry_after_s=3600) == 30  # Retry-After honoured up to the cap


def test_the_default_retries_outlast_a_minute_long_outage():
    retry = Retry()
    shortest = sum(backoff_s(n, retry, 0.0) for n in range(1, retry.max_attempts))
    assert shortest > 25 * 60  # an ERP down for maintenance does not fill the dead letters
    assert not exhausted(retry.max_attempts - 1, retry) and exhausted(retry.max_attempts, retry)


def test_judging_answers():
    assert judge(200, b"", {}).ok and judge(204, b"", {}).ok
    refused = judge(503, b"busy\nnow", {"retry-after": "7"})
    assert not refused.ok and refused.reason == "HTTP 503: busy now" and refused.retry_after_s == 7
    assert judge(404, b"", {}).reason == "HTTP 404"
    flagged = judge(200, b"<response/>", {}, body_error="flag failure: X: y")
    assert not flagged.ok and flagged.reason == "flag failure: X: y" and flagged.status == 200
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None and retry_after("-1") is None


# -- lanes ------------------------------------------------------------------------------------------------------


def _d(offset: int, order: str) -> Delivery:
    return Delivery(0, offset, order, b"")


def test_one_order_at_a_time_others_alongside():
    lane = PartitionLane(0)
    a1, b1, a2, a3, c1 = _d(10, "a"), _d(11, "b"), _d(12, "a"), _d(13, "a"), _d(14, "c")
    assert [lane.add(d) for d in (a1, b1, a2, a3, c1)] == [True, True, False, False, True]
    assert lane.finish(a1) is a2  # a's next goes only now
    assert lane.finish(c1) is None
    assert lane.committable() == 11  # b1 (offset 11) is still on its way
    assert lane.finish(b1) is None
    assert lane.committable() == 12
    assert lane.finish(a2) is a3 and lane.committable() == 13
    assert lane.finish(a3) is None and lane.committable() == 15 and len(lane) == 0
    assert lane.committable() is None  # nothing moved


def test_skipped_records_hold_their_place_for_commits_only():
    lane = PartitionLane(0)
    a1, skipped, b1 = _d(1, "a"), _d(2, "a"), _d(3, "b")
    assert lane.add(a1)
    lane.skip(skipped)
    assert lane.add(b1)
    assert lane.finish(b1) is None and lane.committable() is None
    assert lane.finish(a1) is None and lane.committable() == 4


def test_finishing_out_of_order_is_a_bug_not_a_silent_reorder():
    lane = PartitionLane(0)
    a1, a2 = _d(1, "a"), _d(2, "a")
    lane.add(a1)
    lane.add(a2)
    with pytest.raises(ValueError, match="finished before"):
        lane.finish(a2)


# -- warehouse ----------------------------------------------------------------------------------------------------

DEMO = frozenset({("taobao", "tonglu-home")})


def _body(**order) -> dict:
    return {"event_type": "OrderPaid", "order": canonical_order(shop_id="tonglu-home", **order)}


def test_the_warehouse_ships_paid_orders_of_demo_shops_only():
    request = shipment_for(_body(), DEMO)
    assert request == {"carrier": "ZTO", "tracking_no": tracking_number("taobao:tonglu-home:1001", "75", 12),
                       "line_ids": ["1", "2"]}
    assert len(request["tracking_no"]) == 14 and request["tracking_no"].isdigit()
    assert shipment_for(_body(), DEMO) == request  # the same order, the same parcel
    assert shipment_for(_body(status="PENDING_PAYMENT"), DEMO) is None
    assert shipment_for(_body(status="SHIPPED"), DEMO) is None
    assert shipment_for(_body(refund_status="REQUESTED"), DEMO) is None
    assert shipment_for({"order": canonical_order(shop_id="someone-else")}, DEMO) is None
    assert shipment_for({"no": "order"}, DEMO) is None


def test_the_warehouse_leaves_out_shipped_and_refunded_lines_and_ships_abroad_by_ups():
    order = canonical_order(shop_id="tonglu-home", external_id="7")
    order["lines"][1]["refund_status"] = "REFUNDED"
    assert shipment_for({"order": order}, DEMO)["line_ids"] == ["1"]
    order["shipments"] = [{"carrier": "SF", "tracking_no": "SF1", "shipped_at": 1, "line_ids": ["1"]}]
    assert shipment_for({"order": order}, DEMO) is None
    abroad = canonical_order(shop_id="tonglu-home")
    abroad["receiver"] = {**abroad["receiver"], "country": "US"}
    request = shipment_for({"order": abroad}, DEMO)
    assert request["carrier"] == "UPS" and request["tracking_no"].startswith("1Z") and len(request["tracking_no"]) == 18


def test_refunds_and_cancellations_intercept_a_parcel_not_yet_gone():
    assert intercepted(_body(refund_status="REQUESTED")) and intercepted(_body(status="CANCELLED"))
    assert not intercepted(_body()) and not intercepted({"x": 1})


# -- replay selection -------------------------------------------------------------------------------------------


def _letter(endpoint: str, event_id: str, order: str, version: int, failed_at: int, offset: int = 0) -> dict:
    return {"endpoint": endpoint, "event_id": event_id, "order_id": order, "version": version,
            "failed_at": failed_at, "offset": offset}


def test_replay_takes_the_endpoint_s_letters_since_a_time_once_per_event():
    from streams.erp.replay import per_order, select

    letters = [_letter("erp", "e1", "o1", 2, 100), _letter("wms", "e1", "o1", 2, 100),
               _letter("erp", "e2", "o1", 1, 200), _letter("erp", "e1", "o1", 2, 300),  # e1 failed again
               _letter("erp", "", "o2", -1, 400), _letter("erp", "", "o3", -1, 500), _letter("erp", "e5", "o2", 3, 50)]
    chosen = select(letters, "erp", since_ms=100)
    assert [(r["event_id"], r["failed_at"]) for r in chosen] == [("e1", 100), ("e2", 200), ("", 400), ("", 500)]
    assert [r["event_id"] for r in select(letters, "erp", None)] == ["e1", "e2", "", "", "e5"]
    assert select(letters, "nope", None) == []
    orders = per_order(chosen)
    assert [r["event_id"] for r in orders["o1"]] == ["e2", "e1"]  # version order within the order
    assert set(orders) == {"o1", "o2", "o3"}


def test_the_simulator_tally_counts_repeats_and_events_out_of_order():
    from connectors.erp.simulator import Tally

    tally = Tally(remember=4)
    for event_id, order, version in (("a1", "a", 1), ("a2", "a", 2), ("a1", "a", 1), ("b2", "b", 2), ("b1", "b", 1)):
        tally.accepted(event_id, order, version, 0)
    assert tally.public() == {"received": 5, "rejected": 0, "repeats": 1, "out_of_order": 1, "qimen_received": 0,
                              "qimen_rejected": 0, "orders": 2}
    tally.accepted("c1", "c", 1, 0)  # the fifth id: memory starts afresh
    assert len(tally.seen_events) == 1 and tally.counts["received"] == 6
