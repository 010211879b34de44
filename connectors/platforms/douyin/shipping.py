"""Ship-back to Douyin Shop: `order.logisticsAdd` sends the whole shop order (every sku order not shipped
yet), `order.logisticsAddMultiPack` one package of the named sku orders (a split); both signed and
token-refreshed through the folder's client.

A split names each sku order with its `shipped_num`, so it reads the order first for the quantities.
Refusals are code 50002 `isv.business-failed:<n>` with the reason in `sub_msg` (facts.toml
[ship_refusals]); "already shipped" is settled against the order itself (an earlier attempt of ours, or
another number).
"""
from __future__ import annotations

from connectors import platforms
from connectors.runtime.base import Caller, ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.runtime.shipping import ShipRefused, ShipRequest, settle_refusal

from .client import DouyinClient
from .facts import FACTS

ENDPOINT, MULTI_PACK = "order.logisticsAdd", "order.logisticsAddMultiPack"
_FAILED = "isv.business-failed:"


def refusal(exc: PermanentError) -> PermanentError:
    """A business failure of a ship API as the ShipRefused it means; any other error as it is."""
    code = str(exc.code or "")
    if not code.startswith(_FAILED):
        return exc
    return ShipRefused(FACTS.ship_refusals.get(code.removeprefix(_FAILED), "rejected"), str(exc), code=code)


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = DouyinClient(creds, caller)

    async def _quantities(self, external_id: str) -> dict[str, int]:
        page = await self.client.fetch_order(external_id)
        found = platforms.map_payload(self.creds.platform, page.body, page.content_type, self.creds.shop_id)
        return {line["line_id"]: line["quantity"] for line in found[0]["lines"]} if found else {}

    async def _params(self, request: ShipRequest) -> tuple[str, dict]:
        pack = {"company_code": request.carrier_code, "logistics_code": request.tracking_no}
        if not request.line_ids:
            return ENDPOINT, {"order_id": request.external_id, **pack}
        try:
            quantities = await self._quantities(request.external_id)
        except PermanentError as exc:
            raise refusal(exc) from None
        unknown = sorted(set(request.line_ids) - set(quantities))
        if unknown:
            raise ShipRefused("unknown_lines", f"douyin: sku order {unknown[0]} is not part of order "
                                               f"{request.external_id}")
        info = [{"shipped_order_id": x, "shipped_num": quantities[x]} for x in request.line_ids]
        return MULTI_PACK, {"order_id": request.external_id, "pack_list": [{"shipped_order_info": info, **pack}]}

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows these sku orders sent with this number before."""
        try:
            method, params = await self._params(request)
            try:
                await self.client.call(method, params)
            except PermanentError as exc:
                raise refusal(exc) from None
        except ShipRefused as refused:
            if refused.kind != "already_shipped":
                raise
            return await settle_refusal(self.client, self.creds.platform, self.creds.shop_id, request, refused)
        return "accepted"
