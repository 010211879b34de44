"""Read queries of the API (blocking: run them in a thread). Exact answers read with FINAL."""

from __future__ import annotations

import orjson

from projections.anomaly_queries import held_orders_sql
from projections.clickhouse.ddl import check_identifier
from schemas.canonical import order_json

ORDER_LIST_MAX = 500


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def get_order(backend, db: str, order_id: str) -> dict | None:
    """The latest masked canonical order with its version, or None."""
    db = check_identifier(db)
    rows = backend.query(
        f"SELECT order_json, version FROM {db}.orders FINAL WHERE order_id = {_quote(order_id)} LIMIT 1"
    )
    if not rows:
        return None
    order = order_json(orjson.loads(rows[0]["order_json"]))
    order["version"] = int(rows[0]["version"])
    return order


def list_orders(
    backend,
    db: str,
    *,
    platform: str | None = None,
    shop: str | None = None,
    status: str | None = None,
    hold: bool | None = None,
    limit: int = 50,
) -> list[dict]:
    """Latest orders, newest `updated_at` first, optionally filtered (`hold`: on hold or not)."""
    db = check_identifier(db)
    limit = max(1, min(int(limit), ORDER_LIST_MAX))
    where = [
        f"{col} = {_quote(val)}"
        for col, val in (("platform", platform), ("shop_id", shop), ("status", status))
        if val
    ]
    if hold is not None:
        where.append(f"order_id {'IN' if hold else 'NOT IN'} ({held_orders_sql(db)})")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = backend.query(
        f"SELECT order_json FROM {db}.orders FINAL {clause}"
        f"ORDER BY updated_at DESC NULLS LAST, order_id LIMIT {limit}"
    )
    return [order_json(orjson.loads(r["order_json"])) for r in rows]


def order_counts(backend, db: str) -> list[dict]:
    """Orders by platform and status, plus how many were created today (Beijing day)."""
    db = check_identifier(db)
    return backend.query(
        "SELECT platform, status, count() AS orders, "
        "countIf(toDate(created_at, 'Asia/Shanghai') = toDate(now(), 'Asia/Shanghai')) AS today "
        f"FROM {db}.orders FINAL GROUP BY platform, status ORDER BY platform, status"
    )


def event_count(backend, db: str) -> int:
    """Distinct events stored (replays collapse)."""
    db = check_identifier(db)
    return int(backend.query(f"SELECT count() AS n FROM {db}.order_events FINAL")[0]["n"])


def dead_letter_count(backend, db: str) -> int:
    """Dead letters stored (one per failed source record)."""
    db = check_identifier(db)
    return int(backend.query(f"SELECT count() AS n FROM {db}.dead_letters FINAL")[0]["n"])


def connector_health(backend, db: str, minutes: int = 5, per_shop: bool = True) -> list[dict]:
    """Per platform+shop (per platform alone with `per_shop=False`) over the last `minutes`: calls, success
    rate, p50/p99 latency (ms)."""
    db = check_identifier(db)
    keys = "platform, shop_id" if per_shop else "platform"
    return backend.query(
        f"SELECT {keys}, count() AS calls, avg(ok) AS success_rate, "
        "quantileExact(0.5)(latency_ms) AS p50_ms, quantileExact(0.99)(latency_ms) AS p99_ms "
        f"FROM {db}.connector_calls FINAL WHERE started_at >= now64(3) - INTERVAL {int(minutes)} MINUTE "
        f"GROUP BY {keys} ORDER BY {keys}"
    )


def stats(backend, db: str) -> dict:
    """Everything the dashboard shows that lives in ClickHouse."""
    counts = order_counts(backend, db)
    by_platform: dict[str, int] = {}
    by_status: dict[str, int] = {}
    by_platform_status: dict[str, dict[str, int]] = {}
    today_by_platform: dict[str, int] = {}
    for row in counts:
        n = int(row["orders"])
        by_platform[row["platform"]] = by_platform.get(row["platform"], 0) + n
        today_by_platform[row["platform"]] = today_by_platform.get(row["platform"], 0) + int(row["today"])
        by_status[row["status"]] = by_status.get(row["status"], 0) + n
        by_platform_status.setdefault(row["platform"], {})[row["status"]] = n
    return {
        "total_orders": sum(by_platform.values()),
        "orders_today": sum(int(r["today"]) for r in counts),
        "orders_by_platform": by_platform,
        "orders_by_status": by_status,
        "orders_by_platform_status": by_platform_status,
        "stored_events": event_count(backend, db),
        "dlq_count": dead_letter_count(backend, db),
        "connector_calls": connector_health(backend, db),
        "orders_today_by_platform": today_by_platform,
        "connector_calls_by_platform": connector_health(backend, db, per_shop=False),
    }
