"""Platforms' official message channels for encrypted buyers: the order's token (Taobao OAID, a receiver
ciphertext) goes to the platform as it came and the platform sends; Tonglu never decrypts it.

A platform folder may hold `sms_channel.py` speaking its platform's API (`request(spec, secrets, message,
external_id, now)` -> the POST's `data` (a form as a dict, or bytes) and `headers`, `result(status, body, started)` -> Result, optionally
`batch_request`/`batch_result` for an API taking lists, and the simulator's `sim_routes(state)`); every other
platform uses the generic channel below, whose method and field names come from
its `[channels.<platform>]` section (erp_and_messaging.md §4 names no API for them: the shape is data).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from types import ModuleType

import orjson

from connectors import platforms
from connectors.sms.config import ChannelSpec
from connectors.sms.gateways import UNANSWERED, Outgoing, Result, Unanswered, json_answer, unanswered
from connectors.sms.transport import Endpoints

GENERIC_FIELDS = ("order_id", "token", "sign", "template_code", "params", "out_id")


def generic_body(spec: ChannelSpec, message: Outgoing, external_id: str, now_ms: int) -> dict:
    """The generic channel's JSON: our fields under the platform's names (`spec.fields` renames them)."""
    ours = {"order_id": external_id, "token": message.to, "sign": message.sign_name,
            "template_code": message.template_code, "params": dict(message.params), "out_id": message.key}
    body = {spec.fields.get(k, k): v for k, v in ours.items()}
    return {"method": spec.method, "app_key": spec.app_key, "timestamp": now_ms, **body}


def generic_sign(secret: str, payload: bytes) -> str:
    """`X-Sign` of the generic channel: hex HMAC-SHA256 of the body under the channel's secret."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def generic_result(status: int, body: bytes, started: float) -> Result:
    """`{"ok": true, "message_id"}`, or `{"ok": false, "code", "message"}`; 429 and 5xx may succeed later."""
    try:
        doc, latency = json_answer(status, body, started)
    except Unanswered as exc:
        return exc.result
    if doc.get("ok") is True:
        return Result(True, "OK", provider_id=str(doc.get("message_id") or ""), latency_ms=latency)
    return Result(False, str(doc.get("code") or f"http_{status}"), str(doc.get("message") or "")[:200],
                  latency_ms=latency)


def channel_module(platform: str) -> ModuleType | None:
    """The folder's own `sms_channel` module, or None when the generic channel serves the platform."""
    try:
        return platforms.module(platform, "sms_channel")
    except ModuleNotFoundError:
        return None
    except platforms.UnknownPlatform:
        return None


class PlatformChannel:
    """One platform's official channel. `send` never raises for a refused message."""

    kind = "platform"

    def __init__(self, platform: str, spec: ChannelSpec, http: Endpoints, secrets: dict[str, str | None],
                 clock=time.time):
        self.name, self.spec, self.http, self.secrets, self.clock = platform, spec, http, secrets, clock
        self.module = channel_module(platform)

    async def send_many(self, messages: list[Outgoing]) -> list[Result]:
        """Several messages in one request where the folder's channel takes lists (`batch_request`,
        `batch_result`) and a `batch_url` is configured; else one request each."""
        if self.module is None or self.spec.batch_url is None or not hasattr(self.module, "batch_request"):
            return list(await asyncio.gather(*(self.send(m) for m in messages)))
        started = time.monotonic()
        items = [(m, (m.order_id or "").split(":", 2)[-1]) for m in messages]
        try:
            kwargs = self.module.batch_request(self.spec, self.secrets, items, self.clock())
            status, body = await self.http.post(self.spec.batch_url, self.spec.timeout_s, **kwargs)
        except UNANSWERED as exc:
            return [unanswered(exc, started)] * len(messages)
        return self.module.batch_result(status, body, started, [m.key for m in messages])

    async def send(self, message: Outgoing) -> Result:
        external_id = (message.order_id or "").split(":", 2)[-1]
        started = time.monotonic()
        try:
            if self.module is not None:
                kwargs = self.module.request(self.spec, self.secrets, message, external_id, self.clock())
                status, body = await self.http.post(self.spec.url, self.spec.timeout_s, **kwargs)
                return self.module.result(status, body, started)
            payload = orjson.dumps(generic_body(self.spec, message, external_id, int(self.clock() * 1000)))
            headers = {"Content-Type": "application/json"}
            if self.secrets.get("secret"):
                headers["X-Sign"] = generic_sign(self.secrets["secret"], payload)
            status, body = await self.http.post(self.spec.url, self.spec.timeout_s, data=payload, headers=headers)
            return generic_result(status, body, started)
        except UNANSWERED as exc:
            return unanswered(exc, started)
