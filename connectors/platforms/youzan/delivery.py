"""Simulated Youzan pushes: signed trade and refund messages and their resends (youzan.md §6), through the
shared push hub (`connectors/simkit/pushes.py`: subscriptions, retries, forged signatures, the control API).

Youzan resends a message until the receiver answers HTTP 200 with `{"code":0,"msg":"success"}`; here
`retries` resends with `backoff * 2**n` seconds between them, `sendCount` counting up in each. The log
says whether each answer was that acknowledgement.
"""
from __future__ import annotations

from connectors.runtime.errors import json_object
from connectors.simkit.pushes import Outgoing, Push, PushStyle
from connectors.simkit.world import SimOrder

from .render import push_body, trade_status
from .signing import event_sign

_SHIPPED_KINDS = {"WAIT_BUYER_CONFIRM_GOODS": "trade_TradeSellerShip", "TRADE_SUCCESS": "trade_TradeSuccess",
                  "TRADE_CLOSE": "trade_TradeClose"}


def _state(order: SimOrder) -> tuple:
    return (trade_status(order), sum(line.tracking_no is not None for line in order.lines),
            tuple(line.refund_status for line in order.lines))


def message_kinds(before: tuple | None, order: SimOrder) -> list[str]:
    """The message types a change of `order` from the state `before` (None: new) makes Youzan send."""
    status, shipped, refunds = after = _state(order)
    if before == after:
        return []
    kinds = []
    old_status, old_shipped, old_refunds = before or (None, 0, ())
    if before is None:
        kinds.append("trade_TradeCreate")
    if status != old_status and status in _SHIPPED_KINDS:
        kinds.append(_SHIPPED_KINDS[status])
    elif status == "WAIT_SELLER_SEND_GOODS" and old_status in (None, "WAIT_BUYER_PAY"):
        kinds.append("trade_TradeBuyerPay")
    elif status == "WAIT_SELLER_SEND_GOODS" and shipped > old_shipped:
        kinds.append("trade_TradePartlySellerShip")
    old = dict(enumerate(old_refunds))
    if any(r == "REQUESTED" and old.get(n) != r for n, r in enumerate(refunds)):
        kinds.append("trade_refund_RefundCreated")
    if any(r == "REFUNDED" and old.get(n) != r for n, r in enumerate(refunds)):
        kinds.append("trade_refund_RefundSuccess")
    return kinds


class YouzanPushes(PushStyle):
    """One message per kind an order change makes; every resend is a new body (`sendCount`), signed again.
    Taken on HTTP 200 with the documented body; the log says whether each answer was it."""

    sign_each_attempt = True

    def __init__(self, plaintext: bool = False):
        self.plaintext = plaintext

    def state(self, order: SimOrder) -> tuple:
        return _state(order)

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        return [Push(b"", {"type": kind, "tid": order.external_id}, order)
                for before, order in changes for kind in message_kinds(before, order)]

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        kind, signer = push.log["type"], dict(shop, app_secret=secret)
        body = push_body(push.about, signer, kind, attempt - 1, self.plaintext)
        headers = {"Content-Type": "application/json; charset=utf-8", "Client-Id": shop["app_key"],
                   "Event-Type": kind, "Event-Sign": event_sign(shop["app_key"], body, secret)}
        return Outgoing(address, headers, body, {"send_count": attempt - 1})

    def acked(self, status: int, reply: bytes) -> bool:
        return status == 200 and _acknowledged(reply)

    def reply_log(self, status: int, reply: bytes) -> dict:
        return {"acknowledged": self.acked(status, reply)}


def _acknowledged(answer: bytes) -> bool:
    """Whether the receiver answered with Youzan's documented body {"code": 0, "msg": "success"}."""
    doc = json_object(answer)
    return doc.get("code") == 0 and doc.get("msg") == "success"
