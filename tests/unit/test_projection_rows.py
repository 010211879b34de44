"""Pure row builders of the ClickHouse projections."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from projections.clickhouse import rows
from projections.clickhouse.ddl import TABLE_COLUMNS, schema_statements
from schemas.canonical import ms_to_iso
from schemas.canonical import order_json as canonical_order_json
from tests.samples import (
    BASE_MS,
    sample_alert_report,
    sample_anomaly,
    sample_call,
    sample_dead_letter,
    sample_event,
)


def test_event_row_matches_columns():
    event = sample_event(version=2)
    row = dict(zip(TABLE_COLUMNS["order_events"], rows.event_row(event), strict=True))
    assert row["event_id"] == event["event_id"]
    assert row["platform"] == "taobao" and row["shop_id"] == "shop1"
    assert row["status"] == "PAID" and row["paid_total"] == 20_300
    assert row["occurred_at"] == event["occurred_at"] and row["changed_fields"] == ["status"]


def test_order_row_keeps_the_whole_masked_order_as_json():
    order = sample_event(version=3)["order"]
    row = dict(zip(TABLE_COLUMNS["orders"], rows.order_row(order), strict=True))
    assert row["version"] == 3 and row["line_count"] == 1 and row["city"] == "杭州市"
    assert row["shipped_at"] == order["shipped_at"]
    doc = orjson.loads(row["order_json"])
    assert doc == order
    api_form = canonical_order_json(doc)
    assert api_form["created_at"] == ms_to_iso(order["created_at"]) and api_form["created_at"].endswith("Z")
    assert api_form["shipments"][0]["shipped_at"] == ms_to_iso(order["shipments"][0]["shipped_at"])
    assert api_form["delivered_at"] is None
    assert doc["receiver"]["phone_masked"] == "138****5678" and "phone" not in doc["receiver"]


def test_order_json_does_not_mutate_the_event():
    order = sample_event(version=3)["order"]
    before = orjson.dumps(order)
    rows.order_json(order)
    assert orjson.dumps(order) == before


def test_ms_to_iso_agrees_with_datetime():
    rng = random.Random(7)
    for ms in [0, -1, 999, 1_767_225_600_000, 253_402_300_799_999,
               *(rng.randint(-(10**12), 4 * 10**12) for _ in range(20_000))]:
        expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert ms_to_iso(ms) == expected
    assert ms_to_iso(None) is None


def test_event_rows_give_both_tables():
    out = rows.event_rows(sample_event())
    assert set(out) == {"order_events", "orders"}


def test_connector_call_row():
    row = dict(
        zip(TABLE_COLUMNS["connector_calls"], rows.connector_call_row(sample_call(ok=False)), strict=True)
    )
    assert row["ok"] == 0 and row["http_status"] == 500 and row["error_code"] == "isp.remote-service-error"
    assert isinstance(row["latency_ms"], float)


def test_dead_letter_row_skips_the_payload():
    row = dict(
        zip(TABLE_COLUMNS["dead_letters"], rows.dead_letter_row(sample_dead_letter(offset=9)), strict=True)
    )
    assert row["offset"] == 9 and row["stage"] == "map" and row["external_id"] == "1001"
    assert b"{bad}" not in orjson.dumps(list(row.values()))


def test_ddl_is_replacing_and_parameterised():
    statements = schema_statements("tonglu_x")
    assert all("tonglu_x." in s for s in statements[1:])
    tables = [s for s in statements if s.startswith("CREATE TABLE") and "ENGINE = Null" not in s]
    assert len(tables) == 11 and all("ReplacingMergeTree" in s for s in tables)
    landing = [s for s in statements if "ENGINE = Null" in s]  # only ever a pass-through to views
    assert len(landing) == 1 and "order_events_in_" in landing[0]
    assert "ReplacingMergeTree(version)" in next(s for s in tables if ".orders " in s)


def test_anomaly_rows_give_latest_state_and_history():
    anomaly = sample_anomaly(evidence={"expected": "15780", "n": 3})
    out = rows.anomaly_rows(anomaly)
    assert set(out) == {"anomalies", "anomaly_log"}
    latest = dict(zip(TABLE_COLUMNS["anomalies"], out["anomalies"], strict=True))
    log = dict(zip(TABLE_COLUMNS["anomaly_log"], out["anomaly_log"], strict=True))
    assert {k: v for k, v in latest.items() if k != "revision"} == log
    assert log["anomaly_id"] == anomaly["anomaly_id"] and len(log["anomaly_id"]) == 32
    assert log["event_id"] is None and log["platform"] == "taobao" and log["shop_id"] == "shop1"
    assert (log["rule"], log["action"], log["state"]) == ("amount_mismatch", "hold", "raised")
    assert log["evidence"] == {"expected": "15780", "n": "3"}  # Map(String, String)
    assert log["detected_at"] == anomaly["detected_at"] and log["order_version"] == 1


def test_anomaly_revision_orders_raise_and_resolution():
    raised = sample_anomaly(detected_at=1_000)
    resolved = sample_anomaly(state="resolved", detected_at=1_000)
    raised_again = sample_anomaly(detected_at=1_001)
    revisions = [rows.anomaly_revision(a) for a in (raised, resolved, raised_again)]
    assert revisions == sorted(revisions) and len(set(revisions)) == 3  # a resolution wins a tie
    assert rows.anomaly_revision(sample_anomaly(state="resolved", detected_at=999)) < revisions[0]


def test_anomaly_row_does_not_share_the_evidence_dict():
    anomaly = sample_anomaly()
    log = rows.anomaly_row(anomaly)
    log[TABLE_COLUMNS["anomaly_log"].index("evidence")]["x"] = "y"
    assert "x" not in anomaly["evidence"]


def test_alert_row_keeps_attempts_as_json():
    report = sample_alert_report(finished_at=BASE_MS)
    row = dict(zip(TABLE_COLUMNS["alerts"], rows.alert_row(report), strict=True))
    assert row["ok"] == 1 and row["channel"] == "wecom" and row["attempt_count"] == 2
    assert row["anomaly_ids"] == report["anomaly_ids"] and row["order_ids"] == ["taobao:shop1:1001"]
    assert row["finished_at"] == BASE_MS
    attempts = orjson.loads(row["attempts"])
    assert [a["channel"] for a in attempts] == ["dingtalk", "wecom"]
    assert attempts[0] == {
        "channel": "dingtalk",
        "attempt": 1,
        "ok": False,
        "error": "HTTP 503",
        "code": "503",
        "retryable": True,
        "started_at": ms_to_iso(BASE_MS - 900),
        "latency_ms": 120.5,
    }


def test_failed_alert_row_has_no_channel():
    row = dict(zip(TABLE_COLUMNS["alerts"], rows.alert_row(sample_alert_report(ok=False)), strict=True))
    assert row["ok"] == 0 and row["channel"] is None and row["attempt_count"] == 1


def test_anomaly_ddl_choices():
    statements = {s.split()[5].split(".")[1]: s for s in schema_statements() if s.startswith("CREATE TABLE")}
    assert "ReplacingMergeTree(revision) ORDER BY (order_id, anomaly_id)" in statements["anomalies"]
    assert "ORDER BY (order_id, anomaly_id, detected_at, state)" in statements["anomaly_log"]
    assert "ORDER BY (key, finished_at)" in statements["alerts"]
    assert "`evidence` Map(String, String)" in statements["anomalies"]
    assert "`event_id` Nullable(String)" in statements["anomaly_log"]


def test_map_and_array_arrow_types():
    import pyarrow as pa

    from projections.clickhouse.backends import arrow_type

    assert arrow_type("Map(String, String)") == pa.map_(pa.string(), pa.string())
    assert arrow_type("Map(LowCardinality(String), Array(String))") == pa.map_(
        pa.string(), pa.list_(pa.string())
    )


def test_avro_types_map_to_the_columns_clickhouse_fills():
    from projections.clickhouse.avro_landing import clickhouse_type

    named: dict = {}
    status = {"type": "enum", "name": "S", "symbols": ["A", "B"]}
    assert clickhouse_type(["null", "long"]) == "Nullable(Int64)"
    assert clickhouse_type({"type": "array", "items": ["null", "string"]}) == "Array(Nullable(String))"
    assert clickhouse_type({"type": "map", "values": "double"}) == "Map(String, Float64)"
    assert clickhouse_type(status, named) == "Enum8('A' = 0, 'B' = 1)"
    assert clickhouse_type("S", named) == "Enum8('A' = 0, 'B' = 1)"  # a later reference by name
    record = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "int"}, {"name": "b", "type": "boolean"}]}
    assert clickhouse_type(["null", record]) == "Tuple(x Int32, b Bool)"  # ClickHouse cannot wrap a Tuple in Nullable
    with pytest.raises(ValueError, match="unions"):
        clickhouse_type(["null", "string", "long"])


def test_the_landing_table_follows_the_current_event_schema():
    from projections.clickhouse.avro_landing import EventLanding
    from schemas import registry

    landing = EventLanding("tonglu_x")
    fingerprint = registry.fingerprint_of(registry.current("OrderEvent")).hex()[:12]
    table, events_view, orders_view, tracking_view = landing.statements()
    assert landing.table == f"tonglu_x.order_events_in_{fingerprint}" and "ENGINE = Null" in table
    assert "TO tonglu_x.order_events" in events_view and "TO tonglu_x.orders" in orders_view
    assert "TO tonglu_x.tracking" in tracking_view and "event_type = 'TrackingUpdated'" in tracking_view
    assert "WHERE seq = 0" in orders_view and "output_format_json_quote_64bit_integers = 0" in orders_view
    container = landing.container([b"\x00", b"\x02"])
    assert container.startswith(b"Obj\x01") and container.endswith(b"\x04\x04\x00\x02" + container[-16:])


def test_a_tracking_step_is_one_row_of_its_parcel_and_other_events_none():
    from streams.tracking import apply_tracking
    from tests.samples import sample_shipment_result

    order = sample_event(version=3)["order"]
    update = {"tracking_no": "SF100", "company": "shunfeng", "carrier": "顺丰速运", "state": "DELIVERED",
              "status": "签收", "step": "已签收，签收人：本人", "step_at": order["updated_at"] + 60_000,
              "delivered_at": order["updated_at"] + 60_000, "monitoring": "shutdown", "steps": 5}
    _, events = apply_tracking(order, update, order["updated_at"] + 61_000)
    assert [len(rows.tracking_rows(e)) for e in events] == [1, 0]  # TrackingUpdated, OrderDelivered
    row = dict(zip(TABLE_COLUMNS["tracking"], rows.tracking_rows(events[0])[0], strict=True))
    assert (row["tracking_no"], row["tracking_state"], row["step"], row["event_id"]) == (
        "SF100", "DELIVERED", "已签收，签收人：本人", events[0]["event_id"])
    assert rows.tracking_rows(sample_event(version=3)) == []
    result = dict(zip(TABLE_COLUMNS["shipments"], rows.shipment_row(sample_shipment_result()), strict=True))
    assert (result["platform"], result["shop_id"], result["status"]) == ("taobao", "shop1", "UPLOADED")


def test_a_stages_progress_is_the_sum_over_its_live_instances():
    from projections.loop_queries import stage_progress

    assert stage_progress({"ok": True, "instances": [{"progress": 120}, {"progress": 30}, {"progress": None}]}) == 150
    assert stage_progress({"ok": False, "instances": []}) == 0 and stage_progress(None) == 0
