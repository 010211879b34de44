"""Ship-back to Youzan: `youzan.logistics.online.confirm` 3.0.0 (youzan.md §6), with the shop's token like
every call (renewed once when the gateway refuses it, client.py).

Fields `tid`, `out_stype` (the express id of the manifest's [carriers]), `out_sid` (the waybill) and
`is_no_express` 0; a split shipment lists its lines' `oids` comma-separated. A 3.x API answers in the
legacy envelope: `{"response": {"is_success": true}}`, or `{"error_response": {"code", "msg"}}` for a
refusal (codes unverified, so each is also recognised by its words); gateway failures (token, throttling)
come as for every API. "已发货" is settled against the order itself: an earlier attempt of ours, or
another waybill.
"""
from __future__ import annotations

import re

from connectors.runtime.base import Caller, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, TransientError, json_answer
from connectors.runtime.shipping import ShipRefused, ShipRequest, settle_refusal

from . import api
from .client import OrderNotFound, YouzanClient, _decode

ENDPOINT = api.SHIP
_BY_CODE = {api.SHIP_CLOSED: "cancelled", api.SHIP_UNPAID: "unpaid", api.SHIP_REFUNDED: "refunded",
            api.SHIP_DONE: "already_shipped", api.SHIP_OID: "unknown_lines", api.SHIP_EXPRESS: "unknown_carrier",
            api.SHIP_OUT_SID: "rejected", api.ORDER_NOT_FOUND: "not_found"}
_BY_TEXT = ((re.compile("已关闭|已取消"), "cancelled"), (re.compile("未付款|未支付"), "unpaid"),
            (re.compile("退款"), "refunded"), (re.compile("已发货|重复发货"), "already_shipped"),
            (re.compile("oid|子订单"), "unknown_lines"), (re.compile("快递公司|物流公司"), "unknown_carrier"),
            (re.compile("运单号"), "rejected"), (re.compile("订单不存在"), "not_found"))


def refusal_kind(code, message: str) -> str | None:
    """The ShipRefused kind of a refusal by its code or, for a number not known here, its words; None for
    an error that is no refusal (a malformed call)."""
    try:
        found = _BY_CODE.get(int(code))
    except (TypeError, ValueError):
        found = None
    return found or next((kind for pattern, kind in _BY_TEXT if pattern.search(message)), None)


def decode(response: Response) -> dict:
    """The 3.x answer of an accepted shipment; raises ShipRefused for a refusal, and what `_decode` raises
    for gateway and HTTP failures."""
    if response.status == 200:
        try:
            doc = json_answer(response.body)
        except TransientError:
            doc = {}
        error = doc.get("error_response")
        if isinstance(error, dict):
            code, message = error.get("code"), str(error.get("msg") or "")
            text = f"有赞 youzan {code}: {message}"
            kind = refusal_kind(code, message)
            if kind is None:
                raise PermanentError(text, code=str(code))
            raise ShipRefused(kind, text, code=str(code))
        answer = doc.get("response")
        if isinstance(answer, dict):
            if answer.get("is_success") is not True:
                raise ShipRefused("rejected", "有赞 youzan: response.is_success is not true")
            return doc
    return _decode(response)  # gw_err_resp, HTTP failures, a cut body, or a 4.x envelope


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = YouzanClient(creds, caller)

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows these lines sent with this waybill before."""
        params = {"tid": request.external_id, "out_stype": request.carrier_code, "out_sid": request.tracking_no,
                  "is_no_express": 0}
        if request.line_ids:
            params["oids"] = ",".join(request.line_ids)
        try:
            await self.client._call(ENDPOINT, params, decode)
        except OrderNotFound as exc:  # a 4.x-shaped answer
            raise ShipRefused("not_found", str(exc), code=exc.code) from None
        except ShipRefused as refused:
            if refused.kind != "already_shipped":
                raise
            return await settle_refusal(self.client, self.creds.platform, self.creds.shop_id, request, refused)
        return "accepted"
