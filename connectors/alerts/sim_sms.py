"""Aliyun SendSms stand-in (dysmsapi RPC, signature v1), served by `simulators.create_app` at `POST /sms/`.

Checks in the real order: access key known (404 InvalidAccessKeyId.NotFound), timestamp within 15 minutes
(400 InvalidTimeStamp.Expired), nonce unused (400 SignatureNonceUsed), signature (400 SignatureDoesNotMatch),
then business checks answered with HTTP 200 and a `Code`: sign name, template code, template param JSON,
phone numbers (isv.MOBILE_NUMBER_ILLEGAL) and per-number flow control (isv.BUSINESS_LIMIT_CONTROL; defaults
1/min, 5/h, 10/day per number as for verification codes, configurable per access key). Phones are stored
masked (138****8000).
"""
from __future__ import annotations

import hmac
import random
import re
import uuid
from datetime import UTC, datetime

import orjson
from aiohttp import web

from connectors.alerts.signing import aliyun_signature
from connectors.alerts.sim_store import SimStore

PHONE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$|^(?:\+|00)[1-9]\d{6,14}$")
TEMPLATE = re.compile(r"^SMS_\d+$")
MAX_SKEW_S = 900


def answer(code: str, message: str, status: int = 200, **extra) -> web.Response:
    """An Aliyun RPC answer: `Code`, `Message`, a fresh `RequestId` and any other fields."""
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 digits (design.md masking rule)."""
    digits = phone[-11:]
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def gateway_error(params: dict, store: SimStore, actions: tuple[str, ...] = ("SendSms",)) -> web.Response | None:
    """The gateway's refusal of an RPC call, checked in the real order, or None when it passes.

    `store` needs `robot("sms", access_key_id)` (options with the `secret`), `clock()` and `nonce_fresh(nonce)`.
    """
    key = store.robot("sms", params.get("AccessKeyId", ""))
    if key is None:
        return answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        return answer("InvalidParameter", "SignatureMethod/SignatureVersion must be HMAC-SHA1/1.0", 400)
    try:
        ts = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return answer("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.",
                       400)
    if abs(ts.timestamp() - store.clock()) > MAX_SKEW_S:
        return answer("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
    if not store.nonce_fresh(params.get("SignatureNonce", "")) or not params.get("SignatureNonce"):
        return answer("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
    expected = aliyun_signature(params, key["secret"])
    if not hmac.compare_digest(params.get("Signature", "").encode(), expected.encode()):
        return answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.",
                       400)
    if params.get("Action") not in actions:
        return answer("InvalidAction.NotFound",
                       "Specified api is not found, please check your url and method.", 404)
    return None


def _business_error(params: dict, phones: list[str], store: SimStore) -> web.Response | None:
    if not params.get("SignName"):
        return answer("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法")
    if not TEMPLATE.match(params.get("TemplateCode", "")):
        return answer("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法")
    if params.get("TemplateParam"):
        try:
            template_param = orjson.loads(params["TemplateParam"])
        except orjson.JSONDecodeError:
            template_param = None
        if not isinstance(template_param, dict):
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    if not phones or len(phones) > 1000 or not all(PHONE.match(p) for p in phones):
        return answer("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    key = store.robot("sms", params["AccessKeyId"]) or {}
    per_minute = int(key.get("per_number_minute", 1))
    limits = [(per_minute, 60.0), (int(key.get("per_number_hour", 5)), 3600.0),
              (int(key.get("per_number_day", 10)), 86400.0)]
    for phone in phones:
        if not store.admit(("sms", phone[-11:]), limits):
            return answer("isv.BUSINESS_LIMIT_CONTROL", f"触发分钟级流控Permits:{per_minute}",
                           Recommend="https://next.api.aliyun.com/troubleshoot?q=isv.BUSINESS_LIMIT_CONTROL")
    return None


async def handle_sms(request: web.Request, store: SimStore) -> web.Response:
    """One SendSms call (form body and/or query string)."""
    params = {**dict(request.query), **dict(await request.post())}
    params = {k: str(v) for k, v in params.items()}
    if (error := gateway_error(params, store)) is not None:
        return error
    phones = [p.strip() for p in params.get("PhoneNumbers", "").split(",") if p.strip()]
    if (error := _business_error(params, phones, store)) is not None:
        return error
    template_param = orjson.loads(params["TemplateParam"]) if params.get("TemplateParam") else {}
    sign_name = params["SignName"]
    store.record("sms", params["AccessKeyId"], f"【{sign_name}】{params['TemplateCode']} "
                 + orjson.dumps(template_param).decode("utf-8"), sign_name,
                 phones=[mask_phone(p) for p in phones], template_code=params["TemplateCode"],
                 template_param=template_param, out_id=params.get("OutId"))
    biz_id = f"{random.randrange(10**17, 10**18)}^0"
    return answer("OK", "OK", BizId=biz_id)
