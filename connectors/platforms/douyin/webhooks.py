"""Douyin push (消息推送) signatures: `event-sign` = md5(app_key + raw body + app_secret), lower-case hex.

Douyin POSTs a JSON array of messages `[{"tag", "msg_id", "data": "<json>"}]` with the headers `app-id`
(the app key), `event-sign` and `sign-method`. The shop is the `shop_id` every message's data names
(so a Douyin shop is configured under its Douyin shop id); its secret verifies the raw bytes. Douyin
retries a push until the answer is `{"code": 0, "msg": "success"}`. The messages only name their orders
(`p_id`): the Push names them, for the connectors to read with `order.orderDetail` at once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

import orjson

from connectors.runtime.base import Push, id_text

from .facts import FACTS

ACKNOWLEDGEMENT = {"code": 0, "msg": "success"}  # what the receiver answers a verified push with
AFTER_SALE_TAGS = frozenset(("200", "201", "202", "203", "204", "205", "206", "207", "208"))
DEMO_APP_KEY = "7300000000000000001"


def sign_push(app_key: str, body: bytes, secret: str, sign_method: str = "md5") -> str:
    """The `event-sign` of `body`: md5(app_key + body + secret); `hmac-sha256` keys an HMAC-SHA256 with
    the secret over the same bytes (unverified variant, see facts.toml)."""
    if sign_method not in FACTS.push.sign_methods:
        raise ValueError(f"unsupported sign-method {sign_method!r}")
    text = app_key.encode("utf-8") + body + secret.encode("utf-8")
    if sign_method == "md5":
        return hashlib.md5(text).hexdigest()
    return hmac.new(secret.encode("utf-8"), text, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, shop_id: str, secret: str, app_key: str = DEMO_APP_KEY,
                   sign_method: str = "md5") -> dict:
    """The headers Douyin sends with a push of `body` (the shop is named inside the body)."""
    return {"app-id": app_key, "event-sign": sign_push(app_key, body, secret, sign_method),
            "sign-method": sign_method, "Content-Type": "application/json"}


def _shop_ids(doc) -> set:
    """Every `shop_id` a push batch (in its messages' data) or an order answer names."""
    if isinstance(doc, dict) and "data" in doc and not isinstance(doc["data"], str):
        data = doc["data"] if isinstance(doc["data"], dict) else {}
        orders = data.get("shop_order_list") or ([data["shop_order_detail"]] if "shop_order_detail" in data else [])
        return {o.get("shop_id") if isinstance(o, dict) else None for o in orders}
    found = set()
    for message in doc if isinstance(doc, list) else [doc]:
        data = orjson.loads(message["data"]) if isinstance(message, dict) and isinstance(message.get("data"), str) else None
        found.add(data.get("shop_id") if isinstance(data, dict) else None)
    return found


def push_shop(body: bytes) -> str | None:
    """The one shop a body names, as a string; None when it names none, several, or does not parse."""
    try:
        found = _shop_ids(orjson.loads(body))
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    if len(found) != 1:
        return None
    (shop,) = found
    return str(shop) if isinstance(shop, (int, str)) and not isinstance(shop, bool) and str(shop) else None


def _tags(body: bytes) -> tuple[list[str], str | None, tuple[str, ...]]:
    """The messages' tags, the first msg_id, and the parent orders (`p_id`) they name."""
    doc = orjson.loads(body)
    messages = [m for m in (doc if isinstance(doc, list) else [doc]) if isinstance(m, dict) and "tag" in m]
    named = []
    for m in messages:
        try:
            data = json.loads(m["data"]) if isinstance(m.get("data"), str) else None  # p_id is a bare number
        except ValueError:
            data = None
        named.append(id_text(data.get("p_id")) if isinstance(data, dict) else None)
    return ([str(m["tag"]) for m in messages], (str(messages[0].get("msg_id")) if messages else None),
            tuple(dict.fromkeys(n for n in named if n)))


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None]) -> Push | None:
    """The push a request carries when `event-sign` verifies with the secret of the shop its body names,
    else None. `headers` must look names up case-insensitively (aiohttp's do)."""
    given, app_key = headers.get("event-sign"), headers.get("app-id")
    sign_method = (headers.get("sign-method") or "md5").lower()
    if not given or not app_key or sign_method not in FACTS.push.sign_methods:
        return None
    shop_id = push_shop(body)
    secret = secret_of(shop_id) if shop_id else None
    if not secret:
        return None
    expected = sign_push(app_key, body, secret, sign_method).encode("ascii")
    if not hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace")):
        return None
    tags, msg_id, named = _tags(body)
    kind = "refund" if tags and all(t in AFTER_SALE_TAGS for t in tags) else "order"
    return Push(shop_id=shop_id, endpoint=",".join(dict.fromkeys(tags)) or None, request_id=msg_id, kind=kind,
                external_ids=named)
