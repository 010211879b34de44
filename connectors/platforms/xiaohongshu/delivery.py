"""The simulator's pushes (小红书消息推送), through the shared push hub (`connectors/simkit/pushes.py`:
subscriptions, retries, forged signatures, the control API).

Each change of a shop's orders is one POST of a JSON array with one message per order: `msgTag`
`msg_after_sale_create` when a refund was asked, else `msg_fulfillment_status_change`; `data` a JSON
string naming the order, its status and update time. A delivery not answered 2xx with `"success": true`
is retried `retries` times with `backoff * 2**n` seconds between, the same bytes and headers every time.
"""
from __future__ import annotations

import orjson

from connectors.runtime.errors import json_object
from connectors.simkit.pushes import Outgoing, Push, PushStyle
from connectors.simkit.world import SimOrder

from .render import order_status
from .webhooks import signed_headers


def messages(shop_id: str, orders: list[SimOrder]) -> bytes:
    """The push body for changed orders."""
    out = []
    for order in orders:
        asked = any(line.refund_status == "REQUESTED" for line in order.lines)
        data = {"orderId": order.external_id, "orderStatus": order_status(order), "updateTime": order.updated_at}
        out.append({"msgTag": "msg_after_sale_create" if asked else "msg_fulfillment_status_change",
                    "sellerId": shop_id, "data": orjson.dumps(data).decode()})
    return orjson.dumps(out)


class XiaohongshuPushes(PushStyle):
    """One array of messages per change of a shop's orders, signed with the app key."""

    def __init__(self, app_key: str):
        self.app_key = app_key

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        orders = [order for _, order in changes]
        return [Push(messages(shop["shop_id"], orders), {"messages": len(orders)})] if orders else []

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        return Outgoing(address, signed_headers(push.body, shop["shop_id"], secret, self.app_key), push.body)

    def acked(self, status: int, reply: bytes) -> bool:
        """Taken only on 2xx with the success envelope (`"success": true`)."""
        return 200 <= status < 300 and json_object(reply).get("success") is True
