"""TOP request signing (taobao.md §2): sorted name+value concatenation, md5 / hmac / hmac-sha256."""
from __future__ import annotations

import hashlib
import hmac

SIGN_METHODS = ("md5", "hmac", "hmac-sha256")


def canonical_string(params: dict) -> str:
    """`name1value1name2value2…` over the params sorted by name, without `sign` and empty values."""
    items = sorted((str(k), str(v)) for k, v in params.items() if k != "sign" and v is not None and v != "")
    return "".join(k + v for k, v in items)


def sign(params: dict, secret: str, sign_method: str = "md5") -> str:
    """The `sign` value of a TOP request, upper-case hex.

    md5 hashes `secret + string + secret`; hmac (HMAC-MD5) and hmac-sha256 key the HMAC with the
    secret over the string alone.
    """
    text = canonical_string(params).encode("utf-8")
    key = secret.encode("utf-8")
    if sign_method == "md5":
        return hashlib.md5(key + text + key).hexdigest().upper()
    if sign_method == "hmac":
        return hmac.new(key, text, hashlib.md5).hexdigest().upper()
    if sign_method == "hmac-sha256":
        return hmac.new(key, text, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported sign_method {sign_method!r}; one of {', '.join(SIGN_METHODS)}")
