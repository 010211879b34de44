"""Youzan pushes arriving at /webhooks/youzan: whose they are, and whether Youzan signed them.

The shop: a self-built app belongs to one shop, so the `Client-Id` header names it (Tonglu's shop id of a
Youzan shop is its app's client_id); a shop named by its Youzan number is found by the message's
`kdt_id`. The signature: `Event-Sign` = md5(client_id + raw body + client_secret) over the exact bytes
received. A message without the header is accepted only with the older in-body `sign` =
md5(client_id + msg + client_secret); only `msg` is signed then, and only `msg` is ever read (payload.py).
A refund message only names its trade (`tid`): the Push names it, for the connectors to read at once.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from connectors.runtime.base import Push, id_text
from connectors.runtime.errors import json_object
from schemas.canonical import MappingError

from .payload import push_message
from .signing import event_sign, message_sign, same

ACKNOWLEDGEMENT = {"code": 0, "msg": "success"}  # the reply that stops Youzan resending a push (youzan.md §6)


def signed_headers(body: bytes, shop_id: str, secret: str, kind: str = "trade_TradeBuyerPay") -> dict:
    """The headers Youzan sends with a push of `body` by the app of `shop_id` (the parts `authenticate` reads)."""
    return {"Content-Type": "application/json; charset=utf-8", "Client-Id": shop_id, "Event-Type": kind,
            "Event-Sign": event_sign(shop_id, body, secret)}


def authenticate(headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None]) -> Push | None:
    """The push a request carries when its signature verifies with its shop's secret, else None.

    `headers` must look names up case-insensitively (aiohttp's do).
    """
    message = json_object(body)
    client_id = headers.get("Client-Id") or message.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        return None
    shop_id = secret = None
    for candidate in (client_id, message.get("kdt_id")):
        if candidate not in (None, ""):
            secret = secret_of(str(candidate))
            if secret:
                shop_id = str(candidate)
                break
    if shop_id is None:
        return None
    header = headers.get("Event-Sign")
    if header is not None:
        verified = same(event_sign(client_id, body, secret), header)
    else:
        msg = message.get("msg")
        verified = isinstance(msg, str) and same(message_sign(client_id, msg, secret), message.get("sign"))
    if not verified:
        return None
    kind = headers.get("Event-Type") or message.get("type")
    kind = kind if isinstance(kind, str) else None
    return Push(shop_id=shop_id, endpoint=kind, request_id=_request_id(message),
                kind="refund" if kind and kind.startswith("trade_refund_") else "order",
                external_ids=named_trade(message))


def named_trade(message: dict) -> tuple[str, ...]:
    """The trade a notice names without carrying it (a refund message's `tid`); () for a message that
    carries its trade (`full_order_info`) or does not parse."""
    try:
        inner = push_message(message, exact=True)
    except MappingError:
        return ()
    if "full_order_info" in inner:
        return ()
    tid = id_text(inner.get("tid"))
    return (tid,) if tid else ()


def _request_id(message: dict) -> str | None:
    """`{id}@{version}`: the trade and Youzan's ordering key of the message."""
    if message.get("id") in (None, ""):
        return None
    return f"{message['id']}@{message.get('version')}"
