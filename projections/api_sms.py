"""HTTP routes of the SMS hub (viewer role):

GET /api/sms?order_id=&shop=&status=&limit=   messages newest first, recipients masked
GET /api/sms/stats                            per shop and template: sent, delivered, failed, suppressed, ...
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from projections import sms_queries
from projections.api_anomalies import _json, _limit

DEPS = web.AppKey("sms_deps", object)


def register(app: web.Application, deps_key: web.AppKey) -> None:
    """Add the SMS routes to `app`, whose dependencies (a Projector) are at `app[deps_key]`."""
    app[DEPS] = app[deps_key]
    app.router.add_get("/api/sms", list_sms)
    app.router.add_get("/api/sms/stats", sms_stats)


async def list_sms(request: web.Request) -> web.Response:
    """{"messages": [{key, order_id, shop_id, trigger, template, kind, channel, provider, status, reason,
    to_masked, segments, created_at, sent_at}]}; ?order_id=&shop=&status=&limit= (default 100, max 1000)."""
    deps, q = request.app[DEPS], request.query
    try:
        limit = _limit(q.get("limit"), sms_queries.SMS_LIST_DEFAULT, sms_queries.SMS_LIST_MAX)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    status = q.get("status") or None
    if status is not None and status not in sms_queries.API_STATUSES:
        return _json({"error": f"status must be one of {', '.join(sms_queries.API_STATUSES)}"}, 400)
    messages = await asyncio.to_thread(sms_queries.list_sms, deps.backend, deps.database,
                                       order_id=q.get("order_id") or None, shop=q.get("shop") or None,
                                       status=status, limit=limit)
    return _json({"messages": messages})


async def sms_stats(request: web.Request) -> web.Response:
    """The status page's SMS figures."""
    deps = request.app[DEPS]
    return _json(await asyncio.to_thread(sms_queries.sms_stats, deps.backend, deps.database))
