"""Simulated webhook delivery: subscriptions, signed `orders/create` / `orders/updated` POSTs, retries.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}    -> subscribe a URL to the shop's order topics
- GET  /_sim/webhooks                                   -> subscriptions and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N}   -> the next N deliveries carry a wrong HMAC

Real Shopify retries a failed delivery 8 times over ~4 hours; here `retries` attempts with `backoff * 2**n`
seconds in between (defaults 3 and 0.2 s). Every retry resends the identical bytes and the same
X-Shopify-Webhook-Id, as Shopify does.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import SimOrder

from .render import order_json
from .webhooks import sign_body


class WebhookHub:
    """Holds subscriptions and delivers order changes; `on_change` goes into app[ON_CHANGE]."""

    def __init__(
        self,
        app: web.Application,
        api_version: str,
        retries: int = 3,
        backoff: float = 0.2,
        timeout: float = 5.0,
        concurrency: int = 16,
    ):
        self.app, self.api_version = app, api_version
        self.retries, self.backoff = retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._known: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._gate = asyncio.Semaphore(concurrency)

    def routes(self) -> None:
        self.app.router.add_post("/_sim/webhooks", self._subscribe)
        self.app.router.add_get("/_sim/webhooks", self._list)
        self.app.router.add_post("/_sim/webhooks/faults", self._faults)
        self.app.on_cleanup.append(self._close)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        """Queue one delivery per changed order and subscriber (new orders -> orders/create)."""
        addresses = self.subscriptions.get(shop_id, [])
        for order in orders:
            topic = "orders/updated" if order.external_id in self._known else "orders/create"
            self._known.add(order.external_id)
            if not addresses:
                continue
            shop = ensure_shop(self.app, shop_id)
            body = orjson.dumps(order_json(order, shop["shop_domain"]))
            for address in addresses:
                headers = self._headers(topic, body, shop)
                task = asyncio.get_running_loop().create_task(self._deliver(address, headers, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _headers(self, topic: str, body: bytes, shop: dict) -> dict:
        secret = shop["app_secret"]
        if self.forge_next > 0:
            self.forge_next -= 1
            secret = "forged-" + secret
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign_body(body, secret),
            "X-Shopify-Shop-Domain": shop["shop_domain"],
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": now,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
        }

    async def _deliver(self, address: str, headers: dict, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for attempt in range(1, self.retries + 2):
            status, error = 0, None
            async with self._gate:
                try:
                    async with self._session.post(address, data=body, headers=headers) as resp:
                        status = resp.status
                        await resp.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    error = f"{exc.__class__.__name__}: {exc}"
            self._log(
                {
                    "address": address,
                    "topic": headers["X-Shopify-Topic"],
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "webhook_id": headers["X-Shopify-Webhook-Id"],
                }
            )
            if 200 <= status < 300:
                return
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    def _log(self, entry: dict) -> None:
        self.deliveries.append(entry)
        del self.deliveries[:-1000]

    async def _subscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            shop_id, address = str(body["shop_id"]), str(body["address"])
        except KeyError as exc:
            raise web.HTTPBadRequest(text=f"missing {exc}") from None
        ensure_shop(request.app, shop_id)
        subs = self.subscriptions.setdefault(shop_id, [])
        if address not in subs:
            subs.append(address)
        # Orders that exist already are "updated" from now on.
        self._known.update(o.external_id for o in request.app[WORLD].orders.values() if o.shop_id == shop_id)
        return web.json_response(
            {"shop_id": shop_id, "addresses": subs, "topics": ["orders/create", "orders/updated"]}
        )

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "subscriptions": self.subscriptions,
                "deliveries": self.deliveries[-200:],
                "in_flight": len(self._tasks),
            }
        )

    async def _faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.forge_next += int(body.get("forged_signature", 0))
        return web.json_response({"forged_signature": self.forge_next})

    async def _close(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
