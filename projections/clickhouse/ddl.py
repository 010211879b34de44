"""DDL of the `tonglu` database: tables, their column order for inserts, and dashboard views.

Every table is a ReplacingMergeTree whose sorting key is the natural identity of a row, so an
at-least-once replay inserts duplicates that merge away; exact queries read them with FINAL.
"""

from __future__ import annotations

import re

DEFAULT_DATABASE = "tonglu"
_TS = "DateTime64(3, 'UTC')"
_NTS = f"Nullable({_TS})"

_ANOMALY_COLUMNS = [
    ("anomaly_id", "String"),
    ("order_id", "String"),
    ("event_id", "Nullable(String)"),
    ("platform", "LowCardinality(String)"),
    ("shop_id", "String"),
    ("rule", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("action", "LowCardinality(String)"),
    ("state", "LowCardinality(String)"),
    ("message_zh", "String"),
    ("message_en", "String"),
    ("evidence", "Map(String, String)"),
    ("detected_at", _TS),
    ("order_version", "UInt64"),
]

_TABLES: dict[str, tuple[list[tuple[str, str]], str]] = {
    "order_events": (
        [
            ("event_id", "String"),
            ("event_type", "LowCardinality(String)"),
            ("order_id", "String"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("version", "UInt64"),
            ("seq", "UInt32"),
            ("occurred_at", _TS),
            ("recorded_at", _TS),
            ("status", "LowCardinality(String)"),
            ("refund_status", "LowCardinality(String)"),
            ("paid_total", "Int64"),
            ("currency", "LowCardinality(String)"),
            ("changed_fields", "Array(String)"),
        ],
        (
            "ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) "
            "ORDER BY (platform, shop_id, order_id, event_id)"
        ),
    ),
    # Not partitioned: deduplication by version only happens inside a partition, and no column of the
    # latest state is fixed for the life of an order except its key.
    "orders": (
        [
            ("order_id", "String"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("external_id", "String"),
            ("status", "LowCardinality(String)"),
            ("refund_status", "LowCardinality(String)"),
            ("platform_status", "String"),
            ("created_at", _NTS),
            ("paid_at", _NTS),
            ("updated_at", _NTS),
            ("shipped_at", _NTS),
            ("delivered_at", _NTS),
            ("currency", "LowCardinality(String)"),
            ("items_total", "Int64"),
            ("shipping_fee", "Int64"),
            ("discount_total", "Int64"),
            ("tax_total", "Int64"),
            ("paid_total", "Int64"),
            ("refunded_total", "Int64"),
            ("line_count", "UInt16"),
            ("province", "LowCardinality(Nullable(String))"),
            ("city", "LowCardinality(Nullable(String))"),
            ("version", "UInt64"),
            ("order_json", "String"),
        ],
        "ReplacingMergeTree(version) ORDER BY (platform, shop_id, order_id)",
    ),
    "connector_calls": (
        [
            ("call_id", "String"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("endpoint", "LowCardinality(String)"),
            ("started_at", _TS),
            ("latency_ms", "Float64"),
            ("http_status", "UInt16"),
            ("ok", "UInt8"),
            ("error_code", "Nullable(String)"),
            ("records", "UInt32"),
            ("attempt", "UInt16"),
        ],
        (
            "ReplacingMergeTree PARTITION BY toYYYYMM(started_at) "
            "ORDER BY (platform, shop_id, started_at, call_id)"
        ),
    ),
    "dead_letters": (
        [
            ("stage", "LowCardinality(String)"),
            ("error", "String"),
            ("failed_at", _TS),
            ("topic", "String"),
            ("partition", "Int32"),
            ("offset", "Int64"),
            ("platform", "LowCardinality(Nullable(String))"),
            ("shop_id", "Nullable(String)"),
            ("external_id", "Nullable(String)"),
        ],
        "ReplacingMergeTree ORDER BY (topic, partition, offset)",
    ),
    # Latest state of each finding: one row per anomaly_id after FINAL. `revision` (detected_at * 2, +1
    # when resolved) is the replacing version, so the newest record wins, a resolution beats a raise of
    # the same millisecond, and a replayed old record never overrides a newer one. anomaly_id is derived
    # from order_id|rule, so leading the key with order_id keeps the identity and makes per-order reads cheap.
    "anomalies": (
        [*_ANOMALY_COLUMNS, ("revision", "UInt64")],
        "ReplacingMergeTree(revision) ORDER BY (order_id, anomaly_id)",
    ),
    # History for analysts: every raised/resolved record once (replays merge away on the full identity).
    "anomaly_log": (
        _ANOMALY_COLUMNS,
        (
            "ReplacingMergeTree PARTITION BY toYYYYMM(detected_at) "
            "ORDER BY (order_id, anomaly_id, detected_at, state)"
        ),
    ),
    # One row per delivered-or-failed alert message; `attempts` is a JSON array (times ISO-8601 Z).
    "alerts": (
        [
            ("key", "String"),
            ("ok", "UInt8"),
            ("channel", "LowCardinality(Nullable(String))"),
            ("route", "LowCardinality(String)"),
            ("rule", "LowCardinality(String)"),
            ("kind", "LowCardinality(String)"),
            ("severity", "LowCardinality(String)"),
            ("title", "String"),
            ("anomaly_ids", "Array(String)"),
            ("order_ids", "Array(String)"),
            ("attempts", "String"),
            ("attempt_count", "UInt16"),
            ("finished_at", _TS),
        ],
        "ReplacingMergeTree PARTITION BY toYYYYMM(finished_at) ORDER BY (key, finished_at)",
    ),
    # One row per ShipmentResult on fulfillment.results: every outcome of every upload attempt.
    "shipments": (
        [
            ("shipment_id", "String"),
            ("order_id", "String"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("status", "LowCardinality(String)"),
            ("carrier_code", "Nullable(String)"),
            ("tracking_no", "String"),
            ("line_ids", "Array(String)"),
            ("attempt", "UInt16"),
            ("reason", "Nullable(String)"),
            ("recorded_at", _TS),
        ],
        (
            "ReplacingMergeTree PARTITION BY toYYYYMM(recorded_at) "
            "ORDER BY (order_id, shipment_id, recorded_at, status, attempt)"
        ),
    ),
    # One row per tracking step Tonglu took (a TrackingUpdated event, the parcel whose step it was); the
    # same step again merges away.
    "tracking": (
        [
            ("order_id", "String"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("tracking_no", "String"),
            ("carrier", "Nullable(String)"),
            ("tracking_state", "LowCardinality(String)"),
            ("tracking_status", "Nullable(String)"),
            ("step", "Nullable(String)"),
            ("step_at", _TS),
            ("delivered_at", _NTS),
            ("event_id", "String"),
            ("version", "UInt64"),
        ],
        (
            "ReplacingMergeTree(version) PARTITION BY toYYYYMM(step_at) "
            "ORDER BY (order_id, tracking_no, step_at, tracking_state)"
        ),
    ),
    # Latest state of each SMS message (sms.receipts): one row per key after FINAL, the later record winning
    # (`revision`, schemas/sms.py: rank of the status, then the record's time). No phone, not even hashed.
    "sms_messages": (
        [
            ("key", "String"),
            ("order_id", "Nullable(String)"),
            ("member_id", "Nullable(String)"),
            ("platform", "LowCardinality(String)"),
            ("shop_id", "String"),
            ("trigger", "LowCardinality(String)"),
            ("template", "LowCardinality(String)"),
            ("kind", "LowCardinality(String)"),
            ("channel", "LowCardinality(String)"),
            ("provider", "LowCardinality(Nullable(String))"),
            ("status", "LowCardinality(String)"),
            ("reason", "Nullable(String)"),
            ("code", "Nullable(String)"),
            ("to_masked", "Nullable(String)"),
            ("segments", "UInt16"),
            ("provider_id", "Nullable(String)"),
            ("out_id", "Nullable(String)"),
            ("attempts", "String"),
            ("created_at", _TS),
            ("sent_at", _NTS),
            ("reported_at", _NTS),
            ("at", _TS),
            ("revision", "UInt64"),
        ],
        "ReplacingMergeTree(revision) ORDER BY (shop_id, key)",
    ),
    # Every write and SQL query to the HTTP API (projections/audit.py); readable by admins through SQL.
    "audit_log": (
        [
            ("audit_id", "String"),
            ("at", _TS),
            ("token_id", "String"),
            ("token_name", "String"),
            ("role", "LowCardinality(String)"),
            ("method", "LowCardinality(String)"),
            ("path", "String"),
            ("route", "LowCardinality(String)"),
            ("summary", "String"),
            ("sql", "Nullable(String)"),
            ("status", "UInt16"),
            ("client", "String"),
            ("peer", "String"),
            ("duration_ms", "Float64"),
        ],
        "ReplacingMergeTree PARTITION BY toYYYYMM(at) ORDER BY (at, audit_id)",
    ),
}

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(c for c, _ in cols) for t, (cols, _) in _TABLES.items()}
TABLE_TYPES: dict[str, dict[str, str]] = {t: dict(cols) for t, (cols, _) in _TABLES.items()}

_VIEWS = {
    "daily_orders_by_platform": (
        "SELECT toDate(created_at) AS day, platform, count() AS orders, sum(paid_total) AS paid_total "
        "FROM {db}.orders FINAL WHERE created_at IS NOT NULL GROUP BY day, platform"
    ),
    "status_funnel": (
        "SELECT platform, status, count() AS orders FROM {db}.orders FINAL GROUP BY platform, status"
    ),
}

# What analysts' SQL may read (the Null landing tables and materialized views of avro_landing are not in it).
ANALYST_TABLES = frozenset(_TABLES) | frozenset(_VIEWS)


def check_identifier(name: str) -> str:
    """Return `name` if it is a plain SQL identifier (database names are interpolated into DDL)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def schema_statements(db: str = DEFAULT_DATABASE) -> list[str]:
    """Idempotent DDL statements creating the database, tables and views."""
    from projections.clickhouse.avro_landing import EventLanding  # it builds on this module's names

    db = check_identifier(db)
    out = [f"CREATE DATABASE IF NOT EXISTS {db}"]
    for table, (cols, engine) in _TABLES.items():
        body = ", ".join(f"`{c}` {t}" for c, t in cols)
        out.append(f"CREATE TABLE IF NOT EXISTS {db}.{table} ({body}) ENGINE = {engine}")
    for view, select in _VIEWS.items():
        out.append(f"CREATE VIEW IF NOT EXISTS {db}.{view} AS {select.format(db=db)}")
    return out + EventLanding(db).statements()


def create_schema(backend, db: str = DEFAULT_DATABASE) -> None:
    """Apply the DDL through any backend (safe to run on every start)."""
    for statement in schema_statements(db):
        backend.command(statement)
