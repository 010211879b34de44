"""Simulated message pushes: a subscribed address gets one signed event per order change.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}   -> subscribe an address to the shop's order events
- GET  /_sim/webhooks                                  -> subscriptions and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N}  -> the next N pushes carry a wrong signature

An event is chosen from what changed (a new order, its status, its refund), e.g.
`kwaishop_order_paySuccess`; its `info` names the order as the platform does (oid, sellerId, status,
updateTime), in clear like the recorded sample. A delivery not answered 2xx with `{"result": 1}` is
retried `retries` times, `backoff * 2**n` seconds apart, with the identical bytes.
"""
from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop, now_ms
from connectors.simkit.world import SimOrder

from .render import status_code
from .webhooks import signed_headers

STATUS_EVENTS = {"PAID": "kwaishop_order_paySuccess", "PARTIALLY_SHIPPED": "kwaishop_order_delivering",
                 "SHIPPED": "kwaishop_order_delivering", "DELIVERED": "kwaishop_order_deliverySuccess",
                 "COMPLETED": "kwaishop_order_orderSuccess", "CANCELLED": "kwaishop_order_orderFail"}


def _state(order: SimOrder) -> tuple:
    return order.status, tuple(line.refund_status for line in order.lines)


def events_for(before: tuple | None, order: SimOrder) -> list[str]:
    """The events one change of an order raises (`before` is its earlier state, None when new)."""
    status, refunds = _state(order)
    if before is None:
        return ["kwaishop_order_addOrder"] + (["kwaishop_order_paySuccess"] if status != "PENDING_PAYMENT" else [])
    events = [STATUS_EVENTS[status]] if status != before[0] and status in STATUS_EVENTS else []
    if refunds != before[1]:
        events.append("kwaishop_aftersales_addRefund" if "REQUESTED" in refunds
                      else "kwaishop_aftersales_updateRefund")
    return events


class PushHub:
    """Subscriptions and deliveries; `on_change` goes into app[ON_CHANGE]."""

    def __init__(self, app: web.Application, retries: int = 3, backoff: float = 0.2, timeout: float = 5.0):
        self.app, self.retries, self.backoff = app, retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = self._sequence = 0
        self._known: dict[str, tuple] = {}
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        app.router.add_post("/_sim/webhooks", self._subscribe)
        app.router.add_get("/_sim/webhooks", self._list)
        app.router.add_post("/_sim/webhooks/faults", self._faults)
        app.on_cleanup.append(self._close)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        addresses = self.subscriptions.get(shop_id, [])
        for order in orders:
            events = events_for(self._known.get(order.external_id), order)
            self._known[order.external_id] = _state(order)
            if not addresses:
                continue
            shop = ensure_shop(self.app, shop_id)
            for event in events:
                self._sequence += 1
                body = self.message(shop, order, event, self._sequence)
                secret = shop["app_secret"]
                if self.forge_next > 0:
                    self.forge_next -= 1
                    secret = "forged-" + secret
                headers = signed_headers(body, shop_id, secret, event, f"evt_{self._sequence}_{order.external_id}")
                for address in addresses:
                    task = asyncio.get_running_loop().create_task(self._deliver(address, headers, body))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    @staticmethod
    def message(shop: dict, order: SimOrder, event: str, sequence: int) -> bytes:
        """The push body: ids as bare JSON numbers, `info` the business JSON as a string."""
        oid = int(order.external_id)
        info = {"oid": oid, "sellerId": int(shop["open_id"][:8], 16), "openId": shop["open_id"],
                "status": status_code(order), "updateTime": order.updated_at}
        return orjson.dumps({"eventId": f"evt_{sequence}_{oid}", "bizId": oid, "openId": shop["open_id"],
                             "event": event, "info": orjson.dumps(info).decode(), "createTime": now_ms(),
                             "test": False})

    async def _deliver(self, address: str, headers: dict, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for attempt in range(1, self.retries + 2):
            status, reply, error = 0, b"", None
            try:
                async with self._session.post(address, data=body, headers=headers) as resp:
                    status, reply = resp.status, await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            acked = 200 <= status < 300 and _acknowledged(reply)
            self.deliveries.append({"address": address, "event": headers["X-Ks-Event"], "attempt": attempt,
                                    "status": status, "acked": acked, "error": error})
            del self.deliveries[:-1000]
            if acked:
                return
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

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
        for order in list(request.app[WORLD].orders.values()):  # what exists already is known from now on
            if order.shop_id == shop_id:
                self._known.setdefault(order.external_id, _state(order))
        return web.json_response({"shop_id": shop_id, "addresses": subs})

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


def _acknowledged(reply: bytes) -> bool:
    """Whether the receiver answered with Kuaishou's acknowledgement `{"result": 1}`."""
    try:
        doc = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("result") == 1
