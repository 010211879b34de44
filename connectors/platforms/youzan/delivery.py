"""Simulated Youzan pushes: subscriptions, signed trade and refund messages, resends (youzan.md §6).

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}   -> push the shop's messages to that URL
- GET  /_sim/webhooks                                  -> subscriptions and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N}  -> the next N pushes are signed with a wrong secret

Youzan resends a message until the receiver answers HTTP 200 with `{"code":0,"msg":"success"}`; here
`retries` resends with `backoff * 2**n` seconds between them, `sendCount` counting up in each. The log
says whether each answer was that acknowledgement.
"""
from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import SimOrder

from .render import push_body, trade_status
from .signing import event_sign

_SHIPPED_KINDS = {"WAIT_BUYER_CONFIRM_GOODS": "trade_TradeSellerShip", "TRADE_SUCCESS": "trade_TradeSuccess",
                  "TRADE_CLOSE": "trade_TradeClose"}


def _state(order: SimOrder) -> tuple:
    return (trade_status(order), sum(line.tracking_no is not None for line in order.lines),
            tuple(line.refund_status for line in order.lines))


def message_kinds(before: tuple | None, order: SimOrder) -> list[str]:
    """The message types a change of `order` from the state `before` (None: new) makes Youzan send."""
    status, shipped, refunds = after = _state(order)
    if before == after:
        return []
    kinds = []
    old_status, old_shipped, old_refunds = before or (None, 0, ())
    if before is None:
        kinds.append("trade_TradeCreate")
    if status != old_status and status in _SHIPPED_KINDS:
        kinds.append(_SHIPPED_KINDS[status])
    elif status == "WAIT_SELLER_SEND_GOODS" and old_status in (None, "WAIT_BUYER_PAY"):
        kinds.append("trade_TradeBuyerPay")
    elif status == "WAIT_SELLER_SEND_GOODS" and shipped > old_shipped:
        kinds.append("trade_TradePartlySellerShip")
    old = dict(enumerate(old_refunds))
    if any(r == "REQUESTED" and old.get(n) != r for n, r in enumerate(refunds)):
        kinds.append("trade_refund_RefundCreated")
    if any(r == "REFUNDED" and old.get(n) != r for n, r in enumerate(refunds)):
        kinds.append("trade_refund_RefundSuccess")
    return kinds


class PushHub:
    """Subscriptions and deliveries of one simulator; `on_change` goes into app[ON_CHANGE]."""

    def __init__(self, app: web.Application, plaintext: bool = False, retries: int = 3, backoff: float = 0.2,
                 timeout: float = 5.0, concurrency: int = 16):
        self.app, self.plaintext, self.retries, self.backoff = app, plaintext, retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._states: dict[str, tuple] = {}
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._gate = asyncio.Semaphore(concurrency)

    def routes(self) -> None:
        self.app.router.add_post("/_sim/webhooks", self._subscribe)
        self.app.router.add_get("/_sim/webhooks", self._list)
        self.app.router.add_post("/_sim/webhooks/faults", self._faults)
        self.app.on_cleanup.append(self._close)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        """Queue the messages each changed order makes, for every address the shop pushes to."""
        addresses = self.subscriptions.get(shop_id, [])
        for order in orders:
            kinds = message_kinds(self._states.get(order.external_id), order)
            self._states[order.external_id] = _state(order)
            if not addresses:
                continue
            shop = ensure_shop(self.app, shop_id)
            for kind in kinds:
                for address in addresses:
                    forged = self.forge_next > 0
                    self.forge_next -= forged
                    task = asyncio.get_running_loop().create_task(self._deliver(address, order, shop, kind, forged))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def _signed(self, order: SimOrder, shop: dict, kind: str, send_count: int, forged: bool) -> tuple[bytes, dict]:
        signer = dict(shop, app_secret="forged-" + shop["app_secret"]) if forged else shop
        body = push_body(order, signer, kind, send_count, self.plaintext)
        headers = {"Content-Type": "application/json; charset=utf-8", "Client-Id": shop["app_key"],
                   "Event-Type": kind, "Event-Sign": event_sign(shop["app_key"], body, signer["app_secret"])}
        return body, headers

    async def _deliver(self, address: str, order: SimOrder, shop: dict, kind: str, forged: bool) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for attempt in range(self.retries + 1):
            body, headers = self._signed(order, shop, kind, attempt, forged)  # sendCount changes the body
            status, answer, error = 0, b"", None
            async with self._gate:
                try:
                    async with self._session.post(address, data=body, headers=headers) as resp:
                        status, answer = resp.status, await resp.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    error = f"{exc.__class__.__name__}: {exc}"
            acknowledged = status == 200 and _acknowledged(answer)
            self._log({"address": address, "type": kind, "tid": order.external_id, "send_count": attempt,
                       "status": status, "error": error, "forged": forged, "acknowledged": acknowledged})
            if acknowledged:
                return
            if attempt < self.retries:
                await asyncio.sleep(self.backoff * 2 ** attempt)

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
        for order in list(request.app[WORLD].orders.values()):  # what exists already is not news
            if order.shop_id == shop_id:
                self._states.setdefault(order.external_id, _state(order))
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


def _acknowledged(answer: bytes) -> bool:
    """Whether the receiver answered with Youzan's documented body {"code": 0, "msg": "success"}."""
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("code") == 0 and doc.get("msg") == "success"
