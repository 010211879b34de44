"""Pushed orders: verify the platform's signature on the raw bytes, then publish them as received.

A forged or unsigned push gets 401 and nothing is published.
"""
from __future__ import annotations

import logging

from aiohttp import web

from connectors.platforms.shopify.webhooks import verify as verify_shopify
from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.records import raw_record
from schemas.topics import shop_key

log = logging.getLogger(__name__)


class WebhookReceiver:
    def __init__(self, raw: RawPublisher, secrets: dict[tuple[str, str], str]):
        """`secrets[(platform, shop_domain_or_id)]` is the signing secret of that shop."""
        self.raw, self.secrets = raw, secrets
        self.received = self.rejected = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/shopify", self.shopify)]

    async def shopify(self, request: web.Request) -> web.Response:
        body = await request.read()
        domain = request.headers.get("X-Shopify-Shop-Domain", "")
        shop_id = domain.removesuffix(".myshopify.com")
        secret = self.secrets.get(("shopify", shop_id))
        if secret is None or not verify_shopify(body, request.headers.get("X-Shopify-Hmac-Sha256"), secret):
            self.rejected += 1
            log.warning("rejected a Shopify webhook for %r: bad or missing signature", domain)
            return web.json_response({"error": "invalid signature"}, status=401)
        await self.raw.publish_async([(shop_key("shopify", shop_id), raw_record(
            "shopify", shop_id, body, source="push", endpoint=request.headers.get("X-Shopify-Topic"),
            request_id=request.headers.get("X-Shopify-Webhook-Id"),
            api_version=request.headers.get("X-Shopify-API-Version")))])
        self.received += 1
        return web.json_response({"ok": True})
