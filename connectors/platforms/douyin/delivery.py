"""Simulated Douyin pushes: signed message batches through the shared push hub
(`connectors/simkit/pushes.py`: subscriptions, retries, forged signatures, the control API).

Every change of a shop's orders becomes one POST per address: a JSON array of messages
`{"tag", "msg_id", "data"}` whose `data` is a JSON string naming the order (`p_id`, `s_ids` as numbers).
Tags by what changed: 100 created, 101 paid, 102 shipped, 103 completed, 106 cancelled, 200 after-sale
requested, 206 refund succeeded (a delivery without a tag of its own sends nothing). A reply other than
`{"code": 0}` is retried `retries` times with `backoff × 2^n` seconds in between, the same bytes each time.
"""
from __future__ import annotations

import secrets

import orjson

from connectors.runtime.errors import json_object
from connectors.simkit.pushes import Outgoing, Push, PushStyle
from connectors.simkit.world import SimOrder

from .render import STATUS_CODE, douyin_shop_id, seconds
from .webhooks import sign_push

_TAG_OF_STATUS = {"PENDING_PAYMENT": "100", "PAID": "101", "PARTIALLY_SHIPPED": "102", "SHIPPED": "102",
                  "COMPLETED": "103", "CANCELLED": "106"}


def tags_for(before: tuple | None, order: SimOrder) -> list[str]:
    """The push tags a change of `order` from the `before` snapshot (None: a new order) produces."""
    status, refunds = order.status, tuple(line.refund_status for line in order.lines)
    tags = []
    if before is None:
        tags.append("100")
        if status != "PENDING_PAYMENT":
            tags.append("101")
    elif before[0] != status and status in _TAG_OF_STATUS:
        tags.append(_TAG_OF_STATUS[status])
    old = before[1] if before else ()
    if any(r == "REQUESTED" and (n >= len(old) or old[n] != r) for n, r in enumerate(refunds)):
        tags.append("200")
    if any(r == "REFUNDED" and (n >= len(old) or old[n] != r) for n, r in enumerate(refunds)):
        tags.append("206")
    return list(dict.fromkeys(tags))


def message(tag: str, order: SimOrder) -> dict:
    """One push message about `order` (its `data` a JSON string with sorted keys, ids as numbers)."""
    data = {"biz": 2, "order_status": STATUS_CODE[order.status], "order_type": 0, "p_id": int(order.external_id),
            "s_ids": [int(line.line_id) for line in order.lines], "shop_id": douyin_shop_id(order.shop_id),
            "update_time": seconds(order.updated_at)}
    if order.paid_at is not None:
        data.update(pay_amount=order.paid_total, pay_time=seconds(order.paid_at), pay_type=1)
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return {"tag": tag, "msg_id": str(7_345_000_000_000_000_000 + secrets.randbelow(10**15)), "data": text}


class DouyinPushes(PushStyle):
    """One batch of messages per change; taken only when the answer is `{"code": 0}`."""

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        batch = [message(tag, order) for before, order in changes for tag in tags_for(before, order)]
        if not batch:
            return []
        return [Push(orjson.dumps(batch), {"tags": [m["tag"] for m in batch], "msg_ids": [m["msg_id"] for m in batch]})]

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        headers = {"Content-Type": "application/json", "app-id": shop["app_key"],
                   "event-sign": sign_push(shop["app_key"], push.body, secret), "sign-method": "md5"}
        return Outgoing(address, headers, push.body)

    def acked(self, status: int, reply: bytes) -> bool:
        return status == 200 and json_object(reply).get("code") == 0

    def subscribed(self) -> dict:
        return {"tags": sorted(set(_TAG_OF_STATUS.values()) | {"200", "206"})}
