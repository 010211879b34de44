"""Orders-list semantics of the simulator: filters, `status`, keyset paging and opaque `page_info` cursors.

Orders are ordered by (updated_at second, id); a cursor holds the filters plus the last (or first, for
`previous`) key of the page it came from, so an order updated while a client pages moves forward and is seen
again instead of being skipped.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from connectors.simkit.world import SimOrder

from . import render

FILTERS = (
    "status",
    "updated_at_min",
    "updated_at_max",
    "created_at_min",
    "created_at_max",
    "ids",
    "since_id",
    "financial_status",
    "fulfillment_status",
    "order",
)
CURSOR_PARAMS = {"limit", "fields", "page_info"}
STATUSES = ("open", "closed", "cancelled", "any")


class BadRequest(ValueError):
    """A query Shopify answers with 400 (message goes into {"errors": ...})."""


def _ms(text: str, name: str) -> int:
    try:
        if len(text) > 19 and text[19] == " ":  # a '+' offset that arrived unencoded in the query string
            text = text[:19] + "+" + text[20:]
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: invalid date {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=render.SHOP_TZ)
    return int(parsed.timestamp() * 1000)


def parse_filters(query) -> dict:
    """Validated filters of a first-page request (query = the request's MultiDict)."""
    f = {"status": query.get("status", "open"), "order": query.get("order", "updated_at asc")}
    if f["status"] not in STATUSES:
        raise BadRequest(f"status: must be one of {', '.join(STATUSES)}")
    if f["order"].replace("+", " ") not in ("updated_at asc", "updated_at desc"):
        raise BadRequest("order: only 'updated_at asc' and 'updated_at desc' are simulated")
    for name in ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max"):
        if query.get(name):
            f[name] = _ms(query[name], name)
    for name in ("financial_status", "fulfillment_status"):
        if query.get(name):
            f[name] = query[name]
    try:
        if query.get("ids"):
            f["ids"] = sorted({int(x) for x in query["ids"].split(",") if x.strip()})
        if query.get("since_id"):
            f["since_id"] = int(query["since_id"])
    except ValueError:
        raise BadRequest("ids/since_id: must be integers") from None
    return f


def parse_limit(query) -> int:
    """`limit`: default 50, 1..250, otherwise 400."""
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        raise BadRequest("limit: must be an integer") from None
    if not 1 <= limit <= 250:
        raise BadRequest("limit: must be between 1 and 250")
    return limit


def matches(order: SimOrder, f: dict) -> bool:
    """Whether an order passes the filters (times compared at the second precision the API shows)."""
    status = f.get("status", "open")
    if status == "open" and render.closed_at(order) is not None:
        return False
    if status == "closed" and render.closed_at(order) is None:
        return False
    if status == "cancelled" and order.status != "CANCELLED":
        return False
    updated, created = render.seconds(order.updated_at), render.seconds(order.created_at)
    if "updated_at_min" in f and updated < f["updated_at_min"]:
        return False
    if "updated_at_max" in f and updated > f["updated_at_max"]:
        return False
    if "created_at_min" in f and created < f["created_at_min"]:
        return False
    if "created_at_max" in f and created > f["created_at_max"]:
        return False
    if "ids" in f and int(order.external_id) not in f["ids"]:
        return False
    if "since_id" in f and int(order.external_id) <= f["since_id"]:
        return False
    if (
        f.get("financial_status") not in (None, "any")
        and render.financial_status(order) != f["financial_status"]
    ):
        return False
    wanted = f.get("fulfillment_status")
    if wanted not in (None, "any"):
        actual = render.fulfillment_status(order)
        if wanted in ("unshipped", "unfulfilled") and actual is not None:
            return False
        if wanted in ("shipped", "partial") and actual != {"shipped": "fulfilled"}.get(wanted, wanted):
            return False
    return True


def key(order: SimOrder) -> tuple[int, int]:
    return render.seconds(order.updated_at), int(order.external_id)


def encode_cursor(filters: dict, direction: str, anchor: tuple[int, int]) -> str:
    """Opaque page_info: base64url(JSON) of filters, direction and the anchor key, without padding."""
    value = datetime.fromtimestamp(anchor[0] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    doc = {**filters, "direction": direction, "last_id": anchor[1], "last_value": value}
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[dict, str, tuple[int, int]]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value = datetime.strptime(doc.pop("last_value"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        anchor = (int(value.timestamp() * 1000), int(doc.pop("last_id")))
        return doc, doc.pop("direction"), anchor
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise BadRequest("page_info: invalid value") from None


def select(
    orders: list[SimOrder],
    filters: dict,
    limit: int,
    direction: str | None = None,
    anchor: tuple[int, int] | None = None,
) -> tuple[list[SimOrder], bool, bool]:
    """One page: (orders, has_next, has_previous) for a first page or a cursor page."""
    desc = filters.get("order", "updated_at asc").endswith("desc")
    hits = sorted((o for o in orders if matches(o, filters)), key=key, reverse=desc)
    keys = [key(o) for o in hits]
    if anchor is None:
        start = 0
    elif direction == "next":
        start = next((i for i, k in enumerate(keys) if (k < anchor if desc else k > anchor)), len(keys))
    else:
        end = next((i for i, k in enumerate(keys) if (k <= anchor if desc else k >= anchor)), len(keys))
        start = max(0, end - limit)
        return hits[start:end], end < len(hits), start > 0
    page = hits[start : start + limit]
    return page, start + limit < len(hits), start > 0
