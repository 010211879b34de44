"""Async alert channel clients sharing one interface: `await channel.send(message) -> SendResult`.

A channel never raises for a failed delivery; it classifies the answer instead:
ok, retryable (network, 5xx, throttled — with `retry_after` seconds when the service says how long) or
permanent (bad signature, unknown robot, bad request — retrying the same call will not help).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Protocol

import aiohttp
import orjson
from yarl import URL

from connectors.alerts.mail import send_mail
from connectors.alerts.message import AlertMessage, truncate_utf8
from connectors.alerts.signing import aliyun_signature, dingtalk_sign, feishu_sign

SEVERITY_ZH = {"info": "提示", "warning": "警告", "critical": "严重"}
FEISHU_CARD_COLOURS = {"info": "blue", "warning": "orange", "critical": "red"}
DINGTALK_MAX_BYTES = 20_000  # markdown body cap we apply ourselves (unverified service limit)
WECOM_MARKDOWN_MAX_BYTES = 4096
WECOM_TEXT_MAX_BYTES = 2048


@dataclass(frozen=True)
class SendResult:
    """Outcome of one send attempt."""

    ok: bool
    retryable: bool = False
    error: str | None = None
    code: str | None = None
    retry_after: float | None = None
    status: int = 0

    @classmethod
    def success(cls, status: int = 200) -> SendResult:
        """Delivered."""
        return cls(True, status=status)

    @classmethod
    def retry(cls, error: str, code: str | None = None, retry_after: float | None = None,
              status: int = 0) -> SendResult:
        """Failed, but the same message may succeed later."""
        return cls(False, True, error, code, retry_after, status)

    @classmethod
    def permanent(cls, error: str, code: str | None = None, status: int = 0) -> SendResult:
        """Failed for good: configuration or request problem."""
        return cls(False, False, error, code, None, status)


class Channel(Protocol):
    """What `streams.alerting.delivery.deliver` needs of a channel."""

    name: str

    async def send(self, message: AlertMessage) -> SendResult: ...


class _HttpChannel:
    """Shared HTTP plumbing: optional shared session, timeout, network errors and 5xx are retryable."""

    kind = "http"

    def __init__(self, session: aiohttp.ClientSession | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time, name: str | None = None):
        self.session, self.clock = session, clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.name = name or self.kind

    async def _post(self, url: str | URL, **kwargs) -> tuple[int, dict | None, SendResult | None]:
        """POST and decode the JSON answer; returns (status, body, early result on transport/5xx errors)."""
        own = self.session is None
        session = aiohttp.ClientSession() if own else self.session
        try:
            async with session.post(url, timeout=self.timeout, **kwargs) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return 0, None, SendResult.retry(f"{exc.__class__.__name__}: {exc}", "network")
        finally:
            if own:
                await session.close()
        if status == 429:
            return status, None, SendResult.retry("HTTP 429", "http_429", 1.0, status)
        if status >= 500:
            return status, None, SendResult.retry(f"HTTP {status}", f"http_{status}", None, status)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return status, None, SendResult.permanent(f"HTTP {status}, not a JSON object: {raw[:200]!r}",
                                                      f"http_{status}", status)
        return status, body, None

    def _classify(self, status: int, code: str, ok_code: str, message: str) -> SendResult:
        """Answer → result: `ok_code` on a 2xx is success, RETRYABLE codes retry, the rest is permanent."""
        if code == ok_code and status < 400:
            return SendResult.success(status)
        error = f"{code} {message}".strip() if code != ok_code else f"HTTP {status}"
        retryable: dict = getattr(self, "RETRYABLE", {})
        if code in retryable:
            return SendResult.retry(error, code, retryable[code], status)
        return SendResult.permanent(error, code if code != ok_code else f"http_{status}", status)


class DingTalkChannel(_HttpChannel):
    """DingTalk custom robot, markdown message, 加签 URL (`timestamp` ms + `sign`)."""

    kind = "dingtalk"
    # 130101 too fast (the robot stays throttled ~10 min), -1 system busy
    RETRYABLE: ClassVar[dict[str, float | None]] = {"130101": 600.0, "-1": None}

    def __init__(self, url: str, secret: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.url, self.secret = url, secret

    def signed_url(self) -> URL:
        """The webhook URL with `timestamp` and `sign` appended (sign already URL-encoded)."""
        if not self.secret:
            return URL(self.url)
        ts = int(self.clock() * 1000)
        sep = "&" if "?" in self.url else "?"
        return URL(f"{self.url}{sep}timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}", encoded=True)

    def body(self, message: AlertMessage) -> dict:
        """The robot request body."""
        text = truncate_utf8(message.text_markdown, DINGTALK_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text},
                "at": {"atMobiles": [], "isAtAll": False}}

    async def send(self, message: AlertMessage) -> SendResult:
        """Post one markdown message."""
        status, body, early = await self._post(self.signed_url(), json=self.body(message))
        if early:
            return early
        return self._classify(status, str(body.get("errcode", "0")), "0", str(body.get("errmsg", "")))


class FeishuChannel(_HttpChannel):
    """Feishu/Lark custom bot: interactive card (default) or plain text; signature in the body."""

    kind = "feishu"
    RETRYABLE: ClassVar[dict[str, float | None]] = {"11232": 1.0}  # frequency limited (100/min, 5/s per bot)

    def __init__(self, url: str, secret: str | None = None, card: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.url, self.secret, self.card = url, secret, card

    def body(self, message: AlertMessage) -> dict:
        """The bot request body, signed when a secret is configured."""
        if self.card:
            body: dict = {"msg_type": "interactive", "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": message.title},
                           "template": FEISHU_CARD_COLOURS.get(message.severity, "orange")},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": message.text_markdown}}]}}
        else:
            body = {"msg_type": "text", "content": {"text": message.text_plain}}
        if self.secret:
            ts = int(self.clock())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        return body

    async def send(self, message: AlertMessage) -> SendResult:
        """Post one message."""
        status, body, early = await self._post(self.url, json=self.body(message))
        if early:
            return early
        code = str(body.get("code", body.get("StatusCode", 0)))
        return self._classify(status, code, "0", str(body.get("msg", body.get("StatusMessage", ""))))


class WeComChannel(_HttpChannel):
    """WeCom (企业微信) group robot: markdown, the key in the URL is the only credential."""

    kind = "wecom"
    # 45009 api freq out of limit (20/min), -1 system busy
    RETRYABLE: ClassVar[dict[str, float | None]] = {"45009": 60.0, "-1": None}

    def __init__(self, url: str, **kwargs):
        super().__init__(**kwargs)
        self.url = url

    def body(self, message: AlertMessage) -> dict:
        """Markdown body, cut to 4096 bytes at a UTF-8 character boundary."""
        return {"msgtype": "markdown",
                "markdown": {"content": truncate_utf8(message.text_markdown, WECOM_MARKDOWN_MAX_BYTES)}}

    async def send(self, message: AlertMessage) -> SendResult:
        """Post one markdown message."""
        status, body, early = await self._post(URL(self.url, encoded=True), json=self.body(message))
        if early:
            return early
        return self._classify(status, str(body.get("errcode", "0")), "0", str(body.get("errmsg", "")))


class SmsChannel(_HttpChannel):
    """Aliyun SendSms (RPC, signature v1) to on-call phones; the template must be approved beforehand.

    `template_param(message)` builds the template variables (default `{"level", "alert"}`); variables
    never carry links (SMS compliance) — the on-call person opens the chat alert or dashboard.
    """

    kind = "sms"
    RETRYABLE: ClassVar[dict[str, float | None]] = {
        "isv.BUSINESS_LIMIT_CONTROL": 60.0, "isv.DAY_LIMIT_CONTROL": 3600.0, "Throttling": 1.0,
        "Throttling.User": 1.0, "ServiceUnavailable": None, "InternalError": None, "SignatureNonceUsed": None}

    def __init__(self, url: str, access_key_id: str, secret: str, sign_name: str, template_code: str,
                 phones: list[str], template_param: Callable[[AlertMessage], dict] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.url, self.access_key_id, self.secret = url, access_key_id, secret
        self.sign_name, self.template_code, self.phones = sign_name, template_code, list(phones)
        self.template_param = template_param or default_sms_params

    def params(self, message: AlertMessage) -> dict:
        """The signed form parameters of one SendSms call."""
        out_id = "TL-ALERT-" + hashlib.sha1(",".join(message.anomaly_ids).encode()).hexdigest()[:16]
        params = {
            "AccessKeyId": self.access_key_id, "Action": "SendSms", "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": str(uuid.uuid4()), "SignatureVersion": "1.0",
            "Timestamp": datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25", "PhoneNumbers": ",".join(self.phones), "SignName": self.sign_name,
            "TemplateCode": self.template_code, "OutId": out_id,
            "TemplateParam": orjson.dumps(self.template_param(message)).decode("utf-8"),
        }
        params["Signature"] = aliyun_signature(params, self.secret)
        return params

    async def send(self, message: AlertMessage) -> SendResult:
        """Send the alert SMS to every configured phone in one request."""
        status, body, early = await self._post(self.url, data=self.params(message))
        if early:
            return early
        return self._classify(status, str(body.get("Code", "")), "OK", str(body.get("Message", "")))


def default_sms_params(message: AlertMessage) -> dict:
    """Template variables `level` (提示/警告/严重) and `alert` (the summary, ≤ 35 characters)."""
    return {"level": SEVERITY_ZH.get(message.severity, message.severity),
            "alert": (message.summary or message.title)[:35]}


class EmailChannel:
    """SMTP mail (stdlib smtplib in a worker thread): subject = title, UTF-8 plain-text body."""

    kind = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: list[str], username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 10.0,
                 name: str | None = None):
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout
        self.name = name or self.kind

    async def send(self, message: AlertMessage) -> SendResult:
        """Send one mail to all recipients."""
        return await asyncio.to_thread(send_mail, self, message)


def make_channel(name: str, kind: str, options: dict, session: aiohttp.ClientSession | None = None):
    """Build a channel from a config entry (`kind` one of dingtalk, feishu, wecom, email, sms)."""
    classes = {"dingtalk": DingTalkChannel, "feishu": FeishuChannel, "wecom": WeComChannel, "sms": SmsChannel}
    if kind == "email":
        return EmailChannel(name=name, **options)
    if kind not in classes:
        raise ValueError(f"unknown alert channel type {kind!r}; one of email, {', '.join(classes)}")
    return classes[kind](name=name, session=session, **options)
