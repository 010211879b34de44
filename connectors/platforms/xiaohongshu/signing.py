"""Xiaohongshu request and push signatures (xiaohongshu.md §2, §6).

Only four values are signed: `method`, `appId`, `timestamp`, `version`, plus the app secret; the access
token and the business parameters are not, so the gateway also checks that `timestamp` is fresh.
"""
from __future__ import annotations

import hashlib
import hmac

VERSION = "2.0"


def sign(method: str, app_id: str, timestamp: str, secret: str, version: str = VERSION) -> str:
    """md5(method + "?appId=…&timestamp=…&version=…" + secret), lower-case hex (parameters sorted by name)."""
    text = f"{method}?appId={app_id}&timestamp={timestamp}&version={version}{secret}"
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def push_sign(app_key: str, seller_id: str, timestamp: str, body: bytes, secret: str) -> str:
    """The `sign` header of a push: like the request sign over appKey/sellerId/timestamp, with the raw body
    between the parameters and the secret so that a changed body no longer verifies (shape unverified)."""
    head = f"push?appKey={app_key}&sellerId={seller_id}&timestamp={timestamp}".encode()
    return hashlib.md5(head + body + secret.encode("utf-8")).hexdigest()


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison of two hex signatures (case-insensitive)."""
    return bool(given) and hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))
