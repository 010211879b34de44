"""What the tests of platform folders share: a simulator served on loopback with the connector.calls records
of the clients made against it, a client's window read and mapped, and simulated orders lived at random for
round trips. A folder's tests subclass `SimHarness` with the credentials its client needs."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from connectors.runtime.caller import HttpCaller
from connectors.simkit.server import WORLD
from connectors.simkit.world import SimOrder, World
from tests.integration.helpers import make_orders, post_json, serve_app

HOUR = 3_600_000


class SimHarness:
    """A running simulator (`app`, `base_url`), an HTTP session to it, its default shop and the
    connector.calls records of every client built with `caller`."""

    platform = ""  # a subclass names its platform
    default_shop = ""  # ... and the shop its tests use unless they name another

    def __init__(self, app: web.Application, base_url: str, session: aiohttp.ClientSession):
        self.app, self.base_url, self.session = app, base_url, session
        self.calls: list[dict] = []
        self.after_call: Callable[[dict], None] | None = None  # run after each record (to change orders mid-scan)

    @property
    def world(self) -> World:
        return self.app[WORLD]

    async def post(self, path: str, body: dict | None = None, **params) -> dict:
        """A JSON POST to the simulator (`params` in the query), which must answer 200."""
        return await post_json(self.session, self.base_url + path, body, params)

    async def orders(self, count: int = 250, shop_id: str | None = None, **fields) -> set[str]:
        """Ids of `count` new orders (paid unless `paid=False`) made through the control API."""
        return set(await make_orders(self.session, self.base_url, shop_id or self.default_shop, count, **fields))

    async def fault(self, kind: str, count: int = 1, seconds: float = 0.1) -> None:
        """The next `count` API calls misbehave as `kind` (simkit faults)."""
        await self.post("/_sim/faults", {"kind": kind, "count": count, "seconds": seconds})

    async def shop(self, shop_id: str | None = None) -> dict:
        """The shop with its credentials, as the connectors read them (`GET /_sim/shops`)."""
        shop_id = shop_id or self.default_shop
        async with self.session.get(self.base_url + "/_sim/shops") as resp:
            return next(s for s in (await resp.json())["shops"] if s["shop_id"] == shop_id)

    def caller(self, shop_id: str | None = None, cls: type[HttpCaller] = HttpCaller, **kwargs) -> HttpCaller:
        """An HttpCaller (or subclass `cls`) whose calls are recorded here, retrying quickly."""
        return cls(self.session, self.platform, shop_id or self.default_shop, on_call=self._record,
                   base_backoff=0.01, **kwargs)

    def _record(self, call: dict) -> None:
        self.calls.append(call)
        if self.after_call:
            self.after_call(call)

    def failed(self) -> list[str]:
        """The error codes of the failed calls, in order."""
        return [c["error_code"] for c in self.calls if not c["ok"]]


@asynccontextmanager
async def serve_sim(harness: type[SimHarness], app: web.Application):
    """`app` served on a free loopback port for the duration, as an instance of `harness`."""
    runner, url = await serve_app(app)
    try:
        async with aiohttp.ClientSession() as session:
            yield harness(app, url, session)
    finally:
        await runner.cleanup()


def recent_window(back_ms: int = HOUR, ahead_ms: int = 2000) -> tuple[int, int]:
    """A modification window around now: from `back_ms` ago to `ahead_ms` ahead."""
    now = int(time.time() * 1000)
    return now - back_ms, now + ahead_ms


async def collect(map_payload, client, window: tuple[int, int] | None = None) -> tuple[list, list[str]]:
    """(every page of the client's window, the external ids its pages map to), by the folder's mapping."""
    pages, ids = [], []
    async for page in client.fetch_window(*(window or recent_window())):
        pages.append(page)
        ids += [o["external_id"] for o in map_payload(page.body, page.content_type, client.creds.shop_id)]
    return pages, ids


def lived_orders(world: World, shop_id: str, paid: int, unpaid: int, start_ms: int,
                 gap_ms: tuple[int, int] = (1000, 600_000), seed: int = 5) -> list[SimOrder]:
    """`paid` + `unpaid` orders made at `start_ms`, each moved up to six random steps along its life, one
    shared clock advancing by a random `gap_ms` before every step."""
    rng = random.Random(seed)
    orders = world.create_orders(shop_id, paid, start_ms) + world.create_orders(shop_id, unpaid, start_ms, paid=False)
    clock = start_ms
    for order in orders:
        for _ in range(rng.randrange(0, 7)):
            clock += rng.randrange(*gap_ms)
            world.step(order, clock)
    return orders


def to_second(ms: int | None) -> int | None:
    """Milliseconds cut to the whole second (what an API with second-precision times shows)."""
    return None if ms is None else ms // 1000 * 1000


def expected_refund(states: list[str]) -> str:
    """The order's refund status its lines' refund states make: any asked is REQUESTED, all refunded REFUNDED,
    some PARTIALLY_REFUNDED, else REJECTED or NONE."""
    if "REQUESTED" in states:
        return "REQUESTED"
    if "REFUNDED" in states:
        return "REFUNDED" if all(s == "REFUNDED" for s in states) else "PARTIALLY_REFUNDED"
    return "REJECTED" if "REJECTED" in states else "NONE"
