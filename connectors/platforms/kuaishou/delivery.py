"""Simulated message pushes: a subscribed address gets one signed event per order change, through the
shared push hub (`connectors/simkit/pushes.py`: subscriptions, retries, forged signatures, the control API).

An event is chosen from what changed (a new order, its status, its refund), e.g.
`kwaishop_order_paySuccess`; its `info` names the order as the platform does (oid, sellerId, status,
updateTime), in clear like the recorded sample. A delivery not answered 2xx with `{"result": 1}` is
retried `retries` times, `backoff * 2**n` seconds apart, with the identical bytes.
"""
from __future__ import annotations

import orjson

from connectors.runtime.errors import json_object
from connectors.simkit.pushes import Outgoing, Push, PushStyle
from connectors.simkit.server import now_ms
from connectors.simkit.world import SimOrder

from .render import status_code
from .webhooks import signed_headers

STATUS_EVENTS = {"PAID": "kwaishop_order_paySuccess", "PARTIALLY_SHIPPED": "kwaishop_order_delivering",
                 "SHIPPED": "kwaishop_order_delivering", "DELIVERED": "kwaishop_order_deliverySuccess",
                 "COMPLETED": "kwaishop_order_orderSuccess", "CANCELLED": "kwaishop_order_orderFail"}


def events_for(before: tuple | None, order: SimOrder) -> list[str]:
    """The events one change of an order raises (`before` is its earlier state, None when new)."""
    status, refunds = order.status, tuple(line.refund_status for line in order.lines)
    if before is None:
        return ["kwaishop_order_addOrder"] + (["kwaishop_order_paySuccess"] if status != "PENDING_PAYMENT" else [])
    events = [STATUS_EVENTS[status]] if status != before[0] and status in STATUS_EVENTS else []
    if refunds != before[1]:
        events.append("kwaishop_aftersales_addRefund" if "REQUESTED" in refunds
                      else "kwaishop_aftersales_updateRefund")
    return events


class KuaishouPushes(PushStyle):
    """One push per event an order change raises, numbered in `eventId`."""

    def __init__(self):
        self.sequence = 0

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        out = []
        for before, order in changes:
            for event in events_for(before, order):
                self.sequence += 1
                out.append(Push(self.message(shop, order, event, self.sequence), {"event": event},
                                f"evt_{self.sequence}_{order.external_id}"))
        return out

    @staticmethod
    def message(shop: dict, order: SimOrder, event: str, sequence: int) -> bytes:
        """The push body: ids as bare JSON numbers, `info` the business JSON as a string."""
        oid = int(order.external_id)
        info = {"oid": oid, "sellerId": int(shop["open_id"][:8], 16), "openId": shop["open_id"],
                "status": status_code(order), "updateTime": order.updated_at}
        return orjson.dumps({"eventId": f"evt_{sequence}_{oid}", "bizId": oid, "openId": shop["open_id"],
                             "event": event, "info": orjson.dumps(info).decode(), "createTime": now_ms(),
                             "test": False})

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        return Outgoing(address, signed_headers(push.body, shop["shop_id"], secret, push.log["event"], push.about),
                        push.body)

    def acked(self, status: int, reply: bytes) -> bool:
        """Taken only on 2xx with Kuaishou's acknowledgement `{"result": 1}`."""
        return 200 <= status < 300 and json_object(reply).get("result") == 1
