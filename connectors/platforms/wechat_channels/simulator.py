"""A local channels/ec API (WeChat Channels shop) on top of the shared simkit world.

Real API (wechat_channels.md §1-§9), every answer HTTP 200 with `errcode`/`errmsg` as WeChat answers:
- `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`: a new 7200 s token; the shop's
  previous one stays valid five more minutes. `POST /cgi-bin/stable_token {grant_type, appid, secret,
  force_refresh}`: the current token while it is valid (a new one when forced or expired).
  Wrong AppID 40013, wrong secret 40125.
- `POST /channels/ec/order/list/get?access_token=`: `create_time_range` or `update_time_range`
  (Unix seconds, both ends included, span ≤ 7 days), `status`, `page_size` 1-100 (default 10),
  `next_key` (opaque, counts positions, "" first); newest update first; ids only.
- `POST /channels/ec/order/get {order_id}`: the order (render.py); unknown order 10020001.
- `POST /channels/ec/order/sensitiveinfo/decode {order_id}`: the receiver in clear, within a daily quota.
- `POST /channels/ec/order/delivery/send {order_id, delivery_list}`: ships the listed products through
  World.ship (20 → 21 → 30), partial shipments by listing a subset; refusals with the codes of shipping.py.
- Token errors: missing 41001, unknown 40001, expired 42001. Quotas: `minute_quota` calls per shop and
  minute → 45011; `daily_quota` per API, shop and day → 45009; simkit faults: rate_limit → 45011,
  error_5xx → HTTP 502 and errcode -1 in turn, slow, malformed (a truncated body), duplicate_page (the
  previous answer of the same API again).

Simulator only (not WeChat): `POST /_sim/tokens/expire {shop_id}` expires a shop's tokens;
`POST /_sim/webhooks`, `GET /_sim/webhooks`, `POST /_sim/webhooks/faults` (pushes.py).
Error codes marked unverified in the fact sheet (10020001, 40097 for a wrong range) are constants here.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections import defaultdict

import orjson
from aiohttp import web

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, ensure_shop, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, World

from . import shipping
from .pushes import WeChatPushes
from .render import detail_answer, order_status, product_id

TOKEN_TTL_S, OVERLAP_S = 7200, 300
WINDOW_MAX_S = 7 * 86_400
INVALID_APPID, INVALID_SECRET = 40013, 40125
INVALID_CREDENTIAL, MISSING_TOKEN, TOKEN_EXPIRED = 40001, 41001, 42001
DATA_FORMAT, INVALID_ARGS = 47001, 40097
DAILY_QUOTA, MINUTE_QUOTA, SYSTEM_BUSY = 45009, 45011, -1
ORDER_NOT_FOUND = 10020001  # unverified business code (the ship refusals: shipping.py)
STATE = web.AppKey("wechat_channels_state", dict)
HUB = web.AppKey("wechat_channels_pushes", PushHub)


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _answer(obj: dict) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json", charset="utf-8")


def _error(exc: ApiError) -> web.Response:
    return _answer({"errcode": exc.code, "errmsg": f"{exc.message} rid: {_rid()}"})


def app_id(shop_id: str) -> str:
    """The simulated AppID of a shop (stable per shop id)."""
    return "wx" + hashlib.sha256(f"appid:{shop_id}".encode()).hexdigest()[:16]


def app_secret(shop_id: str) -> str:
    """The simulated AppSecret of a shop (stable per shop id); also its message-server token."""
    return hashlib.sha256(f"secret:{shop_id}".encode()).hexdigest()[:32]


def _new_token() -> str:
    return "86_" + base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("=")


def _issue(shop: dict, keep_previous: bool) -> dict:
    now = time.time()
    if keep_previous and shop.get("access_token"):
        shop["previous_token"], shop["previous_expires_at"] = shop["access_token"], min(
            shop.get("token_expires_at", now), now + OVERLAP_S)
    shop["access_token"], shop["token_expires_at"] = _new_token(), now + TOKEN_TTL_S
    return {"access_token": shop["access_token"], "expires_in": TOKEN_TTL_S}


def _shop_of_app(app: web.Application, appid: str | None, secret: str | None) -> dict:
    shop = next((s for s in list(app[WORLD].shops.values()) if appid and s.get("app_key") == appid), None)
    if shop is None:
        raise ApiError(INVALID_APPID, "invalid appid")
    if secret != shop.get("app_secret"):
        raise ApiError(INVALID_SECRET, "invalid appsecret")
    return shop


async def _token(request: web.Request) -> web.Response:
    q = request.query
    try:
        if q.get("grant_type") != "client_credential":
            raise ApiError(40002, "invalid grant_type")
        return _answer(_issue(_shop_of_app(request.app, q.get("appid"), q.get("secret")), keep_previous=True))
    except ApiError as exc:
        return _error(exc)


async def _stable_token(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
        if body.get("grant_type") != "client_credential":
            raise ApiError(40002, "invalid grant_type")
        shop = _shop_of_app(request.app, body.get("appid"), body.get("secret"))
        left = shop.get("token_expires_at", 0) - time.time()
        if body.get("force_refresh") or left <= 0 or not shop.get("access_token"):
            return _answer(_issue(shop, keep_previous=False))
        return _answer({"access_token": shop["access_token"], "expires_in": int(left)})
    except ApiError as exc:
        return _error(exc)


async def _json_body(request: web.Request) -> dict:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(DATA_FORMAT, "data format error") from None
    if not isinstance(body, dict):
        raise ApiError(DATA_FORMAT, "data format error")
    return body


def _shop_of_token(app: web.Application, token: str | None) -> str:
    if not token:
        raise ApiError(MISSING_TOKEN, "access_token missing")
    now = time.time()
    for shop_id, shop in list(app[WORLD].shops.items()):
        if shop.get("access_token") == token:
            if shop.get("token_expires_at", 0) <= now:
                raise ApiError(TOKEN_EXPIRED, "access_token expired")
            return shop_id
        if shop.get("previous_token") == token:
            if shop.get("previous_expires_at", 0) <= now:
                raise ApiError(TOKEN_EXPIRED, "access_token expired")
            return shop_id
    raise ApiError(INVALID_CREDENTIAL, "invalid credential, access_token is invalid or not latest")


def _int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise ApiError(INVALID_ARGS, f"invalid args hint: [{name} must be an integer]")
    number = int(value)
    if not low <= number <= high:
        raise ApiError(INVALID_ARGS, f"invalid args hint: [{name} must be between {low} and {high}]")
    return number


def _range(body: dict) -> tuple[str, int, int] | None:
    for name, field in (("update_time_range", "updated_at"), ("create_time_range", "created_at")):
        span = body.get(name)
        if span is None:
            continue
        if not isinstance(span, dict):
            raise ApiError(INVALID_ARGS, f"invalid args hint: [{name} must be an object]")
        start = _int(span.get("start_time"), f"{name}.start_time", 0, 2**32)
        end = _int(span.get("end_time"), f"{name}.end_time", 0, 2**32)
        if end < start:
            raise ApiError(INVALID_ARGS, f"invalid args hint: [{name} end_time before start_time]")
        if end - start > WINDOW_MAX_S:
            raise ApiError(INVALID_ARGS, f"invalid args hint: [{name} must not exceed 7 days]")
        return field, start, end
    return None


def _cursor(offset: int, query: bytes) -> str:
    raw = orjson.dumps({"offset": offset, "q": hashlib.sha1(query).hexdigest()[:8]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(next_key, query: bytes) -> int:
    if not next_key:
        return 0
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(str(next_key) + "=" * (-len(str(next_key)) % 4)))
        if doc["q"] == hashlib.sha1(query).hexdigest()[:8] and doc["offset"] >= 0:
            return int(doc["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        pass
    raise ApiError(INVALID_ARGS, "invalid args hint: [next_key is invalid]")


def _list(app: web.Application, shop_id: str, body: dict) -> dict:
    span = _range(body)
    if span is None:
        raise ApiError(INVALID_ARGS, "invalid args hint: [create_time_range or update_time_range is required]")
    field, start, end = span
    size = _int(body.get("page_size", 10), "page_size", 1, 100)
    status = body.get("status")
    wanted = None if status in (None, "") else _int(status, "status", 0, 1000)
    query = orjson.dumps([field, start, end, wanted, size])
    offset = _offset(body.get("next_key"), query)
    hits = [o for o in list(app[WORLD].orders.values())
            if o.shop_id == shop_id and start <= getattr(o, field) // 1000 <= end
            and (wanted is None or order_status(o) == wanted)]
    hits.sort(key=lambda o: (getattr(o, field), o.external_id), reverse=True)
    chunk = hits[offset: offset + size]
    more = offset + size < len(hits)
    return {"order_id_list": [o.external_id for o in chunk], "next_key": _cursor(offset + len(chunk), query),
            "has_more": more}


def _order(app: web.Application, shop_id: str, body: dict):
    order_id = body.get("order_id")
    order = app[WORLD].orders.get(str(order_id)) if order_id not in (None, "") else None
    if order is None or order.shop_id != shop_id:
        raise ApiError(ORDER_NOT_FOUND, "order not exist")
    return order


def _detail(app: web.Application, shop_id: str, body: dict) -> dict:
    return detail_answer(_order(app, shop_id, body))


def _decode(app: web.Application, shop_id: str, body: dict) -> dict:
    address = detail_answer(_order(app, shop_id, body), plaintext=True)["order"]["order_detail"]["delivery_info"]
    return {"address_info": address["address_info"]}


_WAYBILL = re.compile(r"^[A-Za-z0-9]{6,32}$")  # a waybill number as carriers issue them (rule unverified)
_REFUSAL = {  # simkit refusal -> (errcode, errmsg); the numbers are unverified
    "closed": (shipping.ORDER_STATE, "order status not allow deliver"),
    "unpaid": (shipping.ORDER_STATE, "order status not allow deliver"),
    "refunded": (shipping.SKU_REFUNDED, "sku aftersale finished, not allow deliver"),
    "already_shipped": (shipping.SKU_DELIVERED, "sku already delivered"),
    "unknown_line": (shipping.SKU_NOT_IN_ORDER, "sku not in order"),
}


def _package(order, package, carriers: dict) -> tuple[str, str, list[str]]:
    """(delivery_id, waybill_id, sku ids) of one `delivery_list` entry, checked as WeChat checks it."""
    if not isinstance(package, dict):
        raise ApiError(INVALID_ARGS, "invalid args hint: [delivery_list item must be an object]")
    delivery_id, waybill = str(package.get("delivery_id") or ""), str(package.get("waybill_id") or "")
    items = package.get("product_infos")
    if not delivery_id or not waybill or not isinstance(items, list) or not items:
        raise ApiError(INVALID_ARGS, "invalid args hint: [delivery_id, waybill_id and product_infos are required]")
    if package.get("deliver_type", 1) != 1:
        raise ApiError(INVALID_ARGS, "invalid args hint: [deliver_type must be 1 (express)]")
    if delivery_id not in carriers:
        raise ApiError(shipping.INVALID_DELIVERY_ID, f"invalid delivery_id {delivery_id}")
    if not _WAYBILL.match(waybill):
        raise ApiError(shipping.INVALID_WAYBILL, "invalid waybill_id")
    lines = {line.line_id: line for line in order.lines}
    skus = []
    for item in items:
        line = lines.get(str(item.get("sku_id"))) if isinstance(item, dict) else None
        if line is None:
            raise ApiError(shipping.SKU_NOT_IN_ORDER, f"sku not in order: {item}")
        if str(item.get("product_id")) != product_id(line) or item.get("product_cnt") != line.quantity:
            raise ApiError(INVALID_ARGS, f"invalid args hint: [product_id/product_cnt of sku {line.line_id}]")
        skus.append(line.line_id)
    return delivery_id, waybill, skus


async def _deliver(app: web.Application, shop_id: str, body: dict) -> dict:
    """`order/delivery/send`: each package of `delivery_list` leaves with its waybill (World.ship); listing
    some of the products is a partial shipment (20 → 21 → 30). The next order/get shows the packages and
    a push says the order was delivered."""
    order = _order(app, shop_id, body)
    packages = body.get("delivery_list")
    if not isinstance(packages, list) or not packages:
        raise ApiError(INVALID_ARGS, "invalid args hint: [delivery_list is required]")
    if order.status not in ("PAID", "PARTIALLY_SHIPPED"):  # 20 待发货 and 21 部分发货 only
        raise ApiError(shipping.ORDER_STATE, "order status not allow deliver")
    carriers = folder_manifest(__file__).carriers
    checked = [_package(order, package, carriers) for package in packages]
    for delivery_id, waybill, skus in checked:
        try:
            app[WORLD].ship(order, skus, delivery_id, carriers[delivery_id], waybill, now_ms())
        except ShipRefusal as exc:
            raise ApiError(*_REFUSAL[exc.kind]) from None
    await notify(app, shop_id, [order])
    return {}


API = {"order/list/get": _list, "order/get": _detail, "order/sensitiveinfo/decode": _decode}
QUOTA_DEFAULTS = {"order/sensitiveinfo/decode": 1000}  # decode is audited and quota-limited


def _over_minute_quota(cfg: dict, shop_id: str) -> bool:
    limit = cfg["minute_quota"]
    if not limit:
        return False
    minute = int(time.time() // 60)
    key = (shop_id, minute)
    cfg["minute_calls"] = {k: v for k, v in cfg["minute_calls"].items() if k[1] == minute}
    cfg["minute_calls"][key] = cfg["minute_calls"].get(key, 0) + 1
    return cfg["minute_calls"][key] > limit


def _over_daily_quota(cfg: dict, shop_id: str, api: str) -> bool:
    limit = cfg["daily_quota"] if cfg["daily_quota"] else QUOTA_DEFAULTS.get(api)
    if not limit:
        return False
    day = int((time.time() + 8 * 3600) // 86_400)  # quotas reset at Beijing midnight
    key = (shop_id, api, day)
    cfg["daily_calls"][key] += 1
    return cfg["daily_calls"][key] > limit


async def _api(request: web.Request) -> web.Response:
    api = request.match_info["api"]
    cfg = request.app[STATE]
    if api not in API and api != "order/delivery/send":
        return _error(ApiError(40066, "invalid url"))
    kind, _ = await take_fault(request.app)
    try:
        shop_id = _shop_of_token(request.app, request.query.get("access_token"))
        if kind == "rate_limit" or _over_minute_quota(cfg, shop_id):
            raise ApiError(MINUTE_QUOTA, "api minute-quota reach limit  mustslower  retry next minute")
        if _over_daily_quota(cfg, shop_id, api):
            raise ApiError(DAILY_QUOTA, "reach max api daily quota limit")
        if kind == "error_5xx":
            cfg["errors_5xx"] += 1
            if cfg["errors_5xx"] % 2:
                return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                    content_type="text/html")
            raise ApiError(SYSTEM_BUSY, "system error")
        if kind == "duplicate_page" and api in cfg["last"]:
            return web.Response(body=cfg["last"][api], content_type="application/json", charset="utf-8")
        body = await _json_body(request)
        result = await _deliver(request.app, shop_id, body) if api == "order/delivery/send" else \
            API[api](request.app, shop_id, body)
    except ApiError as exc:
        return _error(exc)
    response = _answer({"errcode": 0, "errmsg": "ok", **result})
    cfg["last"][api] = response.body
    if kind == "malformed":
        response.body = response.body[: len(response.body) // 2]
    return response


async def _expire_tokens(request: web.Request) -> web.Response:
    body = await request.json()
    shop = ensure_shop(request.app, str(body["shop_id"]))
    shop["token_expires_at"] = shop["previous_expires_at"] = time.time() - 1
    return web.json_response({"shop_id": shop["shop_id"], "expired": True})


def create_app(world: World | None = None, minute_quota: int | None = None,
               daily_quota: int | None = None) -> web.Application:
    """The simulated channels/ec API plus the shared /_sim control API and pushes.

    `minute_quota` (calls per shop and minute) and `daily_quota` (calls per API, shop and day) are off
    by default; both can be changed at run time in `app[STATE]`.
    """
    world = world or World(region="CN", currency="CNY")

    def shop_defaults(shop_id: str) -> dict:
        return {"app_key": app_id(shop_id), "app_secret": app_secret(shop_id), "access_token": _new_token(),
                "token_expires_at": time.time() + TOKEN_TTL_S,
                "original_id": "gh_" + hashlib.sha256(f"gh:{shop_id}".encode()).hexdigest()[:12]}

    app = new_sim_app(world, shop_defaults)
    app[STATE] = {"minute_quota": minute_quota, "daily_quota": daily_quota, "minute_calls": {},
                  "daily_calls": defaultdict(int), "errors_5xx": 0, "last": {}}
    app[HUB] = PushHub(app, WeChatPushes())
    app.router.add_get("/cgi-bin/token", _token)
    app.router.add_post("/cgi-bin/stable_token", _stable_token)
    app.router.add_post("/channels/ec/{api:.+}", _api)
    app.router.add_post("/_sim/tokens/expire", _expire_tokens)
    return app
