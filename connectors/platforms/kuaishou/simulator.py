"""A local Kuaishou open platform (openapi.kwaixiaodian.com) over the simkit world (kuaishou.md §9).

Real API, as the sheet describes it:
- `/open/...`: the path is the method with dots as slashes and must match the `method` parameter;
  GET (query) or POST (form); system params `appkey, access_token, method, version=1, signMethod
  (MD5 | HMAC_SHA256), timestamp (ms), param (JSON), sign`, the sign checked against the signSecret
  for both sign methods, stale timestamps refused. Every answer is HTTP 200 JSON: `result` 1 with
  `data`, else `result` ≠ 1 with `error_msg`/`sub_code` (2001 answers use camel-case `subCode`/`subMsg`
  like the captured one).
- `open.order.cursor.list`: pageSize ≤ 100, endTime − beginTime ≤ the manifest's window, queryType 1
  (create time) / 2 (update time), sort 1 desc / 2 asc, orderViewStatus 1-7, cpsType 0/1/2; keyset
  cursor paging over (time, oid), the last page's cursor is "nomore"; both time bounds inclusive.
- `open.order.detail` (`{"oid"}`) and the batch-decrypt stub `open.security.order.decrypt.batch`
  (`{"batchDecryptList": [{"bizId", "encryptedData"}]}`, ≤ 100 per call).
- `open.seller.order.goods.deliver` (`{"orderId", "expressNo", "expressCode"}`, a form POST) ships the
  order's item on World.ship; refusals are 2001 with the reason in error_msg (shipping.REFUSAL_WORDS).
- OAuth `/oauth2/refresh_token` (app_id, app_secret, refresh_token, grant_type=refresh_token): a new
  access token (48 h) and refresh token; the old access token stops working.

The numeric error codes other than 2001 (parameters) and 803 (flow control) are the simulator's own
(the sheet marks the expired-token code 28 unverified). Simulator-only control, besides simkit's /_sim:
- POST /_sim/tokens/expire {"shop_id"}      -> the shop's access token expires now
- POST /_sim/settings {"qps_limit": 5, "summaries": true}  -> calls per second over all shops before
  803 answers (null: off); listings that carry only `orderBaseInfo`, so details are needed
- POST /_sim/webhooks {"shop_id", "address"} and friends: see delivery.py
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections import deque

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, form_params, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, SimOrder, World

from .delivery import KuaishouPushes
from .render import answer, decrypt, list_data, order_dict, status_code
from .signing import SIGN_METHODS, sign
from .world import KuaishouWorld

PARAMS_INVALID, RATE_LIMITED, TOKEN_INVALID = 2001, 803, 28
APPKEY_INVALID, METHOD_INVALID, SIGN_INVALID, TIMESTAMP_INVALID, VERSION_INVALID = 21, 22, 24, 25, 26
OAUTH_CLIENT_INVALID, OAUTH_GRANT_INVALID = 100200, 100201
TOKEN_TTL_S, REFRESH_TTL_S = 172_800, 180 * 86_400
WINDOW_MS = folder_manifest(__file__).limits.window_max_s * 1000
PAGE_SIZE_MAX = folder_manifest(__file__).limits.page_size_max
VIEW_STATUS = {1: None, 2: {10}, 3: {30}, 4: {40}, 5: {50}, 6: {70}, 7: {80}}  # orderViewStatus -> status codes
_CARRIERS = folder_manifest(__file__).carriers  # expressCode -> carrier
STATE = web.AppKey("kuaishou_state", dict)
HUB = web.AppKey("kuaishou_push", PushHub)


class ApiError(Exception):
    def __init__(self, result: int, error_msg: str, sub_code: str = "", msg: str | None = None):
        super().__init__(error_msg)
        self.result, self.error_msg, self.sub_code, self.msg = result, error_msg, sub_code, msg


def access_token(shop_id: str, generation: int = 0) -> str:
    """A shop's simulated access token (stable per shop and refresh generation)."""
    return "ChFvYXV0aC5hY2Nlc3NUb2tlbh" + hashlib.sha256(f"at:{shop_id}:{generation}".encode()).hexdigest()[:40]


def refresh_token(shop_id: str, generation: int = 0) -> str:
    return "ChJvYXV0aC5yZWZyZXNoVG9rZW4" + hashlib.sha256(f"rt:{shop_id}:{generation}".encode()).hexdigest()[:40]


def _error_body(exc: ApiError) -> bytes:
    if exc.result == PARAMS_INVALID:  # shaped like the captured one: camel-case sub fields, `success`, a data stub
        return orjson.dumps({"result": exc.result, "code": "807000", "msg": exc.msg or "业务处理失败",
                             "error_msg": exc.error_msg, "subCode": str(exc.result), "subMsg": exc.error_msg,
                             "success": False, "data": list_data([], "", 0, 0, 0)})
    return orjson.dumps({"result": exc.result, "code": str(exc.result), "msg": exc.msg or exc.error_msg,
                         "error_msg": exc.error_msg, "sub_code": exc.sub_code, "sub_msg": exc.error_msg,
                         "requestId": secrets.token_hex(8)})


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


# ---- cursors: opaque keyset positions (time, oid) ----

def encode_cursor(at: int, oid: str) -> str:
    return base64.urlsafe_b64encode(f"{at}_{oid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        at, oid = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("_")
        return int(at), int(oid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(PARAMS_INVALID, "cursor无效") from None


# ---- the business methods ----

def _int_param(param: dict, name: str, default: int | None, allowed) -> int:
    value = param.get(name, default)
    if value is None:
        raise ApiError(PARAMS_INVALID, f"{name}不能为空")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        raise ApiError(PARAMS_INVALID, f"{name}无效")
    return value


def _time_param(param: dict, name: str) -> int:
    value = param.get(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ApiError(PARAMS_INVALID, f"{name}无效")
    return value


def _cursor_list(world: World, shop_id: str, param: dict) -> dict:
    page_size = _int_param(param, "pageSize", 10, range(1, PAGE_SIZE_MAX + 1))
    query_type = _int_param(param, "queryType", 1, (1, 2))
    sort = _int_param(param, "sort", 1, (1, 2))
    view = _int_param(param, "orderViewStatus", 1, VIEW_STATUS)
    cps = _int_param(param, "cpsType", 0, (0, 1, 2))
    begin, end = _time_param(param, "beginTime"), _time_param(param, "endTime")
    if end < begin:
        raise ApiError(PARAMS_INVALID, "endTime无效")
    if end - begin > WINDOW_MS:
        raise ApiError(PARAMS_INVALID, f"beginTime与endTime间隔不能超过{WINDOW_MS // 86_400_000}天")
    cursor = param.get("cursor") or ""
    if not isinstance(cursor, str):
        raise ApiError(PARAMS_INVALID, "cursor无效")
    if cursor == "nomore":
        return list_data([], "nomore", page_size, begin, end)

    def at(order: SimOrder) -> int:
        return order.created_at if query_type == 1 else order.updated_at

    codes = VIEW_STATUS[view]
    hits = [(at(o), int(o.external_id), o) for o in list(world.orders.values())
            if o.shop_id == shop_id and begin <= at(o) <= end and cps != 2
            and (codes is None or status_code(o) in codes)]
    descending = sort == 1
    if cursor:
        mark = decode_cursor(cursor)
        hits = [h for h in hits if ((h[0], h[1]) < mark if descending else (h[0], h[1]) > mark)]
    hits.sort(key=lambda h: (h[0], h[1]), reverse=descending)
    page = hits[:page_size]
    following = encode_cursor(page[-1][0], str(page[-1][1])) if len(hits) > page_size else "nomore"
    return list_data([order_dict(o) for _, _, o in page], following, page_size, begin, end)


def _own_order(world: World, shop_id: str, oid) -> SimOrder:
    order = world.orders.get(str(oid))
    if order is None or order.shop_id != shop_id:
        raise ApiError(PARAMS_INVALID, "订单不存在")
    return order


def _detail(world: World, shop_id: str, param: dict) -> dict:
    if param.get("oid") in (None, ""):
        raise ApiError(PARAMS_INVALID, "oid不能为空")
    return order_dict(_own_order(world, shop_id, param["oid"]))


def _decrypt_batch(world: World, shop_id: str, param: dict) -> dict:
    batch = param.get("batchDecryptList")
    if not isinstance(batch, list) or not 1 <= len(batch) <= 100:
        raise ApiError(PARAMS_INVALID, "batchDecryptList无效")
    out = []
    for entry in batch:
        if not isinstance(entry, dict):
            raise ApiError(PARAMS_INVALID, "batchDecryptList无效")
        _own_order(world, shop_id, entry.get("bizId"))
        plain = decrypt(str(entry.get("encryptedData") or ""))
        out.append({"bizId": entry.get("bizId"), "encryptedData": entry.get("encryptedData"),
                    "decryptedData": plain or "", "errorCode": 0 if plain is not None else 1,
                    "errorMsg": "" if plain is not None else "密文无效"})
    return {"batchDecryptList": out}


_SHIP_REFUSAL = {  # simkit refusal -> the platform's words (shipping.REFUSAL_WORDS says what each means)
    "closed": "订单已关闭，不能发货", "unpaid": "订单未付款，不能发货", "refunded": "订单已退款，不能发货",
    "already_shipped": "订单已发货，不能重复发货",
}
_EXPRESS_NO = re.compile(r"[A-Za-z0-9]{6,32}")  # a waybill number as carriers issue them (rule unverified)


def _deliver(world: World, shop_id: str, param: dict) -> dict:
    """`open.seller.order.goods.deliver`: the order's item leaves with `expressNo` and `expressCode`; the order
    shows 已发货 (40) with it in `orderLogisticsInfo` on its next read."""
    oid, number, code = param.get("orderId"), param.get("expressNo"), param.get("expressCode")
    if oid in (None, "") or not number or code in (None, ""):
        raise ApiError(PARAMS_INVALID, "orderId、expressNo、expressCode不能为空")
    order = world.orders.get(str(oid))
    if order is None or order.shop_id != shop_id:
        raise ApiError(PARAMS_INVALID, "订单不存在")
    if str(code) not in _CARRIERS:
        raise ApiError(PARAMS_INVALID, f"快递公司编码无效: {code}")
    if not isinstance(number, str) or not _EXPRESS_NO.fullmatch(number):
        raise ApiError(PARAMS_INVALID, f"快递单号无效: {number}")
    try:
        world.ship(order, [], str(code), _CARRIERS[str(code)], number, now_ms())
    except ShipRefusal as exc:
        raise ApiError(PARAMS_INVALID, _SHIP_REFUSAL[exc.kind]) from None
    return {}


METHODS = {
    "open.order.cursor.list": _cursor_list,
    "open.order.detail": _detail,
    "open.security.order.decrypt.batch": _decrypt_batch,
    "open.seller.order.goods.deliver": _deliver,
}


# ---- the gateway ----

def _check(app: web.Application, path_method: str, params: dict) -> tuple[str, dict]:
    """Validate the system params; returns (shop id, decoded business param)."""
    cfg, world = app[STATE], app[WORLD]
    if params.get("appkey") != cfg["app_key"]:
        raise ApiError(APPKEY_INVALID, "appkey无效", "appkey.invalid")
    if params.get("method") != path_method or path_method not in METHODS:
        raise ApiError(METHOD_INVALID, "method无效", "method.invalid")
    if params.get("signMethod") not in SIGN_METHODS:
        raise ApiError(SIGN_INVALID, "signMethod无效", "sign.method.invalid")
    if params.get("version") != "1":
        raise ApiError(VERSION_INVALID, "version无效", "version.invalid")
    stamp = params.get("timestamp") or ""
    if not stamp.isdigit() or abs(int(stamp) - now_ms()) > cfg["max_skew_s"] * 1000:
        raise ApiError(TIMESTAMP_INVALID, "timestamp无效或已过期", "timestamp.invalid")
    if not secrets.compare_digest(str(params.get("sign") or ""), sign(params, cfg["sign_secret"])):
        raise ApiError(SIGN_INVALID, "签名验证失败 sign invalid", "sign.invalid")
    token = params.get("access_token")
    shop = next((s for s in list(world.shops.values()) if token and s.get("access_token") == token), None)
    if shop is None:
        raise ApiError(TOKEN_INVALID, "access_token无效", "access_token.invalid")
    if shop.get("token_expires_at", 0) <= now_ms():
        raise ApiError(TOKEN_INVALID, "access_token已过期", "access_token.expired")
    try:
        param = orjson.loads(params.get("param") or "{}")
    except orjson.JSONDecodeError:
        raise ApiError(PARAMS_INVALID, "param不是合法的JSON") from None
    if not isinstance(param, dict):
        raise ApiError(PARAMS_INVALID, "param不是合法的JSON")
    return shop["shop_id"], param


async def _api(request: web.Request) -> web.Response:
    params = await form_params(request)
    cfg = request.app[STATE]
    kind, _ = await take_fault(request.app)
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic()):
        return _json(orjson.dumps({"result": RATE_LIMITED, "code": str(RATE_LIMITED), "msg": "调用频率超出限制",
                                   "error_msg": "api call frequency exceeded, please retry later",
                                   "sub_code": "flow.limit", "sub_msg": "当前应用调用该接口频率过高",
                                   "requestId": secrets.token_hex(8)}))
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        status = 502 if cfg["errors_5xx"] % 2 else 503
        return web.Response(status=status, text=f"<html><body>{status} Bad Gateway</body></html>",
                            content_type="text/html")
    if kind == "duplicate_page" and cfg["last"] is not None:
        return _json(cfg["last"])
    try:
        shop_id, param = _check(request.app, "open." + request.match_info["path"].replace("/", "."), params)
        data = METHODS[params["method"]](request.app[WORLD], shop_id, param)
        if params["method"] == "open.seller.order.goods.deliver":  # kwaishop_order_deliverySuccess
            await notify(request.app, shop_id, [request.app[WORLD].orders[str(param["orderId"])]])
    except ApiError as exc:
        return _json(_error_body(exc))
    if cfg["summaries"] and "orderList" in data:  # a listing that names orders only: details needed
        data["orderList"] = [{"orderBaseInfo": entry["orderBaseInfo"]} for entry in data["orderList"]]
    body = answer(data)
    cfg["last"] = body
    return _json(body[: len(body) // 2] if kind == "malformed" else body)


async def _refresh(request: web.Request) -> web.Response:
    params, cfg, world = await form_params(request), request.app[STATE], request.app[WORLD]
    if params.get("app_id") != cfg["app_key"] or params.get("app_secret") != cfg["oauth_secret"]:
        return web.json_response({"result": OAUTH_CLIENT_INVALID, "error": "invalid_client",
                                  "error_msg": "app_id或app_secret无效"})
    token = params.get("refresh_token")
    shop = next((s for s in list(world.shops.values()) if token and s.get("refresh_token") == token), None)
    if params.get("grant_type") != "refresh_token" or shop is None:
        return web.json_response({"result": OAUTH_GRANT_INVALID, "error": "invalid_grant",
                                  "error_msg": "refresh_token无效"})
    generation = shop.get("generation", 0) + 1
    shop.update(generation=generation, access_token=access_token(shop["shop_id"], generation),
                refresh_token=refresh_token(shop["shop_id"], generation),
                token_expires_at=now_ms() + cfg["token_ttl_s"] * 1000)
    world.changes += 1
    return web.json_response({"result": 1, "access_token": shop["access_token"], "expires_in": cfg["token_ttl_s"],
                              "refresh_token": shop["refresh_token"], "refresh_token_expires_in": REFRESH_TTL_S,
                              "open_id": shop["open_id"], "scopes": ["merchant_order", "merchant_refund"]})


async def _settings(request: web.Request) -> web.Response:
    body = await request.json()
    cfg = request.app[STATE]
    for key in ("qps_limit", "summaries"):
        if key in body:
            cfg[key] = body[key]
    return web.json_response({"qps_limit": cfg["qps_limit"], "summaries": cfg["summaries"]})


async def _expire_token(request: web.Request) -> web.Response:
    body = await request.json()
    shop = request.app[WORLD].shops.get(str(body.get("shop_id")))
    if shop is None:
        raise web.HTTPNotFound(text="unknown shop")
    shop["token_expires_at"] = now_ms() - 1
    return web.json_response({"shop_id": shop["shop_id"], "token_expires_at": shop["token_expires_at"]})


def create_app(world: World | None = None, app_key: str = "ks_demo_appkey_001",
               sign_secret: str = "ks_demo_signsecret_55", oauth_secret: str = "ks_demo_appsecret_77",
               max_skew_s: float = 600.0, qps_limit: float | None = None, token_ttl_s: int = TOKEN_TTL_S,
               push_retries: int = 3, push_backoff: float = 0.2) -> web.Application:
    """The simulated Kuaishou open platform plus the shared /_sim control API and message pushes.

    A shop's `app_secret` (what the connectors sign with) is the app's signSecret; the OAuth appSecret
    is `oauth_app_secret`. `qps_limit` (calls per second over all shops; None = off) answers 803 beyond
    it and can be changed at run time through `app[STATE]["qps_limit"]`.
    """
    world = world or KuaishouWorld()

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": app_key, "app_secret": sign_secret, "access_token": access_token(shop_id),
                "refresh_token": refresh_token(shop_id), "oauth_app_secret": oauth_secret,
                "open_id": hashlib.sha256(f"seller:{shop_id}".encode()).hexdigest()[:32],
                "token_expires_at": now_ms() + token_ttl_s * 1000}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"app_key": app_key, "sign_secret": sign_secret, "oauth_secret": oauth_secret,
                  "max_skew_s": max_skew_s, "qps_limit": qps_limit, "token_ttl_s": token_ttl_s,
                  "summaries": False, "calls": deque(), "errors_5xx": 0, "last": None}
    app[HUB] = PushHub(app, KuaishouPushes(), retries=push_retries, backoff=push_backoff)
    app.router.add_route("*", "/open/{path:.+}", _api)
    app.router.add_route("*", "/oauth2/refresh_token", _refresh)
    app.router.add_post("/_sim/tokens/expire", _expire_token)
    app.router.add_post("/_sim/settings", _settings)
    return app
