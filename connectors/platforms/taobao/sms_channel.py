"""Taobao's official message channel for encrypted buyers: `taobao.jst.sms.oaid.message.send` (聚石塔, erp_and_messaging.md
§4), called through the TOP gateway like any TOP API: form POST, md5 signature, the business parameter
`param_send_message_by_o_a_i_d_request` as a JSON string. The order's OAID goes as it came; Taobao resolves the
number. Our idempotency key rides in `extend`.

Lists: integrators (聚石塔 partners) put up to 100 such objects in one request through their own gateway
(`request_data`, a JSON array; each object keeps its `extend`, so every message keeps its key). The shape below —
form fields `app_key`, `session`, `timestamp`, `sign_method`, `request_data`, md5-signed as TOP is, answered
`{"results": [{"extend", "success", "module", "code", "msg"}]}` — follows one integrator's documentation and is
unverified for others; `batch_url` in the channel's configuration turns it on.

`sim_routes(state)` is the simulator's side, mounted by the SMS simulator (connectors/sms/simulator.py).
"""
from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from connectors.sms.config import ChannelSpec
from connectors.sms.gateways import Outgoing, Result, Unanswered, json_answer

from .signing import sign

METHOD = "taobao.jst.sms.oaid.message.send"
PARAM = "param_send_message_by_o_a_i_d_request"
RESPONSE = "jst_sms_oaid_message_send_response"
BEIJING = ZoneInfo("Asia/Shanghai")
# the fixture's demo app (erp_and_messaging.md fixtures); its secret is the simulator's own
DEMO_APP_KEY, DEMO_SECRET = "12345678", "demoTaobaoSmsSecret"
DEMO_SESSION = "6100e2demo0session0token0000000000000000000"
RETRYABLE_CODES = {"7", "520", "15"}  # app call limited, remote service temporarily unavailable, remote error
BATCH_MAX, BATCH_PATH = 100, "/jst/sms/oaid/batch"  # the integrator's list form (unverified; see above)


def _business(message: Outgoing, external_id: str) -> dict:
    return {"order_id": external_id, "oaid": message.to, "sms_free_sign_name": message.sign_name,
            "template_code": message.template_code, "params": dict(message.params), "extend": message.key}


def _signed(params: dict, secrets: dict) -> dict:
    params["sign"] = sign(params, secrets.get("secret") or "")
    return {"data": params}


def request(spec: ChannelSpec, secrets: dict, message: Outgoing, external_id: str, now: float) -> dict:
    """The POST keyword arguments (`data`: the form) of one signed TOP call."""
    return _signed({"method": METHOD, "app_key": spec.app_key, "session": secrets.get("session") or "",
                    "timestamp": datetime.fromtimestamp(now, BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                    "format": "json", "v": "2.0", "sign_method": "md5",
                    PARAM: orjson.dumps(_business(message, external_id)).decode()}, secrets)


def batch_request(spec: ChannelSpec, secrets: dict, items: list[tuple[Outgoing, str]], now: float) -> dict:
    """The POST keyword arguments (`data`: the form) of one signed list of up to 100 messages (the integrator's
    gateway)."""
    return _signed({"app_key": spec.app_key, "session": secrets.get("session") or "",
                    "timestamp": datetime.fromtimestamp(now, BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                    "sign_method": "md5",
                    "request_data": orjson.dumps([_business(m, e) for m, e in items]).decode()}, secrets)


def batch_result(status: int, body: bytes, started: float, keys: list[str]) -> list[Result]:
    """A result per message of a list, matched by `extend`; a refusal of the whole list for each of them."""
    try:
        doc, latency = json_answer(status, body, started, "results")
    except Unanswered:
        return [result(status, body, started)] * len(keys)  # a TOP error (or none) for the whole list
    by_key = {str(r.get("extend")): r for r in doc["results"] if isinstance(r, dict)} if isinstance(
        doc["results"], list) else {}
    out = []
    for key in keys:
        item = by_key.get(key)
        if item is None:
            # answered without a word on this message: it may have been taken, so it is in doubt, not sent again
            out.append(Result(False, "missing", "no result for this message", in_doubt=True, latency_ms=latency))
        elif item.get("success"):
            out.append(Result(True, "OK", provider_id=item.get("module"), latency_ms=latency))
        else:
            code = str(item.get("code") or "failed")
            retry = code.startswith("isp.")
            out.append(Result(False, code, f"{code} {item.get('msg') or ''}".strip(), elsewhere=retry,
                              unhealthy=retry, latency_ms=latency))
    return out


def result(status: int, body: bytes, started: float) -> Result:
    """The TOP answer: `module` (the extension code, kept as the message id) or `error_response`."""
    try:
        doc, latency = json_answer(status, body, started)
    except Unanswered as exc:
        return exc.result
    if isinstance(doc.get(RESPONSE), dict):
        return Result(True, "OK", provider_id=doc[RESPONSE].get("module"), latency_ms=latency)
    error = doc.get("error_response") if isinstance(doc.get("error_response"), dict) else {}
    code = str(error.get("sub_code") or error.get("code") or f"http_{status}")
    text = f"{code} {error.get('sub_msg') or error.get('msg') or ''}".strip()
    retry = str(error.get("code")) in RETRYABLE_CODES or code.startswith("isp.")
    return Result(False, code, text, elsewhere=retry, unhealthy=retry, latency_ms=latency)


# -- the simulator's side ---------------------------------------------------------------------------------------
def _error(code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None) -> web.Response:
    error = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
             "request_id": f"{random.randrange(16 ** 12):012x}"}
    return web.json_response({"error_response": {k: v for k, v in error.items() if v is not None}})


def sim_routes(state) -> list[web.RouteDef]:
    """`POST /router/rest` answering `taobao.jst.sms.oaid.message.send` as TOP does, into the simulator's `state`
    (`channel_app`, `fault_answer`, `check_message`, `record`), which learns the demo app."""
    state.add_channel_app("taobao", DEMO_APP_KEY, DEMO_SECRET, DEMO_SESSION)

    async def authorised(request: web.Request, method: str | None) -> tuple[dict | None, web.Response | None]:
        params = {k: str(v) for k, v in {**request.query, **(await request.post())}.items()}
        if (fault := await state.fault_answer("taobao")) is not None:
            return None, fault
        if method is not None and params.get("method") != method:
            return None, _error(22, "Invalid Method", "isv.invalid-method")
        app = state.channel_app("taobao", params.get("app_key", ""))
        if app is None:
            return None, _error(29, "Invalid App Key")
        if params.get("sign_method", "md5") != "md5" or params.get("sign") != sign(params, app["secret"]):
            return None, _error(25, "Invalid signature")
        if params.get("session") != app.get("session"):
            return None, _error(27, "Invalid session", "invalid-sessionkey")
        return params, None

    def deliver(business) -> tuple[str | None, tuple[str, str] | None]:
        """(the module, or the refusal's sub code and message) of one message object."""
        if not isinstance(business, dict):
            return None, ("isv.invalid-parameter", "not a JSON object")
        missing = [k for k in ("order_id", "oaid", "sms_free_sign_name", "template_code") if not business.get(k)]
        if missing:
            return None, ("isv.missing-parameter", ", ".join(missing))
        problem = state.check_message("taobao", business["sms_free_sign_name"], business["template_code"],
                                      business.get("params") or {})
        if problem is not None:
            return None, (f"isv.{problem[0]}", problem[1])
        module = f"{business['order_id']}^{random.randrange(10)}"
        state.record("taobao", business["oaid"], business["sms_free_sign_name"], business["template_code"],
                     business.get("params") or {}, business.get("extend"), module, report=True)
        return module, None

    async def handle(request: web.Request) -> web.Response:
        params, refused = await authorised(request, METHOD)
        if refused is not None:
            return refused
        try:
            business = orjson.loads(params.get(PARAM, ""))
        except orjson.JSONDecodeError:
            business = None
        module, problem = deliver(business)
        if problem is not None:
            code = {"isv.missing-parameter": 40, "isv.invalid-parameter": 41}.get(problem[0], 15)
            return _error(code, "Remote service error", *problem)
        return web.json_response({RESPONSE: {"module": module, "req_id": f"{random.randrange(16 ** 24):024x}",
                                             "request_id": f"{random.randrange(16 ** 12):012x}"}})

    async def handle_batch(request: web.Request) -> web.Response:
        params, refused = await authorised(request, None)
        if refused is not None:
            return refused
        try:
            items = orjson.loads(params.get("request_data", ""))
        except orjson.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not 1 <= len(items) <= BATCH_MAX:
            return _error(41, "Invalid Arguments", "isv.invalid-parameter",
                          f"request_data must be a JSON array of 1 to {BATCH_MAX} messages")
        results = []
        for business in items:
            module, problem = deliver(business)
            extend = business.get("extend") if isinstance(business, dict) else None
            results.append({"extend": extend, "success": problem is None, "module": module,
                            "code": problem[0] if problem else None, "msg": problem[1] if problem else None})
        return web.json_response({"results": results})

    return [web.post("/router/rest", handle), web.post(BATCH_PATH, handle_batch)]
