"""Facts of the Youzan open API that the client and the simulator share (youzan.md §1, §3, §4, §7).

Numbers the fact sheet marks (unverified) are plain constants here, in one place, and every one of them
can be overridden where it is used (Client and create_app take them as keyword arguments).
"""
from __future__ import annotations

SOLD_GET = "youzan.trades.sold.get"  # the order list, by created/update/success time range
TRADE_GET = "youzan.trade.get"  # one order with refund_order, delivery_order and order_promotion
SHIP = "youzan.logistics.online.confirm"  # 物流发货: a 3.x API, answering in the legacy envelope
VERSIONS = {SOLD_GET: "4.0.4", TRADE_GET: "4.0.2", SHIP: "3.0.0"}  # the version is part of the path, per API
TOKEN_PATH = "/auth/token"

TOKEN_TTL_S = 7 * 86_400  # an access token lives 7 days
REFRESH_TTL_S = 28 * 86_400  # (unverified) a refresh token 28 days
DEEP_PAGE_CAP = 3000  # (unverified) page_no × page_size beyond this is refused: slice the window instead

# gateway errors arrive with HTTP 200 as {"gw_err_resp": {"err_code", "err_msg", "trace_id"}}
GW_TOKEN_INVALID = 4201  # (unverified)
GW_TOKEN_EXPIRED = 4202  # (unverified)
GW_RATE_LIMITED = 4203  # (unverified code; the message is the recorded one)
GW_API_NOT_FOUND = 4004  # (unverified) unknown API name or version
TOKEN_ERRORS = frozenset((GW_TOKEN_INVALID, GW_TOKEN_EXPIRED))

# business errors arrive as {"success": false, "code": ..., "message": ..., "data": null}
ORDER_NOT_FOUND = 101300101  # (unverified)
WINDOW_TOO_WIDE = 101300201  # (unverified) the time range exceeds the allowed span
PAGE_TOO_DEEP = 101300202  # (unverified) page_no × page_size exceeds DEEP_PAGE_CAP
BAD_PARAMETER = 101300203  # (unverified) a missing or malformed parameter
# youzan.logistics.online.confirm refusals, in the 3.x envelope {"error_response": {"code", "msg"}} (unverified
# numbers; the words are the seller backend's)
SHIP_CLOSED = 101301001  # 订单已关闭，不能发货
SHIP_UNPAID = 101301002  # 订单未付款，不能发货
SHIP_REFUNDED = 101301003  # 商品已退款，不能发货
SHIP_DONE = 101301004  # 商品已发货，请勿重复发货
SHIP_OID = 101301005  # 子订单 oid 不属于该订单
SHIP_EXPRESS = 101301006  # 快递公司不存在
SHIP_OUT_SID = 101301007  # 运单号格式不正确
BAD_CLIENT = 40001  # (unverified) /auth/token with an unknown client_id or a wrong client_secret
