"""Kuaidi100 (快递100) conventions as pure functions: subscriptions, pushes, their signatures, states.

Facts (see the courier-tracking section of the shared ERP and messaging fact sheet): a parcel is
subscribed with `POST /poll` (form `schema=json`, `param` = JSON of company, number, key and the
`parameters` callbackurl, salt, resultv2, phone), answered `{"result", "returnCode", "message"}` (200
accepted, 501 already subscribed, 500 server error, 600 bad key, 700 bad subscription data, 701
carrier refused). Each change is pushed to the callback URL as a form `param=<json>&sign=<UPPER(MD5(param
+ salt))>`; the receiver answers ACKNOWLEDGEMENT or the push is retried. `lastResult.data[]` lists the
steps newest first; `state` codes: 0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签, 5 派件, 6 退回, 7 转投, 8 清关,
14 拒签 (resultv2 sub-states such as 101, 301, 501 belong to the state of their leading digits).

Tonglu's own choices: the callback URL carries the order id (`?order_id=`), and each subscription's
salt is an HMAC of the order id and tracking number under Tonglu's secret, so the receiver checks a push
without any stored state, and a push cannot be moved to another order or parcel.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from urllib.parse import parse_qsl, quote

from schemas.canonical import MappingError, beijing_to_ms, mask_name
from schemas.free_text import mask_free_text

SERVICE = "kuaidi100"  # the RawRecord endpoint of its pushes
ACKNOWLEDGEMENT = {"result": True, "returnCode": "200", "message": "成功"}
SUBSCRIBED = {"result": True, "returnCode": "200", "message": "提交成功"}

# state code -> (Tonglu's tracking state, Kuaidi100's word)
STATES = {
    "0": ("IN_TRANSIT", "在途"), "1": ("PICKED_UP", "揽收"), "2": ("EXCEPTION", "疑难"), "3": ("DELIVERED", "签收"),
    "4": ("RETURNED", "退签"), "5": ("OUT_FOR_DELIVERY", "派件"), "6": ("RETURNING", "退回"),
    "7": ("REDIRECTED", "转投"), "8": ("CUSTOMS", "清关"), "14": ("REFUSED", "拒签"),
}
STATE_CODES = {state: code for code, (state, _word) in STATES.items()}

# Kuaidi100 company code -> (canonical carrier code, Chinese name, English name). shunfeng and yuantong are
# in the fact sheet; zhongtong, shentong, yunda, ems, jd and huitongkuaidi in Kuaidi100's own SDK constants;
# the rest are Kuaidi100's published codes as remembered (unverified).
COMPANIES = {
    "shunfeng": ("SF", "顺丰速运", "SF Express"), "zhongtong": ("ZTO", "中通快递", "ZTO Express"),
    "yuantong": ("YTO", "圆通速递", "YTO Express"), "shentong": ("STO", "申通快递", "STO Express"),
    "yunda": ("YUNDA", "韵达快递", "Yunda Express"), "ems": ("EMS", "EMS", "China EMS"),
    "youzhengguonei": ("POSTB", "邮政快递包裹", "China Post"), "jd": ("JD", "京东快递", "JD Logistics"),
    "huitongkuaidi": ("HTKY", "百世快递", "Best Express"), "debangkuaidi": ("DBKD", "德邦快递", "Deppon Express"),
    "jtexpress": ("JTSD", "极兔速递", "J&T Express"), "ups": ("UPS", "UPS", "UPS"),
    "usps": ("USPS", "美国邮政", "USPS"), "fedex": ("FEDEX", "联邦快递", "FedEx"), "dhl": ("DHL", "DHL", "DHL Express"),
}
_SHORT_NAMES = {"顺丰": "shunfeng", "中通": "zhongtong", "圆通": "yuantong", "申通": "shentong", "韵达": "yunda",
                "京东": "jd", "百世": "huitongkuaidi", "德邦": "debangkuaidi", "极兔": "jtexpress", "邮政": "youzhengguonei"}


class PushError(MappingError):
    """A push body that is not a Kuaidi100 push (the message says why, in one line)."""


def _norm(text: str) -> str:
    return "".join(str(text).split()).casefold()


_BY_NAME = {_norm(name): com for com, names in COMPANIES.items() for name in (com, *names)}
_BY_NAME.update({_norm(short): com for short, com in _SHORT_NAMES.items()})


def company_code(carrier: str | None) -> str | None:
    """Kuaidi100's company code for a carrier named by Kuaidi100's code, its canonical code (ZTO), its
    Chinese or English name, or a name starting with a known short name (中通快递有限公司); None if unknown."""
    if not carrier:
        return None
    key = _norm(carrier)
    found = _BY_NAME.get(key)
    if found is None:
        found = next((com for short, com in _SHORT_NAMES.items() if key.startswith(short)), None)
    return found


def carrier_name(company: str) -> str:
    """The Chinese name of a Kuaidi100 company code (the code itself when unknown)."""
    return COMPANIES.get(company, (None, company))[1]


def push_sign(param: str, salt: str) -> str:
    """UPPER(hex(MD5(param + salt))), the signature of a push."""
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def subscription_salt(secret: str, order_id: str, tracking_no: str) -> str:
    """The salt of one subscription: 32 hex characters of HMAC-SHA256(secret, order_id|tracking_no)."""
    return hmac.new(secret.encode(), f"{order_id}|{tracking_no}".encode(), hashlib.sha256).hexdigest()[:32]


def callback_url(base: str, order_id: str) -> str:
    """Where Kuaidi100 pushes a parcel of `order_id`: the receiver's URL with the order id in its query."""
    return f"{base}{'&' if '?' in base else '?'}order_id={quote(order_id, safe='')}"


def subscribe_form(company: str, number: str, key: str, callback: str, salt: str,
                   phone: str | None = None) -> dict[str, str]:
    """The form of `POST /poll` subscribing one parcel (resultv2 on: area names in the steps)."""
    parameters = {"callbackurl": callback, "salt": salt, "resultv2": "1"}
    if phone:
        parameters["phone"] = phone
    param = {"company": company, "number": number, "key": key, "parameters": parameters}
    return {"schema": "json", "param": json.dumps(param, ensure_ascii=False, separators=(",", ":"))}


def subscribe_outcome(reply: dict) -> str:
    """What a subscription reply means: `subscribed` (200, or 501 already), `retry` (500 or no answer)
    or `refused` (600 bad key, 700 bad data, 701 carrier refused, anything else)."""
    code = str(reply.get("returnCode", ""))
    if code in ("200", "501"):
        return "subscribed"
    if code in ("500", ""):
        return "retry"
    return "refused"


def push_form(push: dict, salt: str) -> dict[str, str]:
    """The form of one push (what the service sends): `param` and its signature."""
    param = json.dumps(push, ensure_ascii=False, separators=(",", ":"))
    return {"param": param, "sign": push_sign(param, salt)}


def read_push(body: bytes) -> tuple[str, str]:
    """(param, sign) of a push body (`application/x-www-form-urlencoded`); PushError if either is missing."""
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise PushError("push body is not UTF-8 form data") from None
    param, sign = form.get("param"), form.get("sign")
    if not param or not sign:
        raise PushError("push body lacks param or sign (expected param=<json>&sign=<md5>)")
    return param, sign


def verify_push(param: str, sign: str, salt: str) -> bool:
    """Whether `sign` is the push signature of `param` under `salt` (constant-time comparison)."""
    return hmac.compare_digest(push_sign(param, salt), sign.strip().upper())


def _last_result(param: str) -> dict:
    try:
        push = json.loads(param)
    except ValueError:
        raise PushError("push param is not JSON") from None
    last = push.get("lastResult") if isinstance(push, dict) else None
    if not isinstance(last, dict) or not isinstance(last.get("nu"), str) or not last["nu"]:
        raise PushError("push param has no lastResult.nu (tracking number)")
    return {**last, "_status": push.get("status"), "_message": push.get("message")}


def tracking_number(param: str) -> str:
    """The tracking number a push is about; PushError if the param does not say."""
    return _last_result(param)["nu"]


def main_state(code) -> str | None:
    """The state code of a (sub-)state code: '301' -> '3', '1401' -> '14', '5' -> '5'; None if unknown."""
    code = str(code if code is not None else "").strip()
    if code in STATES:
        return code
    if len(code) >= 3 and code[:-2] in STATES:
        return code[:-2]
    return None


_SIGNER = re.compile(r"(签收人\s*[:：]\s*)([^\s,，。.;；:：)）]+)")
_NOT_A_NAME = frozenset(("本人", "他人", "家人", "同事", "前台", "门卫", "快递柜", "驿站", "代收点"))


def mask_step(text: str | None) -> str | None:
    """A step's description with phones, ID numbers and house numbers masked (schemas.free_text) and the
    signer's name masked (签收人：张三 -> 签收人：张*); '本人' and the like stay as they are."""
    text = mask_free_text(text)
    if not text or "签收人" not in text:
        return text
    return _SIGNER.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) in _NOT_A_NAME else mask_name(m.group(2))),
                       text)


def tracking_update(param: str) -> dict:
    """A push's news as plain data: tracking_no, company (Kuaidi100's code) and carrier (its name), state
    (Tonglu's), status (Kuaidi100's word), step (masked), step_at (UTC ms of the newest step),
    delivered_at (when signed for), monitoring (polling / shutdown / abort) and steps (how many).
    PushError when it says nothing usable."""
    last = _last_result(param)
    data = last.get("data")
    steps = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    code = main_state(last.get("state"))
    if code is None:
        raise PushError(f"push state {last.get('state')!r} is not a Kuaidi100 state code")
    state, word = STATES[code]
    newest = steps[0] if steps else {}
    try:
        step_at = beijing_to_ms(newest.get("ftime") or newest.get("time"))
    except (TypeError, ValueError):
        raise PushError(f"push step time {newest.get('ftime')!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    company = last.get("com") or None
    return {"tracking_no": last["nu"], "company": company, "carrier": company and carrier_name(company),
            "state": state,
            "status": newest.get("status") or word, "step": mask_step(newest.get("context")), "step_at": step_at,
            "delivered_at": step_at if state == "DELIVERED" else None, "monitoring": last["_status"],
            "steps": len(steps)}
