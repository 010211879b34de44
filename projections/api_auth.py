"""Authentication, authorisation and audit for the HTTP API (an aiohttp middleware), and the token
management routes for admins.

GET    /api/tokens              every token (never the token itself)
POST   /api/tokens {"name", "role"}   201 with the new token, shown once
DELETE /api/tokens/{token_id}   revoke (an id, or the name of an active token)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiohttp import web

from projections import access
from projections.access import ANONYMOUS, Principal, Role
from projections.audit import AuditLog, audit_row, summarize_body
from projections.tokens import TokenError, TokenStore

PRINCIPAL = web.RequestKey("principal", object)  # the Principal of an authorised request (None: open route)


@dataclass
class AuthConfig:
    """Where tokens live, whether loopback callers may read without one, which peers are proxies
    whose X-Forwarded-For is believed."""

    store: TokenStore
    anonymous_viewer: bool = False
    trusted_proxies: tuple = ()

    @classmethod
    def from_settings(cls, settings) -> AuthConfig:
        """From `infra.config.Settings` (tokens_path, anonymous_viewer, trusted_proxies)."""
        return cls(TokenStore(settings.tokens_path), settings.anonymous_viewer,
                   access.parse_networks(settings.trusted_proxies))


AUTH = web.AppKey("auth", AuthConfig)
AUDIT = web.AppKey("audit", AuditLog)


def _json(data, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


def principal_of(request: web.Request) -> Principal:
    """The caller of a request that passed the middleware."""
    return request[PRINCIPAL]


def _identify(request: web.Request, config: AuthConfig) -> Principal | access.Denial:
    try:
        token = access.bearer_token(request.headers.get("Authorization"))
    except ValueError as exc:
        return access.unauthenticated("请求头格式错误", str(exc), "invalid_request")
    if token is None:
        forwarded = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
        if access.anonymous_allowed(config.anonymous_viewer, _peer(request), forwarded):
            return ANONYMOUS
        return access.unauthenticated("需要令牌", "send Authorization: Bearer <token>", None)
    principal = config.store.principal(token)
    if principal is None:
        return access.unauthenticated("令牌无效或已吊销", "the token is unknown or revoked")
    return principal


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return str(peername[0]) if peername else ""


def _authorise(request: web.Request, rule: access.RouteRule) -> tuple[Principal | None, web.Response | None]:
    """(who calls — None when unknown or the route is open; the refusal, or None to serve)."""
    if rule.role is access.OPEN:
        return None, None
    principal = _identify(request, request.app[AUTH])
    if isinstance(principal, access.Denial):
        denial, principal = principal, None
    elif principal.role >= rule.role:
        return principal, None
    elif principal is ANONYMOUS:  # told to authenticate; a token holder, that its role is too weak
        denial = access.unauthenticated("此操作需要令牌", "this needs a token", None)
    else:
        denial = access.forbidden(principal, rule.role)
    return principal, _json(denial.body, denial.status, {"WWW-Authenticate": denial.challenge})


@web.middleware
async def guard(request: web.Request, handler):
    """Authenticate, check the route's role (401/403 with a JSON reason), run the handler, and audit
    writes and SQL — refused attempts included."""
    resource = request.match_info.route.resource
    if resource is None:  # no such route: aiohttp answers 404/405
        return await handler(request)
    rule = access.rule_for(request.method, resource.canonical)
    if rule is None:  # a route missing from the table is refused, never served open
        return _json({"error": "路由未授权 / route has no access rule", "code": "forbidden"}, 403)
    started = time.time()
    principal, response = _authorise(request, rule)
    request[PRINCIPAL] = principal
    if not access.audited(request.method, rule):
        return response if response is not None else await handler(request)
    raw = await request.read()
    status = 500
    try:
        if response is None:
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        await _audit(request, rule, principal, raw, status, started)


async def _audit(request: web.Request, rule, principal, raw: bytes, status: int, started: float) -> None:
    summary, sql = summarize_body(raw, rule)
    peer = _peer(request)
    client = access.client_address(peer, request.headers.get("X-Forwarded-For"), request.app[AUTH].trusted_proxies)
    row = audit_row(principal=principal, method=request.method, path=request.path, route=request.match_info.route.resource.canonical,
                    summary=summary, sql=sql, status=status, client=client, peer=peer, started=started)
    await asyncio.to_thread(request.app[AUDIT].write, row)


def register(app: web.Application) -> None:
    """Add the token management routes (admin only, by the route table)."""
    app.router.add_get("/api/tokens", list_tokens)
    app.router.add_post("/api/tokens", create_token)
    app.router.add_delete("/api/tokens/{token_id}", revoke_token)


async def list_tokens(request: web.Request) -> web.Response:
    """Every token's id, name, role, created/revoked time and last four characters."""
    try:
        records = await asyncio.to_thread(request.app[AUTH].store.records)
    except TokenError as exc:
        return _json({"error": str(exc)}, 500)
    return _json({"tokens": [r.public() for r in records]})


async def create_token(request: web.Request) -> web.Response:
    """{"name": ..., "role": "viewer|operator|admin"} -> 201 {"token": ..., "id", "name", "role", ...}."""
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("role"), str):
        return _json({"error": '请求体应为 / body must be JSON {"name": "...", "role": "viewer|operator|admin"}'}, 400)
    try:
        role = Role.parse(body["role"])
        token, record = await asyncio.to_thread(request.app[AUTH].store.create, body["name"], role)
    except (TokenError, ValueError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json({"token": token, **record.public()}, 201)


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token by id (or by the name of an active token); 404 when there is none."""
    try:
        record = await asyncio.to_thread(request.app[AUTH].store.revoke, request.match_info["token_id"])
    except TokenError as exc:
        return _json({"error": str(exc)}, 404)
    return _json(record.public())
