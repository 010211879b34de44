"""Simulated WeChat message pushes: a shop's message server gets `channels_ec_*` events, signed, through
the shared push hub (`connectors/simkit/pushes.py`: subscriptions, retries, forged signatures, the control
API). The address a shop subscribes is its message server URL; the simulator adds `shop_id=<shop>` to it,
as the URL configured for that shop carries it.

Every change of an order becomes one event (new → `channels_ec_order_new`, paid → `_pay`, shipped or
partly shipped → `_deliver`, completed → `_confirm`, cancelled → `_cancel`, an after-sale change →
`channels_ec_aftersale_update`), POSTed as JSON to the address with `signature`, `timestamp` and
`nonce` added to its query (plaintext mode, the shop's AppSecret as the token). WeChat expects the
plain-text reply `success` (or an empty one) within 5 s and retries three times otherwise; so does
this simulator, and the log says whether the reply was `success`.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from connectors.simkit.pushes import Outgoing, Push, PushStyle
from connectors.simkit.world import SimOrder

from .render import order_dict
from .webhooks import push_query

EVENTS = {"PAID": "channels_ec_order_pay", "PARTIALLY_SHIPPED": "channels_ec_order_deliver",
          "SHIPPED": "channels_ec_order_deliver", "COMPLETED": "channels_ec_order_confirm",
          "CANCELLED": "channels_ec_order_cancel"}


def with_shop(address: str, shop_id: str) -> str:
    """The address with `shop_id=<shop>` in its query (kept when it is there already)."""
    parts = urlsplit(address)
    query = dict(parse_qsl(parts.query))
    query.setdefault("shop_id", shop_id)
    return urlunsplit(parts._replace(query=urlencode(query)))


def event_body(order: SimOrder, event: str, original_id: str) -> bytes:
    """The JSON message WeChat pushes for `event` of `order`."""
    doc = order_dict(order)
    info: dict = {"order_id": order.external_id}
    if event == "channels_ec_order_pay":
        info["pay_time"] = doc["order_detail"]["pay_info"].get("pay_time", 0)
    elif event == "channels_ec_aftersale_update":
        listed = doc["order_detail"]["aftersale_detail"]["aftersale_order_list"]
        info["aftersale_order_list"] = listed
    return orjson.dumps({"ToUserName": original_id, "FromUserName": doc["openid"], "CreateTime": int(time.time()),
                         "MsgType": "event", "Event": event, "order_info": info})


def event_of(before: tuple | None, order: SimOrder) -> str | None:
    """The event a change of `order` from its state `before` (None: new) raises, if any."""
    now = order.status, tuple(line.refund_status for line in order.lines)
    if before is None:
        return "channels_ec_order_new" if order.status == "PENDING_PAYMENT" else "channels_ec_order_pay"
    if before[1] != now[1]:
        return "channels_ec_aftersale_update"
    if before[0] != now[0]:
        return EVENTS.get(order.status)
    return None


class WeChatPushes(PushStyle):
    """One event per order change, signed in the query; the log says whether the reply was `success`."""

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        out = []
        for before, order in changes:
            event = event_of(before, order)
            if event is not None:
                out.append(Push(event_body(order, event, shop.get("original_id", "")), {"event": event}))
        return out

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        parts = urlsplit(address)
        query = dict(parse_qsl(parts.query))
        query.update(push_query(shop["shop_id"], secret))
        return Outgoing(urlunsplit(parts._replace(query=urlencode(query))), {"Content-Type": "application/json"},
                        push.body)

    def acked(self, status: int, reply: bytes) -> bool:
        """Taken only on 2xx with the plain-text reply `success` (or an empty one)."""
        return 200 <= status < 300 and reply.strip() in (b"success", b"")

    def reply_log(self, status: int, reply: bytes) -> dict:
        return {"replied_success": self.acked(status, reply)}

    def address(self, address: str, shop_id: str) -> str:
        return with_shop(address, shop_id)
