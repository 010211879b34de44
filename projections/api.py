"""HTTP API and the one-page status view of the projector (aiohttp).

Every ClickHouse query runs in a worker thread, so the event loop keeps answering while a large
flush or an analyst's query is running.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Protocol

import orjson
from aiohttp import web

from projections import (
    analyst_sql,
    anomaly_queries,
    api_anomalies,
    api_auth,
    api_shipments,
    api_sms,
    loop_queries,
    openapi,
    queries,
)
from projections.audit import AuditLog
from projections.health import HealthMonitor


class ApiDeps(Protocol):
    """What the API reads: a `Projector` satisfies it."""

    backend: object
    database: str
    metrics: object
    lag: object

    def counters(self) -> dict: ...

    def alive(self) -> bool: ...


DEPS = web.AppKey("deps", object)
HEALTH = web.AppKey("health", object)
PLATFORMS = web.AppKey("platforms", list)


def _json(data, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


def create_api(deps: ApiDeps, auth: api_auth.AuthConfig, health: HealthMonitor | None = None,
               platforms: list[dict] = ()) -> web.Application:
    """The aiohttp application serving /api/* (with the anomaly routes of `api_anomalies`, the ship-back
    route of `api_shipments` and the token routes of `api_auth`), /healthz, /metrics and the status page
    at /. Without `health` (no heartbeats read) /healthz reports this process's projector alone;
    `platforms` is the platform catalogue /api/platforms lists.

    Every route is guarded by the role `projections.access.ROUTES` gives it; writes and SQL are audited.
    """
    app = web.Application(client_max_size=1 << 20, middlewares=[api_auth.guard])
    app[DEPS] = deps
    app[PLATFORMS] = list(platforms)
    app[api_auth.AUTH] = auth
    app[api_auth.AUDIT] = AuditLog(deps.backend, deps.database)
    app[HEALTH] = health
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi_document)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/platforms", list_platforms)
    app.router.add_get("/api/orders", list_orders)
    app.router.add_get("/api/orders/{order_id}", get_order)
    app.router.add_post("/api/sql", run_sql)
    api_anomalies.register(app, DEPS)
    api_shipments.register(app, DEPS)
    api_sms.register(app, DEPS)
    api_auth.register(app)
    return app


async def index(request: web.Request) -> web.Response:
    """The self-contained status page (Chinese first, English below each label)."""
    html = resources.files("projections").joinpath("static/index.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API and of the webhooks Tonglu sends to ERPs."""
    return _json(openapi.document())


async def healthz(request: web.Request) -> web.Response:
    """Every stage and the broker: 200 with status "ok" when all are up, else 503 with status "degraded"."""
    report = await asyncio.to_thread(_health, request.app)
    return _json(report, 200 if report["status"] == "ok" else 503)


def _health(app: web.Application) -> dict:
    """The health report; this process's projector is down when its consumer thread died, whatever its
    heartbeats said a moment ago."""
    alive = app[DEPS].alive()
    local = {} if alive else {"projector": "消费线程已停止 consumer thread stopped"}
    if app[HEALTH] is not None:
        return app[HEALTH].report(local)
    return {"status": "ok" if alive else "degraded", "stages": {"projector": {"ok": alive, **(
        {"reason": local["projector"]} if local else {})}}}


async def get_order(request: web.Request) -> web.Response:
    """The latest masked canonical order with its version and hold state (`hold`, `hold_reasons`,
    `anomalies`: the open findings) and its `timeline` (`loop_queries.order_timeline`), or 404."""
    deps = request.app[DEPS]
    order_id = request.match_info["order_id"]
    order = await asyncio.to_thread(queries.get_order, deps.backend, deps.database, order_id)
    if order is None:
        return _json({"error": f"unknown order {order_id}"}, 404)
    order.update(
        await asyncio.to_thread(anomaly_queries.order_findings, deps.backend, deps.database, order_id)
    )
    order["timeline"] = await asyncio.to_thread(loop_queries.order_timeline, deps.backend, deps.database, order_id)
    return _json(order)


async def list_orders(request: web.Request) -> web.Response:
    """Latest orders, newest update first; ?platform=&shop=&status=&hold=true|false&limit= (default 50,
    max 500)."""
    deps, q = request.app[DEPS], request.query
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        return _json({"error": "limit must be an integer"}, 400)
    hold = q.get("hold")
    if hold not in (None, "", "true", "false", "1", "0"):
        return _json({"error": "hold must be true or false"}, 400)
    orders = await asyncio.to_thread(
        queries.list_orders,
        deps.backend,
        deps.database,
        platform=q.get("platform"),
        shop=q.get("shop"),
        status=q.get("status"),
        hold=None if not hold else hold in ("true", "1"),
        limit=limit,
    )
    return _json({"orders": orders, "count": len(orders)})


async def stats(request: web.Request) -> web.Response:
    """Dashboard figures: ClickHouse aggregates plus the projector's live counters and lag; `platforms` has a
    row per platform (names, orders, API health; see `platform_rows`)."""
    deps = request.app[DEPS]
    figures = await asyncio.to_thread(queries.stats, deps.backend, deps.database)
    figures.update(await asyncio.to_thread(anomaly_queries.anomaly_stats, deps.backend, deps.database))
    figures["loop"] = await asyncio.to_thread(loop_queries.loop_figures, deps.backend, deps.database)
    counters = deps.counters()
    lag = deps.lag.snapshot()
    health = await asyncio.to_thread(_health, request.app)
    if not figures["loop"]["sent_to_erp"]:
        figures["loop"]["sent_to_erp"] = loop_queries.stage_progress(health["stages"].get("erp"))
    figures.update(
        {
            "events_per_second": counters["events_per_second"],
            "total_events": figures["stored_events"],
            "events_consumed": counters["total_events"],
            "consumed_by_topic": counters["totals_by_topic"],
            "undecodable": counters["undecodable"],
            "lag": lag["partitions"],
            "lag_total": lag["total"],
            "raw_records": lag["raw_records"],
            "consumer_alive": deps.alive(),
            "status": health["status"],
            "stages": health["stages"],
            "platform_names": platform_names(request.app[PLATFORMS]),
            "platforms": platform_rows(request.app[PLATFORMS], figures),
        }
    )
    return _json(figures)


def platform_names(catalogue: list[dict]) -> dict[str, dict]:
    """{code or alias: {"zh": ..., "en": ...}} for labelling figures keyed by platform."""
    names = {}
    for p in catalogue:
        names[p["code"]] = {"zh": p["name_zh"], "en": p["name_en"]}
        for alias, alias_names in p.get("aliases", {}).items():
            names[alias] = {"zh": alias_names["name_zh"], "en": alias_names["name_en"]}
    return names


def platform_rows(catalogue: list[dict], figures: dict) -> list[dict]:
    """One row per platform for the dashboard: code, Chinese and English name, orders (all, today), and its
    API calls of the last 5 minutes (count, success rate, p50/p99 ms). Every platform of the catalogue has
    a row, with zeros and None until it has figures; then any other code the data holds (an alias such as
    tmall, a platform no longer configured)."""
    names = platform_names(catalogue)
    health = {r["platform"]: r for r in figures.get("connector_calls_by_platform", [])}
    codes = [p["code"] for p in catalogue]
    for code in [*figures.get("orders_by_platform", {}), *health]:
        if code not in codes:
            codes.append(code)
    rows = []
    for code in codes:
        name = names.get(code, {"zh": code, "en": code})
        calls = health.get(code, {})
        rows.append({"code": code, "name_zh": name["zh"], "name_en": name["en"],
                     "orders": figures.get("orders_by_platform", {}).get(code, 0),
                     "orders_today": figures.get("orders_today_by_platform", {}).get(code, 0),
                     "calls": int(calls.get("calls", 0)), "success_rate": calls.get("success_rate"),
                     "p50_ms": calls.get("p50_ms"), "p99_ms": calls.get("p99_ms")})
    return rows


async def list_platforms(request: web.Request) -> web.Response:
    """Every platform Tonglu speaks: code, Chinese and English names, aliases, capabilities
    (pull, push, ship_back, encrypted_receivers)."""
    return _json({"platforms": request.app[PLATFORMS]})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format from the projector's own registry (gauges refreshed per scrape)."""
    deps = request.app[DEPS]
    counts = await asyncio.to_thread(queries.order_counts, deps.backend, deps.database)
    m = deps.metrics
    m.orders.clear()
    for row in counts:
        m.orders.labels(row["platform"], row["status"]).set(int(row["orders"]))
    m.lag.clear()
    for partition, item in deps.lag.snapshot()["partitions"].items():
        m.lag.labels(str(partition)).set(item["lag"])
    return web.Response(body=m.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def run_sql(request: web.Request) -> web.Response:
    """Analysts' SQL: {"sql": "..."} -> {"columns": [...], "rows": [[...]]}, or 400 with the reason
    (one read-only statement over the database's tables, under limits; see `analyst_sql`)."""
    deps = request.app[DEPS]
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return _json({"error": '请求体须为 JSON body must be JSON {"sql": "..."}'}, 400)
    sql = body.get("sql") if isinstance(body, dict) else None
    status, answer = await analyst_sql.answer(request, deps.backend, deps.database, sql)
    return _json(answer, status)
