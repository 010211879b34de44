"""Simulated Douyin push delivery: subscriptions, signed message batches, retries until `{"code": 0}`.

Control API (simulator only):
- POST /_sim/webhooks         {"shop_id", "address"}    -> push the shop's order messages to `address`
- GET  /_sim/webhooks                                   -> subscriptions and the delivery log
- POST /_sim/webhooks/faults  {"forged_signature": N}   -> the next N batches carry a wrong event-sign

Every change of a shop's orders becomes one POST per address: a JSON array of messages
`{"tag", "msg_id", "data"}` whose `data` is a JSON string naming the order (`p_id`, `s_ids` as numbers).
Tags by what changed: 100 created, 101 paid, 102 shipped, 103 completed, 106 cancelled, 200 after-sale
requested, 206 refund succeeded (a delivery without a tag of its own sends nothing). A reply other than
`{"code": 0}` is retried `retries` times with `backoff × 2^n` seconds in between, the same bytes each time.
"""
from __future__ import annotations

import asyncio
import secrets

import aiohttp
import orjson
from aiohttp import web

from connectors.simkit.server import WORLD, ensure_shop
from connectors.simkit.world import SimOrder

from .render import STATUS_CODE, douyin_shop_id, seconds
from .webhooks import sign_push

_TAG_OF_STATUS = {"PENDING_PAYMENT": "100", "PAID": "101", "PARTIALLY_SHIPPED": "102", "SHIPPED": "102",
                  "COMPLETED": "103", "CANCELLED": "106"}


def _snapshot(order: SimOrder) -> tuple:
    return order.status, tuple(line.refund_status for line in order.lines)


def tags_for(before: tuple | None, order: SimOrder) -> list[str]:
    """The push tags a change of `order` from the `before` snapshot (None: a new order) produces."""
    status, refunds = _snapshot(order)
    tags = []
    if before is None:
        tags.append("100")
        if status != "PENDING_PAYMENT":
            tags.append("101")
    elif before[0] != status and status in _TAG_OF_STATUS:
        tags.append(_TAG_OF_STATUS[status])
    old = before[1] if before else ()
    if any(r == "REQUESTED" and (n >= len(old) or old[n] != r) for n, r in enumerate(refunds)):
        tags.append("200")
    if any(r == "REFUNDED" and (n >= len(old) or old[n] != r) for n, r in enumerate(refunds)):
        tags.append("206")
    return list(dict.fromkeys(tags))


def message(tag: str, order: SimOrder) -> dict:
    """One push message about `order` (its `data` a JSON string with sorted keys, ids as numbers)."""
    data = {"biz": 2, "order_status": STATUS_CODE[order.status], "order_type": 0, "p_id": int(order.external_id),
            "s_ids": [int(line.line_id) for line in order.lines], "shop_id": douyin_shop_id(order.shop_id),
            "update_time": seconds(order.updated_at)}
    if order.paid_at is not None:
        data.update(pay_amount=order.paid_total, pay_time=seconds(order.paid_at), pay_type=1)
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return {"tag": tag, "msg_id": str(7_345_000_000_000_000_000 + secrets.randbelow(10**15)), "data": text}


class PushHub:
    """Holds subscriptions and pushes order changes; `on_change` goes into app[ON_CHANGE]."""

    def __init__(self, app: web.Application, retries: int = 3, backoff: float = 0.2, timeout: float = 5.0):
        self.app, self.retries, self.backoff = app, retries, backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=1.0)
        self.subscriptions: dict[str, list[str]] = {}
        self.deliveries: list[dict] = []
        self.forge_next = 0
        self._seen: dict[str, tuple] = {}
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> None:
        self.app.router.add_post("/_sim/webhooks", self._subscribe)
        self.app.router.add_get("/_sim/webhooks", self._list)
        self.app.router.add_post("/_sim/webhooks/faults", self._faults)
        self.app.on_cleanup.append(self._close)

    async def on_change(self, shop_id: str, orders: list[SimOrder]) -> None:
        """One batch of messages per change, to every address the shop subscribed."""
        batch = []
        for order in orders:
            batch += [message(tag, order) for tag in tags_for(self._seen.get(order.external_id), order)]
            self._seen[order.external_id] = _snapshot(order)
        addresses = self.subscriptions.get(shop_id, [])
        if not batch or not addresses:
            return
        shop = ensure_shop(self.app, shop_id)
        body = orjson.dumps(batch)
        secret = shop["app_secret"]
        if self.forge_next > 0:
            self.forge_next -= 1
            secret = "forged-" + secret
        headers = {"Content-Type": "application/json", "app-id": shop["app_key"],
                   "event-sign": sign_push(shop["app_key"], body, secret), "sign-method": "md5"}
        for address in addresses:
            task = asyncio.get_running_loop().create_task(self._deliver(address, headers, body, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, address: str, headers: dict, body: bytes, batch: list[dict]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for attempt in range(1, self.retries + 2):
            status, reply, error = 0, None, None
            try:
                async with self._session.post(address, data=body, headers=headers) as resp:
                    status, text = resp.status, await resp.read()
                reply = orjson.loads(text) if text else None
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            except orjson.JSONDecodeError:
                reply = None
            acked = status == 200 and isinstance(reply, dict) and reply.get("code") == 0
            self.deliveries.append({"address": address, "tags": [m["tag"] for m in batch],
                                    "msg_ids": [m["msg_id"] for m in batch], "attempt": attempt, "status": status,
                                    "acked": acked, "error": error})
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
        for order in list(request.app[WORLD].orders.values()):  # what exists already is not "created" again
            if order.shop_id == shop_id:
                self._seen.setdefault(order.external_id, _snapshot(order))
        return web.json_response({"shop_id": shop_id, "addresses": subs, "tags": sorted(set(_TAG_OF_STATUS.values())
                                                                                       | {"200", "206"})})

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
