"""HTTP routes of the SMS hub:

GET /api/sms?order_id=&shop=&status=&limit=   messages newest first, recipients masked (viewer)
GET /api/sms/stats                            per shop and template: sent, delivered, failed, suppressed, ... (viewer)
POST /api/sms/members                         import members: a CSV body, or JSON rows (operator)
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from projections import sms_queries
from projections.api_anomalies import _json, _limit

DEPS = web.AppKey("sms_deps", object)


def register(app: web.Application, deps_key: web.AppKey) -> None:
    """Add the SMS routes to `app`, whose dependencies (a Projector) are at `app[deps_key]`."""
    app[DEPS] = app[deps_key]
    app.router.add_get("/api/sms", list_sms)
    app.router.add_get("/api/sms/stats", sms_stats)
    app.router.add_post("/api/sms/members", import_members)


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


def _members_body(content_type: str, raw: bytes) -> str | list:
    """The CSV text, or the JSON rows (`[{...}]` or `{"members": [{...}]}`); ValueError says what is wrong."""
    if content_type in ("text/csv", "text/plain"):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("CSV 应为 UTF-8 / the CSV must be UTF-8") from None
    if content_type != "application/json":
        raise ValueError("Content-Type: text/csv（CSV 文件）或 application/json（成员行）/ text/csv (the members file) or "
                         'application/json ([{"member_id", "shop_id", ...}] or {"members": [...]})')
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("请求体不是 JSON / the body is not JSON") from None
    rows = body.get("members") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        raise ValueError('成员行应为非空数组 / members must be a non-empty array: [{"member_id", "shop_id", ...}] '
                         'or {"members": [...]}')
    return rows


async def import_members(request: web.Request) -> web.Response:
    """Import members for birthday greetings and points notices, as `tonglu sms members FILE.csv` does: a CSV body
    (`text/csv`; errors name the file's line) or JSON rows (errors name the row, from 1). Good rows are imported,
    bad ones refused: 200 {"imported", "refused": []}, or 422 when any was refused; 400 an unreadable body, 413
    over the API's 1 MB (import larger files with the CLI), 503 no importer configured or the broker unreachable."""
    importer = getattr(request.app[DEPS], "member_import", None)
    if importer is None:
        return _json({"error": "member import is not configured"}, 503)
    try:
        members = _members_body(request.content_type, await request.read())
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    try:
        imported, refused = await asyncio.to_thread(importer, members)
    except ValueError as exc:  # a key the import needs is missing
        return _json({"error": str(exc)}, 503)
    except Exception as exc:  # noqa: BLE001 - the broker: the caller may try again
        return _json({"error": f"members not delivered: {exc}"}, 503)
    return _json({"imported": imported, "refused": refused}, 422 if refused else 200)
