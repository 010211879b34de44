"""Simulated platforms keep their worlds on disk, as real platforms keep their shops and orders.

`keep_world_on_disk(app, path)` loads a simulator's world saved before (shops, orders, and the random
generator, so new order ids continue the sequence) and saves it every few seconds when it changed and
on a clean stop, atomically. Every platform simulator built on `new_sim_app` gets it for free; another
simulator keeps its own state the same way with `keep_on_disk` and `load_saved`.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path

import orjson
from aiohttp import web

from connectors.runtime.atomic import write_atomically
from connectors.simkit.server import WORLD, cancel
from connectors.simkit.world import SimLine, SimOrder, World

log = logging.getLogger(__name__)

SAVE_EVERY = 3.0  # seconds; a kill -9 loses at most the changes of this long
FORMAT = 1
_ORDER_FIELDS = {f.name for f in fields(SimOrder)} - {"lines"}
_LINE_FIELDS = {f.name for f in fields(SimLine)}


def world_bytes(world: World) -> bytes:
    """The world as JSON (orjson serializes the order dataclasses directly: ~1 s per million orders)."""
    return orjson.dumps({"format": FORMAT, "shops": world.shops, "orders": list(world.orders.values()),
                         "rng": world.rng.getstate()})


def order_from_dict(row: dict) -> SimOrder:
    """A simulated order from its JSON form (unknown fields ignored, missing ones take their defaults)."""
    order = SimOrder(**{k: v for k, v in row.items() if k in _ORDER_FIELDS})
    order.lines = [SimLine(**{k: v for k, v in line.items() if k in _LINE_FIELDS}) for line in row["lines"]]
    return order


def restore_world(world: World, data: bytes) -> None:
    """Replace the world's shops, orders and random state with saved ones (unknown fields are ignored,
    missing ones take their defaults, so a world saved by an older simulator still loads)."""
    saved = orjson.loads(data)
    orders = {}
    for row in saved["orders"]:
        order = order_from_dict(row)
        orders[order.external_id] = order
    version, internal, gauss = saved["rng"]
    world.restore(saved["shops"], orders, (version, tuple(internal), gauss))


def load_saved(path: Path, restore: Callable[[bytes], None], what: str) -> bool:
    """Give the bytes saved at `path` to `restore` if the file exists; a damaged file (restore raising
    ValueError, KeyError or TypeError) is logged and moved aside, never fatal. `what` names it in the log."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        restore(path.read_bytes())
    except (ValueError, KeyError, TypeError) as exc:
        aside = path.with_name(path.name + ".damaged")
        path.replace(aside)
        log.warning("模拟器存档损坏，从空白开始 %s %s unreadable (%s): moved to %s, starting empty",
                    what, path, exc, aside.name)
        return False
    return True


def load_world(world: World, path: Path) -> bool:
    """Load `path` into `world` if it exists; a damaged file is logged and left aside, never fatal."""
    if not load_saved(path, partial(restore_world, world), "simulated world"):
        return False
    log.info("模拟平台已恢复 simulated world restored from %s: %d shops, %d orders", path, len(world.shops),
             len(world.orders))
    return True


def keep_on_disk(app: web.Application, path: Path, snapshot: Callable[[], bytes], changes: Callable[[], int],
                 every: float = SAVE_EVERY) -> None:
    """While the app runs, save `snapshot()` to `path` atomically every `every` seconds when `changes()`
    (a counter of the simulator's changes) moved, and once more on a clean stop. Call before the app starts.

    The snapshot is taken on the event loop, where the simulator changes, so it is consistent; the write
    happens in a thread."""
    app.cleanup_ctx.append(partial(_saving, path=Path(path), snapshot=snapshot, changes=changes, every=every))


def keep_world_on_disk(app: web.Application, path: Path, every: float = SAVE_EVERY) -> bool:
    """Load the app's world from `path` (True if there was one), then keep saving it there while the app runs.

    Call before the app starts.
    """
    world = app[WORLD]
    loaded = load_world(world, path)
    keep_on_disk(app, path, partial(world_bytes, world), lambda: world.changes, every)
    return loaded


async def _saving(app: web.Application, path: Path, snapshot: Callable[[], bytes], changes: Callable[[], int],
                  every: float):
    saved = changes()

    async def save_when_changed() -> None:
        nonlocal saved
        while True:
            await asyncio.sleep(every)
            if changes() != saved:
                saved = changes()
                await asyncio.to_thread(write_atomically, path, snapshot())

    task = asyncio.create_task(save_when_changed())
    yield
    await cancel(task)
    write_atomically(path, snapshot())
