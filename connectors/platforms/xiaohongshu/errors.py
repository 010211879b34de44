"""Xiaohongshu error answers: the codes the simulator answers with, and how the client reads any answer.

Two envelopes are in use (xiaohongshu.md §1, §7): gateway errors as `{"success": false, "error_code": …,
"error_msg": …, "data": null}`, business errors as `{"success": false, "code": …, "msg": …}`. Only the
rate-limit code (-100) was seen in a recorded answer; the other numbers are unverified, so the client
also reads the Chinese message ("频繁", "过期", "时间范围"), which is what the platform documents.
"""
from __future__ import annotations

import re

SYSTEM_BUSY = -1
RATE_LIMITED = -100          # recorded: "请求过于频繁，请稍后再试"
INVALID_APP_ID = -1001       # unverified numbers from here on
INVALID_SIGN = -1002
INVALID_TIMESTAMP = -1003
UNKNOWN_METHOD = -1004
INVALID_TOKEN = -1005
TOKEN_EXPIRED = -1006
INVALID_REFRESH_TOKEN = -1007
PARAM_ERROR = 100001         # business errors (code/msg envelope)
WINDOW_TOO_WIDE = 100002
ORDER_NOT_FOUND = 100003
NO_PERMISSION = 100004
# order.orderDeliver refusals (numbers unverified; the words are what the seller backend shows)
DELIVER_CANCELLED = 100101    # 订单已取消，不能发货
DELIVER_UNPAID = 100102       # 订单未支付，不能发货
DELIVER_REFUNDED = 100103     # 商品已退款，不能发货
DELIVER_DONE = 100104         # 订单已发货，不能重复发货
DELIVER_SKU = 100105          # skuId不属于该订单
DELIVER_EXPRESS = 100106      # 物流公司编码不存在
DELIVER_EXPRESS_NO = 100107   # 运单号不符合规则

RATE_LIMIT, TOKEN, WINDOW, NOT_FOUND, TRANSIENT, PERMANENT = (
    "rate_limit", "token_expired", "window_too_wide", "not_found", "transient", "permanent")
_BY_CODE = {RATE_LIMITED: RATE_LIMIT, TOKEN_EXPIRED: TOKEN, WINDOW_TOO_WIDE: WINDOW, ORDER_NOT_FOUND: NOT_FOUND,
            SYSTEM_BUSY: TRANSIENT}
_BY_TEXT = ((re.compile("频繁|限流|rate limit", re.IGNORECASE), RATE_LIMIT),
            (re.compile("(?:token|令牌|授权).*(?:过期|失效|expired)", re.IGNORECASE), TOKEN),
            (re.compile("时间(?:范围|跨度|区间).*(?:超过|不能|大于)"), WINDOW),
            (re.compile("订单不存在|order not found", re.IGNORECASE), NOT_FOUND),
            (re.compile("系统繁忙|服务异常|稍后重试|busy", re.IGNORECASE), TRANSIENT))


def code_and_message(answer: dict) -> tuple[object, str]:
    """(code, message) of an answer in either envelope."""
    return answer.get("error_code", answer.get("code")), str(answer.get("error_msg", answer.get("msg")) or "")


def is_error(answer: dict) -> bool:
    return answer.get("success") is False or answer.get("error_code", answer.get("code", 0)) not in (0, "0", None)


def kind(code, message: str) -> str:
    """What an error answer means for the caller: rate limit, expired token, window too wide, unknown
    order, transient, or permanent (anything else: a bad request that repeating will not mend)."""
    try:
        found = _BY_CODE.get(int(code))
    except (TypeError, ValueError):
        found = None
    if found:
        return found
    for pattern, meaning in _BY_TEXT:
        if pattern.search(message):
            return meaning
    return PERMANENT


def body(code: int, message: str, legacy: bool = True) -> dict:
    """An error answer as the platform writes it (`legacy`: the error_code/error_msg envelope)."""
    if legacy:
        return {"success": False, "error_code": code, "error_msg": message, "data": None}
    return {"success": False, "code": code, "msg": message, "data": None}
