"""A local JOS router (`/routerjson`) over the simkit World, following jd.md §9.

- system params checked (app key, method, `sign` per §2 with `360buy_param_json` in the sort, timestamp,
  v=2.0, access token and its expiry); failures answer `error_response {code, zh_desc, en_desc}` with
  api.toml's codes, HTTP 200 like the real gateway;
- business params parsed from `360buy_param_json`; order.search/enSearch require `start_date`/`end_date`
  within one month (and by modification time within three months), page from 1, page_size ≤ 100,
  `sortType` 1 = newest first, `dateType` 0 modified / 1 created, `order_state` a comma list (default:
  every listed state — unpaid orders are left out), and return only the `optional_fields` asked for
  (none: nearly empty orders); business failures are `code "0"` with `apiResult.success` false;
- order.get/enGet give one order; order.shipment ships a waiting order as a whole (WAIT_SELLER_STOCK_OUT →
  WAIT_GOODS_RECEIVE_CONFIRM with its waybill and logisticsId) through World.ship, and refuses in the
  words of api.toml's [shipment_refusals] (no such order, cancelled, unpaid, refunded, already out,
  locked by a refund, unknown carrier, a malformed waybill number);
- `/oauth2/refresh_token` issues a new access token for a shop's refresh token (`oauth_base` "/" in the
  shop's credentials: served on this host);
- `POST /_sim/tokens/expire {shop_id}` makes a shop's access token expire now (code 19 from then on);
- the shared faults: rate_limit (code 66), error_5xx (a 502 page, then code 1 "system busy"), slow,
  malformed (a truncated body), duplicate_page (the previous answer again).
"""
from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from datetime import datetime

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.server import WORLD, form_params, new_sim_app, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, World
from schemas.canonical import BEIJING

from . import api, render
from .answer import (
    DETAIL_METHOD,
    LIST_METHOD,
    PLAIN_DETAIL_METHOD,
    PLAIN_LIST_METHOD,
    SHIPMENT_METHOD,
    wrapper,
)
from .signing import PARAM_JSON, sign
from .world import JdWorld

_MANIFEST = folder_manifest(__file__)
ERRORS = {name: codes[0] for name, codes in api.ERRORS.items()}  # the code the simulator answers
RATE_LIMITED = api.ERRORS["rate_limited"][-1]
BUSINESS = {name: codes[0] for name, codes in api.BUSINESS_ERRORS.items()}
TOKEN_LIFETIME_MS = api.TOKEN_LIFETIME_S * 1000
WINDOW_MS = _MANIFEST.limits.window_max_s * 1000
LOOKBACK_MS = (_MANIFEST.limits.lookback_days or 90) * 86_400_000
CREATED_LOOKBACK_MS = 2 * 365 * 86_400_000  # by-created queries reach about two years
PAGE_SIZE_MAX = _MANIFEST.limits.page_size_max
STATE = web.AppKey("jd_state", dict)
DESCRIPTIONS = {
    "token_invalid": ("token已过期或者不存在，请重新授权访问。", "Invalid access_token"),
    "rate_limited": ("调用频率超过限制，请稍后重试", "API call frequency exceeds the limit"),
    "system_busy": ("系统繁忙，请稍后重试", "System is busy, please try again later"),
    "invalid_sign": ("签名无效", "Invalid signature"),
    "invalid_app_key": ("无效的app_key", "Invalid app_key"),
    "invalid_method": ("无效的方法名", "Invalid method"),
    "invalid_param": ("参数错误", "Invalid parameter"),
}


class JosError(Exception):
    """An `error_response` answer."""

    def __init__(self, kind: str, detail: str = ""):
        zh, en = DESCRIPTIONS[kind]
        super().__init__(en)
        self.code, self.zh, self.en = ERRORS[kind], zh + (f"：{detail}" if detail else ""), en + (
            f": {detail}" if detail else "")


class BusinessError(Exception):
    """A call that reached the service and failed there: `apiResult.success` false."""

    def __init__(self, kind: str, zh: str, en: str):
        super().__init__(en)
        self.number, self.zh, self.en = BUSINESS[kind], zh, en


def access_token(shop_id: str, secret: str, generation: int = 0) -> str:
    """A shop's simulated access token (stable per shop and refresh generation)."""
    return "jd_tok_" + hashlib.sha256(f"{secret}:{shop_id}:{generation}".encode()).hexdigest()[:26]


def refresh_token(shop_id: str, secret: str, generation: int = 0) -> str:
    return "jd_rtk_" + hashlib.sha256(f"refresh:{secret}:{shop_id}:{generation}".encode()).hexdigest()[:26]


def _time(params: dict, name: str) -> int:
    text = params.get(name)
    if not text:
        raise JosError("invalid_param", f"{name} is required")
    try:
        return int(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp() * 1000)
    except ValueError:
        raise JosError("invalid_param", f"{name} must be yyyy-MM-dd HH:mm:ss") from None


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(params.get(name) or default)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        raise JosError("invalid_param", f"{name} must be between {low} and {high}")
    return value


def _fields(params: dict) -> list[str]:
    """The `optional_fields` asked for; without them JD answers nearly empty orders."""
    return [f for f in str(params.get("optional_fields") or "").split(",") if f.strip()] or ["orderId"]


def _search(world: World, shop_id: str, params: dict, method: str) -> dict:
    start, end = _time(params, "start_date"), _time(params, "end_date")
    if end < start:
        raise JosError("invalid_param", "end_date must not be earlier than start_date")
    if end - start > WINDOW_MS:
        raise BusinessError("window_too_wide", "查询时间跨度不能超过一个月", "the query window must not exceed one month")
    by_created = str(params.get("dateType") or "0") == "1"
    if start < now_ms() - (CREATED_LOOKBACK_MS if by_created else LOOKBACK_MS):
        raise BusinessError("beyond_lookback", "只能查询近三个月内修改的订单" if not by_created else "只能查询近两年内创建的订单",
                            "start_date is too far in the past")
    page = _int(params, "page", 1, 1, 1_000_000)
    size = _int(params, "page_size", 20, 1, PAGE_SIZE_MAX)
    wanted = {s.strip() for s in str(params.get("order_state") or "").split(",") if s.strip()}
    states = wanted or set(render.LISTED_STATES)
    if by_created:  # second-granular and inclusive at both ends, like the platform
        hits = [o for o in list(world.orders.values()) if o.shop_id == shop_id and start <= o.created_at < end + 1000]
        hits.sort(key=lambda o: (o.created_at, o.external_id), reverse=True)
    else:
        hits = world.changed_between(shop_id, start, end + 1000)
    hits = [o for o in hits if render.order_state(o) in states]
    if str(params.get("sortType") or "") != "1":
        hits.reverse()
    fields = _fields(params)
    plaintext = method == PLAIN_LIST_METHOD
    chunk = [render.order_info(o, fields, plaintext) for o in hits[(page - 1) * size: page * size]]
    return render.list_answer(chunk, len(hits), method)


def _get(world: World, shop_id: str, params: dict, method: str) -> dict:
    number = str(params.get("order_id") or "")
    if not number:
        raise JosError("invalid_param", "order_id is required")
    order = world.orders.get(number)
    if order is None or order.shop_id != shop_id:
        raise BusinessError("order_not_found", "订单不存在", f"order {number} not found")
    return render.detail_answer(render.order_info(order, _fields(params), method == PLAIN_DETAIL_METHOD),
                                method)


_REFUSED = {  # simkit refusal -> JD's words (api.toml [shipment_refusals]: what the Shipper reads)
    "closed": ("订单已取消", "the order is cancelled"), "unpaid": ("订单未付款", "the order is not paid"),
    "refunded": ("订单已退款", "the order was refunded"), "already_shipped": ("订单已出库", "the order has left the warehouse"),
}
_WAYBILL = re.compile(r"[A-Za-z0-9]{6,32}")  # one carrier's waybill number (rule unverified)


def _refused(zh: str, en: str) -> dict:
    return {"success": False, "chineseErrCode": zh, "englishErrCode": en}


def _shipment(world: World, shop_id: str, params: dict, method: str) -> dict:
    """`jingdong.pop.order.shipment` (出库): the whole order leaves with `logiCoprId` and `logiNo` (several
    packages' numbers joined by api.toml's separator); WAIT_SELLER_STOCK_OUT → WAIT_GOODS_RECEIVE_CONFIRM."""
    number, carrier, tracking = (str(params.get(k) or "") for k in ("order_id", "logiCoprId", "logiNo"))
    if not (number and carrier and tracking):
        raise JosError("invalid_param", "order_id, logiCoprId and logiNo are required")
    order = world.orders.get(number)
    numbers = tracking.split(render.WAYBILLS)
    if order is None or order.shop_id != shop_id:
        result = _refused("订单不存在", "order not found")
    elif carrier not in _MANIFEST.carriers:
        result = _refused("物流公司不存在", f"unknown logiCoprId {carrier}")
    elif not all(_WAYBILL.fullmatch(n) for n in numbers):
        result = _refused("运单号不合法", f"logiNo {tracking!r} is not a waybill number")
    elif render.order_state(order) == "LOCKED":
        result = _refused("订单已锁定，退款处理中，不能出库", "the order is locked by a refund in progress")
    else:
        try:
            world.ship(order, [], carrier, _MANIFEST.carriers[carrier], tracking, now_ms())
            result = {"success": True, "chineseErrCode": "成功", "englishErrCode": "success"}
        except ShipRefusal as exc:
            result = _refused(*_REFUSED[exc.kind])
    return {wrapper(method): {"code": "0", "sopjosshipment_result": result}}


METHODS = {
    LIST_METHOD: _search, PLAIN_LIST_METHOD: _search,
    DETAIL_METHOD: _get, PLAIN_DETAIL_METHOD: _get,
    SHIPMENT_METHOD: _shipment,
}


def _json(obj: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json", charset="utf-8")


def _error(exc: JosError) -> web.Response:
    return _json({"error_response": {"code": exc.code, "zh_desc": exc.zh, "en_desc": exc.en}})


def _business(exc: BusinessError, method: str) -> web.Response:
    key = "orderDetailInfo" if method in (DETAIL_METHOD, PLAIN_DETAIL_METHOD) else "searchorderinfo_result"
    return _json({wrapper(method): {"code": "0", key: {"apiResult": {
        "success": False, "englishErrCode": exc.en, "chineseErrCode": exc.zh, "numberCode": exc.number}}}})


def _check_system(app: web.Application, params: dict) -> str:
    """Validate the system params and the signature; returns the shop the access token belongs to."""
    cfg = app[STATE]
    if params.get("app_key") != cfg["app_key"]:
        raise JosError("invalid_app_key")
    if params.get("method") not in METHODS:
        raise JosError("invalid_method", str(params.get("method") or ""))
    if not params.get("sign") or params["sign"].upper() != sign(params, cfg["secret"]):
        raise JosError("invalid_sign")
    stamp = _time(params, "timestamp")
    if abs(stamp - now_ms()) > cfg["max_skew_s"] * 1000:
        raise JosError("invalid_param", "timestamp is too far from the server time")
    if params.get("v") != "2.0":
        raise JosError("invalid_param", "v must be 2.0")
    token = params.get("access_token")
    for shop_id, shop in list(app[WORLD].shops.items()):
        if token and shop.get("access_token") == token:
            if shop.get("token_expires_at", float("inf")) <= now_ms():
                raise JosError("token_invalid")
            return shop_id
    raise JosError("token_invalid")


async def _router(request: web.Request) -> web.Response:
    params = await form_params(request)
    cfg = request.app[STATE]
    kind, _ = await take_fault(request.app)
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic()):
        return _json({"error_response": {"code": RATE_LIMITED, "zh_desc": DESCRIPTIONS["rate_limited"][0],
                                         "en_desc": DESCRIPTIONS["rate_limited"][1]}})
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        if cfg["errors_5xx"] % 2:
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return _error(JosError("system_busy"))
    if kind == "duplicate_page" and cfg["last"] is not None:
        return web.Response(body=cfg["last"], content_type="application/json", charset="utf-8")
    try:
        shop_id = _check_system(request.app, params)
        method = params["method"]
        try:
            business = orjson.loads(params.get(PARAM_JSON) or "{}")
        except orjson.JSONDecodeError:
            raise JosError("invalid_param", f"{PARAM_JSON} is not JSON") from None
        if not isinstance(business, dict):
            raise JosError("invalid_param", f"{PARAM_JSON} must be a JSON object")
        try:
            obj = METHODS[method](request.app[WORLD], shop_id, business, method)
        except BusinessError as exc:
            return _business(exc, method)
    except JosError as exc:
        return _error(exc)
    response = _json(obj)
    cfg["last"] = response.body
    if kind == "malformed":
        response.body = response.body[: len(response.body) // 2]
    return response


async def _refresh(request: web.Request) -> web.Response:
    """OAuth 2.0 refresh (jd.md §3): a new access token for the shop holding `refresh_token`."""
    params = await form_params(request)
    cfg, world = request.app[STATE], request.app[WORLD]
    if params.get("app_key") != cfg["app_key"] or params.get("app_secret") != cfg["secret"]:
        return _error(JosError("invalid_app_key"))
    if params.get("grant_type") != "refresh_token":
        return _error(JosError("invalid_param", "grant_type must be refresh_token"))
    for shop_id, shop in list(world.shops.items()):
        if params.get("refresh_token") and shop.get("refresh_token") == params["refresh_token"]:
            generation = int(shop.get("token_generation", 0)) + 1
            with world._lock:
                shop.update(access_token=access_token(shop_id, cfg["secret"], generation),
                            refresh_token=refresh_token(shop_id, cfg["secret"], generation),
                            token_generation=generation, token_expires_at=now_ms() + TOKEN_LIFETIME_MS)
                world.changes += 1
            return _json({"access_token": shop["access_token"], "expires_in": TOKEN_LIFETIME_MS // 1000,
                          "refresh_token": shop["refresh_token"], "scope": "snsapi_base", "token_type": "bearer",
                          "uid": render._digits(shop_id, 10), "open_id": shop_id, "xid": "o*AA" + shop_id,
                          "time": now_ms()})
    return _error(JosError("token_invalid", "refresh_token"))


async def _expire(request: web.Request) -> web.Response:
    body = await request.json()
    shop = request.app[WORLD].shops.get(str(body.get("shop_id")))
    if shop is None:
        raise web.HTTPNotFound(text="no such shop")
    shop["token_expires_at"] = now_ms() - 1
    request.app[WORLD].changes += 1
    return web.json_response({"shop_id": shop["shop_id"], "token_expires_at": shop["token_expires_at"]})


def create_app(world: World | None = None, app_key: str = "A1B2C3D4E5F60718", secret: str = "jd_demo_secret_77aa",
               max_skew_s: float = 600.0, qps_limit: float | None = None) -> web.Application:
    """The simulated JOS router plus the shared /_sim control API.

    `qps_limit` (calls per second over all shops; None = off) answers the rate-limit code beyond it; it
    can be changed at run time through `app[STATE]["qps_limit"]`.
    """
    world = world or JdWorld(region="CN", currency="CNY")

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": app_key, "app_secret": secret, "access_token": access_token(shop_id, secret),
                "refresh_token": refresh_token(shop_id, secret), "token_generation": 0,
                "token_expires_at": now_ms() + TOKEN_LIFETIME_MS, "oauth_base": "/"}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"app_key": app_key, "secret": secret, "max_skew_s": max_skew_s, "qps_limit": qps_limit,
                  "calls": deque(), "errors_5xx": 0, "last": None}
    for path, handler in (("/routerjson", _router), ("/oauth2/refresh_token", _refresh)):
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
    app.router.add_post("/_sim/tokens/expire", _expire)
    return app
