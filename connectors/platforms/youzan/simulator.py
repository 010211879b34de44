"""A local Youzan open platform over the simkit world, faithful to youzan.md §9.

- `POST /auth/token`: silent authorisation of a self-built app (client_id, client_secret, grant_id = kdt_id)
  or `refresh_token`; tokens live `token_ttl_s` (7 days). A wrong client secret is answered with the
  platform's business error. Youzan does not sign requests: the token is the credential.
- `POST /api/{api}/{version}?access_token=…` with a JSON body: `youzan.trades.sold.get/4.0.4` (time ranges
  on created/update/success, `page_no` from 1, `page_size` ≤ 100, `total_results`, newest created first, a
  range over `max_window_s` refused, pages deeper than `deep_page_cap` refused), `youzan.trade.get/4.0.2`
  and `youzan.logistics.online.confirm/3.0.0` (ships the trade or its `oids` through World.ship; a 3.x API,
  answering `{"response"}` / `{"error_response": {"code", "msg"}}` in the seller backend's words).
- Failures as the gateway gives them, HTTP 200 unless said: `gw_err_resp` 4201 (no or unknown token),
  4202 (expired token), 4203 (over `qps_limit` calls per second per token, or the `rate_limit` fault),
  HTTP 404 with `gw_err_resp` for an unknown API or version; business errors `{"success": false, ...}`.
  simkit faults: `error_5xx` (HTTP 502/503), `slow`, `malformed` (cut body), `duplicate_page` (the last
  answer again, trace_id and all).
- A self-built app belongs to one shop: a shop's client_id is its shop id (how pushes name it, see
  webhooks.py), its kdt_id a stable number. `POST /_sim/tokens/expire {"shop_id"?}` expires issued tokens.
- Pushes: see delivery.py.
"""
from __future__ import annotations

import hashlib
import inspect
import re
import secrets
import time
from collections import deque
from datetime import datetime

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, World
from schemas.canonical import BEIJING

from . import api
from .delivery import YouzanPushes
from .render import detail_data, envelope, list_data, trace_id, trade_status
from .simworld import YouzanWorld, kdt_id

STATE = web.AppKey("youzan_state", dict)
HUB = web.AppKey("youzan_push", PushHub)
_LIMITS = folder_manifest(__file__).limits
RANGES = (("start_created", "end_created", "created_at"), ("start_update", "end_update", "updated_at"),
          ("start_success", "end_success", "finished_at"))


class YouzanError(Exception):
    """A business failure: `{"success": false, "code", "message", "data": null}`."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _json(doc, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json", charset="utf-8")


def gateway_error(code: int, message: str, status: int = 200) -> web.Response:
    return _json({"gw_err_resp": {"err_code": code, "err_msg": message, "trace_id": trace_id()}}, status)


def _business(exc: YouzanError) -> web.Response:
    return _json({"trace_id": trace_id(), "code": exc.code, "data": None, "success": False, "message": exc.message})


def client_secret(shop_id: str) -> str:
    """The simulated client secret of a shop's self-built app."""
    return "yz_sim_" + hashlib.sha256(f"youzan-secret:{shop_id}".encode()).hexdigest()[:24]


def _time(params: dict, name: str) -> int | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp() * 1000)
    except ValueError:
        raise YouzanError(api.BAD_PARAMETER, f"参数 {name} 格式错误，应为 yyyy-MM-dd HH:mm:ss") from None


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() \
            or not low <= int(value) <= high:
        raise YouzanError(api.BAD_PARAMETER, f"参数 {name} 必须在 {low} 到 {high} 之间")
    return int(value)


def _sold(app: web.Application, shop_id: str, params: dict) -> dict:
    cfg = app[STATE]
    page_no = _int(params, "page_no", 1, 1, 10**6)
    page_size = _int(params, "page_size", 20, 1, _LIMITS.page_size_max)
    if page_no * page_size > cfg["deep_page_cap"]:
        raise YouzanError(api.PAGE_TOO_DEEP, f"分页深度不能超过 {cfg['deep_page_cap']} 条，请缩小查询时间范围")
    ranges = []
    for start_name, end_name, field in RANGES:
        start, end = _time(params, start_name), _time(params, end_name)
        if start is None and end is None:
            continue
        end = now_ms() if end is None else end
        start = end - cfg["max_window_s"] * 1000 if start is None else start
        if end < start:
            raise YouzanError(api.BAD_PARAMETER, f"{end_name} 不能早于 {start_name}")
        if end - start > cfg["max_window_s"] * 1000:
            raise YouzanError(api.WINDOW_TOO_WIDE, "查询时间跨度超过限制 the time range is too wide")
        ranges.append((field, start, end + 999))  # second-granular and inclusive at both ends
    world: World = app[WORLD]
    hits = [o for o in list(world.orders.values()) if o.shop_id == shop_id
            and all(getattr(o, field) is not None and start <= getattr(o, field) // 1000 * 1000 <= end
                    for field, start, end in ranges)
            and params.get("tid") in (None, "", o.external_id)]
    if params.get("status"):
        hits = [o for o in hits if trade_status(o) == params["status"]]
    hits.sort(key=lambda o: (o.created_at, o.external_id), reverse=True)
    chunk = hits[(page_no - 1) * page_size: page_no * page_size]
    return list_data(chunk, len(hits), cfg["plaintext"])


def _trade(app: web.Application, shop_id: str, params: dict) -> dict:
    tid = params.get("tid")
    if not tid:
        raise YouzanError(api.BAD_PARAMETER, "参数 tid 不能为空")
    order = app[WORLD].orders.get(str(tid))
    if order is None or order.shop_id != shop_id:
        raise YouzanError(api.ORDER_NOT_FOUND, "订单不存在")
    return detail_data(order, app[STATE]["plaintext"])


_OUT_SID = re.compile(r"^[A-Za-z0-9]{6,32}$")  # a waybill number as carriers issue them (rule unverified)
_REFUSAL = {  # simkit refusal -> (code, the seller backend's words)
    "closed": (api.SHIP_CLOSED, "订单已关闭，不能发货"),
    "unpaid": (api.SHIP_UNPAID, "订单未付款，不能发货"),
    "refunded": (api.SHIP_REFUNDED, "商品已退款，不能发货"),
    "already_shipped": (api.SHIP_DONE, "商品已发货，请勿重复发货"),
    "unknown_line": (api.SHIP_OID, "子订单 oid 不属于该订单"),
}


async def _ship(app: web.Application, shop_id: str, params: dict) -> dict:
    """`youzan.logistics.online.confirm`: the trade (or its `oids`) leaves with the waybill; the next detail
    shows the package in delivery_order, and a push says the seller shipped."""
    tid, out_sid = (str(params.get(n) or "").strip() for n in ("tid", "out_sid"))
    stype = str(params.get("out_stype") or "").strip()
    for name, value in (("tid", tid), ("out_stype", stype), ("out_sid", out_sid)):
        if not value:
            raise YouzanError(api.BAD_PARAMETER, f"参数 {name} 不能为空")
    if str(params.get("is_no_express", 0)) not in ("0", "1"):
        raise YouzanError(api.BAD_PARAMETER, "参数 is_no_express 只能是 0 或 1")
    carriers = folder_manifest(__file__).carriers
    if stype not in carriers:
        raise YouzanError(api.SHIP_EXPRESS, f"快递公司不存在 out_stype={stype}")
    order = app[WORLD].orders.get(tid)
    if order is None or order.shop_id != shop_id:
        raise YouzanError(api.ORDER_NOT_FOUND, "订单不存在")
    if not _OUT_SID.match(out_sid):
        raise YouzanError(api.SHIP_OUT_SID, "运单号格式不正确")
    oids = [x.strip() for x in str(params.get("oids") or "").split(",") if x.strip()]
    try:
        app[WORLD].ship(order, list(dict.fromkeys(oids)), stype, carriers[stype], out_sid, now_ms())
    except ShipRefusal as exc:
        raise YouzanError(*_REFUSAL[exc.kind]) from None
    await notify(app, shop_id, [order])
    return {"is_success": True}


APIS = {api.SOLD_GET: _sold, api.TRADE_GET: _trade, api.SHIP: _ship}
LEGACY = {api.SHIP}  # 3.x APIs: {"response": …} / {"error_response": {"code", "msg"}}


def _shop_of_token(app: web.Application, token: str | None) -> str | web.Response:
    grant = app[STATE]["tokens"].get(token or "")
    if grant is None:
        return gateway_error(api.GW_TOKEN_INVALID, "invalid access_token")
    if grant["expires"] <= now_ms():
        return gateway_error(api.GW_TOKEN_EXPIRED, "access_token expired")
    return grant["shop_id"]


async def _api(request: web.Request) -> web.Response:
    cfg = request.app[STATE]
    name, version = request.match_info["api"], request.match_info["version"]
    if APIS.get(name) is None or cfg["versions"].get(name) != version:
        return gateway_error(api.GW_API_NOT_FOUND, f"api not found: {name}/{version}", status=404)
    shop_id = _shop_of_token(request.app, request.query.get("access_token"))
    if isinstance(shop_id, web.Response):
        return shop_id
    kind, _ = await take_fault(request.app)
    if kind == "rate_limit" or over_qps(cfg["calls"].setdefault(request.query["access_token"], deque()), cfg["qps_limit"],
                                               time.monotonic()):
        return gateway_error(api.GW_RATE_LIMITED, "api request limited, please retry later")
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        return web.Response(status=502 if cfg["errors_5xx"] % 2 else 503, text="<html><body>Bad Gateway</body></html>",
                            content_type="text/html")
    if kind == "duplicate_page" and cfg["last"] is not None:
        return web.Response(body=cfg["last"], content_type="application/json", charset="utf-8")
    try:
        params = orjson.loads(await request.read() or b"{}")
        if not isinstance(params, dict):
            raise YouzanError(api.BAD_PARAMETER, "请求体必须是 JSON 对象")
        data = APIS[name](request.app, shop_id, params)
        if inspect.isawaitable(data):
            data = await data
        body = orjson.dumps({"response": data}) if name in LEGACY else envelope(data)
    except orjson.JSONDecodeError:
        return _business(YouzanError(api.BAD_PARAMETER, "请求体不是合法的 JSON"))
    except YouzanError as exc:
        if name in LEGACY:
            return _json({"error_response": {"code": exc.code, "msg": exc.message}})
        return _business(exc)
    cfg["last"] = body
    if kind == "malformed":
        body = body[: len(body) // 2]
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _token(request: web.Request) -> web.Response:
    """`/auth/token`: the token of a self-built app (silent) or a refresh; {"success", "code", "data"}."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _business(YouzanError(api.BAD_PARAMETER, "请求体不是合法的 JSON"))
    world, cfg = request.app[WORLD], request.app[STATE]
    shop = next((s for s in list(world.shops.values()) if s.get("app_key") == body.get("client_id")), None)
    if shop is None or not secrets.compare_digest(str(body.get("client_secret", "")), shop["app_secret"]):
        return _business(YouzanError(api.BAD_CLIENT, "client_id 或 client_secret 错误"))
    kind = body.get("authorize_type")
    if kind == "silent":
        if body.get("grant_id") not in (None, "", shop["kdt_id"], str(shop["kdt_id"])):
            return _business(YouzanError(api.BAD_CLIENT, "grant_id 与应用授权的店铺不符"))
    elif kind == "refresh_token":
        grant = cfg["refresh"].get(str(body.get("refresh_token")))
        if grant is None or grant["shop_id"] != shop["shop_id"] or grant["expires"] <= now_ms():
            return _business(YouzanError(api.BAD_CLIENT, "refresh_token 无效或已过期"))
    else:
        return _business(YouzanError(api.BAD_PARAMETER, f"不支持的 authorize_type {kind!r}"))
    token, refresh = secrets.token_hex(16), secrets.token_hex(16)
    expires = now_ms() + int(cfg["token_ttl_s"] * 1000)
    cfg["tokens"][token] = {"shop_id": shop["shop_id"], "expires": expires}
    cfg["refresh"][refresh] = {"shop_id": shop["shop_id"], "expires": now_ms() + api.REFRESH_TTL_S * 1000}
    return _json({"success": True, "code": 200, "message": "success",
                  "data": {"access_token": token, "expires": expires, "scope": "trade user item",
                           "authority_id": str(shop["kdt_id"]), "refresh_token": refresh}})


async def _expire(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    shop_id, stamp, count = body.get("shop_id"), now_ms(), 0
    for grant in request.app[STATE]["tokens"].values():
        if shop_id in (None, grant["shop_id"]):
            grant["expires"], count = min(grant["expires"], stamp), count + 1
    return web.json_response({"expired": count})


def create_app(world: World | None = None, token_ttl_s: float = api.TOKEN_TTL_S, qps_limit: float | None = 100.0,
               max_window_s: int = _LIMITS.window_max_s, deep_page_cap: int = api.DEEP_PAGE_CAP,
               plaintext: bool = False, versions: dict | None = None, push_retries: int = 3,
               push_backoff: float = 0.2) -> web.Application:
    """The simulated Youzan open platform plus the shared /_sim control API and pushes.

    `qps_limit`: calls per second per token before 4203 (None: off); `plaintext`: receivers in clear, as an
    app with plaintext permission gets them. Every knob can change at run time through `app[STATE]`.
    """
    world = world or YouzanWorld()

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": shop_id, "app_secret": client_secret(shop_id), "kdt_id": kdt_id(shop_id),
                "kdt_name": f"同路·{shop_id}"}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"token_ttl_s": token_ttl_s, "qps_limit": qps_limit, "max_window_s": max_window_s,
                  "deep_page_cap": deep_page_cap, "plaintext": plaintext, "versions": dict(versions or api.VERSIONS),
                  "tokens": {}, "refresh": {}, "calls": {}, "errors_5xx": 0, "last": None}
    app[HUB] = PushHub(app, YouzanPushes(plaintext), retries=push_retries, backoff=push_backoff)
    app.router.add_post(api.TOKEN_PATH, _token)
    app.router.add_post("/api/{api}/{version}", _api)
    app.router.add_post("/_sim/tokens/expire", _expire)
    return app
