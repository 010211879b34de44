"""Ship-back to Xiaohongshu: `order.orderDeliver` (xiaohongshu.md §6), signed and sent through the one
gateway like every call (an expired token is refreshed and the call repeated, client.py).

Business fields `orderId`, `expressNo`, `expressCompanyCode`; a split shipment names its skus in
`skuIdList` with `unpack: true`, and the order stays 部分发货 until every sku has a waybill. The refusal
codes are unverified (errors.py), so each is also recognised by its words. "已发货" is settled against
the order itself: an earlier attempt of ours, or another waybill.
"""
from __future__ import annotations

import re

from connectors.runtime.base import Caller, ShopCredentials
from connectors.runtime.errors import PermanentError
from connectors.runtime.shipping import ShipRefused, ShipRequest, settle_refusal

from . import errors
from .client import OrderGone, XiaohongshuClient

ENDPOINT = "order.orderDeliver"
_BY_CODE = {errors.DELIVER_CANCELLED: "cancelled", errors.DELIVER_UNPAID: "unpaid",
            errors.DELIVER_REFUNDED: "refunded", errors.DELIVER_DONE: "already_shipped",
            errors.DELIVER_SKU: "unknown_lines", errors.DELIVER_EXPRESS: "unknown_carrier",
            errors.DELIVER_EXPRESS_NO: "rejected", errors.ORDER_NOT_FOUND: "not_found"}
_BY_TEXT = ((re.compile("已取消|已关闭"), "cancelled"), (re.compile("未支付|未付款|待付款"), "unpaid"),
            (re.compile("退款|售后"), "refunded"), (re.compile("已发货|重复发货"), "already_shipped"),
            (re.compile("sku.*不属于|不存在.*sku", re.IGNORECASE), "unknown_lines"),
            (re.compile("物流公司|快递公司"), "unknown_carrier"), (re.compile("运单号"), "rejected"),
            (re.compile("订单不存在"), "not_found"))


def refusal_kind(code, message: str) -> str | None:
    """The ShipRefused kind of an `order.orderDeliver` error answer, None when it is no refusal (bad
    credentials, a malformed call)."""
    try:
        found = _BY_CODE.get(int(code))
    except (TypeError, ValueError):
        found = None
    return found or next((kind for pattern, kind in _BY_TEXT if pattern.search(message)), None)


def sku_ids(line_ids) -> list[str]:
    """The platform's sku ids of canonical line ids (a sku listed twice in one order maps to `id#`)."""
    return list(dict.fromkeys(x.rstrip("#") for x in line_ids))


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = XiaohongshuClient(creds, caller)

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows these skus sent with this waybill before."""
        business = {"orderId": request.external_id, "expressNo": request.tracking_no,
                    "expressCompanyCode": request.carrier_code}
        if request.line_ids:
            business.update(unpack=True, skuIdList=sku_ids(request.line_ids))
        try:
            await self.client._call(ENDPOINT, business)
        except PermanentError as exc:
            kind = "not_found" if isinstance(exc, OrderGone) else refusal_kind(exc.code, str(exc))
            if kind is None:
                raise
            refused = ShipRefused(kind, str(exc), code=exc.code)
            if kind != "already_shipped":
                raise refused from None
            return await settle_refusal(self.client, self.creds.platform, self.creds.shop_id, request, refused)
        return "accepted"
