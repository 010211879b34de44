"""HTTP routes of the anomaly feature: findings, alerts and releasing held orders.

GET  /api/anomalies?order_id=&rule=&state=&since=&limit=&history=  findings newest first
GET  /api/alerts?rule=&limit=                                       alert messages newest first
POST /api/orders/{order_id}/release {"reason": ...}               publish an OrderCommand "release"

Who releases is the caller's token (`issued_by` = token name#id); a body naming someone ("by") is refused.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from projections import anomaly_queries, queries
from projections.api_auth import principal_of
from projections.commands import CommandError, release_command

DEPS = web.AppKey("anomaly_deps", object)
MAX_REASON_LENGTH = 2000


class BadRequest(Exception):
    """The request body is not acceptable (the message says why)."""


def register(app: web.Application, deps_key: web.AppKey) -> None:
    """Add the anomaly routes to `app`, whose dependencies (a Projector) are at `app[deps_key]`."""
    app[DEPS] = app[deps_key]
    app.router.add_get("/api/anomalies", list_anomalies)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post("/api/orders/{order_id}/release", release_order)


def _json(data, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _limit(text: str | None, default: int, maximum: int) -> int:
    """The `limit` query parameter clamped to 1..maximum; ValueError when it is not an integer."""
    if text is None or text == "":
        return default
    try:
        return max(1, min(int(text), maximum))
    except ValueError:
        raise ValueError("limit must be an integer") from None


def _flag(text: str | None) -> bool:
    return (text or "").lower() in ("1", "true", "yes")


async def list_anomalies(request: web.Request) -> web.Response:
    """Findings newest first (latest state of each; `history=true`: every raised/resolved record).

    ?order_id=&rule=&state=raised|resolved&since=<ISO time or epoch ms>&limit= (default 100, max 1000).
    """
    deps, q = request.app[DEPS], request.query
    try:
        limit = _limit(q.get("limit"), anomaly_queries.ANOMALY_LIST_DEFAULT, anomaly_queries.ANOMALY_LIST_MAX)
        since_ms = anomaly_queries.parse_since(q.get("since"))
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    state = q.get("state") or None
    if state is not None and state not in anomaly_queries.STATES:
        return _json({"error": "state must be raised or resolved"}, 400)
    items = await asyncio.to_thread(
        anomaly_queries.list_anomalies,
        deps.backend,
        deps.database,
        order_id=q.get("order_id") or None,
        rule=q.get("rule") or None,
        since_ms=since_ms,
        state=state,
        limit=limit,
        history=_flag(q.get("history")),
    )
    return _json({"anomalies": items, "count": len(items)})


async def list_alerts(request: web.Request) -> web.Response:
    """Alert messages newest first: channel, ok, attempts; ?rule=&limit= (default 50, max 1000)."""
    deps, q = request.app[DEPS], request.query
    try:
        limit = _limit(q.get("limit"), anomaly_queries.ALERT_LIST_DEFAULT, anomaly_queries.ALERT_LIST_MAX)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    items = await asyncio.to_thread(
        anomaly_queries.list_alerts, deps.backend, deps.database, rule=q.get("rule") or None, limit=limit
    )
    return _json({"alerts": items, "count": len(items)})


async def _release_reason(request: web.Request) -> str | None:
    """The optional `reason` of a release request; BadRequest with the reason when the body is invalid."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest('请求体应为 / body must be JSON {"reason": "..."}')
    if "by" in body:
        raise BadRequest('不接受 "by"：释放人即令牌的名称 / "by" is not accepted: the releasing person is the token\'s name')
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH):
        raise BadRequest(f'"reason" must be a string of at most {MAX_REASON_LENGTH} characters')
    return (reason.strip() or None) if reason is not None else None


async def release_order(request: web.Request) -> web.Response:
    """Ask the detector to release a held order: 202 {"accepted", "command_id"} once the OrderCommand is
    on the broker; 400 bad body, 404 unknown order, 409 no open hold, 503 commands not configured/failed.

    The hold disappears from the read model when the detector's resolving Anomaly records are projected.
    """
    deps = request.app[DEPS]
    order_id = request.match_info["order_id"]
    try:
        reason = await _release_reason(request)
    except BadRequest as exc:
        return _json({"error": str(exc)}, 400)
    publisher = getattr(deps, "commands", None)
    if publisher is None:
        return _json({"error": "order commands are not configured"}, 503)
    order = await asyncio.to_thread(queries.get_order, deps.backend, deps.database, order_id)
    if order is None:
        return _json({"error": f"unknown order {order_id}"}, 404)
    findings = await asyncio.to_thread(anomaly_queries.order_findings, deps.backend, deps.database, order_id)
    if not findings["hold"]:
        return _json({"error": f"order {order_id} has no open hold", "hold": False}, 409)
    command = release_command(order_id, principal_of(request).issued_by, reason)
    try:
        await asyncio.to_thread(publisher.publish, command)
    except CommandError as exc:
        return _json({"error": str(exc)}, 503)
    return _json(
        {
            "accepted": True,
            "command_id": command["command_id"],
            "order_id": order_id,
            "releases": [r["anomaly_id"] for r in findings["hold_reasons"]],
        },
        202,
    )
