"""Read queries of the anomaly feature (blocking: run them in a thread). Exact answers read with FINAL.

`anomalies` holds the latest record of each finding (open = latest state raised); `anomaly_log` holds
every raised/resolved record; `alerts` holds one row per delivered-or-failed alert message.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from projections.clickhouse.ddl import check_identifier
from schemas.canonical import ms_to_iso

ANOMALY_LIST_DEFAULT = 100
ANOMALY_LIST_MAX = 1000
ALERT_LIST_DEFAULT = 50
ALERT_LIST_MAX = 1000
STATES = ("raised", "resolved")
_ANOMALY_SELECT = (
    "anomaly_id, order_id, event_id, platform, shop_id, rule, severity, action, state, message_zh, "
    "message_en, evidence, toUnixTimestamp64Milli(detected_at) AS detected_ms, order_version"
)
_ALERT_SELECT = (
    "key, ok, channel, route, rule, kind, severity, title, anomaly_ids, order_ids, attempts, attempt_count, "
    "toUnixTimestamp64Milli(finished_at) AS finished_ms"
)


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_since(text: str | None) -> int | None:
    """`since` as epoch milliseconds: digits are epoch ms, anything else ISO-8601 (no offset = UTC)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"since must be epoch milliseconds or an ISO-8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)  # int() would turn .001 s into 0 ms


def held_orders_sql(db: str) -> str:
    """A subquery of the order ids with at least one open hold finding."""
    db = check_identifier(db)
    return f"SELECT order_id FROM {db}.anomalies FINAL WHERE state = 'raised' AND action = 'hold'"


def anomaly_item(row: dict) -> dict:
    """A query row -> the API form of a finding (times ISO-8601 Z)."""
    return {
        "anomaly_id": row["anomaly_id"],
        "order_id": row["order_id"],
        "event_id": row["event_id"],
        "platform": row["platform"],
        "shop_id": row["shop_id"],
        "rule": row["rule"],
        "severity": row["severity"],
        "action": row["action"],
        "state": row["state"],
        "message_zh": row["message_zh"],
        "message_en": row["message_en"],
        "evidence": dict(row["evidence"] or {}),
        "detected_at": ms_to_iso(int(row["detected_ms"])),
        "order_version": int(row["order_version"]),
    }


def list_anomalies(
    backend,
    db: str,
    *,
    order_id: str | None = None,
    rule: str | None = None,
    since_ms: int | None = None,
    state: str | None = None,
    limit: int = ANOMALY_LIST_DEFAULT,
    history: bool = False,
) -> list[dict]:
    """Findings newest first: the latest record of each (default) or every record (`history`)."""
    db = check_identifier(db)
    limit = max(1, min(int(limit), ANOMALY_LIST_MAX))
    where = [
        f"{col} = {quote(val)}"
        for col, val in (("order_id", order_id), ("rule", rule), ("state", state))
        if val
    ]
    if since_ms is not None:
        where.append(f"detected_at >= fromUnixTimestamp64Milli({int(since_ms)}, 'UTC')")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    table = "anomaly_log" if history else "anomalies"
    rows = backend.query(
        f"SELECT {_ANOMALY_SELECT} FROM {db}.{table} FINAL {clause}"
        f"ORDER BY detected_at DESC, anomaly_id, state LIMIT {limit}"
    )
    return [anomaly_item(r) for r in rows]


def order_findings(backend, db: str, order_id: str) -> dict:
    """The hold view of one order: `hold`, `hold_reasons` (open hold findings) and `anomalies` (all open)."""
    open_items = list_anomalies(backend, db, order_id=order_id, state="raised", limit=ANOMALY_LIST_MAX)
    reasons = [
        {k: a[k] for k in ("rule", "message_zh", "message_en", "anomaly_id", "detected_at")}
        for a in open_items
        if a["action"] == "hold"
    ]
    return {"hold": bool(reasons), "hold_reasons": reasons, "anomalies": open_items}


def alert_item(row: dict) -> dict:
    """A query row -> the API form of an alert message (times ISO-8601 Z)."""
    return {
        "key": row["key"],
        "ok": bool(row["ok"]),
        "channel": row["channel"],
        "route": row["route"],
        "rule": row["rule"],
        "kind": row["kind"],
        "severity": row["severity"],
        "title": row["title"],
        "anomaly_ids": list(row["anomaly_ids"]),
        "order_ids": list(row["order_ids"]),
        "attempts": orjson.loads(row["attempts"] or "[]"),
        "attempt_count": int(row["attempt_count"]),
        "finished_at": ms_to_iso(int(row["finished_ms"])),
    }


def list_alerts(backend, db: str, *, rule: str | None = None, limit: int = ALERT_LIST_DEFAULT) -> list[dict]:
    """Alert messages newest first: what was sent where, whether it got through, after which attempts."""
    db = check_identifier(db)
    limit = max(1, min(int(limit), ALERT_LIST_MAX))
    clause = f"WHERE rule = {quote(rule)} " if rule else ""
    rows = backend.query(
        f"SELECT {_ALERT_SELECT} FROM {db}.alerts FINAL {clause}ORDER BY finished_at DESC, key LIMIT {limit}"
    )
    return [alert_item(r) for r in rows]


def anomaly_stats(backend, db: str) -> dict:
    """Open findings by rule, held orders and alert outcomes of the last hour."""
    db = check_identifier(db)
    by_rule = {
        r["rule"]: int(r["n"])
        for r in backend.query(
            f"SELECT rule, count() AS n FROM {db}.anomalies FINAL WHERE state = 'raised' GROUP BY rule ORDER BY rule"
        )
    }
    holds = backend.query(f"SELECT uniqExact(order_id) AS n FROM ({held_orders_sql(db)})")[0]["n"]
    alerts = backend.query(
        "SELECT countIf(ok = 1) AS sent, countIf(ok = 0) AS failed "
        f"FROM {db}.alerts FINAL WHERE finished_at >= now64(3) - INTERVAL 1 HOUR"
    )[0]
    return {
        "open_anomalies": sum(by_rule.values()),
        "open_anomalies_by_rule": by_rule,
        "holds": int(holds),
        "alerts_last_hour": {"sent": int(alerts["sent"]), "failed": int(alerts["failed"])},
    }
