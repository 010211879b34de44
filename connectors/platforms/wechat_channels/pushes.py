"""Simulated WeChat message pushes: a shop's message server gets `channels_ec_*` events, signed.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}  -> configure the shop's message server URL (the
                                                         simulator adds `shop_id=<shop>` to it, as the
                                                         URL configured for that shop carries it)
- GET  /_sim/webhooks                                 -> addresses and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N} -> the next N pushes are signed with a wrong token

Every change of an order becomes one event (new → `channels_ec_order_new`, paid → `_pay`, shipped or
partly shipped → `_deliver`, completed → `_confirm`, cancelled → `_cancel`, an after-sale change →
`channels_ec_aftersale_update`), POSTed as JSON to the address with `signature`, `timestamp` and
`nonce` added to its query (plaintext mode, the shop's AppSecret as the token). WeChat expects the
plain-text reply `success` (or an empty one) within 5 s and retries three times otherwise; so does
this simulator, and the log says whether the reply was `success`.
"""
from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import SimOrder

from .render import order_dict
from .webhooks import push_query

EVENTS = {"PAID": "channels_ec_order_pay", "PARTIALLY_SHIPPED": "channels_ec_order_deliver",
          "SHIPPED": "channels_ec_order_deliver", "COMPLETED": "channels_ec_order_confirm",
          "CANCELLED": "channels_ec_order_cancel"}


def with_shop(address: str, shop_id: str) -> str:
    """The address with `shop_id=<shop>` in its query (kept when it is there already)."""
    parts = urlsplit(address)
    query = dict(parse_qsl(parts.query))
    query.setdefault("shop_id", shop_id)
    return urlunsplit(parts._replace(query=urlencode(query)))


def event_body(order: SimOrder, event: str, original_id: str) -> bytes:
    """The JSON message WeChat pushes for `event` of `order`."""
    doc = order_dict(order)
    info: dict = {"order_id": order.external_id}
    if event == "channels_ec_order_pay":
        info["pay_time"] = doc["order_detail"]["pay_info"].get("pay_time", 0)
    elif event == "channels_ec_aftersale_update":
        listed = doc["order_detail"]["aftersale_detail"]["aftersale_order_list"]
        info["aftersale_order_list"] = listed
    return orjson.dumps({"ToUserName": original_id, "FromUserName": doc["openid"], "CreateTime": int(time.time()),
                         "MsgType": "event", "Event": event, "order_info": info})


class PushHub:
    """Message-server addresses per shop and the deliveries; `on_change` goes into app[ON_CHANGE]."""

    def __init__(self, app: web.Application, retries: int = 3, backoff: float = 0.2, timeout: float = 5.0):
        self.app, self.retries, self.backoff = app, retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.addresses: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._last: dict[str, tuple] = {}  # order -> (status, refund states) last pushed
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> None:
        self.app.router.add_post("/_sim/webhooks", self._subscribe)
        self.app.router.add_get("/_sim/webhooks", self._list)
        self.app.router.add_post("/_sim/webhooks/faults", self._faults)
        self.app.on_cleanup.append(self._close)

    @staticmethod
    def _state(order: SimOrder) -> tuple:
        return order.status, tuple(line.refund_status for line in order.lines)

    def _event(self, order: SimOrder) -> str | None:
        before = self._last.get(order.external_id)
        now = self._state(order)
        self._last[order.external_id] = now
        if before is None:
            return "channels_ec_order_new" if order.status == "PENDING_PAYMENT" else "channels_ec_order_pay"
        if before[1] != now[1]:
            return "channels_ec_aftersale_update"
        if before[0] != now[0]:
            return EVENTS.get(order.status)
        return None

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        addresses = self.addresses.get(shop_id, [])
        if not addresses:
            return
        for order in orders:
            event = self._event(order)
            if event is None:
                continue
            shop = ensure_shop(self.app, shop_id)
            body = event_body(order, event, shop.get("original_id", ""))
            for address in addresses:
                task = asyncio.get_running_loop().create_task(self._deliver(address, shop, event, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _signed(self, address: str, shop: dict) -> str:
        token = shop["app_secret"]
        if self.forge_next > 0:
            self.forge_next -= 1
            token = "forged-" + token
        parts = urlsplit(address)
        query = dict(parse_qsl(parts.query))
        query.update(push_query(shop["shop_id"], token))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _deliver(self, address: str, shop: dict, event: str, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        url = self._signed(address, shop)  # a retry repeats the same request, signature included
        for attempt in range(1, self.retries + 2):
            status, reply, error = 0, b"", None
            try:
                async with self._session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    status, reply = resp.status, await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            acked = 200 <= status < 300 and reply.strip() in (b"success", b"")
            self.deliveries.append({"address": address, "event": event, "attempt": attempt, "status": status,
                                    "replied_success": acked, "error": error})
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
        listed = self.addresses.setdefault(shop_id, [])
        address = with_shop(address, shop_id)
        if address not in listed:
            listed.append(address)
        for order in list(request.app[WORLD].orders.values()):  # orders that exist already changed before
            if order.shop_id == shop_id:
                self._last.setdefault(order.external_id, self._state(order))
        return web.json_response({"shop_id": shop_id, "addresses": listed})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"addresses": self.addresses, "deliveries": self.deliveries[-200:],
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
