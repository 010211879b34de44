"""A local TOP gateway (`/router/rest`) over the simkit World, faithful to taobao.md §9.

Error codes follow the TOP system-error list; 22 (invalid method) and the 21/24/28/30-34 neighbours
are unverified numbers kept as constants. Every error answer is HTTP 200 with `error_response`,
like the real gateway.

`taobao.logistics.offline.send` (自己联系物流发货) ships a trade or, with `is_split=1` and `sub_tid`, some of
its sub-orders; refusals are code 15 with the `isv.logistics-offline-service-error:*` sub-codes integrators
report (B01 no such trade, B04 already shipped or closed, B60 waybill number refused, P38 split check
failed); an unknown `company_code` answers 41 `isv.invalid-parameter:company_code` (unverified code).
"""
from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections import deque
from datetime import datetime
from functools import lru_cache

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.server import WORLD, form_params, new_sim_app, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, World
from schemas.canonical import BEIJING

from .render import to_xml, trade_dict
from .signing import SIGN_METHODS, sign

APP_CALL_LIMITED, REMOTE_SERVICE_ERROR = 7, 15
MISSING_METHOD, INVALID_METHOD, INVALID_FORMAT = 21, 22, 23
MISSING_SIGNATURE, INVALID_SIGNATURE = 24, 25
MISSING_SESSION, INVALID_SESSION = 26, 27
MISSING_APP_KEY, INVALID_APP_KEY = 28, 29
MISSING_TIMESTAMP, INVALID_TIMESTAMP = 30, 31
MISSING_VERSION, UNSUPPORTED_VERSION = 32, 34
MISSING_ARGUMENTS, INVALID_ARGUMENTS = 40, 41
DAY_MS, LOOKBACK_MS = 86_400_000, 90 * 86_400_000
STATE = web.AppKey("taobao_state", dict)


class TopError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None):
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


def session_token(shop_id: str, secret: str = "tb_demo_secret_9f8e") -> str:
    """The simulated seller access token (`session`) of a shop: stable per shop id."""
    return "6100" + hashlib.sha256(f"{secret}:{shop_id}".encode()).hexdigest()[:28]


def _parse_time(text: str | None, name: str) -> int:
    if not text:
        raise TopError(MISSING_ARGUMENTS, "Missing Required Arguments", "isv.missing-parameter", name)
    try:
        return _beijing_ms(text)
    except ValueError:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter",
                       f"{name} must be yyyy-MM-dd HH:mm:ss") from None


@lru_cache(maxsize=256)
def _beijing_ms(text: str) -> int:
    """Epoch ms of a TOP timestamp (calls stamped within the same second are many: strptime once)."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp() * 1000)


def _int_arg(params: dict, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(params.get(name) or default)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter",
                       f"{name} must be between {low} and {high}")
    return value


def _fields(params: dict) -> list[str]:
    fields = [f for f in (params.get("fields") or "").split(",") if f.strip()]
    if not fields:
        raise TopError(MISSING_ARGUMENTS, "Missing Required Arguments", "isv.missing-parameter", "fields")
    return fields


def _list_response(orders, params: dict, fields: list[str]) -> dict:
    page_no = _int_arg(params, "page_no", 1, 1, 1_000_000)
    page_size = _int_arg(params, "page_size", 40, 1, 100)
    chunk = orders[(page_no - 1) * page_size: page_no * page_size]
    out: dict = {}
    if params.get("use_has_next") == "true":
        out["has_next"] = page_no * page_size < len(orders)
    else:
        out["total_results"] = len(orders)
    if chunk:  # like TOP, an empty page has no `trades` at all
        out["trades"] = {"trade": [trade_dict(o, fields) for o in chunk]}
    return out


def _increment(world: World, shop_id: str, params: dict) -> dict:
    fields = _fields(params)
    start = _parse_time(params.get("start_modified"), "start_modified")
    end = _parse_time(params.get("end_modified"), "end_modified")
    if end < start:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter",
                       "end_modified must not be earlier than start_modified")
    if end - start > DAY_MS:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter",
                       "end_modified - start_modified must not exceed one day")
    if start < now_ms() - LOOKBACK_MS:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter",
                       "start_modified must be within the last three months")
    # second-granular and inclusive at both ends, like the platform
    return _list_response(world.changed_between(shop_id, start, end + 1000), params, fields)


def _sold(world: World, shop_id: str, params: dict) -> dict:
    fields = _fields(params)
    now = now_ms()
    start = _parse_time(params["start_created"], "start_created") if params.get("start_created") else now - LOOKBACK_MS
    end = _parse_time(params["end_created"], "end_created") if params.get("end_created") else now
    hits = [o for o in list(world.orders.values()) if o.shop_id == shop_id and start <= o.created_at < end + 1000]
    hits.sort(key=lambda o: (o.created_at, o.external_id), reverse=True)
    return _list_response(hits, params, fields)


def _fullinfo(world: World, shop_id: str, params: dict) -> dict:
    fields = _fields(params)
    tid = params.get("tid")
    if not tid:
        raise TopError(MISSING_ARGUMENTS, "Missing Required Arguments", "isv.missing-parameter", "tid")
    order = world.orders.get(tid)
    if order is None or order.shop_id != shop_id:
        raise TopError(REMOTE_SERVICE_ERROR, "Remote service error", "isv.trade-not-exist", f"trade {tid} not found")
    return {"trade": trade_dict(order, fields)}


_OFFLINE_SEND_ERROR = "isv.logistics-offline-service-error"
_OUT_SID = re.compile(r"^[A-Za-z0-9]{6,32}$")  # a waybill number as carriers issue them (rule unverified)
_REFUSAL = {  # simkit refusal -> (sub_code suffix, sub_msg)
    "closed": ("B04", "订单状态不对该物流订单已经发货或者已关闭，不能重复发货"),
    "unpaid": ("B04", "订单状态不对，买家未付款，不能发货"),
    "refunded": ("B04", "订单状态不对该物流订单已经发货或者已关闭，不能重复发货"),
    "already_shipped": ("B04", "订单状态不对该物流订单已经发货或者已关闭，不能重复发货"),
    "unknown_line": ("P38", "拆单校验未通过，子订单不属于该交易"),
}


def _required(params: dict, name: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise TopError(MISSING_ARGUMENTS, "Missing Required Arguments", "isv.missing-parameter", name)
    return value


def _offline_send(world: World, shop_id: str, params: dict) -> dict:
    """`taobao.logistics.offline.send`: the trade (or the listed sub-orders) leaves with the given waybill;
    the trade's next answer shows it consigned (logistics_company, invoice_no, consign_time)."""
    tid, out_sid, company = (_required(params, n) for n in ("tid", "out_sid", "company_code"))
    if not tid.isdigit():
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter", "tid must be a number")
    carriers = folder_manifest(__file__).carriers
    if company not in carriers:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter:company_code",
                       f"物流公司代码不正确 unknown company_code {company}")
    order = world.orders.get(tid)
    if order is None or order.shop_id != shop_id:
        raise TopError(REMOTE_SERVICE_ERROR, "Remote service error", f"{_OFFLINE_SEND_ERROR}:B01", "订单不存在")
    if not _OUT_SID.match(out_sid):
        raise TopError(REMOTE_SERVICE_ERROR, "Remote service error", f"{_OFFLINE_SEND_ERROR}:B60",
                       "运单号不符合规则或已经被使用")
    sub_tids = [x.strip() for x in (params.get("sub_tid") or "").split(",") if x.strip()]
    if bool(sub_tids) != (params.get("is_split") == "1"):
        raise TopError(REMOTE_SERVICE_ERROR, "Remote service error", f"{_OFFLINE_SEND_ERROR}:P38",
                       "拆单校验未通过：拆单发货须同时传 is_split=1 和 sub_tid")
    try:
        world.ship(order, sub_tids, company, carriers[company], out_sid, now_ms())
    except ShipRefusal as exc:
        suffix, message = _REFUSAL[exc.kind]
        raise TopError(REMOTE_SERVICE_ERROR, "Remote service error", f"{_OFFLINE_SEND_ERROR}:{suffix}",
                       message) from None
    return {"shipping": {"is_success": True}}


METHODS = {
    "taobao.trades.sold.increment.get": _increment,
    "taobao.trades.sold.get": _sold,
    "taobao.trade.fullinfo.get": _fullinfo,
    "taobao.logistics.offline.send": _offline_send,
}


def _render(obj: dict, root: str, fmt: str, status: int = 200) -> web.Response:
    if fmt == "xml":
        return web.Response(body=to_xml(obj, root), status=status, content_type="text/xml", charset="utf-8")
    return web.Response(body=orjson.dumps({root: obj}), status=status, content_type="application/json",
                        charset="utf-8")


def _error(exc: TopError, fmt: str) -> web.Response:
    obj = {"code": exc.code, "msg": exc.msg, "sub_code": exc.sub_code, "sub_msg": exc.sub_msg,
           "request_id": secrets.token_hex(6)}
    return _render({k: v for k, v in obj.items() if v is not None}, "error_response", fmt)


def _check_system(app: web.Application, params: dict) -> str:
    """Validate the system params; returns the shop id the session belongs to."""
    cfg = app[STATE]
    if not params.get("app_key"):
        raise TopError(MISSING_APP_KEY, "Missing App Key")
    if params["app_key"] != cfg["app_key"]:
        raise TopError(INVALID_APP_KEY, "Invalid App Key")
    if not params.get("method"):
        raise TopError(MISSING_METHOD, "Missing Method")
    method = params.get("sign_method") or "md5"
    if method not in SIGN_METHODS:
        raise TopError(INVALID_ARGUMENTS, "Invalid Arguments", "isv.invalid-parameter", "sign_method")
    if not params.get("sign"):
        raise TopError(MISSING_SIGNATURE, "Missing Signature")
    if params["sign"].upper() != sign(params, cfg["secret"], method):
        raise TopError(INVALID_SIGNATURE, "Invalid Signature")
    if not params.get("timestamp"):
        raise TopError(MISSING_TIMESTAMP, "Missing Timestamp")
    try:
        stamp = _parse_time(params["timestamp"], "timestamp")
    except TopError:
        raise TopError(INVALID_TIMESTAMP, "Invalid Timestamp") from None
    if abs(stamp - now_ms()) > cfg["max_skew_s"] * 1000:
        raise TopError(INVALID_TIMESTAMP, "Invalid Timestamp", "isv.invalid-timestamp",
                       "timestamp is more than the allowed skew away from server time")
    if not params.get("v"):
        raise TopError(MISSING_VERSION, "Missing Version")
    if params["v"] != "2.0":
        raise TopError(UNSUPPORTED_VERSION, "Unsupported Version")
    if params.get("format", "json") not in ("json", "xml"):
        raise TopError(INVALID_FORMAT, "Invalid Format")
    if params["method"] not in METHODS:
        raise TopError(INVALID_METHOD, "Invalid Method")
    if not params.get("session"):
        raise TopError(MISSING_SESSION, "Missing Session")
    shops, session = app[WORLD].shops, params["session"]
    shop_id = cfg["sessions"].get(session)
    if shop_id is None or shops.get(shop_id, {}).get("access_token") != session:  # new shops, a restored world
        cfg["sessions"] = {shop.get("access_token"): sid for sid, shop in list(shops.items())}
        shop_id = cfg["sessions"].get(session)
    if shop_id is None:
        raise TopError(INVALID_SESSION, "Invalid session", "invalid-sessionkey", "SessionKey非法")
    return shop_id


async def _router(request: web.Request) -> web.Response:
    params = await form_params(request)
    fmt = "xml" if params.get("format") == "xml" else "json"
    cfg = request.app[STATE]
    kind, seconds = await take_fault(request.app)
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic()):
        ban = max(1, math.ceil(seconds)) if kind == "rate_limit" else 1
        return _error(TopError(APP_CALL_LIMITED, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                               f"This ban will last for {ban} more seconds"), fmt)
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        if cfg["errors_5xx"] % 2:
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        return _error(TopError(REMOTE_SERVICE_ERROR, "Remote service error", "isp.remote-service-error",
                               "service temporarily unavailable"), fmt)
    if kind == "duplicate_page" and cfg["last"] is not None:
        body, content_type = cfg["last"]
        return web.Response(body=body, content_type=content_type, charset="utf-8")
    try:
        shop_id = _check_system(request.app, params)
        method = params["method"]
        obj = METHODS[method](request.app[WORLD], shop_id, params)
    except TopError as exc:
        return _error(exc, fmt)
    obj["request_id"] = secrets.token_hex(6)
    response = _render(obj, method.removeprefix("taobao.").replace(".", "_") + "_response", fmt)
    cfg["last"] = (response.body, response.content_type)
    if kind == "malformed":
        response.body = response.body[: len(response.body) // 2]
    return response


def create_app(world: World | None = None, app_key: str = "12345678", secret: str = "tb_demo_secret_9f8e",
               max_skew_s: float = 600.0, qps_limit: float | None = None) -> web.Application:
    """The simulated TOP gateway plus the shared /_sim control API.

    `qps_limit` (calls per second over all shops; None = off) answers code 7 beyond the limit; it can be
    changed at run time through `app[STATE]["qps_limit"]`.
    """
    world = world or World(region="CN", currency="CNY")

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": app_key, "app_secret": secret, "access_token": session_token(shop_id, secret)}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"app_key": app_key, "secret": secret, "max_skew_s": max_skew_s, "qps_limit": qps_limit,
                  "calls": deque(), "errors_5xx": 0, "last": None, "sessions": {}}
    app.router.add_get("/router/rest", _router)
    app.router.add_post("/router/rest", _router)
    return app
