"""A local Shopify Admin REST API (orders) on top of the shared simkit world.

One server hosts every shop, so the shop is chosen by the `X-Shopify-Access-Token` header
(`GET /admin/api/{version}/orders.json`); `/shops/{shop_id}/admin/api/...` works too and then the token must
belong to that shop. Shop credentials come from `GET /_sim/shops`. Unknown or missing token -> 401.
Modelled: `status` default `open`, time/id/status filters, `limit` 50/250, Link cursors (`page_info` allows
only `limit`/`fields`), keyset paging on (updated_at, id), per-token leaky bucket with
`X-Shopify-Shop-Api-Call-Limit`, 429 + Retry-After, simkit faults and signed webhooks (see delivery.py).
Ship-back: `GET /orders/{id}/fulfillment_orders.json` and `POST /fulfillments.json` (see fulfillment.py); a
fulfilment changes the order, so the next read and an `orders/updated` webhook show it fulfilled.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import orjson
from aiohttp import web

from connectors.simkit.pushes import PushHub
from connectors.simkit.server import WORLD, new_sim_app, notify, now_ms, take_fault
from connectors.simkit.world import ShipRefusal, World

from . import fulfillment, listing
from .delivery import WebhookStyle
from .render import fulfillments, order_json

RATE_LIMIT_BODY = (
    b'{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume '
    b'uninterrupted service."}'
)
INVALID_TOKEN_BODY = (
    b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}'
)
CONFIG = web.AppKey("shopify_config", dict)
HUB = web.AppKey("shopify_webhooks", PushHub)
_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")


def shopify_id(rng) -> str:
    """Order ids shaped like Shopify's (~6.12e12)."""
    return str(rng.randrange(6_100_000_000_000, 6_199_999_999_999))


class LeakyBucket:
    """Shopify's REST limit: each call adds one drop; the bucket leaks `leak_rate` drops per second."""

    def __init__(self, size: int, leak_rate: float):
        self.size, self.leak_rate, self.level, self.stamp = size, leak_rate, 0.0, time.monotonic()

    def hit(self) -> bool:
        """Add one call; False (and nothing added) when the bucket is full."""
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.stamp) * self.leak_rate)
        self.stamp = now
        if self.level + 1 > self.size:
            return False
        self.level += 1
        return True

    def header(self) -> str:
        return f"{min(self.size, max(1, round(self.level)))}/{self.size}"


def create_app(
    world: World | None = None,
    access_token_prefix: str = "shpat_",
    client_secret: str = "shpss_demo_0f3c9a",
    api_version: str = "2024-10",
    bucket_size: int = 40,
    leak_rate: float = 2.0,
    retry_after: float = 2.0,
    webhook_retries: int = 3,
    webhook_backoff: float = 0.2,
) -> web.Application:
    """The simulator app: shared /_sim control API plus the Shopify orders endpoints and webhooks."""
    world = world or World(region="US", currency="USD", id_factory=shopify_id)

    def shop_defaults(shop_id: str) -> dict:
        digest = hashlib.sha256(f"{shop_id}:{client_secret}".encode()).hexdigest()[:32]
        return {
            "access_token": access_token_prefix + digest,
            "app_secret": client_secret,
            "shop_domain": f"{shop_id}.myshopify.com",
        }

    app = new_sim_app(world, shop_defaults)
    app[CONFIG] = {
        "api_version": api_version,
        "bucket_size": bucket_size,
        "leak_rate": leak_rate,
        "retry_after": retry_after,
        "buckets": {},
        "last_page": {},
    }
    app[HUB] = PushHub(app, WebhookStyle(api_version), retries=webhook_retries, backoff=webhook_backoff)
    for prefix in ("", "/shops/{shop_id}"):
        base = prefix + "/admin/api/{version}/orders"
        app.router.add_get(base + ".json", _list_orders)
        app.router.add_get(base + "/count.json", _count_orders)
        app.router.add_get(base + "/{order_id:[0-9]+}.json", _get_order)
        app.router.add_get(base + "/{order_id:[0-9]+}/fulfillment_orders.json", _get_fulfillment_orders)
        app.router.add_post(prefix + "/admin/api/{version}/fulfillments.json", _create_fulfillment)
    return app


def _json(status: int, body: bytes, headers: dict | None = None) -> web.Response:
    return web.Response(
        status=status, body=body, headers=headers or {}, content_type="application/json", charset="utf-8"
    )


def _error(status: int, message) -> web.Response:
    return _json(status, orjson.dumps({"errors": message}))


async def _gate(request: web.Request) -> tuple[str, LeakyBucket, str | None] | web.Response:
    """Auth, faults and the leaky bucket shared by every API route: (shop_id, bucket, fault) or an answer."""
    cfg = request.app[CONFIG]
    if not _VERSION.match(request.match_info["version"]):
        return _error(404, "Not Found")
    token = request.headers.get("X-Shopify-Access-Token", "")
    shop_id = next(
        (s["shop_id"] for s in request.app[WORLD].shops.values() if token and s.get("access_token") == token),
        None,
    )
    if shop_id is None or request.match_info.get("shop_id", shop_id) != shop_id:
        return _json(401, INVALID_TOKEN_BODY)
    bucket = cfg["buckets"].setdefault(token, LeakyBucket(cfg["bucket_size"], cfg["leak_rate"]))
    kind, seconds = await take_fault(request.app)
    if kind == "rate_limit":
        return _json(
            429,
            RATE_LIMIT_BODY,
            {
                "Retry-After": f"{seconds:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": f"{bucket.size}/{bucket.size}",
            },
        )
    if kind == "error_5xx":
        return _error(503, "Service Unavailable")
    if not bucket.hit():
        return _json(
            429,
            RATE_LIMIT_BODY,
            {
                "Retry-After": f"{cfg['retry_after']:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": f"{bucket.size}/{bucket.size}",
            },
        )
    return shop_id, bucket, kind


def _answer(
    request: web.Request, bucket: LeakyBucket, fault: str | None, body: bytes, extra: dict | None = None,
    status: int = 200,
) -> web.Response:
    if fault == "malformed":
        body = body[: max(1, len(body) // 2)]
    headers = {
        "X-Shopify-Shop-Api-Call-Limit": bucket.header(),
        "X-Request-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": request.match_info["version"],
        **(extra or {}),
    }
    return _json(status, body, headers)


def _fields(request: web.Request, doc: dict) -> dict:
    wanted = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
    return {k: v for k, v in doc.items() if k in wanted} if wanted else doc


async def _list_orders(request: web.Request) -> web.Response:
    gate = await _gate(request)
    if isinstance(gate, web.Response):
        return gate
    shop_id, bucket, fault = gate
    query, cfg = request.query, request.app[CONFIG]
    try:
        limit = listing.parse_limit(query)
        if "page_info" in query:
            extra = sorted(set(query) - listing.CURSOR_PARAMS)
            if extra:
                raise listing.BadRequest(
                    f"page_info: only limit and fields may be sent with page_info, not {', '.join(extra)}"
                )
            filters, direction, anchor = listing.decode_cursor(query["page_info"])
        else:
            filters, direction, anchor = listing.parse_filters(query), None, None
    except listing.BadRequest as exc:
        return _error(400, str(exc))
    if fault == "duplicate_page" and bucket in cfg["last_page"]:
        body, link = cfg["last_page"][bucket]
        return _answer(request, bucket, None, body, {"Link": link} if link else None)
    world = request.app[WORLD]
    shop = world.shops[shop_id]
    mine = [o for o in list(world.orders.values()) if o.shop_id == shop_id]
    page, has_next, has_prev = listing.select(mine, filters, limit, direction, anchor)
    body = orjson.dumps({"orders": [_fields(request, order_json(o, shop["shop_domain"])) for o in page]})
    base = f"{request.scheme}://{request.host}{request.path}?limit={limit}"
    if query.get("fields"):
        base += f"&fields={query['fields']}"
    links = []
    if has_prev and page:
        links.append(
            f"<{base}&page_info={listing.encode_cursor(filters, 'previous', listing.key(page[0]))}>; "
            f'rel="previous"'
        )
    if has_next and page:
        links.append(
            f'<{base}&page_info={listing.encode_cursor(filters, "next", listing.key(page[-1]))}>; rel="next"'
        )
    link = ", ".join(links)
    cfg["last_page"][bucket] = (body, link)
    return _answer(request, bucket, fault, body, {"Link": link} if link else None)


async def _count_orders(request: web.Request) -> web.Response:
    gate = await _gate(request)
    if isinstance(gate, web.Response):
        return gate
    shop_id, bucket, fault = gate
    try:
        filters = listing.parse_filters(request.query)
    except listing.BadRequest as exc:
        return _error(400, str(exc))
    world = request.app[WORLD]
    count = sum(
        1 for o in list(world.orders.values()) if o.shop_id == shop_id and listing.matches(o, filters)
    )
    return _answer(request, bucket, fault, orjson.dumps({"count": count}))


async def _get_order(request: web.Request) -> web.Response:
    gate = await _gate(request)
    if isinstance(gate, web.Response):
        return gate
    shop_id, bucket, fault = gate
    world = request.app[WORLD]
    order = world.orders.get(request.match_info["order_id"])
    if order is None or order.shop_id != shop_id:
        return _error(404, "Not Found")
    doc = _fields(request, order_json(order, world.shops[shop_id]["shop_domain"]))
    return _answer(request, bucket, fault, orjson.dumps({"order": doc}))


def _own_order(request: web.Request, shop_id: str, external_id: str):
    order = request.app[WORLD].orders.get(external_id)
    return order if order is not None and order.shop_id == shop_id else None


async def _get_fulfillment_orders(request: web.Request) -> web.Response:
    gate = await _gate(request)
    if isinstance(gate, web.Response):
        return gate
    shop_id, bucket, fault = gate
    order = _own_order(request, shop_id, request.match_info["order_id"])
    if order is None:
        return _error(404, "Not Found")
    body = orjson.dumps({"fulfillment_orders": fulfillment.fulfillment_orders(order)})
    return _answer(request, bucket, fault, body)


async def _create_fulfillment(request: web.Request) -> web.Response:
    """`POST /fulfillments.json`: fulfil the listed fulfillment order line items (all that are left when none
    are listed) with `tracking_info`; 201 with the fulfillment."""
    gate = await _gate(request)
    if isinstance(gate, web.Response):
        return gate
    shop_id, bucket, fault = gate
    try:
        spec = orjson.loads(await request.read())["fulfillment"]
        groups = spec["line_items_by_fulfillment_order"]
        if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
            raise ValueError
        tracking = spec.get("tracking_info") or {}
        number, company = tracking.get("number"), tracking.get("company")
        external_ids = {fulfillment.order_external_id(g["fulfillment_order_id"]) for g in groups}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _error(400, {"fulfillment": "Required parameter missing or invalid"})
    orders = [_own_order(request, shop_id, x) for x in external_ids]
    if len(orders) != 1 or orders[0] is None:
        return _error(404, "Not Found")
    order = orders[0]
    try:
        lines = [line for group in groups for line in fulfillment.planned_lines(order, group)]
        request.app[WORLD].ship(order, lines, company, company, number, now_ms())
    except fulfillment.FulfillmentError as exc:
        return _error(exc.status, exc.errors)
    except ShipRefusal as exc:
        return _error(422, [str(exc)])
    await notify(request.app, shop_id, [order])
    made = [f for f in fulfillments(order) if f["tracking_number"] == number][-1]
    return _answer(request, bucket, fault, orjson.dumps({"fulfillment": made}), status=201)
