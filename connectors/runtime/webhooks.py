"""Pushed orders: `/webhooks/<platform>` for every platform whose manifest says it pushes.

The platform folder's `webhooks.authenticate(headers, body, secret_of)` verifies the signature on the
raw bytes and names the shop; the body is then published as received and answered with the folder's
acknowledgement (see `acknowledgement`). A forged or unsigned push gets 401, a platform that does not
push 404, and nothing is published. A platform whose pushes are signed in the query string (WeChat adds
`signature`, `timestamp` and `nonce` to the URL) takes a `query` keyword argument in its `authenticate`
and is given the request's query parameters.

A push that only names orders (its `Push.external_ids`) is handed to `on_named(platform, shop_id, ids)`
after it was published, so that the connectors read those orders at once instead of at the next poll.

A platform that checks the URL before pushing to it (WeChat's message-server verification: a GET with
`signature`, `timestamp`, `nonce` and `echostr`) has `verify_url(query, secret_of)` in its webhooks
module, returning the text to answer when the request verifies, else None; a GET on the same path is
answered with it (else 401).

Courier tracking pushes arrive beside them at `/webhooks/kuaidi100` (`connectors.tracking.receiver`,
registered first on the same app).
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from functools import cache

from aiohttp import web

from connectors import platforms
from connectors.runtime.base import Push
from connectors.runtime.raw_publisher import RawPublisher
from connectors.runtime.records import raw_record
from schemas.topics import shop_key

log = logging.getLogger(__name__)

DEFAULT_ACKNOWLEDGEMENT = {"ok": True}


def push_path(platform: str) -> str:
    """Where a platform's pushes arrive on the receiver."""
    return f"/webhooks/{platform}"


def acknowledgement(hooks) -> web.Response:
    """The answer that stops a platform resending a push: the webhooks module's `ACKNOWLEDGEMENT`, sent
    as JSON when it is a dict or list and as plain text when it is a string (WeChat wants `success`);
    `{"ok": true}` when the module has none (the platform only looks at the 2xx status)."""
    ack = getattr(hooks, "ACKNOWLEDGEMENT", DEFAULT_ACKNOWLEDGEMENT)
    if isinstance(ack, str):
        return web.Response(text=ack, content_type="text/plain")
    return web.json_response(ack)


@cache
def _takes_query(authenticate) -> bool:
    return "query" in inspect.signature(authenticate).parameters


def authenticate(hooks, headers: Mapping[str, str], body: bytes, secret_of: Callable[[str], str | None],
                 query: Mapping[str, str] | None = None) -> Push | None:
    """`hooks.authenticate` of a platform's webhooks module, given the query parameters when it reads them."""
    extra = {"query": query if query is not None else {}} if _takes_query(hooks.authenticate) else {}
    return hooks.authenticate(headers, body, secret_of, **extra)


class WebhookReceiver:
    def __init__(self, raw: RawPublisher, secrets: dict[tuple[str, str], str],
                 on_named: Callable[[str, str, tuple[str, ...]], None] | None = None):
        """`secrets[(platform, shop_id)]` is the signing secret of that shop; `on_named(platform, shop_id,
        external_ids)` is called for a published push that names orders without carrying them."""
        self.raw, self.secrets, self.on_named = raw, secrets, on_named
        self.received = self.rejected = self.deferred = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post(push_path("{platform}"), self.receive), web.get(push_path("{platform}"), self.verify)]

    def _hooks(self, platform: str):
        """The platform's webhooks module, or None when the platform does not push."""
        try:
            pushes = platforms.manifest(platform).capabilities.push
        except platforms.UnknownPlatform:
            pushes = False
        return platforms.module(platform, "webhooks") if pushes else None

    def _secrets_of(self, platform: str) -> tuple[Callable[[str], str | None], list[str]]:
        """A `secret_of(shop_id)` for the platform's hooks, and the list of shops it was asked for in vain."""
        unknown: list[str] = []

        def secret_of(shop_id: str) -> str | None:
            secret = self.secrets.get((platform, shop_id))
            if secret is None:
                unknown.append(shop_id)
            return secret

        return secret_of, unknown

    def _refused(self, platform: str, unknown: list[str], what: str) -> web.Response:
        if unknown:
            # a shop the connectors have not discovered yet (just created, or just after a restart): the
            # platform retries a request that was not accepted, by then its secret is known
            self.deferred += 1
            log.info("deferred a %s of %s (%s) for shop %s: not discovered yet, the platform will retry",
                     what, platform, platforms.label(platform), unknown[0])
            return web.json_response({"error": "shop not known yet; retry later"}, status=503,
                                     headers={"Retry-After": "5"})
        self.rejected += 1
        log.warning("rejected a %s of %s (%s): bad or missing signature", what, platform, platforms.label(platform))
        return web.json_response({"error": "invalid signature"}, status=401)

    async def receive(self, request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        hooks = self._hooks(platform)
        if hooks is None:
            return web.json_response({"error": f"no push receiver for platform {platform!r}"}, status=404)
        body = await request.read()
        secret_of, unknown = self._secrets_of(platform)
        push = authenticate(hooks, request.headers, body, secret_of, request.query)
        if push is None:
            return self._refused(platform, unknown, "push")
        await self.raw.publish_async([(shop_key(platform, push.shop_id), raw_record(
            platform, push.shop_id, body, source="push", content_type=push.content_type, kind=push.kind,
            endpoint=push.endpoint, request_id=push.request_id, api_version=push.api_version))])
        self.received += 1
        if push.external_ids and self.on_named is not None:
            self.on_named(platform, push.shop_id, push.external_ids)
        return acknowledgement(hooks)

    async def verify(self, request: web.Request) -> web.Response:
        """A platform checking the push URL (a GET): the module's `verify_url` answer, else 401."""
        platform = request.match_info["platform"]
        hooks = self._hooks(platform)
        verify_url = getattr(hooks, "verify_url", None)
        if verify_url is None:
            return web.json_response({"error": f"no URL verification for platform {platform!r}"}, status=404)
        secret_of, unknown = self._secrets_of(platform)
        answer = verify_url(request.query, secret_of)
        if answer is None:
            return self._refused(platform, unknown, "URL verification")
        return web.Response(text=answer, content_type="text/plain")
