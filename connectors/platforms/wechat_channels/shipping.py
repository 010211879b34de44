"""Ship-back to WeChat Channels: `order/delivery/send` (wechat_channels.md §6), with the shop's token like
every call (renewed once when refused, client.py).

1. `order/get`: the order's products (`product_id`, `sku_id`, `sku_cnt`), what its packages hold already
   and what was refunded after sale.
2. `order/delivery/send {order_id, delivery_list: [{delivery_id, waybill_id, deliver_type: 1,
   product_infos: [{product_id, sku_id, product_cnt}]}]}`: the requested lines, or every line neither
   sent nor refunded; a subset is a partial shipment (status 20 → 21 → 30).

The refusal codes are unverified (the sheet gives only the `10020001`-style); the generic "order status
not allow deliver", a line sent already and nothing left to send are settled against the order itself:
an earlier attempt of ours, a cancelled, unpaid or refunded order, another waybill.
"""
from __future__ import annotations

from connectors.runtime.base import Caller, Response, ShopCredentials
from connectors.runtime.errors import TransientError, json_answer, raise_for_http
from connectors.runtime.shipping import ShipRefused, ShipRequest, settle_refusal

from .client import DETAIL, ORDER_NOT_FOUND, WeChatChannelsClient

ENDPOINT = "channels/ec/order/delivery/send"
# order/delivery/send refusals (unverified numbers beside the documented 10020001 order not found)
ORDER_STATE = 10020002  # order status not allow deliver
SKU_NOT_IN_ORDER = 10020003
SKU_DELIVERED = 10020004
SKU_REFUNDED = 10020005
INVALID_DELIVERY_ID = 10020006
INVALID_WAYBILL = 10020007
REFUSALS = {ORDER_NOT_FOUND: "not_found", ORDER_STATE: "rejected", SKU_NOT_IN_ORDER: "unknown_lines",
            SKU_DELIVERED: "already_shipped", SKU_REFUNDED: "refunded", INVALID_DELIVERY_ID: "unknown_carrier",
            INVALID_WAYBILL: "rejected"}
SETTLED = ("already_shipped", "rejected")  # kinds the order itself may explain better


def products_to_send(order: dict, request: ShipRequest) -> list[dict]:
    """`product_infos` of the requested lines (line ids are sku ids; a sku listed twice in one order is
    `sku#n`), or of every line neither sent nor refunded; ShipRefused for a line the order lacks or when
    nothing asked for is left to send."""
    detail = order.get("order_detail") or {}
    products = {str(p.get("sku_id")): p for p in detail.get("product_infos") or () if isinstance(p, dict)}
    sent: dict[str, int] = {}
    for package in (detail.get("delivery_info") or {}).get("delivery_product_info") or ():
        for item in package.get("product_infos") or ():
            sku = str(item.get("sku_id"))
            sent[sku] = sent.get(sku, 0) + int(item.get("product_cnt") or 0)
    wanted = list(dict.fromkeys(x.split("#", 1)[0] for x in request.line_ids))
    missing = [x for x in wanted if x not in products]
    if missing:
        raise ShipRefused("unknown_lines", f"wechat_channels: sku {missing[0]} is not part of order {request.external_id}")
    out = []
    for sku, product in products.items():
        left = int(product.get("sku_cnt") or 0) - sent.get(sku, 0)
        refunded = int(product.get("finish_aftersale_sku_cnt") or 0) >= int(product.get("sku_cnt") or 0)
        if (sku in wanted if wanted else not refunded) and left > 0:
            out.append({"product_id": str(product.get("product_id")), "sku_id": sku, "product_cnt": left})
    if not out or len(out) < len(wanted):
        raise ShipRefused("already_shipped", "wechat_channels: nothing left to send for these lines")
    return out


class Shipper:
    """Uploads shipments of one shop."""

    endpoint = ENDPOINT

    def __init__(self, creds: ShopCredentials, caller: Caller):
        self.creds, self.caller = creds, caller
        self.client = WeChatChannelsClient(creds, caller)

    def _parse(self, response: Response) -> dict:
        """An answer of order/get or order/delivery/send: refusals as ShipRefused, the rest as every call."""
        raise_for_http(response.status)
        doc = json_answer(response.body)
        code, message = doc.get("errcode") or 0, str(doc.get("errmsg") or "")
        if code in REFUSALS:
            raise ShipRefused(REFUSALS[code], f"wechat_channels errcode {code}: {message}", code=str(code))
        if code:
            self.client._raise(code, message)
        return doc

    async def ship(self, request: ShipRequest) -> str:
        """"accepted", or "already" when the order shows these lines sent with this waybill before."""
        def one_order(doc: dict) -> int:
            if str((doc.get("order") or {}).get("order_id")) != request.external_id:
                raise TransientError(f"asked for order {request.external_id}", code="duplicate_page")
            return 1

        try:
            _, doc = await self.client._call(DETAIL, {"order_id": request.external_id}, one_order, self._parse)
            package = {"delivery_id": request.carrier_code, "waybill_id": request.tracking_no, "deliver_type": 1,
                       "product_infos": products_to_send(doc["order"], request)}
            await self.client._call(ENDPOINT, {"order_id": request.external_id, "delivery_list": [package]},
                                    parse=self._parse)
        except ShipRefused as refused:
            if refused.kind not in SETTLED:
                raise
            return await settle_refusal(self.client, self.creds.platform, self.creds.shop_id, request, refused)
        return "accepted"

