"""What every platform simulator shares: the /_sim control API, fault plans and the demo autopilot.

Control API (not part of any real platform):
- POST /_sim/orders      {"shop_id", "count", "paid": true, "anomaly": null}  -> {"external_ids": [...]}
                         (`anomaly`: a defect from simkit/defects.py the orders should carry)
- POST /_sim/advance     {"shop_id"?, "steps": 1}            -> {"transitions": N}   move orders along their lives
- POST /_sim/faults      {"kind", "count", "seconds"}        -> next N API calls misbehave
- GET  /_sim/shops                                           -> shops with their credentials
- POST /_sim/autopilot   {"orders_per_second", "steps_per_second"}
- POST /_sim/orders/{external_id}/do {"act", "shop_id"?}     -> {"status", "order"}: the buyer or the platform
                         acts on one order (`ACTS` in simkit/world.py: pay, ship, change_address,
                         request_refund, cancel, deliver); 404 unknown order, 409 when its state forbids it
- GET  /_sim/shipments   ?shop_id=&external_id=              -> {"uploads": [...]}: what the platform's ship API
                         accepted (carrier, tracking_no, line_ids, accepted_at in epoch ms), oldest first
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from connectors.simkit.faults import FaultPlan
from connectors.simkit.world import ActRefused, SimOrder, World

WORLD = web.AppKey("world", World)
FAULTS = web.AppKey("faults", FaultPlan)
ON_CHANGE = web.AppKey("on_change", list)
SHOP_DEFAULTS = web.AppKey("shop_defaults", object)
AUTOPILOT = web.AppKey("autopilot", dict)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_sim_app(world: World, shop_defaults) -> web.Application:
    """An aiohttp app with the control API; the platform adds its real API routes to it.

    `shop_defaults(shop_id)` returns the credentials of a new shop (tokens etc.).
    Callbacks in app[ON_CHANGE] are awaited with (shop_id, [SimOrder]) after orders change (webhooks).
    """
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[WORLD], app[FAULTS], app[ON_CHANGE] = world, FaultPlan(), []
    app[SHOP_DEFAULTS] = shop_defaults
    app[AUTOPILOT] = {"orders_per_second": 0.0, "steps_per_second": 0.0}
    app.router.add_post("/_sim/orders", _create_orders)
    app.router.add_post("/_sim/advance", _advance)
    app.router.add_post("/_sim/faults", _faults)
    app.router.add_get("/_sim/shops", _shops)
    app.router.add_post("/_sim/autopilot", _set_autopilot)
    app.router.add_post("/_sim/orders/{external_id}/do", _act)
    app.router.add_get("/_sim/shipments", _shipments)
    app.cleanup_ctx.append(_autopilot_ctx)
    return app


def ensure_shop(app: web.Application, shop_id: str, demo: bool = False) -> dict:
    """The shop (created with its credentials if new). Only `demo` shops are driven by the autopilot:
    orders made through the control API stay as they were made."""
    world = app[WORLD]
    if shop_id not in world.shops:
        world.ensure_shop(shop_id, **app[SHOP_DEFAULTS](shop_id), demo=demo)
    return world.shops[shop_id]


async def notify(app: web.Application, shop_id: str, orders: list[SimOrder]) -> None:
    for callback in app[ON_CHANGE]:
        await callback(shop_id, orders)


async def take_fault(app: web.Application) -> tuple[str | None, float]:
    """(kind, seconds) of the fault planned for this API call, or (None, 0.0); a `slow` one is served here,
    by waiting its seconds before the call goes on."""
    kind, seconds = app[FAULTS].take() or (None, 0.0)
    if kind == "slow":
        await asyncio.sleep(seconds)
    return kind, seconds


async def form_params(request: web.Request) -> dict[str, str]:
    """The query parameters of a gateway call, with those of a POSTed form over them."""
    params = dict(request.query) if request.query_string else {}
    if request.method == "POST":
        if request.content_type == "application/x-www-form-urlencoded":
            # parsed here: aiohttp's multipart-capable form reader costs more than the call it serves
            params.update(parse_qsl((await request.read()).decode(request.charset or "utf-8"), keep_blank_values=True))
        else:
            params.update({k: str(v) for k, v in (await request.post()).items()})
    return params


async def _create_orders(request: web.Request) -> web.Response:
    body = await request.json()
    shop_id, count = str(body["shop_id"]), int(body.get("count", 1))
    if not 1 <= count <= 100_000:
        raise web.HTTPBadRequest(text="count must be 1..100000")
    ensure_shop(request.app, shop_id)
    try:
        orders = request.app[WORLD].create_orders(shop_id, count, now_ms(), paid=bool(body.get("paid", True)),
                                                  defect=body.get("anomaly"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await notify(request.app, shop_id, orders)
    return web.json_response({"external_ids": [o.external_id for o in orders]})


async def _act(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    external_id, shop_id = request.match_info["external_id"], body.get("shop_id")
    order = request.app[WORLD].orders.get(external_id)
    if order is None or shop_id not in (None, order.shop_id):
        raise web.HTTPNotFound(text=f"no order {external_id} in shop {shop_id}" if shop_id else
                               f"no order {external_id}")
    try:
        request.app[WORLD].perform(order, str(body.get("act", "")), now_ms())
    except ActRefused as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    await notify(request.app, order.shop_id, [order])
    return web.json_response({"external_id": external_id, "shop_id": order.shop_id, "act": body["act"],
                              "status": order.status, "order": dataclasses.asdict(order)})


async def _shipments(request: web.Request) -> web.Response:
    q = request.query
    uploads = [u for u in request.app[WORLD].uploads
               if q.get("shop_id") in (None, u["shop_id"]) and q.get("external_id") in (None, u["external_id"])]
    return web.Response(body=orjson.dumps({"uploads": uploads}), content_type="application/json")


async def _advance(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    moved = await advance(request.app, body.get("shop_id"), int(body.get("steps", 1)))
    return web.json_response({"transitions": moved})


async def advance(app: web.Application, shop_id: str | None = None, steps: int = 1,
                  shops: set[str] | None = None) -> int:
    """Move up to `steps` random orders (of one shop, of `shops`, or of all) one step along their lives."""
    world, moved, changed = app[WORLD], 0, {}
    live = [o for o in list(world.orders.values())
            if shop_id in (None, o.shop_id) and (shops is None or o.shop_id in shops)]
    for order in world.rng.sample(live, min(steps, len(live))):
        if world.step(order, now_ms()):
            moved += 1
            changed.setdefault(order.shop_id, []).append(order)
    for sid, orders in changed.items():
        await notify(app, sid, orders)
    return moved


async def _faults(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        request.app[FAULTS].add(body["kind"], int(body.get("count", 1)), float(body.get("seconds", 2.0)))
    except (KeyError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"pending": request.app[FAULTS].pending()})


async def _shops(request: web.Request) -> web.Response:
    return web.json_response({"shops": list(request.app[WORLD].shops.values())})


async def _set_autopilot(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[AUTOPILOT].update({k: float(v) for k, v in body.items() if k in request.app[AUTOPILOT]})
    return web.json_response(request.app[AUTOPILOT])


async def _autopilot_ctx(app: web.Application):
    task = asyncio.create_task(_autopilot(app))
    yield
    await cancel(task)


async def cancel(task: asyncio.Task) -> None:
    """Cancel a background task of a simulator app and wait until it has stopped."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _autopilot(app: web.Application) -> None:
    """Demo mode: keep creating orders in the demo shops and moving their orders along their lives."""
    credit_new = credit_step = 0.0
    while True:
        await asyncio.sleep(0.5)
        pilot, world = app[AUTOPILOT], app[WORLD]
        credit_new += pilot["orders_per_second"] * 0.5
        credit_step += pilot["steps_per_second"] * 0.5
        shops = [sid for sid, shop in list(world.shops.items()) if shop.get("demo")]
        if shops and credit_new >= 1:
            for n in range(int(credit_new)):
                sid = shops[n % len(shops)]
                await notify(app, sid, world.create_orders(sid, 1, now_ms(), paid=world.rng.random() < 0.9))
            credit_new -= int(credit_new)
        if shops and credit_step >= 1:
            await advance(app, None, int(credit_step), set(shops))
            credit_step -= int(credit_step)
