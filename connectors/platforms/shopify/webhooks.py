"""Shopify webhook signatures: base64(HMAC-SHA256(app client secret, raw body bytes))."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign_body(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body` signed with the app's client secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, header_value: str | None, secret: str) -> bool:
    """True when `header_value` is the signature of the exact `body` bytes (constant-time comparison).

    Verify on the raw request bytes before any JSON parsing; a missing header never verifies.
    """
    if not header_value or not secret:
        return False
    expected = sign_body(body, secret).encode("ascii")
    return hmac.compare_digest(expected, header_value.strip().encode("utf-8", "replace"))
