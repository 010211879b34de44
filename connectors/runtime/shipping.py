"""Ship-back through a platform folder's `shipping.py`: what is asked, how a refusal is said, and how a
refusal that may hide an earlier upload is settled against the platform's own view of the order.

A folder's `Shipper(creds, caller)` has `endpoint` (the API's name in connector.calls) and
`async ship(request) -> "accepted" | "already"`: "already" when the platform refused because these lines
left with this very tracking number before (an attempt whose answer was lost). Anything else the
platform refuses raises `ShipRefused`; throttling and platform-side failures raise `RateLimited` /
`TransientError` (retried), bad credentials `PermanentError`.
"""
from __future__ import annotations

from dataclasses import dataclass

from connectors import platforms
from connectors.runtime.errors import PermanentError

# Why a platform refuses a shipment for good; `explain_refusal` tells them apart on the order itself.
REFUSALS = ("cancelled", "unpaid", "refunded", "already_shipped", "unknown_carrier", "unknown_lines", "not_found",
            "rejected")


@dataclass(frozen=True)
class ShipRequest:
    external_id: str
    carrier_code: str  # the platform's own code (its manifest's [carriers])
    carrier_name: str  # the name the platform gives that code
    tracking_no: str
    line_ids: tuple[str, ...] = ()  # empty: every line not shipped yet


class ShipRefused(PermanentError):
    """The platform refused the upload and repeating it will not help. `kind` is one of REFUSALS; the
    message carries the platform's own code and words."""

    def __init__(self, kind: str, message: str, code: str | None = None):
        super().__init__(message, code=code)
        if kind not in REFUSALS:
            raise ValueError(f"unknown refusal kind {kind!r}")
        self.kind = kind


def explain_refusal(order: dict, tracking_no: str, line_ids) -> str | None:
    """Why the platform refuses to ship `line_ids` (empty: what is left) of a canonical `order`: "uploaded"
    when they left with `tracking_no` already (an earlier attempt landed), else a refusal kind, or None
    when the order shows no reason."""
    wanted = set(line_ids)
    ours = [s for s in order.get("shipments") or () if s.get("tracking_no") == tracking_no]
    mine = {x for s in ours for x in s.get("line_ids") or ()}
    if ours and (not wanted or wanted <= mine):
        return "uploaded"
    if order["status"] == "CANCELLED":
        return "cancelled"
    if order["status"] == "PENDING_PAYMENT":
        return "unpaid"
    lines = {line["line_id"]: line for line in order["lines"]}
    if wanted - set(lines):
        return "unknown_lines"
    refunded = {x for x, line in lines.items() if line["refund_status"] == "REFUNDED"}
    if wanted & refunded or not wanted and lines and refunded == set(lines):
        return "refunded"
    shipped = {x for s in order.get("shipments") or () for x in s.get("line_ids") or ()}
    if wanted & shipped or not wanted and order["status"] in ("SHIPPED", "DELIVERED", "COMPLETED"):
        return "already_shipped"
    return None


async def settle_refusal(client, platform: str, shop_id: str, request: ShipRequest, refused: ShipRefused) -> str:
    """After a refusal that may mean "shipped already": "already" when the platform's order shows these
    lines left with this tracking number, else `refused` again with the reason the order shows
    (cancelled, refunded, already shipped with another number…). `client` is the folder's API client
    (`fetch_order(external_id)`)."""
    page = await client.fetch_order(request.external_id)
    found = platforms.map_payload(platform, page.body, page.content_type, shop_id)
    if not found:
        raise refused
    kind = explain_refusal(found[0], request.tracking_no, request.line_ids)
    if kind == "uploaded":
        return "already"
    if kind is None:
        raise refused
    said = _SAID[kind]
    if kind == "already_shipped":
        said += ", ".join(sorted({s["tracking_no"] for s in found[0]["shipments"] if s.get("tracking_no")})) or "?"
    raise ShipRefused(kind, f"{refused} — {said}", code=refused.code)


async def upload(caller, client, creds, request: ShipRequest, endpoint: str, make, classify) -> str:
    """One ship call through `caller` (`make` builds the request, `classify` reads the answer): "accepted",
    or, when the platform says the order left already, what `settle_refusal` finds on it ("already", or
    the refusal with the reason the order shows)."""
    try:
        await caller.request(endpoint, make, classify)
    except ShipRefused as refused:
        if refused.kind != "already_shipped":
            raise
        return await settle_refusal(client, creds.platform, creds.shop_id, request, refused)
    return "accepted"


async def check_whole_order(client, platform: str, shop_id: str, request: ShipRequest) -> None:
    """For a platform whose ship API sends a whole order (no line list): a request naming lines passes only
    when they are every line still to ship (or lines the platform may already show shipped: its own
    answer settles those). Reads the order through the folder's `client.fetch_order` only when lines are
    named; raises ShipRefused `not_found`, `unknown_lines`, or `rejected` for a part of the order."""
    if not request.line_ids:
        return
    page = await client.fetch_order(request.external_id)
    found = platforms.map_payload(platform, page.body, page.content_type, shop_id)
    if not found:
        raise ShipRefused("not_found", f"{platform}: order {request.external_id} not found")
    order, wanted = found[0], set(request.line_ids)
    lines = {line["line_id"]: line for line in order["lines"]}
    if wanted - set(lines):
        raise ShipRefused("unknown_lines", f"{platform}: line {min(wanted - set(lines))} is not part of the order")
    if order["status"] not in ("PAID", "PARTIALLY_SHIPPED"):
        return  # shipped, closed or unpaid: the platform's refusal says which
    shipped = {x for s in order.get("shipments") or () for x in s.get("line_ids") or ()}
    left = {x for x, line in lines.items() if x not in shipped and line["refund_status"] != "REFUNDED"}
    if not left <= wanted:
        raise ShipRefused("rejected", f"{platforms.label(platform)} 只能整单发货 ships whole orders only: "
                                      f"lines {', '.join(sorted(left - wanted))} would leave too")


_SAID = {"cancelled": "the order is cancelled", "unpaid": "the order is not paid",
         "refunded": "the lines were refunded", "already_shipped": "already shipped with ",
         "unknown_lines": "a line is not part of the order"}
