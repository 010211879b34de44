"""Xiaohongshu pushes (小红书消息推送): HTTPS POST of a JSON array of `{msgTag, sellerId, data}` messages.

The sheet gives the signature only as "like the request sign over appKey/timestamp + secret"
(unverified shape); here the headers are `app-key`, `seller-id`, `timestamp` (Unix seconds) and `sign`
= md5("push?appKey=…&sellerId=…&timestamp=…" + raw body + appSecret), so the signature covers the exact
bytes and the seller. A push older or newer than `MAX_SKEW_S` is refused like a forged one. The seller
id is the shop id. Messages name the order only; the mapping turns them into no order, and the Push names
them for the connectors to read at once.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from connectors.runtime.base import Push, id_text

from .signing import push_sign, same

MAX_SKEW_S = 600
# the reply that stops the platform resending: the sheet names none, so the API's own success envelope
# (xiaohongshu.md §1) is assumed (unverified)
ACKNOWLEDGEMENT = {"success": True, "code": 0, "msg": "成功"}


def signed_headers(body: bytes, shop_id: str, secret: str, app_key: str = "", timestamp: int | None = None) -> dict:
    """The headers the platform sends with a push of `body` for `shop_id` (the parts `authenticate` reads)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json; charset=utf-8", "app-key": app_key, "seller-id": shop_id,
            "timestamp": stamp, "sign": push_sign(app_key, shop_id, stamp, body, secret)}


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None],
                 now_s: float | None = None) -> Push | None:
    """The push a request carries when its signature verifies with its shop's secret and its timestamp is
    fresh, else None. `headers` must look names up case-insensitively (aiohttp's do)."""
    shop_id, stamp = headers.get("seller-id") or "", headers.get("timestamp") or ""
    secret = secret_of(shop_id) if shop_id else None
    if secret is None or not stamp.isdigit():
        return None
    if abs((time.time() if now_s is None else now_s) - int(stamp)) > MAX_SKEW_S:
        return None
    if not same(push_sign(headers.get("app-key") or "", shop_id, stamp, body, secret), headers.get("sign")):
        return None
    return Push(shop_id=shop_id, endpoint="msg", api_version="2.0", external_ids=named_orders(body))


def named_orders(body: bytes) -> tuple[str, ...]:
    """The orders the messages name (`orderId` in each message's `data`), in order, each once."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    named = []
    for message in doc if isinstance(doc, list) else [doc]:
        data = message.get("data") if isinstance(message, dict) else None
        try:
            data = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            continue
        named.append(id_text(data.get("orderId")) if isinstance(data, dict) else None)
    return tuple(dict.fromkeys(n for n in named if n))
