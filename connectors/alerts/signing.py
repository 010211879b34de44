"""Signatures of the alert services (erp_and_messaging.md §3, §4).

- DingTalk 加签: HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"), base64, then URL-encoded.
- Feishu/Lark: HMAC-SHA256(key=f"{timestamp_s}\\n{secret}", msg=""), base64.
- Aliyun RPC signature v1: HMAC-SHA1(key=secret+"&", "POST&%2F&" + percent(canonical query)), base64.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import quote

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def dingtalk_sign_b64(secret: str, ts_ms: int | str) -> str:
    """The DingTalk signature before URL encoding (what the server compares after decoding the query)."""
    to_sign = f"{ts_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_sign(secret: str, ts_ms: int | str) -> str:
    """The `sign` query value of a DingTalk robot URL, already URL-encoded (`…%3D`)."""
    return quote(dingtalk_sign_b64(secret, ts_ms), safe="")


def feishu_sign(secret: str, ts_s: int | str) -> str:
    """The `sign` body field of a Feishu/Lark bot request: key `timestamp\\nsecret`, empty message."""
    key = f"{ts_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def percent(value: object) -> str:
    """RFC 3986 percent-encoding as Aliyun wants it: space → %20, `*` → %2A, `~` kept."""
    text = str(value)
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="~")


def aliyun_canonical_query(params: dict) -> str:
    """Sorted `percent(k)=percent(v)` joined by `&`, without `Signature`."""
    items = sorted((str(k), str(v)) for k, v in params.items() if k != "Signature")
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in items)


def aliyun_string_to_sign(params: dict, method: str = "POST") -> str:
    """`METHOD&%2F&percent(canonical query)`."""
    return f"{method.upper()}&{percent('/')}&{percent(aliyun_canonical_query(params))}"


def aliyun_signature(params: dict, secret: str, method: str = "POST") -> str:
    """The `Signature` parameter (base64, not URL-encoded) of an Aliyun RPC (v1, HMAC-SHA1) request."""
    return _sign(aliyun_canonical_query(params), secret, method)


def _percent_query(canonical: str) -> str:
    """`percent` of a canonical query, whose characters are unreserved ones, `%`, `=` and `&` only: three
    replacements instead of quoting byte by byte (a tenth of the cost of signing a long SendSms)."""
    return canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")


def _sign(canonical: str, secret: str, method: str) -> str:
    to_sign = f"{method.upper()}&%2F&{_percent_query(canonical)}"
    digest = hmac.new((secret + "&").encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_signed_form(params: dict, secret: str) -> str:
    """The whole `application/x-www-form-urlencoded` body of a signed POST: the canonical query (already
    percent-encoded, so it is encoded once) and the `Signature`."""
    canonical = aliyun_canonical_query(params)
    return f"{canonical}&Signature={percent(_sign(canonical, secret, 'POST'))}"
