"""The sender's callback receiver: providers push delivery reports and buyers' replies here.

`POST /sms/{provider}/report/{token}` and `POST /sms/{provider}/uplink/{token}` (provider aliyun or tencent, and
for reports also a platform whose official channel pushes them, e.g. taobao; the token is `TONGLU_SMS_CALLBACK_TOKEN`, put into the URL given to the provider's console, since neither provider
signs its pushes). A wrong token is 401 and nothing is recorded; a push that is not the provider's shape is 400;
a push that comes while the sender is not running (still reading its ledger back after a start, or stopping) is
503 with Retry-After, so the provider pushes it again rather than it be matched against half a ledger. Accepted
pushes are answered as each provider expects, after they are on the broker.
"""
from __future__ import annotations

import logging

import orjson
from aiohttp import web

from connectors.sms.callbacks import (
    ACKS,
    PLATFORM_ACK,
    REPLY_PARSERS,
    REPORT_PARSERS,
    CallbackError,
    platform_reports,
    token_ok,
)
from streams.sms.identity import is_opt_out

log = logging.getLogger(__name__)
SENDER = web.AppKey("sms_sender", object)
TOKEN = web.AppKey("sms_callback_token", str)
RETRY_AFTER_S = 5


def report_path(provider: str, token: str) -> str:
    return f"/sms/{provider}/report/{token}"


def uplink_path(provider: str, token: str) -> str:
    return f"/sms/{provider}/uplink/{token}"


def create_app(sender, token: str) -> web.Application:
    """The receiver for `sender` (a SenderService: `ready`, `reports`, `opt_out`, `stats`)."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SENDER], app[TOKEN] = sender, token
    app.router.add_post("/sms/{provider}/report/{token}", _report)
    app.router.add_post("/sms/{provider}/uplink/{token}", _uplink)
    app.router.add_get("/sms/stats", _stats)
    return app


def _report_parsers(sender) -> dict:
    """The gateways' report parsers and those of the platform channels that push reports."""
    channels = {name: (lambda body, name=name, spec=spec: platform_reports(body, name, spec.report_fields))
                for name, spec in sender.config.channels.items() if spec.reports}
    return {**channels, **REPORT_PARSERS}


async def _body(request: web.Request, parsers: dict):
    provider = request.match_info["provider"]
    if provider not in parsers:
        raise web.HTTPNotFound(text=f"no SMS provider {provider!r}")
    if not token_ok(request.match_info["token"], request.app[TOKEN]):
        log.warning("短信回调被拒 refused a %s push to %s: wrong callback token", provider, request.path.split("/")[3])
        raise web.HTTPUnauthorized(text="wrong callback token")
    try:
        parsed = parsers[provider](orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, CallbackError) as exc:
        raise web.HTTPBadRequest(text=str(exc)[:200]) from None
    if not request.app[SENDER].ready:
        raise web.HTTPServiceUnavailable(text="sender starting or stopping: push again later",
                                         headers={"Retry-After": str(RETRY_AFTER_S)})
    return provider, parsed


async def _report(request: web.Request) -> web.Response:
    provider, reports = await _body(request, _report_parsers(request.app[SENDER]))
    _, unmatched = await request.app[SENDER].reports(reports)
    if unmatched:
        log.warning("短信回执 %d of %d %s reports match no message we sent to that number", unmatched,
                    len(reports), provider)
    return web.json_response(ACKS.get(provider, PLATFORM_ACK))


async def _uplink(request: web.Request) -> web.Response:
    provider, replies = await _body(request, REPLY_PARSERS)
    for reply in replies:
        if is_opt_out(reply.text):
            await request.app[SENDER].opt_out(provider, reply.phone, reply.text.strip(" \t\r\n。.!！,，").upper())
    return web.json_response(ACKS[provider])


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SENDER].stats())
