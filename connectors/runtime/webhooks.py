"""Pushed orders: `/webhooks/<platform>` for every platform whose manifest says it pushes.

The platform folder's `webhooks.authenticate(headers, body, secret_of)` verifies the signature on the
raw bytes and names the shop; the body is then published as received and answered with the module's
`ACKNOWLEDGEMENT` (the reply that stops the platform retrying; `{"ok": true}` when it has none). A
forged or unsigned push gets 401, a platform that does not push 404, and nothing is published. A
platform whose pushes are signed in the query string (WeChat adds `signature`, `timestamp` and `nonce`
to the URL) takes a `query` keyword argument in its `authenticate` and is given the request's query
parameters.
"""
from __future__ import annotations

import inspect
import logging
from functools import cache

from aiohttp import web

from connectors import platforms
from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.records import raw_record
from schemas.topics import shop_key

log = logging.getLogger(__name__)


def push_path(platform: str) -> str:
    """Where a platform's pushes arrive on the receiver."""
    return f"/webhooks/{platform}"


@cache
def _takes_query(authenticate) -> bool:
    return "query" in inspect.signature(authenticate).parameters


class WebhookReceiver:
    def __init__(self, raw: RawPublisher, secrets: dict[tuple[str, str], str]):
        """`secrets[(platform, shop_id)]` is the signing secret of that shop."""
        self.raw, self.secrets = raw, secrets
        self.received = self.rejected = self.deferred = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post(push_path("{platform}"), self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        try:
            pushes = platforms.manifest(platform).capabilities.push
        except platforms.UnknownPlatform:
            pushes = False
        if not pushes:
            return web.json_response({"error": f"no push receiver for platform {platform!r}"}, status=404)
        body = await request.read()
        unknown: list[str] = []

        def secret_of(shop_id: str) -> str | None:
            secret = self.secrets.get((platform, shop_id))
            if secret is None:
                unknown.append(shop_id)
            return secret

        hooks = platforms.module(platform, "webhooks")
        extra = {"query": request.query} if _takes_query(hooks.authenticate) else {}
        push = hooks.authenticate(request.headers, body, secret_of, **extra)
        if push is None and unknown:
            # a shop the connectors have not discovered yet (just created, or just after a restart): the
            # platform retries a push that was not accepted, by then its secret is known
            self.deferred += 1
            log.info("deferred a push of %s (%s) for shop %s: not discovered yet, the platform will retry",
                     platform, platforms.label(platform), unknown[0])
            return web.json_response({"error": "shop not known yet; retry later"}, status=503,
                                     headers={"Retry-After": "5"})
        if push is None:
            self.rejected += 1
            log.warning("rejected a push of %s (%s): bad or missing signature", platform, platforms.label(platform))
            return web.json_response({"error": "invalid signature"}, status=401)
        await self.raw.publish_async([(shop_key(platform, push.shop_id), raw_record(
            platform, push.shop_id, body, source="push", content_type=push.content_type, kind=push.kind,
            endpoint=push.endpoint, request_id=push.request_id, api_version=push.api_version))])
        self.received += 1
        return web.json_response(getattr(hooks, "ACKNOWLEDGEMENT", {"ok": True}))
