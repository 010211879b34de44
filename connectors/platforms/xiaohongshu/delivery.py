"""The simulator's pushes (小红书消息推送): subscriptions, signed deliveries, retries.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}   -> the shop's order changes are pushed to `address`
- GET  /_sim/webhooks                                  -> subscriptions and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N}  -> the next N deliveries carry a wrong sign

Each change of a shop's orders is one POST of a JSON array with one message per order: `msgTag`
`msg_after_sale_create` when a refund was asked, else `msg_fulfillment_status_change`; `data` a JSON
string naming the order, its status and update time. A delivery not answered 2xx with `"success": true`
is retried `retries` times with `backoff * 2**n` seconds between, the same bytes and headers every time.
"""
from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import cancel, ensure_shop
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


class PushHub:
    """Subscriptions and deliveries of one simulator; `on_change` goes into app[ON_CHANGE]."""

    def __init__(self, app: web.Application, app_key: str, retries: int = 3, backoff: float = 0.2):
        self.app, self.app_key, self.retries, self.backoff = app, app_key, retries, backoff
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        app.router.add_post("/_sim/webhooks", self._subscribe)
        app.router.add_get("/_sim/webhooks", self._list)
        app.router.add_post("/_sim/webhooks/faults", self._faults)
        app.on_cleanup.append(self._close)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        addresses = self.subscriptions.get(shop_id)
        if not addresses or not orders:
            return
        body = messages(shop_id, orders)
        secret = ensure_shop(self.app, shop_id)["app_secret"]
        for address in addresses:
            if self.forge_next > 0:
                self.forge_next -= 1
                headers = signed_headers(body, shop_id, "forged-" + secret, self.app_key)
            else:
                headers = signed_headers(body, shop_id, secret, self.app_key)
            task = asyncio.get_running_loop().create_task(self._deliver(address, headers, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, address: str, headers: dict, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5, connect=1))
        status = 0
        for attempt in range(self.retries + 1):
            reply = b""
            try:
                async with self._session.post(address, data=body, headers=headers) as resp:
                    status, reply = resp.status, await resp.read()
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            if 200 <= status < 300 and _acknowledged(reply):
                break
            if attempt < self.retries:
                await asyncio.sleep(self.backoff * 2 ** attempt)
        self.deliveries.append({"address": address, "status": status, "attempts": attempt + 1,
                                "messages": len(orjson.loads(body))})

    async def _subscribe(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            shop_id, address = str(body["shop_id"]), str(body["address"])
        except (KeyError, TypeError):
            raise web.HTTPBadRequest(text="shop_id and address are required") from None
        ensure_shop(self.app, shop_id)
        if address not in self.subscriptions.setdefault(shop_id, []):
            self.subscriptions[shop_id].append(address)
        return web.json_response({"shop_id": shop_id, "addresses": self.subscriptions[shop_id]})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"subscriptions": self.subscriptions, "deliveries": self.deliveries[-200:]})

    async def _faults(self, request: web.Request) -> web.Response:
        self.forge_next += int((await request.json()).get("forged_signature", 0))
        return web.json_response({"forged_signature": self.forge_next})

    async def _close(self, app: web.Application) -> None:
        await asyncio.gather(*(cancel(task) for task in list(self._tasks)))
        if self._session is not None:
            await self._session.close()


def _acknowledged(reply: bytes) -> bool:
    """Whether the receiver answered with the success envelope (`"success": true`)."""
    try:
        doc = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("success") is True
