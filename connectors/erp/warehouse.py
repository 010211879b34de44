"""The simulated warehouse behind the ERP simulator: for demo shops it picks a PAID order a few seconds
after the order reached the ERP and posts the shipment to Tonglu (`POST /api/orders/{order_id}/shipments`
with an operator token), as a WMS would.

Pure decisions (`shipment_for`, `intercepted`, `tracking_number`) and a thin poster: the same order always
gets the same tracking number, so a repeated event (a redelivery, a restart) posts the same shipment,
which Tonglu recognises (order + tracking number) instead of uploading a second one. A refund request
or a cancellation that arrives before the parcel left stops it (the warehouse intercepts).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

# (carrier, tracking number prefix, digits) by whether the receiver is in mainland China
DOMESTIC = ("ZTO", "75", 12)
ABROAD = ("UPS", "1Z", 16)


def tracking_number(order_id: str, prefix: str, digits: int) -> str:
    """A tracking number derived from the order id (stable across repeats)."""
    number = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:12], "big")
    return prefix + str(number % 10 ** digits).zfill(digits)


def shipment_for(body: dict, demo_shops: frozenset[tuple[str, str]]) -> dict | None:
    """The shipment request the warehouse posts for a received webhook body, or None: only a PAID order of
    a demo shop with lines not yet shipped and not refunded. Body {"carrier", "tracking_no", "line_ids"}."""
    order = body.get("order") if isinstance(body, dict) else None
    if not isinstance(order, dict) or order.get("status") != "PAID" or order.get("refund_status") not in ("NONE", None):
        return None
    if (order.get("platform"), order.get("shop_id")) not in demo_shops:
        return None
    shipped = {line_id for s in order.get("shipments") or [] for line_id in s.get("line_ids") or []}
    lines = [line["line_id"] for line in order.get("lines") or []
             if line["line_id"] not in shipped and line.get("refund_status") in ("NONE", None)]
    if not lines:
        return None
    carrier, prefix, digits = DOMESTIC if (order.get("receiver") or {}).get("country") in ("CN", None) else ABROAD
    return {"carrier": carrier, "tracking_no": tracking_number(order["order_id"], prefix, digits), "line_ids": lines}


def intercepted(body: dict) -> bool:
    """Whether this event stops a parcel that has not left yet (refund requested, order cancelled)."""
    order = body.get("order") if isinstance(body, dict) else None
    return isinstance(order, dict) and (order.get("status") == "CANCELLED"
                                        or order.get("refund_status") not in ("NONE", None))


@dataclass
class Picking:
    """One order the warehouse is working on, and what became of its shipment."""

    order_id: str
    request: dict
    due: float
    status: str = "PICKING"  # PICKING, POSTED, INTERCEPTED, REFUSED, GAVE_UP
    answer: dict | None = None
    attempts: int = 0

    def public(self) -> dict:
        return {"order_id": self.order_id, **self.request, "status": self.status, "answer": self.answer,
                "attempts": self.attempts}


@dataclass
class Warehouse:
    """Posts shipments of demo shops' paid orders to Tonglu's API after `delay_s` (a random pick time)."""

    api: str
    token: Callable[[], str | None]
    demo_shops: frozenset[tuple[str, str]]
    delay_s: tuple[float, float] = (2.0, 5.0)
    retry_s: float = 2.0
    max_attempts: int = 30  # about a minute: the order may not be visible to the API yet (404)
    keep: int = 10_000  # finished pickings remembered (a repeat of an older one posts the same parcel again)
    pickings: dict[str, Picking] = field(default_factory=dict)
    _tasks: set = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def offer(self, body: dict) -> None:
        """A webhook the ERP accepted: start picking, or intercept a parcel not yet posted."""
        order_id = (body.get("order") or {}).get("order_id") if isinstance(body, dict) else None
        if not order_id:
            return
        picking = self.pickings.get(order_id)
        if picking is not None:
            if picking.status == "PICKING" and intercepted(body):
                picking.status = "INTERCEPTED"
            return
        request = shipment_for(body, self.demo_shops)
        if request is None:
            return
        if len(self.pickings) >= 2 * self.keep:
            recent = list(self.pickings.items())[-self.keep:]
            self.pickings = {k: p for k, p in self.pickings.items() if p.status == "PICKING"} | dict(recent)
        picking = self.pickings[order_id] = Picking(order_id, request, time.time() + random.uniform(*self.delay_s))
        task = asyncio.ensure_future(self._post(picking))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, picking: Picking) -> None:
        await asyncio.sleep(max(0.0, picking.due - time.time()))
        url = f"{self.api.rstrip('/')}/api/orders/{quote(picking.order_id, safe='')}/shipments"
        while picking.status == "PICKING" and picking.attempts < self.max_attempts:
            picking.attempts += 1
            token = self.token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                if self._session is None:
                    self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
                async with self._session.post(url, json=picking.request, headers=headers) as resp:
                    text = await resp.text()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, text = None, f"{exc.__class__.__name__}: {exc}"
            picking.answer = {"status": status, "body": text[:500]}
            if status is not None and 200 <= status < 300:
                picking.status = "POSTED"
                log.info("仓库已发货 warehouse shipped %s: %s %s", picking.order_id, picking.request["carrier"],
                         picking.request["tracking_no"])
                return
            if status is not None and 400 <= status < 500 and status not in (404, 408, 429):
                picking.status = "REFUSED"
                log.warning("仓库发货被拒 shipment of %s refused: HTTP %s %s", picking.order_id, status, text[:200])
                return
            await asyncio.sleep(self.retry_s)
        if picking.status == "PICKING":
            picking.status = "GAVE_UP"
            log.warning("仓库放弃发货 warehouse gave up posting %s: %s", picking.order_id, picking.answer)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
