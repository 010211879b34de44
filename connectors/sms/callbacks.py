"""What providers push back, parsed (pure): delivery reports and buyers' replies.

- Aliyun SmsReport HTTP batch push: a JSON array of `{phone_number, send_time, report_time, success, err_code,
  err_msg, sms_size, biz_id, out_id}`, answered `{"code": 0, "msg": "成功"}` (else re-pushed).
- Tencent status callback: an array of `{user_receive_time, nationcode, mobile, report_status, errmsg, description,
  sid, ext: {context}}` (`ext.context` is our SessionContext; the sheet marks it unverified, so `sid`, the
  SerialNo, matches too), answered `{"result": 0, "errmsg": "OK"}`.
- Platforms' official channels (no sheet describes their reports: unverified, the shape is data): a JSON array of
  `{out_id, message_id, token, status: DELIVERED | FAILED, code, report_time}`, each name renamed by the channel's
  `report_fields`, answered `{"code": 0, "msg": "ok"}`; `out_id` is our key, `token` the OAID or ciphertext sent.
- Replies (上行): Aliyun SmsUp, an array of `{phone_number, send_time, content, sign_name, dest_code,
  sequence_id}`; Tencent's reply callback, one object `{extend, mobile, nationcode, sign, text, time}`.

Neither provider signs these pushes: the callback URL configured in their consoles carries a secret (checked by
`token_ok`), and each report must match a message we sent, to the same number (checked by the sender).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
ACKS = {"aliyun": {"code": 0, "msg": "成功"}, "tencent": {"result": 0, "errmsg": "OK"}}
PLATFORM_ACK = {"code": 0, "msg": "ok"}
PLATFORM_REPORT_FIELDS = ("out_id", "message_id", "token", "status", "code", "report_time")


class CallbackError(ValueError):
    """A push that is not what the provider sends (one-line reason)."""


@dataclass(frozen=True)
class Report:
    provider: str
    out_id: str | None
    provider_id: str | None
    phone: str
    delivered: bool
    code: str
    reported_at: int | None
    token: str | None = None  # a platform report: the recipient's token as the platform echoed it, if it does


@dataclass(frozen=True)
class Reply:
    provider: str
    phone: str
    text: str


def token_ok(given: str, expected: str) -> bool:
    """The callback URL's secret, compared in constant time (an empty expected secret accepts nothing)."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def beijing_ms(text: str | None) -> int | None:
    """`2024-05-29 10:15:07` (Beijing) as epoch ms; None when absent or malformed."""
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp() * 1000)
    except ValueError:
        return None


def _items(body, provider: str) -> list[dict]:
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else None
    if items is None or not all(isinstance(i, dict) for i in items):
        raise CallbackError(f"{provider}: a push is a JSON object or an array of objects")
    return items


def aliyun_reports(body) -> list[Report]:
    out = []
    for item in _items(body, "aliyun"):
        if not item.get("phone_number") or "success" not in item:
            raise CallbackError("aliyun: a report needs phone_number and success")
        delivered = item["success"] is True or str(item["success"]).lower() == "true"
        out.append(Report("aliyun", item.get("out_id") or None, item.get("biz_id") or None,
                          str(item["phone_number"]), delivered, str(item.get("err_code") or ""),
                          beijing_ms(item.get("report_time"))))
    return out


def tencent_reports(body) -> list[Report]:
    out = []
    for item in _items(body, "tencent"):
        if not item.get("mobile") or not item.get("report_status"):
            raise CallbackError("tencent: a report needs mobile and report_status")
        nation = str(item.get("nationcode") or "86")
        phone = str(item["mobile"]) if nation == "86" else f"+{nation}{item['mobile']}"
        context = (item.get("ext") or {}).get("context") if isinstance(item.get("ext"), dict) else None
        out.append(Report("tencent", context or None, item.get("sid") or None, phone,
                          item["report_status"] == "SUCCESS", str(item.get("errmsg") or ""),
                          beijing_ms(item.get("user_receive_time"))))
    return out


def platform_reports(body, platform: str, fields: dict[str, str] | None = None) -> list[Report]:
    """A platform channel's report push, its field names renamed by `fields` (ours -> the platform's)."""
    name = {ours: (fields or {}).get(ours, ours) for ours in PLATFORM_REPORT_FIELDS}
    out = []
    for item in _items(body, platform):
        status = str(item.get(name["status"]) or "").upper()
        if not item.get(name["out_id"]) or status not in ("DELIVERED", "FAILED"):
            raise CallbackError(f"{platform}: a report needs {name['out_id']} and {name['status']} DELIVERED or FAILED")
        out.append(Report(platform, str(item[name["out_id"]]), str(item.get(name["message_id"]) or "") or None, "",
                          status == "DELIVERED", str(item.get(name["code"]) or status),
                          beijing_ms(item.get(name["report_time"])), str(item.get(name["token"]) or "") or None))
    return out


def aliyun_replies(body) -> list[Reply]:
    return [Reply("aliyun", str(i.get("phone_number") or ""), str(i.get("content") or ""))
            for i in _items(body, "aliyun") if i.get("phone_number")]


def tencent_replies(body) -> list[Reply]:
    out = []
    for item in _items(body, "tencent"):
        if item.get("mobile"):
            nation = str(item.get("nationcode") or "86")
            phone = str(item["mobile"]) if nation == "86" else f"+{nation}{item['mobile']}"
            out.append(Reply("tencent", phone, str(item.get("text") or "")))
    return out


REPORT_PARSERS = {"aliyun": aliyun_reports, "tencent": tencent_reports}
REPLY_PARSERS = {"aliyun": aliyun_replies, "tencent": tencent_replies}
