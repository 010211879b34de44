"""HTTP route of ship-back: a person or an ERP says an order (some of its lines) left the warehouse.

POST /api/orders/{order_id}/shipments {"carrier", "tracking_no", "line_ids"?}
  -> 202 {"shipment_id", "status": "PENDING"} once the ShipmentCommand is on fulfillment.commands;
     400 with the reason for a malformed body, 404 for an unknown order, 503 when commands cannot be sent.

The shipper worker uploads it to the platform and publishes the outcome on fulfillment.results. The
requester is the caller's token (`issued_by` = token name#id). The same order and tracking number is the
same shipment (the same `shipment_id`): asking again uploads nothing twice.
"""
from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from projections import queries
from projections.api_auth import principal_of
from projections.commands import CommandError
from schemas.shipments import ShipmentRequestError, shipment_command, shipment_request

DEPS = web.AppKey("shipment_deps", object)


def register(app: web.Application, deps_key: web.AppKey) -> None:
    """Add the ship-back route to `app`, whose dependencies (a Projector) are at `app[deps_key]`."""
    app[DEPS] = app[deps_key]
    app.router.add_post("/api/orders/{order_id}/shipments", post_shipment)


def _json(data, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def post_shipment(request: web.Request) -> web.Response:
    """Ask for a shipment upload: 202 {"shipment_id", "status": "PENDING"} (see the module)."""
    deps = request.app[DEPS]
    order_id = request.match_info["order_id"]
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        return _json({"error": '请求体须为 JSON body must be JSON {"carrier", "tracking_no", "line_ids"}'}, 400)
    try:
        checked = shipment_request(body)
    except ShipmentRequestError as exc:
        return _json({"error": str(exc)}, 400)
    publisher = getattr(deps, "shipments", None)
    if publisher is None:
        return _json({"error": "ship-back commands are not configured"}, 503)
    order = await asyncio.to_thread(queries.get_order, deps.backend, deps.database, order_id)
    if order is None:
        return _json({"error": f"unknown order {order_id}"}, 404)
    command = shipment_command(order_id, checked, principal_of(request).issued_by, int(time.time() * 1000))
    try:
        await asyncio.to_thread(publisher.publish, command)
    except CommandError as exc:
        return _json({"error": str(exc)}, 503)
    return _json({"shipment_id": command["shipment_id"], "status": "PENDING"}, 202)
