"""Ship-back to Taobao/Tmall: `taobao.logistics.offline.send` (自己联系物流发货), signed like every TOP call.

The whole trade ships unless lines are named: then `is_split=1` with their oids in `sub_tid`. Refusals
come as code 15 with `isv.logistics-offline-service-error:<code>`: B01 no such trade, B04 "already shipped
or closed" (settled against the trade itself: an earlier attempt of ours, another waybill, a closed or
refunded trade), B60 waybill number refused, P38 split check failed; B150 asks to try again later.
"""
from __future__ import annotations

import re
from urllib.parse import quote_plus

from connectors.runtime.base import Caller, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import TransientError, raise_for_http
from connectors.runtime.shipping import ShipRefused, ShipRequest, upload

from .client import TaobaoClient, _decode, _get

ENDPOINT = "taobao.logistics.offline.send"
_OFFLINE = "isv.logistics-offline-service-error:"
_REFUSALS = {"B01": "not_found", "B04": "already_shipped", "B60": "rejected", "P38": "unknown_lines"}
_TRY_AGAIN = {"B150"}  # 发货异常，请稍等后重试
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]*\Z")  # form values that need no escaping (most of a TOP call's)


def _refuse(err) -> None:
    code, sub_code = str(_get(err, "code") or ""), str(_get(err, "sub_code") or "")
    text = f"taobao {code} {sub_code} {_get(err, 'sub_msg') or _get(err, 'msg') or ''}".strip()
    if sub_code.startswith(_OFFLINE):
        reason = sub_code.removeprefix(_OFFLINE)
        if reason in _TRY_AGAIN:
            raise TransientError(text, code=sub_code)
        raise ShipRefused(_REFUSALS.get(reason, "rejected"), text, code=sub_code)
    if sub_code == "isv.invalid-parameter:company_code":
        raise ShipRefused("unknown_carrier", text, code=sub_code)
    TaobaoClient._raise(err)  # throttling, platform failures, credentials, arguments


def classify(response: Response) -> int:
    """1 for an accepted shipment; raises ShipRefused / RateLimited / TransientError / PermanentError."""
    raise_for_http(response.status)
    doc = _decode(response.body, "json")
    if not isinstance(doc, dict) or len(doc) != 1:
        raise TransientError("malformed body", code="malformed")
    name, answer = next(iter(doc.items()))
    if name == "error_response":
        _refuse(answer)
    if name != "logistics_offline_send_response" or not isinstance(answer, dict):
        raise TransientError(f"unexpected answer {name}", code="malformed")
    if (answer.get("shipping") or {}).get("is_success") is not True:
        raise ShipRefused("rejected", "taobao: shipping.is_success is not true")
    return 1


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = TaobaoClient(creds, caller)

    def _form(self, business: dict):
        """The signed request with its form encoded once, here (aiohttp's form builder costs more than the
        call itself at thousands of uploads a second)."""
        build = self.client.build(ENDPOINT, business)

        def make() -> RequestSpec:
            spec = build()
            spec.data = "&".join(f"{k}={v if _PLAIN.match(v) else quote_plus(v)}" for k, v in spec.data.items()).encode()
            spec.headers = {**spec.headers, "Content-Type": "application/x-www-form-urlencoded"}
            return spec
        return make

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the trade shows these lines sent with this waybill before."""
        business = {"tid": request.external_id, "out_sid": request.tracking_no, "company_code": request.carrier_code}
        if request.line_ids:
            business.update(is_split="1", sub_tid=",".join(request.line_ids))
        return await upload(self.caller, self.client, self.creds, request, ENDPOINT, self._form(business), classify)
