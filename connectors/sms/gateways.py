"""Commercial SMS gateways for plain phone numbers: Aliyun dysmsapi (SendSms, RPC signature v1) and Tencent Cloud
SMS (SendSms 2021-01-11, TC3-HMAC-SHA256), erp_and_messaging.md §4.

A gateway never raises for a refused message: it answers a `Result` per number saying whether another gateway may
take it (`elsewhere`: flow control, the gateway down, a sign or template this gateway does not know), whether
the failure counts against the gateway's health (`unhealthy`: it did not answer, or answered 5xx) and whether the
gateway may have taken it all the same (`in_doubt`: the request left and no answer came). The number
lives only in the request; nothing here logs it. Each request carries the message's idempotency key as
`OutId` / `SessionContext`.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import orjson

from connectors.alerts.signing import aliyun_signature, aliyun_signed_form
from connectors.sms.signing import CONTENT_TYPE, tc3_authorization
from connectors.sms.text import normalize_phone
from connectors.sms.transport import Endpoints, TransportError

UNANSWERED = (TimeoutError, aiohttp.ClientError, OSError, TransportError)  # a call that got no HTTP answer

BEIJING = ZoneInfo("Asia/Shanghai")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BATCH_PREFIX = "b"  # the out id of one request carrying the same text to many numbers (keys are 32 hex chars)


def batch_out_id(keys: Sequence[str]) -> str:
    """The OutId of a request sending one text to the numbers of these messages: 32 characters like a key, and
    never equal to one."""
    return BATCH_PREFIX + hashlib.blake2b("|".join(sorted(keys)).encode(), digest_size=16).hexdigest()[:31]


def _taken(out_id: str | None, key: str, text: str | None, content: str | None) -> bool:
    """Whether a provider's record of a message to this number is ours: our key, or a batch with our text."""
    return out_id == key or (bool(out_id) and out_id.startswith(BATCH_PREFIX) and (content is None or content == text))


@dataclass(frozen=True)
class Outgoing:
    """One message ready for a provider: the resolved recipient (`to`: a phone or a platform token) and the
    template with its parameters in the text's order."""

    key: str
    to: str
    sign: str  # with its brackets, as the buyer reads it
    template_code: str
    params: tuple[tuple[str, str], ...]
    order_id: str | None = None
    platform: str | None = None
    shop_id: str | None = None

    @property
    def sign_name(self) -> str:
        """The sign as providers take it: without the brackets."""
        return self.sign.strip("【】")


@dataclass(frozen=True)
class Result:
    ok: bool
    code: str | None = None
    error: str | None = None
    provider_id: str | None = None  # Aliyun BizId, Tencent SerialNo, a platform's message id
    elsewhere: bool = False  # another provider may take this message
    unhealthy: bool = False  # the provider itself is in trouble (counts towards marking it down)
    in_doubt: bool = False  # the request left and no answer came: the provider may have taken the message
    latency_ms: float = 0.0
    extra: dict = field(default_factory=dict)


def unanswered(exc: BaseException, started: float) -> Result:
    """A call that got no HTTP answer. Whether it may be tried elsewhere depends on whether the request left: one
    that never did (no connection) may; one that did is in doubt (the provider may be sending it) and must be
    checked with the provider before anything is sent again."""
    sent = getattr(exc, "sent", True)
    return Result(False, "network", f"{exc.__class__.__name__}: {exc}"[:200], elsewhere=not sent, unhealthy=True,
                  in_doubt=sent, latency_ms=(time.monotonic() - started) * 1000)


def e164(phone: str) -> str:
    """`+8613800138000` for a mainland number, `+` and digits for others (Tencent wants E.164)."""
    digits = normalize_phone(phone)
    return digits if digits.startswith("+") else f"+86{digits}"


# -- Aliyun ---------------------------------------------------------------------------------------------------
ALIYUN_FLOW = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling", "Throttling.User"})
ALIYUN_NOT_HERE = frozenset({"isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
                             "isv.PARAM_LENGTH_LIMIT", "isv.INVALID_PARAMETERS", "isv.INVALID_JSON_PARAM",
                             "SignatureNonceUsed"})
ALIYUN_BROKEN = frozenset({"isv.AMOUNT_NOT_ENOUGH", "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound",
                           "InvalidTimeStamp.Expired", "ServiceUnavailable", "InternalError"})


def json_answer(status: int, body: bytes, started: float, expect: str | None = None) -> tuple[dict, float]:
    """A provider's JSON object answer and the call's latency in ms; raises `Unanswered` (holding the Result) for
    a 5xx or 429, or a body that is not a JSON object (with the key `expect`)."""
    latency = (time.monotonic() - started) * 1000
    if status == 504:  # a proxy gave up waiting for the provider, which may still take the message
        raise Unanswered(Result(False, "http_504", "HTTP 504", unhealthy=True, in_doubt=True, latency_ms=latency))
    if status >= 500 or status == 429:
        raise Unanswered(Result(False, f"http_{status}", f"HTTP {status}", elsewhere=True, unhealthy=True,
                                latency_ms=latency))
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or (expect is not None and expect not in doc):
        raise Unanswered(Result(False, f"http_{status}", f"HTTP {status}: not an answer", elsewhere=True,
                                unhealthy=True, latency_ms=latency))
    return doc, latency


class Unanswered(Exception):
    """A call that got no usable answer; `result` says so for the message(s) it carried."""

    def __init__(self, result: Result):
        super().__init__(result.error)
        self.result = result


def aliyun_result(status: int, body: bytes, started: float) -> Result:
    """One SendSms answer classified (the same for every number of the request)."""
    try:
        doc, latency = json_answer(status, body, started, "Code")
    except Unanswered as exc:
        return exc.result
    code, message = str(doc["Code"]), str(doc.get("Message", ""))
    if code == "OK":
        return Result(True, "OK", provider_id=doc.get("BizId"), latency_ms=latency)
    error = f"{code} {message}".strip()
    if code in ALIYUN_FLOW or code in ALIYUN_NOT_HERE:
        return Result(False, code, error, elsewhere=True, latency_ms=latency)
    if code in ALIYUN_BROKEN:
        return Result(False, code, error, elsewhere=True, unhealthy=True, latency_ms=latency)
    return Result(False, code, error, latency_ms=latency)  # the number or the content: no gateway will take it


class AliyunGateway:
    """dysmsapi 2017-05-25 `SendSms` (one template, up to 1,000 numbers) and `QuerySendDetails`."""

    kind = "aliyun"

    def __init__(self, name: str, url: str, access_key_id: str, secret: str, http: Endpoints,
                 timeout: float = 2.0, region: str = "cn-hangzhou", clock: Callable[[], float] = time.time):
        self.name, self.url, self.access_key_id, self.secret = name, url, access_key_id, secret
        self.http, self.timeout, self.region, self.clock = http, timeout, region or "cn-hangzhou", clock

    def unsigned(self, action: str, nonce: str | None = None, **business) -> dict:
        """The parameters of one RPC call before signing (a fresh `SignatureNonce` unless given)."""
        return {"AccessKeyId": self.access_key_id, "Action": action, "Format": "JSON", "RegionId": self.region,
                "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce or os.urandom(16).hex(),
                "SignatureVersion": "1.0",
                "Timestamp": datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Version": "2017-05-25", **{k: str(v) for k, v in business.items() if v is not None}}

    def signed(self, action: str, nonce: str | None = None, **business) -> dict:
        """The signed form parameters of one RPC call."""
        params = self.unsigned(action, nonce, **business)
        params["Signature"] = aliyun_signature(params, self.secret)
        return params

    async def _post_signed(self, params: dict) -> tuple[int, bytes]:
        # the body is the canonical query plus the signature: encoded once, not again by a form encoder
        return await self.http.post(self.url, self.timeout, data=aliyun_signed_form(params, self.secret).encode(),
                                    headers=FORM)

    def send_params(self, batch: Sequence[Outgoing], out_id: str, nonce: str | None = None,
                    sign: bool = True) -> dict:
        """The SendSms form of messages sharing a template and parameters (signed unless `sign` is False)."""
        first = batch[0]
        return (self.signed if sign else self.unsigned)("SendSms", nonce, PhoneNumbers=",".join(normalize_phone(m.to) for m in batch),
                           SignName=first.sign_name, TemplateCode=first.template_code,
                           TemplateParam=orjson.dumps(dict(first.params)).decode(), OutId=out_id)

    async def send(self, batch: Sequence[Outgoing], out_id: str | None = None) -> list[Result]:
        """One request for messages of one template with the same parameters; a result per message."""
        started = time.monotonic()
        try:
            status, body = await self._post_signed(self.send_params(batch, out_id or batch[0].key, sign=False))
        except UNANSWERED as exc:
            return [unanswered(exc, started)] * len(batch)
        return [aliyun_result(status, body, started)] * len(batch)

    async def find(self, phone: str, out_id: str, at_ms: int, text: str | None = None) -> Result | None:
        """What the gateway knows of `out_id` sent to `phone` on the day of `at_ms` (QuerySendDetails; a batch with
        the same `text` counts): a Result with ok for a message it took, None when it has none; raises on
        transport errors."""
        day = datetime.fromtimestamp(at_ms / 1000, BEIJING).strftime("%Y%m%d")  # SendDate is a Beijing date
        status, body = await self._post_signed(self.unsigned(
            "QuerySendDetails", PhoneNumber=normalize_phone(phone), SendDate=day, PageSize=50, CurrentPage=1))
        doc = orjson.loads(body) if status == 200 else {}
        if doc.get("Code") != "OK":
            raise aiohttp.ClientError(f"QuerySendDetails: HTTP {status} {doc.get('Code')}")
        for item in (doc.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []:
            if _taken(item.get("OutId"), out_id, text, item.get("Content")):
                return Result(True, "OK", provider_id=item.get("BizId"))
        return None


# -- Tencent --------------------------------------------------------------------------------------------------
TENCENT_FLOW_PREFIX = "LimitExceeded."
TENCENT_NOT_HERE = frozenset({"FailedOperation.SignatureIncorrectOrUnapproved",
                              "FailedOperation.TemplateIncorrectOrUnapproved",
                              "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                              "InvalidParameterValue.TemplateParameterFormatError",
                              "InvalidParameterValue.TemplateParameterLengthLimit"})
TENCENT_BROKEN_PREFIXES = ("AuthFailure.", "InternalError", "FailedOperation.InsufficientBalanceInSmsPackage",
                           "RequestLimitExceeded")


def tencent_code_result(code: str, message: str, latency: float, serial: str | None = None) -> Result:
    if code == "Ok":
        return Result(True, "Ok", provider_id=serial, latency_ms=latency)
    error = f"{code} {message}".strip()
    if code.startswith(TENCENT_BROKEN_PREFIXES):
        return Result(False, code, error, elsewhere=True, unhealthy=True, latency_ms=latency)
    if code.startswith(TENCENT_FLOW_PREFIX) or code in TENCENT_NOT_HERE:
        return Result(False, code, error, elsewhere=True, latency_ms=latency)
    return Result(False, code, error, latency_ms=latency)


def tencent_results(status: int, body: bytes, batch: Sequence[Outgoing], started: float) -> list[Result]:
    """A SendSms answer: a request-level error for every number, else each number's SendStatus (by position)."""
    try:
        doc, latency = json_answer(status, body, started, "Response")
    except Unanswered as exc:
        return [exc.result] * len(batch)
    response = doc["Response"]
    if "Error" in response:
        error = response["Error"]
        return [tencent_code_result(str(error.get("Code")), str(error.get("Message", "")), latency)] * len(batch)
    statuses = response.get("SendStatusSet") or []
    by_phone = {s.get("PhoneNumber"): s for s in statuses}
    out = []
    for i, message in enumerate(batch):
        item = by_phone.get(e164(message.to)) or (statuses[i] if i < len(statuses) else None)
        if item is None:
            # answered without a word on this number: it may have been taken, so it is in doubt, not sent again
            out.append(Result(False, "missing", "no SendStatus for this number", in_doubt=True, latency_ms=latency))
        else:
            out.append(tencent_code_result(str(item.get("Code")), str(item.get("Message", "")), latency,
                                           item.get("SerialNo")))
    return out


class TencentGateway:
    """Tencent Cloud SMS `SendSms` (up to 200 numbers of one template) and `PullSmsSendStatusByPhoneNumber`."""

    kind = "tencent"
    service, version = "sms", "2021-01-11"

    def __init__(self, name: str, url: str, secret_id: str, secret_key: str, app_id: str,
                 http: Endpoints, timeout: float = 2.0, region: str = "ap-guangzhou",
                 clock: Callable[[], float] = time.time):
        self.name, self.url, self.secret_id, self.secret_key, self.app_id = name, url, secret_id, secret_key, app_id
        self.http, self.timeout, self.region, self.clock = http, timeout, region or "ap-guangzhou", clock
        self.host = urlsplit(url).netloc

    def headers(self, action: str, payload: bytes) -> dict:
        """The signed headers of one call."""
        timestamp = int(self.clock())
        return {"Content-Type": CONTENT_TYPE, "Host": self.host, "X-TC-Action": action,
                "X-TC-Version": self.version, "X-TC-Timestamp": str(timestamp), "X-TC-Region": self.region,
                "Authorization": tc3_authorization(self.secret_id, self.secret_key, self.host, self.service,
                                                   timestamp, payload)}

    async def _call(self, action: str, body: dict) -> tuple[int, bytes]:
        payload = orjson.dumps(body)
        return await self.http.post(self.url, self.timeout, data=payload, headers=self.headers(action, payload))

    async def send(self, batch: Sequence[Outgoing], out_id: str | None = None) -> list[Result]:
        first = batch[0]
        body = {"PhoneNumberSet": [e164(m.to) for m in batch], "SmsSdkAppId": self.app_id,
                "SignName": first.sign_name, "TemplateId": first.template_code,
                "TemplateParamSet": [value for _, value in first.params], "SessionContext": out_id or first.key,
                "ExtendCode": ""}
        started = time.monotonic()
        try:
            status, raw = await self._call("SendSms", body)
        except UNANSWERED as exc:
            return [unanswered(exc, started)] * len(batch)
        return tencent_results(status, raw, batch, started)

    async def find(self, phone: str, out_id: str, at_ms: int, text: str | None = None) -> Result | None:
        """What the gateway knows of `out_id` sent to `phone` since `at_ms` (PullSmsSendStatusByPhoneNumber; its
        answer has no text, so any batch to the number since then counts)."""
        status, raw = await self._call("PullSmsSendStatusByPhoneNumber", {
            "BeginTime": int(at_ms / 1000) - 60, "Offset": 0, "Limit": 100, "PhoneNumber": e164(phone),
            "SmsSdkAppId": self.app_id})
        response = orjson.loads(raw).get("Response", {}) if status == 200 else {}
        if "Error" in response or status != 200:
            raise aiohttp.ClientError(f"PullSmsSendStatusByPhoneNumber: HTTP {status} {response.get('Error')}")
        for item in response.get("PullSmsSendStatusSet") or []:
            if _taken(item.get("SessionContext"), out_id, text, None):
                return Result(True, "Ok", provider_id=item.get("SerialNo"))
        return None
