"""Ship-back requests (`ShipmentCommand` on fulfillment.commands): their identity and their validation.

The same order and tracking number is the same shipment, whoever asks and however often: its id is
derived from both. `shipment_request` checks a request body (the HTTP API's, or the fields of a command
an ERP produced on Kafka) and says in one line what is wrong with it.
"""
from __future__ import annotations

import hashlib
import re

REQUEST_FIELDS = ("carrier", "tracking_no", "line_ids")
MAX_LINES = 500
_TRACKING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$")
_ORDER_ID = re.compile(r"^[a-z][a-z0-9_]*:[^:\s]+:\S+$")


class ShipmentRequestError(ValueError):
    """A ship-back request that cannot be carried out as sent; the message is one line."""


def shipment_id(order_id: str, tracking_no: str) -> str:
    """blake2b-128 of `order_id|tracking_no` as 32 hex characters (the contract of ShipmentCommand)."""
    return hashlib.blake2b(f"{order_id}|{tracking_no}".encode(), digest_size=16).hexdigest()


def check_order_id(order_id: str) -> str:
    """`order_id` if it has the `{platform}:{shop_id}:{external_id}` shape, else ShipmentRequestError."""
    if not isinstance(order_id, str) or not _ORDER_ID.match(order_id):
        raise ShipmentRequestError(f"order_id {order_id!r} is not {{platform}}:{{shop_id}}:{{external_id}}")
    return order_id


def shipment_request(body) -> dict:
    """The `carrier`, `tracking_no` and `line_ids` of a request body, checked; ShipmentRequestError with
    the reason otherwise. `line_ids` omitted or null means every line not shipped yet."""
    if not isinstance(body, dict):
        raise ShipmentRequestError('body must be a JSON object {"carrier", "tracking_no", "line_ids"}')
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if "by" in unknown or "issued_by" in unknown:
        raise ShipmentRequestError('"by"/"issued_by" is not accepted: the requester is the token\'s name')
    if unknown:
        raise ShipmentRequestError(f"unknown field {unknown[0]!r}; the fields are {', '.join(REQUEST_FIELDS)}")
    carrier = body.get("carrier")
    if not isinstance(carrier, str) or not carrier.strip() or len(carrier) > 64:
        raise ShipmentRequestError('"carrier" must be a carrier code or name (ZTO, 中通快递, or the platform\'s code)')
    tracking = body.get("tracking_no")
    if not isinstance(tracking, str) or not _TRACKING.match(tracking):
        raise ShipmentRequestError('"tracking_no" must be 4-40 letters, digits or dashes')
    lines = body.get("line_ids")
    if lines is None:
        lines = []
    if not isinstance(lines, list) or not all(isinstance(x, str) and x.strip() for x in lines):
        raise ShipmentRequestError('"line_ids" must be a list of line ids (strings); omit it for every unshipped line')
    if len(lines) > MAX_LINES:
        raise ShipmentRequestError(f'"line_ids" lists {len(lines)} lines; at most {MAX_LINES}')
    if len(set(lines)) != len(lines):
        raise ShipmentRequestError('"line_ids" names a line twice')
    return {"carrier": carrier.strip(), "tracking_no": tracking, "line_ids": list(lines)}


def shipment_command(order_id: str, request: dict, issued_by: str, now_ms: int) -> dict:
    """The `ShipmentCommand` of a checked request."""
    return {"shipment_id": shipment_id(order_id, request["tracking_no"]), "order_id": order_id,
            "carrier": request["carrier"], "tracking_no": request["tracking_no"],
            "line_ids": list(request["line_ids"]), "issued_by": issued_by, "requested_at": now_ms}


def checked_command(command: dict) -> dict:
    """A command as consumed (an ERP may produce them directly), checked like an HTTP request and given the
    contract's shipment id; ShipmentRequestError with the reason otherwise."""
    check_order_id(command.get("order_id"))
    request = shipment_request({k: command.get(k) for k in REQUEST_FIELDS})
    return {**command, **request, "shipment_id": shipment_id(command["order_id"], request["tracking_no"])}
