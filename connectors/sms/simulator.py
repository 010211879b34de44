"""Local stand-ins for the SMS gateways and the platforms' official message channels, in one aiohttp app on
port 8086 (`TONGLU_SMS_SIM_HTTP`), separate from the alert simulators of on-call staff (8083).

Real-looking APIs (erp_and_messaging.md §4 and the fixtures in shared/fixtures/sms):
- `POST /aliyun/`   dysmsapi RPC, signature v1: `SendSms` (≤ 1,000 `PhoneNumbers`, one `OutId`) and
  `QuerySendDetails`; the gateway errors of the alert simulator (access key, timestamp, nonce, signature) and the
  business ones (isv.SMS_SIGNATURE_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.INVALID_JSON_PARAM,
  isv.TEMPLATE_MISSING_PARAMETERS, isv.MOBILE_NUMBER_ILLEGAL, isv.BUSINESS_LIMIT_CONTROL per number).
- `POST /tencent/`  Tencent Cloud API 3.0, TC3-HMAC-SHA256: `SendSms` (≤ 200 numbers, per-number status, LimitExceeded.*
  per number) and `PullSmsSendStatusByPhoneNumber`; AuthFailure.* when the signature does not verify.
- platform channels: a folder's own (`sms_channel.sim_routes`, e.g. Taobao's TOP `/router/rest`), and
  `POST /platform/{platform}/sms/send` (the generic channel) for the others.
- Delivery reports pushed after `receipt_delay_s` to each provider's report URL, merged into JSON arrays as
  Aliyun's SmsReport HTTP batch push and Tencent's status callback do, pushed again on failure (5 tries in all,
  after the receiver's Retry-After when it gives one); the platform channels push theirs the same way in the
  configurable shape of `platform_report` (unverified).

Control (not part of any real service):
- `GET /_sim/messages[?provider=&out_id=]` → {"messages":[{provider, to, sign, template, params, text, out_id,
  received_at}]}, `to` being what the provider or platform received (a phone, or the platform's token)
- `POST /_sim/uplink {"provider", "phone", "text"}` → the buyer's reply pushed to the provider's uplink URL
- `POST /_sim/faults {"provider", "kind", "count"}` kind down | error_5xx | slow | flow_control | receipt_failed;
  `DELETE /_sim/faults`
- `POST /_sim/config {"receipt_delay_s"?, "limits"?: {provider: [[count, seconds], ...]}}`; `DELETE /_sim/messages`
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from aiohttp import web

from connectors import platforms
from connectors.alerts.sim_sms import PHONE, answer, gateway_error
from connectors.sms.channels import channel_module, generic_sign
from connectors.sms.gateways import e164
from connectors.sms.signing import parse_tc3_authorization, tc3_signature
from connectors.sms.sim_state import TENCENT_DEMO_APP, SimState
from connectors.sms.text import segments

log = logging.getLogger(__name__)
STATE = web.AppKey("sms_sim_state", SimState)
BEIJING = ZoneInfo("Asia/Shanghai")
TC3_MAX_SKEW_S = 300
TENCENT_MAX_NUMBERS, ALIYUN_MAX_NUMBERS = 200, 1000
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def create_app(state: SimState) -> web.Application:
    """The simulator app; `start_reports` pushes delivery reports while it runs."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app.router.add_post("/aliyun/", aliyun)
    app.router.add_post("/tencent/", tencent)
    app.router.add_post("/platform/{platform}/sms/send", generic_channel)
    for code in platforms.codes():
        module = channel_module(code)
        if module is not None and hasattr(module, "sim_routes"):
            app.add_routes(module.sim_routes(state))
    app.router.add_get("/_sim/messages", _messages)
    app.router.add_delete("/_sim/messages", _clear)
    app.router.add_post("/_sim/uplink", _uplink)
    app.router.add_post("/_sim/faults", _add_fault)
    app.router.add_delete("/_sim/faults", _clear_faults)
    app.router.add_post("/_sim/config", _configure)
    app.cleanup_ctx.append(_reporter)
    return app


def _beijing(ms: float) -> str:
    return datetime.fromtimestamp(ms, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


# -- Aliyun ---------------------------------------------------------------------------------------------------
async def aliyun(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = {k: str(v) for k, v in {**request.query, **(await request.post())}.items()}
    if (fault := await state.fault_answer("aliyun")) is not None:  # a slow gateway has the request already
        return fault
    if (error := gateway_error(params, state, actions=("SendSms", "QuerySendDetails"))) is not None:
        return error
    if params["Action"] == "QuerySendDetails":
        return _aliyun_query(state, params)
    phones = [p.strip() for p in params.get("PhoneNumbers", "").split(",") if p.strip()]
    try:
        template_param = orjson.loads(params.get("TemplateParam") or "{}")
    except orjson.JSONDecodeError:
        template_param = None
    if not isinstance(template_param, dict):
        return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    problem = state.check_message("aliyun", params.get("SignName", ""), params.get("TemplateCode", ""),
                                  template_param)
    if problem is not None:
        code = {"sign": "isv.SMS_SIGNATURE_ILLEGAL", "template": "isv.SMS_TEMPLATE_ILLEGAL",
                "params": "isv.TEMPLATE_MISSING_PARAMETERS"}[problem[0]]
        return answer(code, problem[1])
    if not phones or len(phones) > ALIYUN_MAX_NUMBERS or not all(PHONE.match(p) for p in phones):
        return answer("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    if state.take_flow_fault("aliyun"):
        return answer("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
    for phone in phones:  # the whole request is refused when one number is over its limit: none is counted
        window = state.admit("aliyun", phone, count=False)
        if window is not None:
            level = {"minute": "分钟", "hour": "小时", "day": "天"}.get(window, "分钟")
            return answer("isv.BUSINESS_LIMIT_CONTROL", f"触发{level}级流控Permits:{state.limits['aliyun'][0][0]}")
    biz_id = f"{random.randrange(10 ** 17, 10 ** 18)}^0"
    for phone in phones:
        state.admit("aliyun", phone)
        state.record("aliyun", phone, params["SignName"], params["TemplateCode"], template_param,
                     params.get("OutId"), biz_id, report=True)
    return answer("OK", "OK", BizId=biz_id)


def _aliyun_query(state: SimState, params: dict) -> web.Response:
    phone, day = params.get("PhoneNumber", ""), params.get("SendDate", "")
    if not PHONE.match(phone) or not re.fullmatch(r"\d{8}", day):
        return answer("isv.INVALID_PARAMETERS", "参数异常")
    found = [m for m in state.sent_to(phone) if m["provider"] == "aliyun"
             and datetime.fromtimestamp(m["received_at"] / 1000, BEIJING).strftime("%Y%m%d") == day]
    items = [{"PhoneNum": m["to"], "SendStatus": 3 if m["status"] == "delivered" else 2 if m["status"] == "failed"
              else 1, "ErrCode": "DELIVERED" if m["status"] == "delivered" else "", "TemplateCode": m["template"],
              "Content": m["text"], "SendDate": _beijing(m["received_at"] / 1000), "ReceiveDate": "",
              "OutId": m["out_id"], "BizId": m["message_id"]} for m in found]
    return answer("OK", "OK", TotalCount=len(items), SmsSendDetailDTOs={"SmsSendDetailDTO": items})


# -- Tencent --------------------------------------------------------------------------------------------------
def _tencent(payload: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps({"Response": {**payload, "RequestId": str(uuid.uuid4())}}),
                        status=status, content_type="application/json")


def _tencent_error(code: str, message: str) -> web.Response:
    return _tencent({"Error": {"Code": code, "Message": message}})


async def tencent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    payload = await request.read()
    if (fault := await state.fault_answer("tencent")) is not None:
        return fault
    auth = parse_tc3_authorization(request.headers.get("Authorization", ""))
    if auth is None:
        return _tencent_error("AuthFailure.InvalidAuthorization", "Authorization header is not TC3-HMAC-SHA256")
    secret = state.tencent_keys.get(auth["secret_id"])
    if secret is None:
        return _tencent_error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    try:
        timestamp = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return _tencent_error("MissingParameter", "X-TC-Timestamp is missing")
    if abs(timestamp - state.clock()) > TC3_MAX_SKEW_S:
        return _tencent_error("AuthFailure.SignatureExpire", "The signature has expired.")
    content_type = request.headers.get("Content-Type", "")
    expected = tc3_signature(secret, request.host, auth["service"], timestamp, payload, content_type)
    if auth["signature"] != expected:
        return _tencent_error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _tencent_error("InvalidParameter", "The body is not JSON.")
    action = request.headers.get("X-TC-Action")
    if action == "PullSmsSendStatusByPhoneNumber":
        return _tencent_pull(state, body)
    if action != "SendSms":
        return _tencent_error("InvalidAction", f"The action {action!r} is not found.")
    return _tencent_send(state, body)


def _tencent_send(state: SimState, body: dict) -> web.Response:
    numbers = body.get("PhoneNumberSet") or []
    if str(body.get("SmsSdkAppId")) not in state.tencent_apps:
        return _tencent_error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
    if not isinstance(numbers, list) or not numbers or len(numbers) > TENCENT_MAX_NUMBERS:
        return _tencent_error("LimitExceeded.PhoneNumberCountLimit", "1 to 200 numbers per request.")
    params = body.get("TemplateParamSet") or []
    problem = state.check_message("tencent", str(body.get("SignName", "")), str(body.get("TemplateId", "")),
                                  list(params))
    if problem is not None:
        code = {"sign": "FailedOperation.SignatureIncorrectOrUnapproved",
                "template": "FailedOperation.TemplateIncorrectOrUnapproved",
                "params": "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"}[problem[0]]
        return _tencent_error(code, problem[1])
    flow = state.take_flow_fault("tencent")
    statuses, serial_base = [], random.randrange(10 ** 18)
    for i, number in enumerate(numbers):
        number = str(number)
        serial = f"2028:{serial_base + i}"
        if not _E164.match(number):
            statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": body.get(
                "SessionContext", ""), "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                "Message": "incorrect phone number", "IsoCode": ""})
            continue
        window = "30s" if flow else state.admit("tencent", number)
        if window is not None:
            code = {"30s": "LimitExceeded.PhoneNumberThirtySecondLimit", "hour": "LimitExceeded.PhoneNumberOneHourLimit",
                    }.get(window, "LimitExceeded.PhoneNumberDailyLimit")
            statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": body.get(
                "SessionContext", ""), "Code": code, "Message": "frequency limited", "IsoCode": "CN"})
            continue
        message = state.record("tencent", number, str(body["SignName"]), str(body["TemplateId"]), list(params),
                               body.get("SessionContext"), serial, report=True)
        statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": segments(message["text"]),
                         "SessionContext": body.get("SessionContext", ""), "Code": "Ok", "Message": "send success",
                         "IsoCode": "CN" if number.startswith("+86") else "XX"})
    return _tencent({"SendStatusSet": statuses})


def _tencent_pull(state: SimState, body: dict) -> web.Response:
    number = str(body.get("PhoneNumber", ""))
    begin = int(body.get("BeginTime") or 0) * 1000
    found = [m for m in state.sent_to(number) if m["provider"] == "tencent" and m["received_at"] >= begin]
    items = [{"UserReceiveTime": m["received_at"] // 1000, "CountryCode": "86", "SubscriberNumber": number[-11:],
              "PhoneNumber": m["to"], "SerialNo": m["message_id"],
              "ReportStatus": {"delivered": "SUCCESS", "failed": "FAIL"}.get(m["status"], "SUBMITTED"),
              "Description": m["status"], "SessionContext": m["out_id"] or ""} for m in found]
    return _tencent({"PullSmsSendStatusSet": items})


# -- generic platform channel ---------------------------------------------------------------------------------
async def generic_channel(request: web.Request) -> web.Response:
    state, platform = request.app[STATE], request.match_info["platform"]
    payload = await request.read()
    if (fault := await state.fault_answer(platform)) is not None:
        return fault
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return web.json_response({"ok": False, "code": "invalid_body", "message": "not a JSON object"}, status=400)
    app = state.channel_app(platform, str(body.get("app_key") or ""))
    if app is not None and app.get("secret") and request.headers.get("X-Sign") != generic_sign(app["secret"],
                                                                                                 payload):
        return web.json_response({"ok": False, "code": "invalid_sign", "message": "signature does not verify"})
    if not body.get("token") or not body.get("order_id"):
        return web.json_response({"ok": False, "code": "missing_parameter", "message": "order_id and token"})
    problem = state.check_message(platform, str(body.get("sign", "")), str(body.get("template_code", "")),
                                  body.get("params") or {})
    if problem is not None:
        return web.json_response({"ok": False, "code": f"{problem[0]}_not_approved", "message": problem[1]})
    message_id = f"{platform[:2].upper()}{random.randrange(10 ** 15)}"
    state.record(platform, str(body["token"]), str(body["sign"]), str(body["template_code"]), body.get("params") or {},
                 body.get("out_id"), message_id, report=True)
    return web.json_response({"ok": True, "message_id": message_id})


# -- reports and replies --------------------------------------------------------------------------------------
def aliyun_report(message: dict, failed: bool, now: float) -> dict:
    """One SmsReport entry (aliyun_sms_report_push.json)."""
    return {"phone_number": message["to"], "send_time": _beijing(message["received_at"] / 1000),
            "report_time": _beijing(now), "success": not failed, "err_code": "MK:0001" if failed else "DELIVERED",
            "err_msg": "MK:0001" if failed else "用户接收成功", "sms_size": str(segments(message["text"])),
            "biz_id": message["message_id"], "out_id": message["out_id"]}


def _nation(number: str) -> tuple[str, str]:
    """(nationcode, national number) of an E.164 number; +1 and +86 known, others split after two digits."""
    for code in ("86", "1"):
        if number.startswith(f"+{code}"):
            return code, number[len(code) + 1:]
    return number[1:3], number[3:]


def tencent_report(message: dict, failed: bool, now: float) -> dict:
    """One status callback entry (tencent_status_callback.json)."""
    nation, mobile = _nation(message["to"])
    return {"user_receive_time": _beijing(now), "nationcode": nation, "mobile": mobile,
            "report_status": "FAIL" if failed else "SUCCESS", "errmsg": "MK:0001" if failed else "DELIVRD",
            "description": "用户短信接收失败" if failed else "用户短信送达成功", "sid": message["message_id"],
            "ext": {"context": message["out_id"] or ""}}


def platform_report(message: dict, failed: bool, now: float, fields: dict[str, str] | None = None) -> dict:
    """One entry of a platform channel's report push: our names, renamed by the channel's `report_fields` (no sheet
    describes these pushes; connectors/sms/callbacks.py)."""
    ours = {"out_id": message["out_id"], "message_id": message["message_id"], "token": message["to"],
            "status": "FAILED" if failed else "DELIVERED", "code": "MK:0001" if failed else "DELIVERED",
            "report_time": _beijing(now)}
    return {(fields or {}).get(k, k): v for k, v in ours.items()}


REPORTS = {"aliyun": aliyun_report, "tencent": tencent_report}
REPORT_TRIES = 5  # pushes of one report in all (the providers' own retry policy is not documented)


def _report_of(state: SimState, provider: str):
    return REPORTS.get(provider) or (lambda m, failed, now: platform_report(m, failed, now,
                                                                           state.report_fields.get(provider)))


async def _push(session: aiohttp.ClientSession, url: str, body) -> tuple[bool, float]:
    """(acknowledged, seconds before pushing again: the receiver's Retry-After, else 1)."""
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=3)) as resp:
            again = float(resp.headers["Retry-After"]) if resp.headers.get("Retry-After", "").isdigit() else 1.0
            if resp.status != 200:
                return False, again
            answer_body = await resp.json(content_type=None)
            return isinstance(answer_body, dict) and (
                answer_body.get("code") == 0 or answer_body.get("result") == 0), again
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return False, 1.0


async def push_due_reports(state: SimState, session: aiohttp.ClientSession) -> int:
    """Push every report that is due, one JSON array per provider; failed pushes are retried (`REPORT_TRIES` in
    all), after the receiver's Retry-After when it gives one."""
    now = state.clock()
    due: dict[str, list[tuple[dict, int]]] = {}
    for provider, message, tries in state.due_reports(now):
        due.setdefault(provider, []).append((message, tries))
    pushed = 0
    for provider, items in due.items():
        body, report = [], _report_of(state, provider)
        for message, _ in items:
            failed = state.report_fails(provider)
            message["status"] = "failed" if failed else "delivered"
            body.append(report(message, failed, now))
        for start in range(0, len(body), 1000):
            chunk = items[start:start + 1000]
            ok, again = await _push(session, state.callbacks[provider]["report"], body[start:start + 1000])
            if ok:
                pushed += len(chunk)
            else:
                state.push_failures += 1
                for message, tries in chunk:
                    if tries < REPORT_TRIES - 1:
                        state.report_at(now + again, provider, message, tries + 1)
    state.pushed += pushed
    return pushed


async def _reporter(app: web.Application):
    state = app[STATE]

    async def loop():
        async with aiohttp.ClientSession() as session:
            while True:
                await push_due_reports(state, session)
                await asyncio.sleep(0.2)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def uplink_body(provider: str, phone: str, text: str, now: float, sign: str = "") -> object:
    """A buyer's reply as the provider pushes it: Aliyun SmsUp (an array), Tencent's reply callback (an object)."""
    if provider == "aliyun":
        return [{"phone_number": phone, "send_time": _beijing(now), "content": text, "sign_name": sign,
                 "dest_code": "", "sequence_id": random.randrange(10 ** 9)}]
    nation, mobile = _nation(e164(phone))
    return {"extend": "", "mobile": mobile, "nationcode": nation, "sign": sign, "text": text, "time": int(now)}


# -- control --------------------------------------------------------------------------------------------------
async def _json_body(request: web.Request) -> dict:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def _messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    found = state.listed(request.query.get("provider") or None, request.query.get("out_id") or None)
    return web.Response(body=orjson.dumps({"messages": found}), content_type="application/json")


async def _clear(request: web.Request) -> web.Response:
    request.app[STATE].clear()
    return web.json_response({"ok": True})


async def _uplink(request: web.Request) -> web.Response:
    state, body = request.app[STATE], await _json_body(request)
    provider, phone, text = body.get("provider"), str(body.get("phone") or ""), str(body.get("text") or "")
    url = state.callbacks.get(provider, {}).get("uplink")
    if provider not in REPORTS or not phone:
        raise web.HTTPBadRequest(text='{"provider": "aliyun"|"tencent", "phone", "text"} required')
    if not url:
        return web.json_response({"ok": False, "error": f"no uplink URL configured for {provider}"}, status=409)
    async with aiohttp.ClientSession() as session:
        ok, _ = await _push(session, url, uplink_body(provider, phone, text, state.clock()))
    return web.json_response({"ok": ok})


async def _add_fault(request: web.Request) -> web.Response:
    body = await _json_body(request)
    try:
        pending = request.app[STATE].add_fault(str(body.get("provider")), str(body.get("kind")),
                                               int(body.get("count", 1)), float(body.get("seconds", 3.0)))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"pending": pending})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].clear_faults()
    return web.json_response({"ok": True})


async def _configure(request: web.Request) -> web.Response:
    state, body = request.app[STATE], await _json_body(request)
    if "receipt_delay_s" in body:
        state.receipt_delay_s = float(body["receipt_delay_s"])
    for provider, windows in (body.get("limits") or {}).items():
        state.limits[provider] = [(int(c), float(s)) for c, s in windows]
    return web.json_response({"receipt_delay_s": state.receipt_delay_s, "limits": state.limits,
                              "tencent_app": TENCENT_DEMO_APP, "now": int(time.time() * 1000)})
