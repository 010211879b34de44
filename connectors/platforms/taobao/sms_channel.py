"""Taobao's official message channel for encrypted buyers: `taobao.jst.sms.oaid.message.send` (聚石塔, erp_and_messaging.md
§4), called through the TOP gateway like any TOP API: form POST, md5 signature, the business parameter
`param_send_message_by_o_a_i_d_request` as a JSON string. The order's OAID goes as it came; Taobao resolves the
number. Our idempotency key rides in `extend`.

`sim_routes(state)` is the simulator's side, mounted by the SMS simulator (connectors/sms/simulator.py).
"""
from __future__ import annotations

import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from connectors.sms.config import ChannelSpec
from connectors.sms.gateways import Outgoing, Result

from .signing import sign

METHOD = "taobao.jst.sms.oaid.message.send"
PARAM = "param_send_message_by_o_a_i_d_request"
RESPONSE = "jst_sms_oaid_message_send_response"
BEIJING = ZoneInfo("Asia/Shanghai")
# the fixture's demo app (erp_and_messaging.md fixtures); its secret is the simulator's own
DEMO_APP_KEY, DEMO_SECRET = "12345678", "demoTaobaoSmsSecret"
DEMO_SESSION = "6100e2demo0session0token0000000000000000000"
RETRYABLE_CODES = {"7", "520", "15"}  # app call limited, remote service temporarily unavailable, remote error


def request(spec: ChannelSpec, secrets: dict, message: Outgoing, external_id: str, now: float) -> dict:
    """aiohttp keyword arguments of one signed TOP call."""
    business = {"order_id": external_id, "oaid": message.to, "sms_free_sign_name": message.sign_name,
                "template_code": message.template_code, "params": dict(message.params), "extend": message.key}
    params = {"method": METHOD, "app_key": spec.app_key, "session": secrets.get("session") or "",
              "timestamp": datetime.fromtimestamp(now, BEIJING).strftime("%Y-%m-%d %H:%M:%S"), "format": "json",
              "v": "2.0", "sign_method": "md5", PARAM: orjson.dumps(business).decode()}
    params["sign"] = sign(params, secrets.get("secret") or "")
    return {"data": params}


def result(status: int, body: bytes, started: float) -> Result:
    """The TOP answer: `module` (the extension code, kept as the message id) or `error_response`."""
    latency = (time.monotonic() - started) * 1000
    if status >= 500:
        return Result(False, f"http_{status}", f"HTTP {status}", elsewhere=True, unhealthy=True, latency_ms=latency)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = {}
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

    async def handle(request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in {**request.query, **(await request.post())}.items()}
        if (fault := await state.fault_answer("taobao")) is not None:
            return fault
        if params.get("method") != METHOD:
            return _error(22, "Invalid Method", "isv.invalid-method")
        app = state.channel_app("taobao", params.get("app_key", ""))
        if app is None:
            return _error(29, "Invalid App Key")
        if params.get("sign_method", "md5") != "md5" or params.get("sign") != sign(params, app["secret"]):
            return _error(25, "Invalid signature")
        if params.get("session") != app.get("session"):
            return _error(27, "Invalid session", "invalid-sessionkey")
        try:
            business = orjson.loads(params.get(PARAM, ""))
        except orjson.JSONDecodeError:
            business = None
        if not isinstance(business, dict):
            return _error(41, "Invalid Arguments", "isv.invalid-parameter", f"{PARAM} is not a JSON object")
        missing = [k for k in ("order_id", "oaid", "sms_free_sign_name", "template_code") if not business.get(k)]
        if missing:
            return _error(40, "Missing Required Arguments", "isv.missing-parameter", ", ".join(missing))
        problem = state.check_message("taobao", business["sms_free_sign_name"], business["template_code"],
                                      business.get("params") or {})
        if problem is not None:
            return _error(15, "Remote service error", f"isv.{problem[0]}", problem[1])
        module = f"{business['order_id']}^{random.randrange(10)}"
        state.record("taobao", business["oaid"], business["sms_free_sign_name"], business["template_code"],
                     business.get("params") or {}, business.get("extend"), module)
        return web.json_response({RESPONSE: {"module": module, "req_id": f"{random.randrange(16 ** 24):024x}",
                                             "request_id": f"{random.randrange(16 ** 12):012x}"}})

    return [web.post("/router/rest", handle)]
