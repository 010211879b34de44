"""A local PDD POP gateway (`/api/router`) over the simkit World, faithful to pinduoduo.md §9.

Every answer is HTTP 200 JSON: `{"<api>_response": {...}}` or `{"error_response": {error_code,
error_msg, sub_code, sub_msg, request_id}}` with the codes of api.toml (unverified numbers). Checked on
every call, in this order: `type`, `client_id`, `sign` (md5, §2), `timestamp` (Unix seconds; a
millisecond timestamp is refused), `data_type` (JSON), the API, then the shop's `access_token` (expired
or unknown: 10019). Unpaid orders are invisible, as on the platform. `pdd.logistics.online.send` ships the
whole order on World.ship and refuses with api.toml's `refused_code` and a `sub_code` of [ship_refusals]. Test knobs: `app[STATE]["qps_limit"]`,
`expire_token(app, shop_id)` (also `POST /_sim/expire_token {"shop_id"}`), and the shared `/_sim/faults`.
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
from connectors.simkit.server import WORLD, ensure_shop, new_sim_app, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, SimOrder, World
from schemas.canonical import BEIJING

from . import api
from .render import decrypt, list_answer, order_dict, request_id
from .signing import sign

STATE = web.AppKey("pinduoduo_state", dict)
_LIMITS = folder_manifest(__file__).limits
_CARRIERS = folder_manifest(__file__).carriers  # logistics_id -> company
WINDOW_S, LIST_WINDOW_S = _LIMITS.window_max_s, 86_400  # increment ≤ 30 min; pdd.order.list.get ≤ 24 h
LOOKBACK_S = (_LIMITS.lookback_days or 90) * 86_400
CLIENT_ID, CLIENT_SECRET = "a1b2c3d4e5f6a7b8", "pdd_demo_secret_c0ffee"  # the fact sheet's demo keys
ORDER_STATUS = {"1": {1}, "2": {2}, "3": {3}, "5": {1, 2, 3}}
REFUND_STATUS = {"1": {1}, "2": {2}, "3": {3}, "4": {4}, "5": {1, 2, 3, 4}}
E = api.ERRORS


class PddError(Exception):
    def __init__(self, code: int, msg: str, sub_msg: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.sub_msg = code, msg, sub_msg


def order_serial(rng) -> str:
    """The digits of a new order number; the world prefixes the Beijing date (`240318-512347896540213`)."""
    return str(rng.randrange(10**14, 10**15))


class PddWorld(World):
    """The shared world with PDD's order numbers, line numbering and order-level discounts.

    simkit makes orders with numeric ids (and derives a duplicate's id from its original's number), so
    a fresh order is dressed as PDD shows it only once made: `order_sn` = Beijing `yyMMdd` of its
    creation + '-' + its digits (unless a test gave the world its own id factory), lines numbered
    `{order_sn}-{n}` (PDD has no line ids), and line discounts moved to the order (PDD's coupons are
    order-level; the buyer pays the same). After-sales cover the whole order, as on PDD: a refund
    request puts every line not yet refunded in it.
    """

    def __init__(self, seed: int = 7):
        super().__init__(seed=seed, region="CN", currency="CNY", id_factory=order_serial)
        self._made: list[SimOrder] | None = None

    def add(self, order: SimOrder, paid: bool, now_ms: int) -> SimOrder:
        order = super().add(order, paid, now_ms)
        if self._made is not None:
            self._made.append(order)
        return order

    def create_orders(self, shop_id: str, count: int, now_ms: int, paid: bool = True,
                      defect: str | None = None) -> list[SimOrder]:
        self._made = []
        try:
            made = super().create_orders(shop_id, count, now_ms, paid=paid, defect=defect)
        finally:
            fresh, self._made = self._made, None
        with self._lock:
            for order in fresh:
                self._dress(order)
        return made

    def _apply(self, order: SimOrder, name: str, now_ms: int) -> None:
        super()._apply(order, name, now_ms)
        if name == "request_refund":
            for line in order.lines:
                if line.refund_status != "REFUNDED":
                    line.refund_status = "REQUESTED"

    def _dress(self, order: SimOrder) -> None:
        if self.id_factory is order_serial and order.external_id.isdigit():
            day = datetime.fromtimestamp(order.created_at // 1000, tz=BEIJING).strftime("%y%m%d")
            serial = int(order.external_id)
            del self.orders[order.external_id]
            while f"{day}-{serial}" in self.orders:
                serial += 1
            order.external_id = f"{day}-{serial}"
            self.orders[order.external_id] = order
        order.order_discount += order.line_discounts
        for n, line in enumerate(order.lines, 1):
            line.discount = 0
            line.line_id = f"{order.external_id}-{n}"


def access_token(shop_id: str, secret: str = CLIENT_SECRET, generation: int = 0) -> str:
    """The simulated access token of a shop (a refresh starts a new generation)."""
    return "pdd_tok_" + hashlib.sha256(f"{secret}:{shop_id}:{generation}".encode()).hexdigest()[:24]


def _refresh_token(shop_id: str, secret: str, generation: int) -> str:
    return "pdd_rtok_" + hashlib.sha256(f"refresh:{secret}:{shop_id}:{generation}".encode()).hexdigest()[:24]


def _mall_id(shop_id: str) -> int:
    return 10_000_000 + int(hashlib.sha256(shop_id.encode()).hexdigest()[:8], 16) % 90_000_000


def expire_token(app: web.Application, shop_id: str) -> None:
    """Make a shop's access token expired (its refresh token keeps working)."""
    ensure_shop(app, shop_id)["token_expires_at"] = now_ms() - 1000


# ---- argument checks ----

def _int_arg(params: dict, name: str, default: int | None, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, "") and default is not None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise PddError(E["invalid_parameter"], "参数错误", f"{name} 必须是整数") from None
    if not low <= value <= high:
        raise PddError(E["invalid_parameter"], "参数错误", f"{name} 必须在 {low} 到 {high} 之间")
    return value


def _range(params: dict, start_name: str, end_name: str, widest_s: int) -> tuple[int, int]:
    """(start, end) Unix seconds of a query window, both inclusive, checked like the platform."""
    now = now_ms() // 1000
    start = _int_arg(params, start_name, None, 0, now + 86_400)
    end = _int_arg(params, end_name, None, 0, now + 86_400)
    if end < start:
        raise PddError(E["invalid_parameter"], "参数错误", f"{end_name} 不能早于 {start_name}")
    if end - start > widest_s:
        raise PddError(E["invalid_parameter"], "参数错误",
                       f"{start_name} 和 {end_name} 的时间间隔不能超过{widest_s // 60}分钟")
    if start < now - LOOKBACK_S:
        raise PddError(E["invalid_parameter"], "参数错误", f"{start_name} 只能查询最近三个月")
    return start, end


def _page(hits: list[SimOrder], params: dict) -> dict:
    page = _int_arg(params, "page", 1, 1, 1_000_000)
    size = _int_arg(params, "page_size", 100, 1, _LIMITS.page_size_max)
    chunk = hits[(page - 1) * size: page * size]
    return list_answer([order_dict(o) for o in chunk], len(hits), page * size < len(hits))


def _filtered(orders, params: dict) -> list[SimOrder]:
    wanted = ORDER_STATUS.get(str(params.get("order_status") or "5"))
    refunds = REFUND_STATUS.get(str(params.get("refund_status") or "5"))
    if wanted is None or refunds is None:
        raise PddError(E["invalid_parameter"], "参数错误", "order_status / refund_status 取值不合法")
    out = []
    for order in orders:
        if order.paid_at is None:
            continue  # PDD shows an order only once it is paid
        if wanted == {1, 2, 3} and refunds == {1, 2, 3, 4}:
            out.append(order)
            continue
        obj = order_dict(order)
        if obj["order_status"] in wanted and obj["refund_status"] in refunds:
            out.append(order)
    return out


# ---- APIs ----

def _increment(world: World, shop_id: str, params: dict) -> dict:
    start, end = _range(params, "start_updated_at", "end_updated_at", WINDOW_S)
    hits = world.changed_between(shop_id, start * 1000, (end + 1) * 1000)
    return _page(_filtered(hits, params), params)


def _list(world: World, shop_id: str, params: dict) -> dict:
    start, end = _range(params, "start_confirm_at", "end_confirm_at", LIST_WINDOW_S)
    hits = [o for o in list(world.orders.values()) if o.shop_id == shop_id and o.paid_at is not None
            and start * 1000 <= o.paid_at < (end + 1) * 1000]
    hits.sort(key=lambda o: (o.paid_at, o.external_id), reverse=True)
    answer = _page(_filtered(hits, params), params)
    answer["order_list"] = answer.pop("order_sn_list")
    return answer


def _information(world: World, shop_id: str, params: dict) -> dict:
    sn = params.get("order_sn")
    if not sn:
        raise PddError(E["invalid_parameter"], "参数错误", "order_sn 不能为空")
    order = world.orders.get(sn)
    if order is None or order.shop_id != shop_id or order.paid_at is None:
        raise PddError(E["invalid_parameter"], "参数错误", f"订单 {sn} 不存在")
    return {"order_info": order_dict(order), "request_id": request_id()}


def _decrypt_batch(world: World, shop_id: str, params: dict) -> dict:
    try:
        items = orjson.loads(params.get("data_list") or "")
    except orjson.JSONDecodeError:
        raise PddError(E["invalid_parameter"], "参数错误", "data_list 必须是 JSON 数组") from None
    if not isinstance(items, list) or not 1 <= len(items) <= api.DECRYPT_BATCH_MAX:
        raise PddError(E["invalid_parameter"], "参数错误",
                       f"data_list 必须有 1 到 {api.DECRYPT_BATCH_MAX} 项")
    out = []
    for item in items:
        tag, cipher = str(item.get("data_tag", "")), str(item.get("encrypted_data", ""))
        order = world.orders.get(tag)
        plain = decrypt(cipher) if order is not None and order.shop_id == shop_id else None
        out.append({"data_tag": tag, "encrypted_data": cipher, "decrypted_data": plain or "",
                    "data_type": 2 if cipher.startswith("$") else 1, "error_code": 0 if plain else 20001,
                    "error_msg": "" if plain else "解密失败"})
    return {"data_decrypt_list": out, "request_id": request_id()}


def _token_refresh(app: web.Application, params: dict) -> dict:
    token = params.get("refresh_token")
    world = app[WORLD]
    for shop_id, shop in list(world.shops.items()):
        if token and shop.get("refresh_token") == token:
            generation = shop.get("generation", 0) + 1
            secret = app[STATE]["secret"]
            now = now_ms()
            shop.update(access_token=access_token(shop_id, secret, generation),
                        refresh_token=_refresh_token(shop_id, secret, generation), generation=generation,
                        token_expires_at=now + api.TOKEN["access_token_lifetime_s"] * 1000)
            world.changes += 1
            return {"access_token": shop["access_token"], "expires_in": api.TOKEN["access_token_lifetime_s"],
                    "expires_at": shop["token_expires_at"] // 1000, "refresh_token": shop["refresh_token"],
                    "refresh_token_expires_in": api.TOKEN["refresh_token_lifetime_s"],
                    "owner_id": str(_mall_id(shop_id)), "owner_name": shop_id, "scope": ["pdd.order.*"],
                    "request_id": request_id()}
    raise PddError(E["invalid_parameter"], "参数错误", "refresh_token 无效或已过期")


_SHIP_REFUSAL = {  # simkit refusal -> (api.toml [ship_refusals] sub_code, the platform's words)
    "closed": ("logistics.order-cancelled", "订单已取消，不能发货"), "unpaid": ("logistics.order-unpaid", "订单未支付，不能发货"),
    "refunded": ("logistics.order-refunded", "订单已退款成功，不能发货"),
    "already_shipped": ("logistics.order-shipped", "订单已发货，不能重复发货"),
}
_TRACKING = re.compile(r"[A-Za-z0-9]{6,32}")  # a waybill number as carriers issue them (rule unverified)


class ShipError(PddError):
    """A refused shipment: `refused_code` with a sub_code saying why."""

    def __init__(self, sub_code: str, sub_msg: str):
        super().__init__(api.SHIP_REFUSED_CODE, "业务处理失败", sub_msg)
        self.sub_code = sub_code


def _online_send(world: World, shop_id: str, params: dict) -> dict:
    """`pdd.logistics.online.send`: the whole order leaves with `logistics_id` and `tracking_number`; its next
    read shows 已发货 (order_status 2) with them and `shipping_time`."""
    for name in ("order_sn", "logistics_id", "tracking_number"):
        if not params.get(name):
            raise PddError(E["invalid_parameter"], "参数错误", f"{name} 不能为空")
    sn, company, number = params["order_sn"], params["logistics_id"], params["tracking_number"]
    order = world.orders.get(sn)
    if order is None or order.shop_id != shop_id:
        raise ShipError("logistics.order-not-exist", f"订单 {sn} 不存在")
    if company not in _CARRIERS:
        raise ShipError("logistics.company-invalid", f"快递公司 {company} 不存在")
    if not _TRACKING.fullmatch(number):
        raise ShipError("logistics.tracking-invalid", "运单号不符合规则")
    try:
        world.ship(order, [], company, _CARRIERS[company], number, now_ms())
    except ShipRefusal as exc:
        raise ShipError(*_SHIP_REFUSAL[exc.kind]) from None
    return {"is_success": True, "request_id": request_id()}


SHOP_APIS = {
    "pdd.order.number.list.increment.get": (_increment, "order_sn_increment_get_response"),
    "pdd.order.list.get": (_list, "order_list_get_response"),
    "pdd.order.information.get": (_information, "order_info_get_response"),
    "pdd.open.decrypt.batch": (_decrypt_batch, "open_decrypt_batch_response"),
    "pdd.logistics.online.send": (_online_send, api.SHIP_RESPONSE),
}
TOKEN_APIS = {"pdd.pop.auth.token.refresh": "pop_auth_token_refresh_response"}


# ---- the router ----

def _error(exc: PddError) -> web.Response:
    body = {"error_response": {"error_code": exc.code, "error_msg": exc.msg,
                               "sub_code": getattr(exc, "sub_code", str(exc.code)),
                               "sub_msg": exc.sub_msg, "request_id": request_id()}}
    return web.Response(body=orjson.dumps(body), content_type="application/json", charset="utf-8")


def _check_system(app: web.Application, params: dict) -> None:
    cfg = app[STATE]
    if not params.get("type"):
        raise PddError(E["invalid_parameter"], "参数错误", "type 不能为空")
    if params.get("client_id") != cfg["client_id"]:
        raise PddError(E["invalid_client_id"], "client_id 不存在或已失效")
    if not params.get("sign") or params["sign"].upper() != sign(params, cfg["secret"]):
        raise PddError(E["invalid_sign"], "签名错误", "sign 校验失败")
    stamp = params.get("timestamp") or ""
    if not stamp.isdigit() or len(stamp) > 10:  # seconds: a millisecond timestamp has 13 digits
        raise PddError(E["invalid_timestamp"], "timestamp 不合法", "timestamp 必须是秒级 Unix 时间戳")
    if abs(int(stamp) - now_ms() // 1000) > cfg["max_skew_s"]:
        raise PddError(E["invalid_timestamp"], "timestamp 不合法", "timestamp 与服务器时间相差过大")
    if (params.get("data_type") or "JSON").upper() != "JSON":
        raise PddError(E["invalid_parameter"], "参数错误", "data_type 只支持 JSON")
    if params["type"] not in SHOP_APIS and params["type"] not in TOKEN_APIS:
        raise PddError(E["unknown_type"], "接口不存在", params["type"])


def _shop_of(app: web.Application, token: str | None) -> str:
    for shop_id, shop in list(app[WORLD].shops.items()):
        if token and shop.get("access_token") == token:
            if shop.get("token_expires_at", 0) <= now_ms():
                raise PddError(api.TOKEN_EXPIRED_CODE, "access_token已过期")
            return shop_id
    raise PddError(api.TOKEN_EXPIRED_CODE, "access_token不存在或已过期")


async def _params(request: web.Request) -> dict:
    params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = {}
            for k, v in (body if isinstance(body, dict) else {}).items():  # complex params as JSON strings
                params[k] = v if isinstance(v, str) else orjson.dumps(v).decode() if isinstance(
                    v, (list, dict)) else str(v)
        else:
            params.update({k: str(v) for k, v in (await request.post()).items()})
    return params


async def _router(request: web.Request) -> web.Response:
    params = await _params(request)
    cfg = request.app[STATE]
    kind, _ = await take_fault(request.app)
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic(), per_second=True):
        return _error(PddError(api.THROTTLED_CODE, "调用过于频繁，请调整调用频率"))
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        if cfg["errors_5xx"] % 2:
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        return _error(PddError(api.BUSY_FIRST, "系统繁忙，请稍后重试"))
    if kind == "duplicate_page" and cfg["last"] is not None:
        return web.Response(body=cfg["last"], content_type="application/json", charset="utf-8")
    try:
        _check_system(request.app, params)
        name = params["type"]
        if name in TOKEN_APIS:
            obj, root = _token_refresh(request.app, params), TOKEN_APIS[name]
        else:
            shop_id = _shop_of(request.app, params.get("access_token"))
            handler, root = SHOP_APIS[name]
            obj = handler(request.app[WORLD], shop_id, params)
    except PddError as exc:
        return _error(exc)
    body = orjson.dumps({root: obj})
    cfg["last"] = body
    if kind == "malformed":
        body = body[: len(body) // 2]
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def _expire(request: web.Request) -> web.Response:
    body = await request.json()
    expire_token(request.app, str(body["shop_id"]))
    return web.json_response({"expired": str(body["shop_id"])})


def create_app(world: World | None = None, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET,
               max_skew_s: float = 600.0, qps_limit: float | None = None) -> web.Application:
    """The simulated PDD gateway plus the shared /_sim control API.

    `qps_limit` (calls per second over all shops; None = off) answers the throttle error beyond it; it
    can be changed at run time through `app[STATE]["qps_limit"]`.
    """
    world = world or PddWorld()

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": client_id, "app_secret": secret, "access_token": access_token(shop_id, secret),
                "refresh_token": _refresh_token(shop_id, secret, 0), "generation": 0,
                "token_expires_at": now_ms() + api.TOKEN["access_token_lifetime_s"] * 1000,
                "mall_id": _mall_id(shop_id)}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"client_id": client_id, "secret": secret, "max_skew_s": max_skew_s, "qps_limit": qps_limit,
                  "calls": deque(), "errors_5xx": 0, "last": None}
    app.router.add_get("/api/router", _router)
    app.router.add_post("/api/router", _router)
    app.router.add_post("/_sim/expire_token", _expire)
    return app
