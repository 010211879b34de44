"""Ship-back to Kuaishou Shop: `open.seller.order.goods.deliver` (发货), a signed form POST like every write.

An order holds one item, so the API sends the whole order (`orderId`, `expressNo` the waybill,
`expressCode` the carrier's number); a request naming lines passes `check_whole_order` (its one line,
or a line the order lacks: refused). A refusal is `result` 2001 with the reason in `error_msg`; the
sheet names none, so the words below are the simulator's (unverified), each with the refusal kind it
means. "Already shipped" is settled against the order itself (an earlier attempt of ours, or another
number).
"""
from __future__ import annotations

from connectors.runtime.base import Caller, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import TransientError
from connectors.runtime.shipping import ShipRefused, ShipRequest, check_whole_order, upload

from .client import PARAMS_INVALID, KuaishouClient, raise_for_error

ENDPOINT = "open.seller.order.goods.deliver"
# how a refusal's error_msg starts -> the refusal kind (unverified: the simulator answers these)
REFUSAL_WORDS = {"订单不存在": "not_found", "订单已关闭": "cancelled", "订单未付款": "unpaid", "订单已退款": "refunded",
                 "订单已发货": "already_shipped", "快递公司编码无效": "unknown_carrier", "快递单号无效": "rejected"}


def classify(response: Response) -> int:
    """1 for an accepted shipment; raises ShipRefused / RateLimited / TransientError / PermanentError."""
    doc = KuaishouClient._decode(response)
    if doc["result"] == 1:
        if not isinstance(doc.get("data"), dict):
            raise TransientError("answer without data", code="malformed")
        return 1
    words = str(doc.get("error_msg") or doc.get("subMsg") or "")
    kind = next((k for start, k in REFUSAL_WORDS.items() if words.startswith(start)), None)
    if doc["result"] == PARAMS_INVALID and kind:
        raise ShipRefused(kind, f"kuaishou {ENDPOINT}: result={doc['result']} {words}", code=str(doc["result"]))
    raise_for_error(doc)  # throttling, token, the rest permanent
    return 0


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT
    whole_orders = True  # one item per order; the API takes no line list

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = KuaishouClient(creds, caller)

    def _spec(self, business: dict):
        build = self.client.build(ENDPOINT, business)

        def make() -> RequestSpec:
            spec = build()  # a signed GET: writes send the same params as a form
            return RequestSpec("POST", spec.url, data=spec.params)
        return make

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows it left with this number before."""
        await check_whole_order(self.client, self.creds.platform, self.creds.shop_id, request)
        if not request.external_id.isdigit():
            raise ShipRefused("not_found", f"kuaishou: {request.external_id!r} is no order id (oid is a number)")
        business = {"orderId": int(request.external_id), "expressNo": request.tracking_no,
                    "expressCode": int(request.carrier_code)}
        return await upload(self.caller, self.client, self.creds, request, ENDPOINT, self._spec(business), classify)
