"""WeChat message-push signatures, as WeChat signs a push to a shop's message server.

WeChat adds `signature`, `timestamp` and `nonce` to the query of the configured URL, with
`signature = sha1(the three of token, timestamp, nonce sorted and joined)` in hex (plaintext mode);
in safe mode the body carries `Encrypt` and the query also `msg_signature` = the same over four
values, `Encrypt` included. The shop is named by the `shop_id` query parameter of the URL its message
server is configured with (`/webhooks/wechat_channels?shop_id=<shop>`); its token is the secret
Tonglu keeps for the shop.

The plaintext signature does not cover the body, so a signature seen once must not be accepted
again: a push is refused when its timestamp is more than `MAX_AGE_S` away from now or when its
(shop, timestamp, nonce) was accepted before — a body swapped under a replayed signature is refused.
A push names an order without carrying one (order_info.order_id): it maps to no order; the push names
it in `Push.external_ids` and the connectors read it with order/get at once.

Before pushing to a URL WeChat checks it with a GET carrying `signature`, `timestamp`, `nonce` and
`echostr`: `verify_url` gives the `echostr` to echo when the signature verifies.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from connectors.runtime.base import Push, id_text
from schemas.canonical import MappingError

from .payload import parse_body

ACKNOWLEDGEMENT = "success"  # the plain-text reply WeChat expects within 5 s, else it resends
MAX_AGE_S = 300
_SEEN: OrderedDict[tuple, float] = OrderedDict()  # accepted (shop, timestamp, nonce) -> when it expires
_SEEN_MAX = 100_000
_EVENT = re.compile(rb'"Event"\s*:\s*"([A-Za-z0-9_]+)"|<Event>(?:<!\[CDATA\[)?([A-Za-z0-9_]+)')
_ENCRYPT = re.compile(rb'"Encrypt"\s*:\s*"([^"]+)"|<Encrypt>(?:<!\[CDATA\[)?([^<\]]+)')


def signature(token: str, timestamp: str, nonce: str, *more: str) -> str:
    """sha1 hex of the values sorted and joined (plaintext: token, timestamp, nonce; safe mode adds Encrypt)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *more])).encode("utf-8")).hexdigest()


def push_query(shop_id: str, token: str, timestamp: int | None = None, nonce: str | None = None) -> dict:
    """The query parameters of a push to `shop_id`'s message server, signed with `token` (plaintext mode)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(secrets.randbelow(9 * 10**9) + 10**9)
    return {"shop_id": shop_id, "signature": signature(token, stamp, nonce), "timestamp": stamp, "nonce": nonce}


def signed_headers(body: bytes, shop_id: str, secret: str) -> dict:
    """The request parts WeChat sends with a push of `body`: `shop_id`, `signature`, `timestamp`, `nonce`
    (query parameters in a real push; `authenticate` reads them from its `query`, else from `headers`)."""
    return {**push_query(shop_id, secret), "Content-Type": "application/xml" if body.lstrip()[:1] == b"<"
            else "application/json"}


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace"))


def _fresh(key: tuple, stamp: int, now: float) -> bool:
    while _SEEN and (next(iter(_SEEN.values())) < now or len(_SEEN) > _SEEN_MAX):
        _SEEN.popitem(last=False)
    return key not in _SEEN and abs(now - stamp) <= MAX_AGE_S


def verify_url(query: Mapping[str, str], secret_of: Callable[[str], str | None],
               now: float | None = None) -> str | None:
    """WeChat checking the message-server URL (a GET with `signature`, `timestamp`, `nonce`, `echostr`):
    `echostr`, to be echoed, when the signature verifies with the shop's token and the timestamp is
    fresh, else None."""
    shop_id = query.get("shop_id") or ""
    token = secret_of(shop_id) if shop_id else None
    stamp, nonce = query.get("timestamp") or "", query.get("nonce") or ""
    given, echo = query.get("signature") or "", query.get("echostr")
    if not token or not stamp.isdigit() or not nonce or not given or not echo:
        return None
    if not _same(signature(token, stamp, nonce), given):
        return None
    return echo if abs((time.time() if now is None else now) - int(stamp)) <= MAX_AGE_S else None


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None],
                 query: Mapping[str, str] | None = None, now: float | None = None) -> Push | None:
    """The push a request carries when it is a WeChat message signed with its shop's token, else None.

    Reads `shop_id`, `signature`, `timestamp`, `nonce` (and `msg_signature` in safe mode) from `query`,
    or from `headers` when there is no query (see `signed_headers`).
    """
    params = query if query is not None and query.get("signature") else headers
    shop_id = params.get("shop_id") or ""
    token = secret_of(shop_id) if shop_id else None
    stamp, nonce, given = params.get("timestamp") or "", params.get("nonce") or "", params.get("signature") or ""
    if not token or not stamp.isdigit() or not nonce or not given:
        return None
    if not _same(signature(token, stamp, nonce), given):
        return None
    encrypted = _ENCRYPT.search(body)
    if encrypted:  # safe mode: the encrypted message itself is signed too
        value = (encrypted.group(1) or encrypted.group(2)).decode("ascii", "replace")
        if not _same(signature(token, stamp, nonce, value), params.get("msg_signature") or ""):
            return None
    now = time.time() if now is None else now
    key = (shop_id, stamp, nonce)
    if not _fresh(key, int(stamp), now):
        return None
    _SEEN[key] = now + 2 * MAX_AGE_S
    event = _EVENT.search(body)
    name = (event.group(1) or event.group(2)).decode() if event else None
    content_type = "xml" if body.lstrip()[:1] == b"<" else "json"
    return Push(shop_id=shop_id, endpoint=name, request_id=nonce, content_type=content_type,
                kind="refund" if name and "aftersale" in name else "order",
                external_ids=named_order(body, content_type))


def named_order(body: bytes, content_type: str) -> tuple[str, ...]:
    """The order a push event names (`order_info.order_id`); () for a safe-mode message, which Tonglu
    cannot read without the EncodingAESKey, or a body that does not parse."""
    try:
        doc = parse_body(body, content_type)
    except MappingError:
        return ()
    info = doc.get("order_info") if isinstance(doc, dict) else None
    named = id_text(info.get("order_id")) if isinstance(info, dict) else None
    return (named,) if named else ()
