"""Ship-back to JD: `jingdong.pop.order.shipment` (出库), signed like every JOS call.

The API sends a whole order (`order_id`, `logiCoprId` the carrier's logisticsId, `logiNo` the waybill);
JD splits an order only into child orders of its own, so a request naming some of the lines still to
ship is refused before any call (`check_whole_order`). The answer is `sopjosshipment_result {success,
chineseErrCode, englishErrCode}`: a refusal's words say why (api.toml [shipment_refusals]); "already out
of the warehouse" is settled against the order itself (an earlier attempt of ours, or another waybill).
"""
from __future__ import annotations

from connectors.runtime.base import Caller, Response, ShopCredentials
from connectors.runtime.errors import TransientError, json_answer, raise_for_http
from connectors.runtime.shipping import ShipRefused, ShipRequest, check_whole_order, upload
from schemas.canonical import MappingError

from .answer import SHIPMENT_METHOD, read, wrapper
from .api import SHIPMENT_REFUSALS
from .client import JdClient

ENDPOINT = SHIPMENT_METHOD


def refusal_kind(words: str) -> str:
    """The refusal kind of a `chineseErrCode` (how it starts), `rejected` for words the table lacks."""
    return next((kind for start, kind in SHIPMENT_REFUSALS.items() if words.startswith(start)), "rejected")


def classify(response: Response) -> int:
    """1 for an accepted shipment; raises ShipRefused / RateLimited / TransientError / PermanentError."""
    raise_for_http(response.status)
    try:
        doc = json_answer(response.body)
        answer = read(doc)
    except MappingError:
        raise TransientError("malformed body", code="malformed") from None
    if answer.kind == "error":
        JdClient._raise(answer)  # token, throttling, system busy, the rest permanent
    result = (doc.get(wrapper(ENDPOINT)) or {}).get("sopjosshipment_result") if answer.kind == "other" else None
    if not isinstance(result, dict):
        raise TransientError(f"unexpected answer {answer.name or '?'}", code="malformed")
    if result.get("success") is True or str(result.get("success")).lower() == "true":
        return 1
    zh, en = str(result.get("chineseErrCode") or ""), str(result.get("englishErrCode") or "")
    raise ShipRefused(refusal_kind(zh), f"jd {ENDPOINT}: {zh} {en}".strip(), code=zh[:40] or None)


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT
    whole_orders = True  # the API takes no line list

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = JdClient(creds, caller)

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows it left with this waybill before."""
        await check_whole_order(self.client, self.creds.platform, self.creds.shop_id, request)
        business = {"order_id": request.external_id, "logiCoprId": request.carrier_code, "logiNo": request.tracking_no}
        return await upload(self.caller, self.client, self.creds, request, ENDPOINT, self.client.build(ENDPOINT, business), classify)
