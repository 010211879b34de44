"""Kuaishou request signing (kuaishou.md §2).

The system parameters `access_token, appkey, method, param, signMethod, timestamp, version` sorted by
name and joined as `k=v` with `&` (raw values, not URL-encoded), then `&signSecret=<signSecret>`:
`MD5` is the md5 of that string, `HMAC_SHA256` the HMAC-SHA256 keyed with the signSecret over the same
string (appending `&signSecret=` for HMAC too follows the official Java SDK, which the sheet marks
unverified); both lower-case hex.
"""
from __future__ import annotations

import hashlib
import hmac

SIGN_METHODS = ("MD5", "HMAC_SHA256")
SIGNED = ("access_token", "appkey", "method", "param", "signMethod", "timestamp", "version")


def string_to_sign(params: dict, sign_secret: str) -> str:
    """`access_token=…&appkey=…&…&version=1&signSecret=…` over the signed parameters present."""
    joined = "&".join(f"{k}={params[k]}" for k in sorted(SIGNED) if params.get(k) is not None)
    return f"{joined}&signSecret={sign_secret}"


def digest(text: str, sign_secret: str, sign_method: str) -> str:
    """The lower-case hex signature of an already joined string."""
    data = text.encode("utf-8")
    if sign_method == "MD5":
        return hashlib.md5(data).hexdigest()
    if sign_method == "HMAC_SHA256":
        return hmac.new(sign_secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
    raise ValueError(f"unsupported signMethod {sign_method!r}; one of {', '.join(SIGN_METHODS)}")


def sign(params: dict, sign_secret: str) -> str:
    """The `sign` value of a request whose parameters (with `signMethod`) are `params`."""
    return digest(string_to_sign(params, sign_secret), sign_secret, params.get("signMethod") or "MD5")
