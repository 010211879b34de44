"""Signatures of what Tonglu sends to ERPs and WMSs (erp_and_messaging.md §1, §2).

- Signed webhooks: `X-Tonglu-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, the
  timestamp in unix seconds (`X-Tonglu-Timestamp`); receivers refuse a timestamp more than 300 s off.
- Qimen (奇门): `UPPER(hex(MD5(secret + sorted key+value of the system parameters + body + secret)))`,
  every query parameter but `sign`.
"""
from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300  # receivers refuse a timestamp further than this from their clock


def webhook_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The `X-Tonglu-Signature` value of a webhook body sent at `timestamp` (unix seconds)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_webhook(secret: str | bytes, timestamp: str | None, signature: str | None, body: bytes,
                   now_s: float, tolerance_s: int = TOLERANCE_S) -> str | None:
    """None when the webhook is genuine and fresh, else the one-line reason to refuse it (401)."""
    if not timestamp or not timestamp.isdigit():
        return "missing or malformed X-Tonglu-Timestamp"
    if abs(now_s - int(timestamp)) > tolerance_s:
        return f"X-Tonglu-Timestamp {timestamp} is more than {tolerance_s}s from now"
    if not signature or not signature.startswith("sha256="):
        return "missing or malformed X-Tonglu-Signature"
    if not hmac.compare_digest(signature.encode("ascii", "replace"),
                               webhook_signature(secret, timestamp, body).encode("ascii")):
        return "signature does not match"
    return None


def qimen_sign(secret: str, params: dict[str, str], body: bytes) -> str:
    """The `sign` query parameter of a Qimen request (md5 over the sorted system parameters and the body)."""
    text = "".join(k + str(v) for k, v in sorted(params.items()) if k != "sign")
    key = secret.encode("utf-8")
    return hashlib.md5(key + text.encode("utf-8") + body + key).hexdigest().upper()
