"""A local Doudian gateway over the simkit World, faithful to douyin.md §9.

`POST /{group}/{name}` with the method in the query (`method` must equal the dotted path), system
params in the query and the business params as the JSON body, whose exact text is the signed
`param_json`. Every answer is HTTP 200 with `{code, msg, sub_code, sub_msg, log_id, data}` (a 5xx
fault alternates a 502 with code 20000). Modelled: hmac-sha256/md5 signatures, timestamp skew, 7-day
tokens that `token.refresh` replaces (the old one works for a short grace) and that expire on demand
(`POST /_sim/tokens/expire {"shop_id"}`), `token.create` for self-use apps, `order.searchList` (page from
0, size ≤ 100, update/create time filters, `combine_status`, `total`, the page × size depth cap),
`order.orderDetail`, `order.batchDecrypt` (≤ 50 ciphertexts, a per-shop daily quota), the ship APIs
`order.logisticsAdd` (the whole order) and `order.logisticsAddMultiPack` (packages of some sku orders) on
World.ship, refusing as code 50002 `isv.business-failed:<n>` (facts.toml [ship_refusals]) and pushing
102 on success, the QPS limit
(code 60000) and the simkit faults. Pushes: see delivery.py.

Knobs (tests set them in `app[STATE]`): `qps_limit` (calls per second over all shops, None = off),
`summaries` (list entries without `sku_order_list`, so that a client must call `order.orderDetail`),
`depth_max` (the paging cap), `decrypt_quota` (ciphertexts per shop and day).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections import deque

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.faults import over_qps
from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, SimOrder, World

from .delivery import DouyinPushes
from .facts import FACTS
from .render import (
    STATUS_CODE,
    answer,
    ciphertext,
    douyin_shop_id,
    list_data,
    log_id,
    shop_order,
    virtual_number,
)
from .signing import SIGN_METHODS, VERSION, sign

DEMO_APP_KEY = "7300000000000000001"
DEMO_SECRET = "dd_demo_secret_ab12"
_MANIFEST = folder_manifest(__file__)
STATE = web.AppKey("douyin_state", dict)
HUB = web.AppKey("douyin_push", PushHub)
TOKEN_METHODS = ("token.create", "token.refresh")
SHIP_METHODS = ("order.logisticsAdd", "order.logisticsAddMultiPack")


class DouyinError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


def _bad_param(sub_code: str, sub_msg: str) -> DouyinError:
    return DouyinError(40003, "非法的参数", sub_code, sub_msg)


def _missing(name: str) -> DouyinError:
    return DouyinError(40001, "缺少参数", f"isv.missing-parameter:{name}", f"缺少参数 {name}")


def _business(sub_msg: str) -> DouyinError:
    return DouyinError(40004, "非法的业务参数", "isv.parameter-invalid", sub_msg)


def douyin_order_id(rng) -> str:
    """Parent order ids shaped like Douyin's: 19 digits starting with 69 (below 2^63, above 2^53)."""
    return str(rng.randrange(6_900_000_000_000_000_000, 6_999_999_999_999_999_999))


def new_tokens(shop: dict, now: int) -> None:
    """Issue a fresh access/refresh token pair to `shop` (7 and 14 days); the old access token keeps
    working for the grace period."""
    if shop.get("access_token"):
        shop["previous_access_token"] = shop["access_token"]
        shop["previous_valid_until"] = now + FACTS.token.refresh_grace_s * 1000
    shop["access_token"] = str(uuid.uuid4())
    shop["refresh_token"] = str(uuid.uuid4())
    shop["token_expires_at"] = now + FACTS.token.access_ttl_s * 1000
    shop["refresh_expires_at"] = now + FACTS.token.refresh_ttl_s * 1000


def _shop_of_token(world: World, token: str) -> str:
    now = now_ms()
    for shop_id, shop in list(world.shops.items()):
        if hmac.compare_digest(shop.get("access_token", ""), token):
            if shop.get("token_expires_at", now + 1) <= now:
                raise _bad_param("isv.access-token-expired", "access_token已过期")
            return shop_id
        if shop.get("previous_access_token") == token and shop.get("previous_valid_until", 0) > now:
            return shop_id
        if shop.get("previous_access_token") == token:
            raise _bad_param("isv.access-token-expired", "access_token已过期")
    raise _bad_param("isv.access-token-no-existed", "access_token不存在")


def _params(body: bytes) -> dict:
    try:
        params = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise _bad_param("isv.parameter-format-invalid", "param_json 不是合法的 JSON") from None
    if not isinstance(params, dict):
        raise _bad_param("isv.parameter-format-invalid", "param_json 必须是 JSON 对象")
    return params


def _int(params: dict, name: str, default: int | None = None) -> int | None:
    """An integer business param; digit strings are accepted (they were strings historically)."""
    value = params.get(name, default)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise _bad_param("isv.parameter-format-invalid", f"{name} 类型错误")


def _search_list(app: web.Application, shop_id: str, params: dict) -> dict:
    world, cfg = app[WORLD], app[STATE]
    page, size = _int(params, "page", 0), _int(params, "size", 10)
    if page < 0 or not 1 <= size <= 100:
        raise _business("page 从 0 开始，size 取值 1-100")
    if (page + 1) * size > cfg["depth_max"]:
        raise DouyinError(FACTS.paging.deep_code, "非法的业务参数", FACTS.paging.deep_sub_code,
                          f"page*size 不能超过 {cfg['depth_max']}，请缩小查询时间范围")
    by = params.get("order_by") or "create_time"
    if by not in ("create_time", "update_time"):
        raise _business("order_by 只能是 create_time 或 update_time")
    field = "updated_at" if by == "update_time" else "created_at"
    bounds = {}
    for prefix, attr in (("update_time", "updated_at"), ("create_time", "created_at")):
        start, end = _int(params, f"{prefix}_start"), _int(params, f"{prefix}_end")
        if start is not None and end is not None and end < start:
            raise _business(f"{prefix}_end 不能早于 {prefix}_start")
        bounds[attr] = (start, end)
    wanted = {str(c.get("order_status")) for c in params.get("combine_status") or [] if isinstance(c, dict)}
    hits = []
    for order in list(world.orders.values()):
        if order.shop_id != shop_id:
            continue
        if any((lo is not None and getattr(order, attr) // 1000 < lo) or (hi is not None and getattr(order, attr) // 1000 > hi)
               for attr, (lo, hi) in bounds.items()):
            continue  # second-granular and inclusive at both ends
        if wanted and str(STATUS_CODE[order.status]) not in wanted:
            continue
        hits.append(order)
    asc = params.get("order_asc") in (True, "true", "1", 1)
    hits.sort(key=lambda o: (getattr(o, field) // 1000, o.external_id), reverse=not asc)
    chunk = [shop_order(o) for o in hits[page * size:(page + 1) * size]]
    if cfg["summaries"]:
        chunk = [{k: v for k, v in o.items() if k not in ("sku_order_list", "logistics_info")} for o in chunk]
    return list_data(chunk, page, size, len(hits))


def _detail(app: web.Application, shop_id: str, params: dict) -> dict:
    oid = params.get("shop_order_id")
    if not oid:
        raise _missing("shop_order_id")
    order = app[WORLD].orders.get(str(oid))
    if order is None or order.shop_id != shop_id:
        raise DouyinError(50002, "业务处理失败", "isv.business-failed:10003", "订单不存在")
    return {"shop_order_detail": shop_order(order)}


def _decrypt(app: web.Application, shop_id: str, params: dict) -> dict:
    infos = params.get("cipher_infos")
    if not isinstance(infos, list) or not infos:
        raise _missing("cipher_infos")
    if len(infos) > 50:
        raise _business("cipher_infos 最多 50 个")
    cfg, world = app[STATE], app[WORLD]
    day = time.strftime("%Y%m%d")
    used = cfg["decrypted"].setdefault((shop_id, day), 0)
    if used + len(infos) > cfg["decrypt_quota"]:
        raise DouyinError(50002, "业务处理失败", "isv.business-failed:decrypt-quota", "今日解密额度已用完")
    cfg["decrypted"][(shop_id, day)] = used + len(infos)
    out = []
    for info in infos:
        order = world.orders.get(str((info or {}).get("auth_id")))
        text = (info or {}).get("cipher_text")
        entry = {"auth_id": (info or {}).get("auth_id"), "cipher_text": text, "decrypt_text": "", "err_no": 0,
                 "err_msg": "", "is_virtual_tel": False, "phone_no_a": "", "phone_no_b": "", "expire_time": 0}
        plain = None
        if order is not None and order.shop_id == shop_id:
            virtual = virtual_number(order)
            for kind, value in (("name", order.receiver_name), ("phone", virtual or order.receiver_phone),
                                ("address", order.street)):
                if ciphertext(kind, value, shop_id) == text:
                    plain = value
                    if kind == "phone" and virtual:
                        a, b = virtual.split("-")
                        entry.update(is_virtual_tel=True, phone_no_a=a, phone_no_b=b,
                                     expire_time=now_ms() // 1000 + 15 * 86400)
        if plain is None:
            entry.update(err_no=300008, err_msg="密文与订单不匹配")
        else:
            entry["decrypt_text"] = plain
        out.append(entry)
    return {"decrypt_infos": out, "custom_err": {"err_code": 0, "err_msg": ""}}


def _token_data(shop: dict) -> dict:
    return {"access_token": shop["access_token"], "expires_in": FACTS.token.access_ttl_s,
            "refresh_token": shop["refresh_token"], "scope": "SCOPE", "shop_id": douyin_shop_id(shop["shop_id"]),
            "shop_name": "同路抖音小店", "authority_id": "", "auth_subject_type": "MiniApp"}


def _token_create(app: web.Application, params: dict) -> dict:
    if params.get("grant_type") != "authorization_self":
        raise DouyinError(50001, "token生成失败", "isv.token-create-failed", "自用型应用请使用 authorization_self")
    wanted = str(params.get("shop_id") or "")
    shop = next((s for s in list(app[WORLD].shops.values()) if str(douyin_shop_id(s["shop_id"])) == wanted), None)
    if shop is None:
        raise DouyinError(50001, "token生成失败", "isv.token-create-failed", "店铺未授权该应用")
    new_tokens(shop, now_ms())
    app[WORLD].changes += 1
    return _token_data(shop)


def _token_refresh(app: web.Application, params: dict) -> dict:
    if params.get("grant_type") != "refresh_token":
        raise _business("grant_type 必须是 refresh_token")
    token, now = params.get("refresh_token") or "", now_ms()
    shop = next((s for s in list(app[WORLD].shops.values()) if token and s.get("refresh_token") == token), None)
    if shop is None or shop.get("refresh_expires_at", now + 1) <= now:
        raise DouyinError(50001, "token生成失败", "isv.refresh-token-invalid", "refresh_token 无效或已过期")
    new_tokens(shop, now)
    app[WORLD].changes += 1
    return _token_data(shop)


_SHIP_REFUSAL = {  # simkit refusal -> (facts.toml [ship_refusals] number, the platform's words)
    "closed": ("10101", "订单已取消，不能发货"), "unpaid": ("10102", "订单未支付，不能发货"),
    "refunded": ("10103", "商品已退款，不能发货"), "already_shipped": ("10104", "订单已发货，不能重复发货"),
    "unknown_line": ("10105", "子订单不属于该订单"),
}
_TRACKING = re.compile(r"[A-Za-z0-9]{6,32}")  # a waybill number as carriers issue them (rule unverified)


def _failed(number: str, words: str) -> DouyinError:
    return DouyinError(50002, "业务处理失败", f"isv.business-failed:{number}", words)


def _pack(params: dict, where: str = "") -> tuple[str, str]:
    """(company_code, logistics_code) of a shipment or pack, checked."""
    company, number = params.get("company_code"), params.get("logistics_code")
    for name, value in (("company_code", company), ("logistics_code", number)):
        if not isinstance(value, str) or not value:
            raise _missing(where + name)
    if company not in _MANIFEST.carriers:
        raise _failed("10106", f"物流公司编码不存在: {company}")
    if not _TRACKING.fullmatch(number):
        raise _business(f"运单号格式不正确: {number}")
    return company, number


def _ship(app: web.Application, shop_id: str, order_id, lines: list[str], company: str, number: str) -> SimOrder:
    order = app[WORLD].orders.get(str(order_id))
    if order is None or order.shop_id != shop_id:
        raise _failed("10003", "订单不存在")
    try:
        app[WORLD].ship(order, lines, company, _MANIFEST.carriers[company], number, now_ms())
    except ShipRefusal as exc:
        raise _failed(*_SHIP_REFUSAL[exc.kind]) from None
    return order


def _logistics_add(app: web.Application, shop_id: str, params: dict) -> dict:
    """`order.logisticsAdd`: every sku order of the shop order not shipped or refunded yet leaves in one
    package; the order shows 已发货 (3) on its next read."""
    if not params.get("order_id"):
        raise _missing("order_id")
    company, number = _pack(params)
    _ship(app, shop_id, params["order_id"], [], company, number)
    return {}


def _logistics_add_multi_pack(app: web.Application, shop_id: str, params: dict) -> dict:
    """`order.logisticsAddMultiPack`: packages of some sku orders each (`pack_list[{shipped_order_info:
    [{shipped_order_id, shipped_num}], company_code, logistics_code}]`); the order shows 部分发货 (101) until
    every sku order has left. A sku leaves whole: `shipped_num` is its `item_num`."""
    if not params.get("order_id"):
        raise _missing("order_id")
    packs = params.get("pack_list")
    if not isinstance(packs, list) or not packs:
        raise _missing("pack_list")
    order = app[WORLD].orders.get(str(params["order_id"]))
    if order is None or order.shop_id != shop_id:
        raise _failed("10003", "订单不存在")
    planned = []
    for pack in packs:
        if not isinstance(pack, dict):
            raise _bad_param("isv.parameter-format-invalid", "pack_list 的元素必须是对象")
        company, number = _pack(pack, "pack_list.")
        info = pack.get("shipped_order_info")
        if not isinstance(info, list) or not info:
            raise _missing("pack_list.shipped_order_info")
        lines = {line.line_id: line for line in order.lines}
        ids = []
        for item in info:
            sku = str((item or {}).get("shipped_order_id") or "") if isinstance(item, dict) else ""
            if not sku:
                raise _missing("shipped_order_info.shipped_order_id")
            if sku in lines and _int(item, "shipped_num") != lines[sku].quantity:
                raise _business(f"shipped_num 须等于子订单 {sku} 的商品数量 {lines[sku].quantity}")
            ids.append(sku)
        planned.append((ids, company, number))
    for ids, company, number in planned:
        _ship(app, shop_id, order.external_id, ids, company, number)
    return {"pack_list": [{"pack_id": f"{number}-1", "shipped_order_info": [{"shipped_order_id": x} for x in ids]}
                          for ids, _company, number in planned]}


METHODS = {"order.searchList": _search_list, "order.orderDetail": _detail, "order.batchDecrypt": _decrypt,
           "order.logisticsAdd": _logistics_add, "order.logisticsAddMultiPack": _logistics_add_multi_pack}


def _error(exc: DouyinError) -> web.Response:
    body = orjson.dumps({"code": exc.code, "msg": exc.msg, "sub_code": exc.sub_code, "sub_msg": exc.sub_msg,
                         "log_id": log_id(), "data": None})
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _check_system(app: web.Application, method: str, query, body: bytes) -> None:
    cfg = app[STATE]
    for name in ("app_key", "method", "timestamp", "v", "sign"):
        if not query.get(name):
            raise _missing(name)
    if query["method"] != method:
        raise _bad_param("isv.method-invalid", f"method 与请求路径不符: {query['method']}")
    if query["app_key"] != cfg["app_key"]:
        raise _bad_param("isv.app-key-invalid", "app_key 不存在")
    if query["v"] != VERSION:
        raise _bad_param("isv.version-invalid", "v 只能是 2")
    sign_method = query.get("sign_method") or "md5"
    if sign_method not in SIGN_METHODS:
        raise _bad_param("isv.sign-method-invalid", f"不支持的 sign_method {sign_method}")
    stamp = query["timestamp"]
    if not stamp.isdigit() or abs(int(stamp) * 1000 - now_ms()) > cfg["max_skew_s"] * 1000:
        raise _bad_param("isv.timestamp-invalid", "timestamp 与服务器时间相差过大")
    text = body.decode("utf-8", "replace")
    expected = sign(query["app_key"], cfg["secret"], method, text, stamp, sign_method)
    if not hmac.compare_digest(expected, query["sign"].lower()):
        raise _bad_param("isv.signature-invalid", "签名无效")


async def _gateway(request: web.Request) -> web.Response:
    app, cfg = request.app, request.app[STATE]
    method = f"{request.match_info['group']}.{request.match_info['name']}"
    body = await request.read()
    kind, _ = await take_fault(app)
    if kind == "rate_limit" or over_qps(cfg["calls"], cfg["qps_limit"], time.monotonic()):
        return _error(DouyinError(60000, "触发限流，请稍后重试", FACTS.errors.rate_limited_sub_code,
                                  "当前接口调用频率超过限制"))
    if kind == "error_5xx":
        cfg["errors_5xx"] += 1
        if cfg["errors_5xx"] % 2:
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return _error(DouyinError(20000, "服务不可用", "dop.service-error", "服务暂时不可用，请稍后重试"))
    if kind == "duplicate_page" and cfg["last"] is not None:
        return web.Response(body=cfg["last"], content_type="application/json", charset="utf-8")
    try:
        _check_system(app, method, request.query, body)
        params = _params(body)
        if method == "token.create":
            data = _token_create(app, params)
        elif method == "token.refresh":
            data = _token_refresh(app, params)
        elif method in METHODS:
            token = request.query.get("access_token")
            if not token:
                raise _missing("access_token")
            shop_id = _shop_of_token(app[WORLD], token)
            data = METHODS[method](app, shop_id, params)
            if method in SHIP_METHODS:  # the platform pushes 102 (shipped) to the shop's subscriber
                await notify(app, shop_id, [app[WORLD].orders[str(params["order_id"])]])
        else:
            raise _bad_param("isv.method-invalid", f"API {method} 不存在")
    except DouyinError as exc:
        return _error(exc)
    out = answer(data)
    cfg["last"] = out
    if kind == "malformed":
        out = out[: len(out) // 2]
    return web.Response(body=out, content_type="application/json", charset="utf-8")


async def _expire_token(request: web.Request) -> web.Response:
    body = await request.json()
    shop = request.app[WORLD].shops.get(str(body.get("shop_id")))
    if shop is None:
        raise web.HTTPNotFound(text="unknown shop")
    shop["token_expires_at"] = now_ms() - 1
    shop.pop("previous_access_token", None)
    request.app[WORLD].changes += 1
    return web.json_response({"shop_id": shop["shop_id"], "expired": True})


def create_app(world: World | None = None, app_key: str = DEMO_APP_KEY, secret: str = DEMO_SECRET,
               max_skew_s: float = 600.0, qps_limit: float | None = None, push_retries: int = 4,
               push_backoff: float = 0.5) -> web.Application:
    """The simulated Doudian gateway plus the shared /_sim control API and push delivery (a push that is
    not acknowledged is sent again after 0.5, 1, 2 and 4 s: a shop the receiver does not know yet is
    answered 503 until the connectors discovered it)."""
    world = world or World(region="CN", currency="CNY", id_factory=douyin_order_id)

    def shop_defaults(shop_id: str) -> dict:
        shop = {"app_key": app_key, "app_secret": secret, "douyin_shop_id": str(douyin_shop_id(shop_id))}
        new_tokens(shop, now_ms())
        # a stable first token per shop, so that a restarted stack finds the same credentials
        shop["access_token"] = str(uuid.UUID(hashlib.sha256(f"{secret}:{shop_id}".encode()).hexdigest()[:32]))
        return shop

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"app_key": app_key, "secret": secret, "max_skew_s": max_skew_s, "qps_limit": qps_limit,
                  "calls": deque(), "errors_5xx": 0, "last": None, "summaries": False,
                  "depth_max": FACTS.paging.depth_max, "decrypt_quota": 10_000, "decrypted": {}}
    app[HUB] = PushHub(app, DouyinPushes(), retries=push_retries, backoff=push_backoff)
    app.router.add_post("/_sim/tokens/expire", _expire_token)
    app.router.add_post("/{group:[A-Za-z]+}/{name:[A-Za-z]+}", _gateway)
    return app
