"""Ship-back to Pinduoduo: `pdd.logistics.online.send` (在线发货), signed like every POP call.

The API sends a whole order (`order_sn`, `logistics_id` the company's number, `tracking_number`); further
packages go through another API as extra waybills of a shipped order, never as some of its lines, so a
request naming some of the lines still to ship is refused before any call (`check_whole_order`).
A refusal is an error_response whose `sub_code` says why (api.toml [ship_refusals]); "already shipped"
is settled against the order itself (an earlier attempt of ours, or another number).
"""
from __future__ import annotations

from connectors.runtime.base import Caller, Response, ShopCredentials
from connectors.runtime.errors import TransientError, json_answer, raise_for_http
from connectors.runtime.shipping import ShipRefused, ShipRequest, check_whole_order, upload

from . import api
from .client import PinduoduoClient

ENDPOINT = "pdd.logistics.online.send"


def classify(response: Response) -> int:
    """1 for an accepted shipment; raises ShipRefused / RateLimited / TransientError / PermanentError."""
    raise_for_http(response.status)
    doc = json_answer(response.body)
    err = doc.get("error_response")
    if isinstance(err, dict):
        sub_code = str(err.get("sub_code") or "")
        if sub_code in api.SHIP_REFUSALS:
            text = f"pinduoduo {err.get('error_code')} {sub_code} {err.get('sub_msg') or err.get('error_msg') or ''}"
            raise ShipRefused(api.SHIP_REFUSALS[sub_code], text.strip(), code=sub_code)
        PinduoduoClient._raise(err)  # throttling, busy, token, the rest permanent
    answer = doc.get(api.SHIP_RESPONSE)
    if not isinstance(answer, dict):
        raise TransientError(f"unexpected answer {', '.join(doc) or '{}'}", code="malformed")
    if answer.get("is_success") is not True:
        raise ShipRefused("rejected", f"pinduoduo {ENDPOINT}: is_success is not true")
    return 1


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT
    whole_orders = True  # the API takes no line list

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = PinduoduoClient(creds, caller)

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows it left with this number before."""
        await check_whole_order(self.client, self.creds.platform, self.creds.shop_id, request)
        business = {"order_sn": request.external_id, "logistics_id": request.carrier_code,
                    "tracking_number": request.tracking_no}
        return await upload(self.caller, self.client, self.creds, request, ENDPOINT, self.client.build(ENDPOINT, business), classify)
