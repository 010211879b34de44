"""A local Xiaohongshu gateway (`POST /ark/open_api/v3/common_controller`) over the simkit World.

Faithful to xiaohongshu.md §9: one endpoint, dispatch on the body's `method`; the sign checked over
method/appId/timestamp/version + secret and the timestamp's freshness (the body is not signed);
`oauth.getAccessToken` / `oauth.refreshToken` on the same endpoint with ms-epoch expiries; the list
answers summaries only, newest update first, with `total` and `maxPageNo`; the detail has lines and
amounts but no receiver, which `order.getOrderReceiverInfo` gives as ciphertexts; `data.batchDesensitise`
masks them and `data.batchDecrypt` opens them (a quarter of the mobiles are shown as privacy numbers
with an extension); `order.orderDeliver` ships the order or some of its skus (World.ship), refusing in
the seller backend's words. Errors are HTTP 200
with `success: false` in the platform's two envelopes (errors.py). Knobs: `qps_limit`, the window and
page limits, token lifetimes; the shared `/_sim` faults; pushes through delivery.py.
"""
from __future__ import annotations

import hashlib
import inspect
import re
import secrets
import time
from collections import deque

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, ensure_shop, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, SimOrder, World

from . import errors
from .delivery import XiaohongshuPushes
from .render import (
    answer,
    decrypt,
    desensitised,
    detail,
    list_data,
    open_address_id,
    order_status,
    receiver_info,
    virtual_number,
    xhs_order_id,
)
from .signing import VERSION, sign

PATH = "/ark/open_api/v3/common_controller"
STATE = web.AppKey("xiaohongshu_state", dict)
HUB = web.AppKey("xiaohongshu_push", PushHub)
DAY_MS = 86_400_000
_LIMITS = folder_manifest(__file__).limits


class XhsError(Exception):
    def __init__(self, code: int, msg: str, legacy: bool = True):
        super().__init__(msg)
        self.code, self.msg, self.legacy = code, msg, legacy


def _param(msg: str) -> XhsError:
    return XhsError(errors.PARAM_ERROR, f"参数错误：{msg}", legacy=False)


def _int(params: dict, name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if value is None or value.__class__ is not int:
        raise _param(f"{name} 必须是整数")
    return value


def _tokens(shop_id: str, cfg: dict, now: int, fresh: bool = False) -> dict:
    """Access and refresh tokens with their ms-epoch expiries (stable per shop until refreshed)."""
    seed = secrets.token_hex(8) if fresh else hashlib.sha256(f"{cfg['secret']}:{shop_id}".encode()).hexdigest()
    return {"access_token": "token-" + hashlib.sha256(f"a|{seed}|{shop_id}".encode()).hexdigest()[:32],
            "access_token_expires_at": now + cfg["access_ttl_s"] * 1000,
            "refresh_token": "refresh-" + hashlib.sha256(f"r|{seed}|{shop_id}".encode()).hexdigest()[:32],
            "refresh_token_expires_at": now + cfg["refresh_ttl_s"] * 1000}


def _token_data(shop: dict) -> dict:
    return {"accessToken": shop["access_token"], "accessTokenExpiresAt": shop["access_token_expires_at"],
            "refreshToken": shop["refresh_token"], "refreshTokenExpiresAt": shop["refresh_token_expires_at"],
            "sellerId": shop["seller_id"], "sellerName": shop["shop_id"]}


# ---- methods: (app, shop_id, params) -> data ----

def _get_access_token(app: web.Application, _shop, params: dict) -> dict:
    code = str(params.get("code") or "")
    if not code.startswith("code-") or len(code) <= 5:
        raise XhsError(errors.INVALID_TOKEN, "授权码无效 invalid code")
    return _token_data(ensure_shop(app, code[5:]))


def _refresh_token(app: web.Application, _shop, params: dict) -> dict:
    token, now = str(params.get("refreshToken") or ""), now_ms()
    for shop in list(app[WORLD].shops.values()):
        if token and shop.get("refresh_token") == token:
            if shop["refresh_token_expires_at"] < now:
                raise XhsError(errors.INVALID_REFRESH_TOKEN, "refreshToken已过期，请重新授权")
            shop.update(_tokens(shop["shop_id"], app[STATE], now, fresh=True))
            app[WORLD].changes += 1
            return _token_data(shop)
    raise XhsError(errors.INVALID_REFRESH_TOKEN, "refreshToken无效")


def _order_list(app: web.Application, shop_id: str, params: dict) -> dict:
    cfg, world = app[STATE], app[WORLD]
    start, end = _int(params, "startTime"), _int(params, "endTime")
    time_type, page_no, page_size = _int(params, "timeType", 1), _int(params, "pageNo", 1), _int(params, "pageSize", 50)
    wanted = _int(params, "orderStatus", 0)
    if time_type not in (1, 2):
        raise _param("timeType 只能是 1（创建时间）或 2（更新时间）")
    if not 1 <= page_size <= _LIMITS.page_size_max:
        raise _param(f"pageSize 取值 1-{_LIMITS.page_size_max}")
    if not 1 <= page_no <= cfg["max_page_no"]:
        raise _param(f"pageNo 取值 1-{cfg['max_page_no']}")
    if end < start:
        raise _param("endTime 不能早于 startTime")
    if end - start > cfg["window_max_s"]:
        raise XhsError(errors.WINDOW_TOO_WIDE, f"查询时间范围不能超过{cfg['window_max_s'] // 3600}小时", legacy=False)
    if start * 1000 < now_ms() - cfg["lookback_days"] * DAY_MS:
        raise _param(f"只能查询最近{cfg['lookback_days']}天的订单")
    low, high = start * 1000, (end + 1) * 1000  # second-granular, both ends included
    if time_type == 2:
        hits = world.changed_between(shop_id, low, high)  # newest update first
    else:
        hits = sorted((o for o in list(world.orders.values()) if o.shop_id == shop_id and low <= o.created_at < high),
                      key=lambda o: (o.created_at, o.external_id), reverse=True)
    if wanted:
        hits = [o for o in hits if order_status(o) == wanted]
    chunk = hits[(page_no - 1) * page_size: page_no * page_size]
    return list_data(chunk, page_no, page_size, total=len(hits))


def _mine(app: web.Application, shop_id: str, order_id) -> SimOrder | None:
    order = app[WORLD].orders.get(str(order_id))
    return order if order is not None and order.shop_id == shop_id else None


def _order_detail(app: web.Application, shop_id: str, params: dict) -> dict:
    if not params.get("orderId"):
        raise _param("orderId 不能为空")
    order = _mine(app, shop_id, params["orderId"])
    if order is None:
        raise XhsError(errors.ORDER_NOT_FOUND, "订单不存在", legacy=False)
    return detail(order)


def _batch(params: dict, name: str) -> list[dict]:
    """A batch parameter: a list of 1-100 objects."""
    items = params.get(name)
    if not isinstance(items, list) or not 1 <= len(items) <= 100 or not all(isinstance(i, dict) for i in items):
        raise _param(f"{name} 为 1-100 个对象")
    return items


def _receiver_info(app: web.Application, shop_id: str, params: dict) -> dict:
    out = []
    for query in _batch(params, "receiverQueries"):
        order = _mine(app, shop_id, query.get("orderId"))
        if order is None:
            raise XhsError(errors.ORDER_NOT_FOUND, f"订单不存在 {query.get('orderId')}", legacy=False)
        if query.get("openAddressId") != open_address_id(order):  # the address changed since
            out.append({"orderId": order.external_id, "matched": False})
        else:
            out.append(receiver_info(order))
    return {"receiverInfos": out}


def _opened(shop_id: str, params: dict):
    """(dataTag, ciphertext, plaintext or None) of each entry of a decrypt/desensitise batch."""
    for info in _batch(params, "baseInfos"):
        tag, cipher = str(info.get("dataTag") or ""), str(info.get("encryptedData") or "")
        try:
            yield tag, cipher, decrypt(shop_id, cipher)
        except ValueError:
            yield tag, cipher, None


def _kind(plain: str) -> str:
    if plain.replace("-", "").isdigit():
        return "phone"
    return "street" if len(plain) > 4 or any(ch.isdigit() for ch in plain) else "name"


def _batch_decrypt(app: web.Application, shop_id: str, params: dict) -> dict:
    out = []
    for tag, cipher, plain in _opened(shop_id, params):
        if plain is not None and _kind(plain) == "phone":
            plain = virtual_number(shop_id, plain) or plain
        out.append({"dataTag": tag, "encryptedData": cipher, "decryptedData": plain,
                    "errorCode": 0 if plain is not None else 1, "errorMsg": "" if plain is not None else "密文无效"})
    return {"dataInfoList": out}


def _batch_desensitise(app: web.Application, shop_id: str, params: dict) -> dict:
    if not app[STATE]["masks_allowed"]:  # an app without the permission, or past its daily quota
        raise XhsError(errors.NO_PERMISSION, "无权限调用该接口或已超出当日调用限额", legacy=False)
    out = []
    for tag, cipher, plain in _opened(shop_id, params):
        masked = None if plain is None else desensitised(shop_id, plain, _kind(plain))
        out.append({"dataTag": tag, "encryptedData": cipher, "desensitisedData": masked,
                    "errorCode": 0 if masked is not None else 1, "errorMsg": "" if masked is not None else "密文无效"})
    return {"desensitiseInfoList": out}


_EXPRESS_NO = re.compile(r"^[A-Za-z0-9]{6,32}$")  # a waybill number as carriers issue them (rule unverified)
_REFUSAL = {  # simkit refusal -> (code, the seller backend's words)
    "closed": (errors.DELIVER_CANCELLED, "订单已取消，不能发货"),
    "unpaid": (errors.DELIVER_UNPAID, "订单未支付，不能发货"),
    "refunded": (errors.DELIVER_REFUNDED, "商品已退款，不能发货"),
    "already_shipped": (errors.DELIVER_DONE, "订单已发货，不能重复发货"),
    "unknown_line": (errors.DELIVER_SKU, "skuId不属于该订单"),
}


async def _order_deliver(app: web.Application, shop_id: str, params: dict) -> dict:
    """`order.orderDeliver`: the order (or, with `unpack`, the skus of `skuIdList`) leaves with the waybill;
    the next detail shows its package and 部分发货 / 待收货, and a push says the fulfilment changed."""
    order_id, express_no, company = (str(params.get(n) or "").strip()
                                     for n in ("orderId", "expressNo", "expressCompanyCode"))
    for name, value in (("orderId", order_id), ("expressNo", express_no), ("expressCompanyCode", company)):
        if not value:
            raise _param(f"{name} 不能为空")
    carriers = folder_manifest(__file__).carriers
    if company not in carriers:
        raise XhsError(errors.DELIVER_EXPRESS, f"物流公司编码不存在：{company}", legacy=False)
    order = _mine(app, shop_id, order_id)
    if order is None:
        raise XhsError(errors.ORDER_NOT_FOUND, "订单不存在", legacy=False)
    if not _EXPRESS_NO.match(express_no):
        raise XhsError(errors.DELIVER_EXPRESS_NO, "运单号不符合规则", legacy=False)
    skus = params.get("skuIdList") or []
    if not isinstance(skus, list) or not all(isinstance(s, str) and s for s in skus):
        raise _param("skuIdList 为 skuId 字符串列表")
    if bool(skus) != (params.get("unpack") is True):
        raise _param("拆包发货须同时传 unpack=true 和 skuIdList")
    try:
        app[WORLD].ship(order, list(dict.fromkeys(skus)), company, carriers[company], express_no, now_ms())
    except ShipRefusal as exc:
        raise XhsError(*_REFUSAL[exc.kind], legacy=False) from None
    await notify(app, shop_id, [order])
    return {}


OAUTH = {"oauth.getAccessToken": _get_access_token, "oauth.refreshToken": _refresh_token}
METHODS = {**OAUTH, "order.getOrderList": _order_list, "order.getOrderDetail": _order_detail,
           "order.getOrderReceiverInfo": _receiver_info, "data.batchDecrypt": _batch_decrypt,
           "data.batchDesensitise": _batch_desensitise, "order.orderDeliver": _order_deliver}


# ---- the gateway ----

def _check(app: web.Application, params: dict) -> str | None:
    """Validate the system fields; the shop id the access token belongs to (None for oauth methods)."""
    cfg = app[STATE]
    method = params.get("method")
    if not method or not isinstance(method, str):
        raise XhsError(errors.UNKNOWN_METHOD, "method 不能为空")
    if params.get("appId") != cfg["app_id"]:
        raise XhsError(errors.INVALID_APP_ID, "appId不存在")
    stamp, version = str(params.get("timestamp") or ""), str(params.get("version") or "")
    if not stamp.isdigit():
        raise XhsError(errors.INVALID_TIMESTAMP, "timestamp 不能为空")
    seconds = int(stamp) // 1000 if len(stamp) >= 13 else int(stamp)  # some clients send ms
    if abs(seconds - time.time()) > cfg["max_skew_s"]:
        raise XhsError(errors.INVALID_TIMESTAMP, "timestamp已过期，请检查服务器时间")
    if version != VERSION:
        raise _param("version 只支持 2.0")
    if str(params.get("sign") or "").lower() != sign(method, cfg["app_id"], stamp, cfg["secret"], version):
        raise XhsError(errors.INVALID_SIGN, "签名错误")
    if method not in METHODS:
        raise XhsError(errors.UNKNOWN_METHOD, f"method不存在：{method}")
    if method in OAUTH:
        return None
    token = params.get("accessToken")
    for shop in list(app[WORLD].shops.values()):
        if token and shop.get("access_token") == token:
            if shop["access_token_expires_at"] < now_ms():
                raise XhsError(errors.TOKEN_EXPIRED, "accessToken已过期")
            return shop["shop_id"]
    raise XhsError(errors.INVALID_TOKEN, "accessToken无效")


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _fail(exc: XhsError) -> web.Response:
    return _json(orjson.dumps(errors.body(exc.code, exc.msg, exc.legacy)))


def _fault(cfg: dict, kind: str | None) -> web.Response | None:
    """How the gateway answers a fault planned through /_sim/faults (or its own QPS limit)."""
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic(), per_second=True):
        return _fail(XhsError(errors.RATE_LIMITED, "请求过于频繁，请稍后再试"))
    if kind == "error_5xx":  # the load balancer's 502, or the platform saying it is busy
        cfg["errors_5xx"] += 1
        if cfg["errors_5xx"] % 2:
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return _fail(XhsError(errors.SYSTEM_BUSY, "系统繁忙，请稍后重试"))
    if kind == "duplicate_page" and cfg["last"] is not None:
        return _json(cfg["last"])
    return None


async def _gateway(request: web.Request) -> web.Response:
    cfg = request.app[STATE]
    kind, _ = await take_fault(request.app)
    answered = _fault(cfg, kind)
    if answered is not None:
        return answered
    try:
        params = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        return _fail(_param("请求体必须是 JSON 对象"))
    try:
        shop_id = _check(request.app, params)
        data = METHODS[params["method"]](request.app, shop_id, params)
        if inspect.isawaitable(data):
            data = await data
    except XhsError as exc:
        return _fail(exc)
    body = answer(data)
    cfg["last"] = body
    return _json(body[: len(body) // 2] if kind == "malformed" else body)


def create_app(world: World | None = None, app_id: str = "xhs_demo_app_01", secret: str = "xhs_demo_secret_e7",
               max_skew_s: float = 600.0, qps_limit: float | None = None,
               window_max_s: int = _LIMITS.window_max_s, lookback_days: int = _LIMITS.lookback_days or 90,
               max_page_no: int = 100, access_ttl_s: int = 7 * 86400, refresh_ttl_s: int = 14 * 86400,
               push_retries: int = 3, push_backoff: float = 0.2) -> web.Application:
    """The simulated gateway plus the shared /_sim control API and pushes.

    Every knob is also in `app[STATE]` and can change at run time (`qps_limit`: calls per second over all
    shops, None = off; token lifetimes 7 and 14 days by default, unverified).
    """
    world = world or World(region="CN", currency="CNY", id_factory=xhs_order_id)
    state = {"app_id": app_id, "secret": secret, "max_skew_s": max_skew_s, "qps_limit": qps_limit,
             "window_max_s": window_max_s, "lookback_days": lookback_days, "max_page_no": max_page_no,
             "access_ttl_s": access_ttl_s, "refresh_ttl_s": refresh_ttl_s, "masks_allowed": True,
             "calls": deque(), "errors_5xx": 0,
             "last": None}

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": app_id, "app_secret": secret, "seller_id": shop_id, **_tokens(shop_id, state, now_ms())}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = state
    app[HUB] = PushHub(app, XiaohongshuPushes(app_id), retries=push_retries, backoff=push_backoff)
    app.router.add_post(PATH, _gateway)
    return app
