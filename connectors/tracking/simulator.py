"""The local courier-tracking service, Kuaidi100 conventions (`tonglu up`: http://127.0.0.1:8085,
`TONGLU_TRACKING_SIM_HTTP`).

Real-looking API:
- `POST /poll` form `schema=json&param={company, number, key, parameters: {callbackurl, salt, ...}}` →
  `{"result", "returnCode", "message"}`: 200 提交成功, 501 重复订阅 (still being tracked), 600 bad key,
  700 bad data (unknown company, number, callback)
- pushes to each parcel's callback: form `param=<json>&sign=UPPER(MD5(param + salt))`, one per step,
  the full trace newest first; a push not acknowledged `{"result": true, ...}` is retried (1 s, doubling,
  up to `retries` times), superseded by the parcel's next step if one comes first

Control API (not part of the real service):
- `POST /_sim/advance {"tracking_no", "state": "delivered"|"exception"|"returned"|"refused"}` → the parcel
  takes that step now and it is pushed
- `GET /_sim/parcels[?tracking_no=]` → {"parcels": [{tracking_no, company, state, steps, pushes, ...}]}
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web

from connectors.simkit.persistence import keep_on_disk, load_saved
from connectors.tracking import kuaidi100
from connectors.tracking.parcels import Parcel, Parcels, SubscriptionError

log = logging.getLogger(__name__)
DEMO_KEY = "kd100demoKey"
PARCELS = web.AppKey("parcels", Parcels)
STATE = web.AppKey("tracking_sim_state", dict)
SESSION = web.AppKey("tracking_sim_session", aiohttp.ClientSession)
TICK = 0.2


def create_app(key: str = DEMO_KEY, demo_shops: frozenset[tuple[str, str]] = frozenset(), demo_pace: float = 3.0,
               pace: float = 4 * 3600.0, retries: int = 6, path: Path | None = None) -> web.Application:
    """The simulator: `key` authorises subscribers; parcels of `demo_shops` ((platform, shop_id), read
    from the callback URL's order_id) take a step every `demo_pace` seconds, the others every `pace`.
    With `path`, the parcels saved there before are loaded and kept there (every few seconds when they
    changed and on a clean stop, atomically), as the platform simulators keep their worlds."""
    app = web.Application()
    parcels = app[PARCELS] = Parcels(key, demo_shops, demo_pace, pace)
    if path is not None:
        if load_saved(path, parcels.restore, "tracking simulator parcels"):
            log.info("快递跟踪模拟器已恢复 tracking simulator restored from %s: %d parcels", path, len(parcels.parcels))
        keep_on_disk(app, path, parcels.snapshot, lambda: parcels.changes)
    app[STATE] = {"retries": retries, "pushes": {}, "tasks": {}, "generations": {}, "locks": {}}
    app.router.add_post("/poll", subscribe)
    app.router.add_post("/_sim/advance", advance)
    app.router.add_get("/_sim/parcels", list_parcels)
    app.cleanup_ctx.append(_mover)
    return app


def _order_shop(callback: str) -> tuple[str, str] | None:
    order_id = dict(parse_qsl(urlsplit(callback).query)).get("order_id", "")
    parts = order_id.split(":", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else None


def _answer(code: str, message: str) -> web.Response:
    return web.json_response({"result": code == "200", "returnCode": code, "message": message})


async def subscribe(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        param = json.loads(form.get("param") or "")
    except ValueError:
        return _answer("700", "订阅方的订阅数据存在错误（param 不是 JSON）")
    if form.get("schema") != "json" or not isinstance(param, dict):
        return _answer("700", "订阅方的订阅数据存在错误（schema 须为 json）")
    parameters = param.get("parameters") if isinstance(param.get("parameters"), dict) else {}
    try:
        parcel = request.app[PARCELS].subscribe(param, time.time(), _order_shop(str(parameters.get("callbackurl"))))
    except SubscriptionError as exc:
        return _answer(exc.code, str(exc))
    request.app[STATE]["pushes"][parcel.number] = []
    return _answer("200", "提交成功")


async def advance(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        number, turn = body["tracking_no"], body["state"]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'body must be {"tracking_no": "...", "state": "delivered"}'}, status=400)
    try:
        parcel = request.app[PARCELS].advance(number, turn, time.time())
    except KeyError:
        return web.json_response({"error": f"no parcel {number!r} is subscribed"}, status=404)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    _push_soon(request.app, parcel)
    return web.json_response(_describe(request.app, parcel))


async def list_parcels(request: web.Request) -> web.Response:
    number = request.query.get("tracking_no")
    parcels = request.app[PARCELS].parcels
    chosen = [parcels[number]] if number in parcels else [] if number else list(parcels.values())
    return web.json_response({"parcels": [_describe(request.app, p) for p in chosen]})


def _describe(app: web.Application, parcel: Parcel) -> dict:
    state = kuaidi100.STATES.get(parcel.state or "", (None, None))
    return {"tracking_no": parcel.number, "company": parcel.company, "callback": parcel.callback,
            "state": state[0], "status": state[1], "done": parcel.done, "steps": parcel.steps,
            "pushes": app[STATE]["pushes"].get(parcel.number, [])}


def _push_soon(app: web.Application, parcel: Parcel) -> None:
    """Push the parcel as it stands. One push of a parcel is on the wire at a time, so they arrive in
    the order of its steps; a push still waiting to be retried is superseded by the newer one."""
    state = app[STATE]
    generation = state["generations"][parcel.number] = state["generations"].get(parcel.number, 0) + 1
    lock = state["locks"].setdefault(parcel.number, asyncio.Lock())
    state["tasks"][parcel.number, generation] = asyncio.get_running_loop().create_task(
        _deliver(app, parcel, kuaidi100.push_form(parcel.push(), parcel.salt), generation, lock))


async def _deliver(app: web.Application, parcel: Parcel, form: dict, generation: int, lock: asyncio.Lock) -> None:
    state = app[STATE]
    attempts = state["pushes"].setdefault(parcel.number, [])
    steps = len(parcel.steps)
    delay = 1.0
    try:
        for _attempt in range(state["retries"] + 1):
            if state["generations"][parcel.number] != generation:
                return  # a newer step's push carries this one's trace too
            async with lock:
                if await _post(app, parcel, form, attempts):
                    app[PARCELS].acknowledged(parcel, steps)
                    return
            await asyncio.sleep(delay)
            delay *= 2
        log.warning("gave up pushing %s to %s after %d attempts", parcel.number, parcel.callback, len(attempts))
    finally:
        state["tasks"].pop((parcel.number, generation), None)


async def _post(app: web.Application, parcel: Parcel, form: dict, attempts: list) -> bool:
    entry = {"state": kuaidi100.STATES.get(json.loads(form["param"])["lastResult"]["state"], ("?",))[0],
             "at": time.time(), "status": None}
    attempts.append(entry)
    try:
        async with app[SESSION].post(parcel.callback, data=form, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            entry["status"] = resp.status
            reply = await resp.json(content_type=None) if resp.status == 200 else {}
            return isinstance(reply, dict) and reply.get("result") is True
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        entry["error"] = f"{exc.__class__.__name__}: {exc}"
        return False


async def _mover(app: web.Application):
    """Moves the parcels and pushes their steps while the app runs."""
    app[SESSION] = aiohttp.ClientSession()
    for parcel in app[PARCELS].unacknowledged():  # steps taken before a restart whose push did not land
        _push_soon(app, parcel)

    async def move():
        while True:
            for parcel in app[PARCELS].tick(time.time()):
                _push_soon(app, parcel)
            await asyncio.sleep(TICK)

    mover = asyncio.create_task(move())
    yield
    mover.cancel()
    for task in [mover, *list(app[STATE]["tasks"].values())]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await app[SESSION].close()
