"""Simulated webhook delivery: signed `orders/create` / `orders/updated` POSTs through the shared push hub
(`connectors/simkit/pushes.py`: subscriptions, retries, forged signatures, the control API).

Real Shopify retries a failed delivery 8 times over ~4 hours; here `retries` attempts with `backoff * 2**n`
seconds in between (defaults 3 and 0.2 s). Every retry resends the identical bytes and the same
X-Shopify-Webhook-Id, as Shopify does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from connectors.simkit.pushes import Outgoing, Push, PushStyle

from .render import order_json
from .webhooks import sign_body

TOPICS = ["orders/create", "orders/updated"]


class WebhookStyle(PushStyle):
    """One webhook per changed order (new orders -> orders/create), with Shopify's headers."""

    def __init__(self, api_version: str):
        self.api_version = api_version

    def pushes(self, shop: dict, changes: list) -> list[Push]:
        return [Push(orjson.dumps(order_json(order, shop["shop_domain"])),
                     {"topic": TOPICS[0] if before is None else TOPICS[1]}) for before, order in changes]

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": push.log["topic"],
            "X-Shopify-Hmac-Sha256": sign_body(push.body, secret),
            "X-Shopify-Shop-Domain": shop["shop_domain"],
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": now,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
        }
        return Outgoing(address, headers, push.body, {"webhook_id": webhook_id})

    def subscribed(self) -> dict:
        return {"topics": TOPICS}
