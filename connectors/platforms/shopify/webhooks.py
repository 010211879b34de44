"""Shopify webhook signatures: base64(HMAC-SHA256(app client secret, raw body bytes))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping

from connectors.runtime.base import Push


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


def signed_headers(body: bytes, shop_id: str, secret: str, topic: str = "orders/updated") -> dict:
    """The headers Shopify sends with a push of `body` for `shop_id` (the parts `authenticate` reads)."""
    return {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign_body(body, secret),
            "X-Shopify-Shop-Domain": f"{shop_id}.myshopify.com", "Content-Type": "application/json"}


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None]) -> Push | None:
    """The push a webhook request carries when its signature verifies with its shop's secret, else None.

    `headers` must look names up case-insensitively (aiohttp's do); the shop is the domain without
    `.myshopify.com`.
    """
    shop_id = (headers.get("X-Shopify-Shop-Domain") or "").removesuffix(".myshopify.com")
    secret = secret_of(shop_id) if shop_id else None
    if secret is None or not verify(body, headers.get("X-Shopify-Hmac-Sha256"), secret):
        return None
    return Push(shop_id=shop_id, endpoint=headers.get("X-Shopify-Topic"),
                request_id=headers.get("X-Shopify-Webhook-Id"), api_version=headers.get("X-Shopify-API-Version"))
