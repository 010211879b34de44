"""Simulated push delivery for every pushing platform: subscriptions, a delivery queue, signing, retries
until the platform's acknowledgement, and forged signatures on request.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}   -> push the shop's order changes to `address`
- GET  /_sim/webhooks                                  -> subscriptions, the delivery log, deliveries in flight
- POST /_sim/webhooks/faults  {"forged_signature": N}  -> the next N deliveries are signed with a wrong secret

A platform describes its pushes with a `PushStyle` (in its folder): what a change of orders sends
(`pushes`), how one delivery is signed (`sign`) and which answer counts as taken (`acked`). The hub
remembers each order's `state`, so a style can tell a new order from a changed one; orders that exist
when a shop subscribes are not new. Every push goes to every address of its shop; one that is not
acked is sent again `retries` times, `backoff * 2**n` seconds apart — the identical request, unless the
style signs each attempt afresh (`sign_each_attempt`). Each attempt is one entry of the delivery log.
"""
from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.simkit.server import ON_CHANGE, WORLD, ensure_shop
from connectors.simkit.world import SimOrder

FORGED_PREFIX = "forged-"  # a forged delivery is signed with this before the shop's secret


@dataclass
class Push:
    """One message (or batch) to deliver to every address of a shop.

    `body` is what is POSTed unless the style's `sign` builds its own; `log` goes into every delivery-log
    entry of it; `about` is whatever else the style's `sign` needs (an order, a message kind)."""

    body: bytes
    log: dict = field(default_factory=dict)
    about: Any = None


@dataclass
class Outgoing:
    """One signed request of a delivery; `log` adds fields to its delivery-log entry."""

    url: str
    headers: dict
    body: bytes
    log: dict = field(default_factory=dict)


class PushStyle:
    """How one platform pushes. Subclasses implement `pushes` and `sign`; the rest has defaults."""

    sign_each_attempt = False  # True: `sign` is called for every attempt (the body counts the sends)

    def state(self, order: SimOrder) -> Hashable:
        """What a change is judged against: by default the status and each line's refund status."""
        return order.status, tuple(line.refund_status for line in order.lines)

    def pushes(self, shop: dict, changes: list[tuple[Hashable | None, SimOrder]]) -> list[Push]:
        """The pushes a change of a shop's orders makes; `changes` pairs each order with its state before
        (None: an order the hub has not seen)."""
        raise NotImplementedError

    def sign(self, push: Push, shop: dict, address: str, secret: str, attempt: int) -> Outgoing:
        """The request delivering `push` to `address`, signed with `secret` (wrong when forged);
        `attempt` counts from 1."""
        raise NotImplementedError

    def acked(self, status: int, reply: bytes) -> bool:
        """Whether the receiver took the push (no retry then): by default any 2xx."""
        return 200 <= status < 300

    def reply_log(self, status: int, reply: bytes) -> dict:
        """Fields an answer adds to its delivery-log entry (e.g. whether it was the documented body)."""
        return {}

    def address(self, address: str, shop_id: str) -> str:
        """The address as subscribed (a platform may add the shop to it)."""
        return address

    def subscribed(self) -> dict:
        """Fields added to the answer of `POST /_sim/webhooks` (e.g. the topics pushed)."""
        return {}


class PushHub:
    """Subscriptions and deliveries of one simulator app. Creating it adds the control routes to `app`
    and its `on_change` to app[ON_CHANGE]; the app's cleanup cancels deliveries in flight."""

    def __init__(self, app: web.Application, style: PushStyle, retries: int = 3, backoff: float = 0.2,
                 timeout: float = 5.0, concurrency: int = 16):
        self.app, self.style, self.retries, self.backoff = app, style, retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._states: dict[str, Hashable] = {}
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._gate = asyncio.Semaphore(concurrency)
        app.router.add_post("/_sim/webhooks", self._subscribe)
        app.router.add_get("/_sim/webhooks", self._list)
        app.router.add_post("/_sim/webhooks/faults", self._faults)
        app.on_cleanup.append(self._close)
        app[ON_CHANGE].append(self.on_change)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        """Queue the pushes a change of `orders` makes, one delivery per push and address of the shop."""
        changes = []
        for order in orders:
            changes.append((self._states.get(order.external_id), order))
            self._states[order.external_id] = self.style.state(order)
        addresses = self.subscriptions.get(shop_id)
        if not addresses:
            return
        shop = ensure_shop(self.app, shop_id)
        for push in self.style.pushes(shop, changes):
            for address in addresses:
                forged = self.forge_next > 0
                self.forge_next -= forged
                secret = FORGED_PREFIX + shop["app_secret"] if forged else shop["app_secret"]
                task = asyncio.get_running_loop().create_task(self._deliver(address, push, shop, secret, forged))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, address: str, push: Push, shop: dict, secret: str, forged: bool) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        request = None
        for attempt in range(1, self.retries + 2):
            if request is None or self.style.sign_each_attempt:
                request = self.style.sign(push, shop, address, secret, attempt)
            status, reply, error = 0, b"", None
            async with self._gate:
                try:
                    async with self._session.post(request.url, data=request.body, headers=request.headers) as resp:
                        status, reply = resp.status, await resp.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    error = f"{exc.__class__.__name__}: {exc}"
            acked = self.style.acked(status, reply)
            self.deliveries.append({"address": address, **push.log, **request.log, "attempt": attempt,
                                    "status": status, "acked": acked, "forged": forged, "error": error,
                                    **self.style.reply_log(status, reply)})
            del self.deliveries[:-1000]
            if acked:
                return
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    async def _subscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            shop_id, address = str(body["shop_id"]), str(body["address"])
        except (KeyError, TypeError):
            raise web.HTTPBadRequest(text="shop_id and address are required") from None
        ensure_shop(request.app, shop_id)
        subs = self.subscriptions.setdefault(shop_id, [])
        address = self.style.address(address, shop_id)
        if address not in subs:
            subs.append(address)
        for order in list(request.app[WORLD].orders.values()):  # what exists already is not new from now on
            if order.shop_id == shop_id:
                self._states.setdefault(order.external_id, self.style.state(order))
        return web.json_response({"shop_id": shop_id, "addresses": subs, **self.style.subscribed()})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"subscriptions": self.subscriptions, "deliveries": self.deliveries[-200:],
                                  "in_flight": len(self._tasks)})

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
