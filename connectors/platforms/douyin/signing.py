"""Doudian request signing (douyin.md §2) and the JSON text that is both the body and `param_json`.

pattern = "app_key" + app_key + "method" + method + "param_json" + param_json + "timestamp" + timestamp + "v2";
to_sign = secret + pattern + secret; `hmac-sha256` is hex HMAC-SHA256 keyed with the secret over to_sign,
`md5` is hex md5(to_sign), both lower case. access_token is not signed.
"""
from __future__ import annotations

import hashlib
import hmac
import json

SIGN_METHODS = ("hmac-sha256", "md5")
VERSION = "2"


def param_json(params: dict) -> str:
    """Business params as the SDK serialises them: keys sorted, no spaces, no HTML or non-ASCII escaping."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign(app_key: str, secret: str, method: str, params_text: str, timestamp: str | int,
         sign_method: str = "hmac-sha256") -> str:
    """The `sign` query value for one call; `params_text` is the exact body text (`param_json`)."""
    pattern = f"app_key{app_key}method{method}param_json{params_text}timestamp{timestamp}v{VERSION}"
    to_sign = (secret + pattern + secret).encode("utf-8")
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(to_sign).hexdigest()
    raise ValueError(f"unsupported sign_method {sign_method!r}; one of {', '.join(SIGN_METHODS)}")
