"""Kuaishou message pushes (消息推送) arriving at `/webhooks/kuaishou`.

The sheet describes the body (`{"eventId","bizId","openId","event","info","createTime","test"}`) but
no signature, so Tonglu's callback asks for one over the raw bytes: `X-Ks-Sign` = lower-case hex
HMAC-SHA256(the shop's secret, body), with `X-Ks-Shop-Id` naming the shop (its `app_secret`, the
signSecret that also signs its API calls). Verified before any parsing; a forged, unsigned or altered
push is refused and nothing is published. A message names its order without carrying it: the Push
names it, for the connectors to read with `open.order.detail` at once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

from connectors.runtime.base import Push, id_text

ACKNOWLEDGEMENT = {"result": 1}  # the reply that stops Kuaishou resending a push (kuaishou.md §6)
SIGN_HEADER, SHOP_HEADER, EVENT_HEADER, EVENT_ID_HEADER = "X-Ks-Sign", "X-Ks-Shop-Id", "X-Ks-Event", "X-Ks-Event-Id"


def sign_body(body: bytes, secret: str) -> str:
    """The `X-Ks-Sign` value of `body` for a shop whose secret is `secret`."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, shop_id: str, secret: str, event: str = "kwaishop_order_paySuccess",
                   event_id: str | None = None) -> dict:
    """The headers a push of `body` to `shop_id` carries (the parts `authenticate` reads)."""
    headers = {"Content-Type": "application/json", SHOP_HEADER: shop_id, EVENT_HEADER: event,
               SIGN_HEADER: sign_body(body, secret)}
    if event_id:
        headers[EVENT_ID_HEADER] = event_id
    return headers


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None]) -> Push | None:
    """The push a request carries when its signature verifies with its shop's secret, else None.

    `headers` must look names up case-insensitively (aiohttp's do).
    """
    shop_id = (headers.get(SHOP_HEADER) or "").strip()
    secret = secret_of(shop_id) if shop_id else None
    given = (headers.get(SIGN_HEADER) or "").strip().lower()
    if not secret or not given or not hmac.compare_digest(sign_body(body, secret), given):
        return None
    return Push(shop_id=shop_id, endpoint=headers.get(EVENT_HEADER), request_id=headers.get(EVENT_ID_HEADER),
                external_ids=named_orders(body))


def named_orders(body: bytes) -> tuple[str, ...]:
    """The order a push message names: `info.oid`, else the `bizId` of an order event (an after-sale
    event's bizId may name the refund). Parsed with the standard library: oid is a bare int64."""
    try:
        doc = json.loads(body)
        info = doc.get("info")
        info = json.loads(info) if isinstance(info, str) else info
    except (ValueError, AttributeError):
        return ()
    oid = info.get("oid") if isinstance(info, dict) else None
    if oid is None and str(doc.get("event") or "").startswith("kwaishop_order_"):
        oid = doc.get("bizId")
    named = id_text(oid)
    return (named,) if named else ()
