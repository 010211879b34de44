"""Simulated orders rendered as Youzan answers: `full_order_info`, the list and detail envelopes, pushes.

Shaped like the recorded samples: yuan strings, Beijing wall-clock times, `oid` strings and numeric
`item_id`/`sku_id`, `sku_properties_name` as JSON inside a string. Receivers come as `$…$` ciphertexts
(the default for apps without plaintext permission) unless `plaintext=True`.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import quote

import orjson

from connectors.simkit.world import SimLine, SimOrder
from schemas.canonical import ms_to_beijing

from .signing import message_sign
from .simworld import kdt_id

STATUS_TEXT = {"WAIT_BUYER_PAY": "待付款", "WAIT_SELLER_SEND_GOODS": "待发货", "WAIT_BUYER_CONFIRM_GOODS": "已发货",
               "TRADE_SUCCESS": "交易成功", "TRADE_CLOSE": "已关闭"}
LINE_REFUND = {"NONE": "NO_REFUND", "REQUESTED": "FULL_REFUNDING", "REFUNDED": "FULL_REFUNDED",
               "REJECTED": "FULL_REFUND_FAILED"}
REFUND_ORDER_STATE = {"REQUESTED": "WAIT_SELLER_AGREE", "REFUNDED": "SUCCESS", "REJECTED": "SELLER_REFUSE_BUYER"}
EXPRESS_IDS = {"STO": 1, "YTO": 2, "ZTO": 3, "YUNDA": 4, "SF": 7}  # the world's carrier codes -> Youzan express ids
NICKNAMES = ("同路会员", "爱喝茶的小林", "阿杰", "晴天", "木子李", "一只猫")
_CIPHER_SIZE = {"name": 15, "tel": 22, "address": 32, "phone": 22}


def yuan(fen: int) -> str:
    """Integer fen -> a Youzan yuan string with two decimals ('157.80')."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _time(ms: int | None) -> str:
    return ms_to_beijing(ms) if ms is not None else ""


def cipher(kind: str, plain: str, shop_id: str) -> str:
    """A `$…$` ciphertext standing in for Youzan's: stable for one value, revealing nothing of it."""
    digest = hashlib.sha256(f"{shop_id}|{kind}|{plain}".encode()).digest()
    body = base64.b64encode(digest).decode().translate(str.maketrans("+/", "kQ"))[:_CIPHER_SIZE[kind]]
    return f"${body}==$" if kind in ("tel", "phone") else f"${body}$"


def trade_status(order: SimOrder) -> str:
    """The Youzan `order_info.status` of a simulated order (Youzan has no partial-shipment status)."""
    status = order.status
    if status == "PENDING_PAYMENT":
        return "WAIT_BUYER_PAY"
    if status in ("PAID", "PARTIALLY_SHIPPED"):
        return "WAIT_SELLER_SEND_GOODS"
    if status in ("SHIPPED", "DELIVERED"):  # no delivered state: TRADE_SUCCESS once the buyer confirms
        return "WAIT_BUYER_CONFIRM_GOODS"
    if status == "COMPLETED":
        return "TRADE_SUCCESS"
    if status == "CANCELLED":
        return "TRADE_CLOSE"
    raise ValueError(f"unknown simulated status {status!r}")


def order_refund_state(order: SimOrder) -> int:
    """`order_info.refund_state`: 0 none, 1 partly refunding, 2 partly refunded, 11 fully refunding, 12 fully refunded."""
    states = [line.refund_status for line in order.lines]
    if states and all(s == "REFUNDED" for s in states):
        return 12
    if "REQUESTED" in states:
        return 11 if all(s in ("REQUESTED", "REFUNDED") for s in states) else 1
    return 2 if "REFUNDED" in states else 0


def _consign_time(order: SimOrder) -> int | None:
    """Youzan sets consign_time once every line has shipped: the last package's time."""
    active = [line for line in order.lines if line.refund_status != "REFUNDED"]
    shipped = [line.shipped_at for line in active if line.shipped_at is not None]
    return max(shipped) if active and len(shipped) == len(active) else None


def _digits(text: str, size: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) % 10**size


def _line(order: SimOrder, line: SimLine) -> dict:
    spec = line.title.rsplit(" ", 1)[-1]
    return {
        "oid": line.line_id,
        "item_id": 490_000_000 + _digits(line.merchant_sku, 7),
        "sku_id": int(line.sku_id) if line.sku_id.isdigit() else 0,
        "outer_item_id": line.merchant_sku.rsplit("-", 1)[0],
        "outer_sku_id": line.merchant_sku,
        "title": line.title,
        "sku_properties_name": orjson.dumps([{"k": "规格", "k_id": 3, "v": spec, "v_id": 31}]).decode(),
        "num": line.quantity,
        "price": yuan(line.unit_price),
        "payment": yuan(line.total),
        "total_fee": yuan(line.total),
        "discount_price": yuan(line.unit_price - line.discount // line.quantity),
        "item_type": 0,
        "is_present": False,
        "refund_state": LINE_REFUND[line.refund_status],
        "pic_path": f"https://img01.yzcdn.cn/upload_files/2024/03/01/{line.merchant_sku.lower()}.jpg",
    }


def full_order_info(order: SimOrder, plaintext: bool = False) -> dict:
    """A simulated order as Youzan's `full_order_info` (receivers as ciphertexts unless `plaintext`)."""
    status = trade_status(order)
    paid = order.paid_at is not None
    refund_state = order_refund_state(order)
    shop = order.shop_id
    street = order.town + order.street

    def sealed(kind: str, value: str) -> str:
        return value if plaintext or not value else cipher(kind, value, shop)

    return {
        "order_info": {
            "tid": order.external_id, "status": status,
            "status_str": "部分发货" if order.status == "PARTIALLY_SHIPPED" else STATUS_TEXT[status],
            "type": 0, "pay_type": 10 if paid else 0, "pay_type_str": "WEIXIN_DAIXIAO" if paid else "",
            "close_type": 0 if status != "TRADE_CLOSE" else (2 if refund_state == 12 else 1),
            "refund_state": refund_state,
            "created": _time(order.created_at), "update_time": _time(order.updated_at),
            "pay_time": _time(order.paid_at),
            "expired_time": "" if paid else _time(order.created_at + 3_600_000),
            "consign_time": _time(_consign_time(order)), "confirm_time": "",
            "success_time": _time(order.finished_at if order.status == "COMPLETED" else None),
            "express_type": 0, "team_type": 0, "node_kdt_id": kdt_id(shop), "is_retail_order": False,
            "order_tags": {"is_payed": paid, "is_secured_transactions": True, "is_member": False},
            "order_extra": {"is_from_cart": "true"},
        },
        "buyer_info": {
            "buyer_id": 0, "buyer_phone": sealed("phone", order.receiver_phone), "fans_id": 0,
            "fans_nickname": NICKNAMES[_digits(order.buyer_id, 6) % len(NICKNAMES)],
            "yz_open_id": "yzOpen_" + hashlib.sha256(order.buyer_id.encode()).hexdigest()[:16],
        },
        "pay_info": {
            "payment": yuan(order.paid_total), "total_fee": yuan(order.items_total),
            "post_fee": yuan(order.shipping_fee), "real_payment": yuan(order.paid_total),
            "outer_transactions": [f"42000021{_digits(order.external_id, 20):020d}"] if paid else [],
            "transaction": [f"{_time(order.paid_at)[2:10].replace('-', '')}{_digits(order.external_id, 10):010d}"]
            if paid else [],
        },
        "address_info": {
            "receiver_name": sealed("name", order.receiver_name), "receiver_tel": sealed("tel", order.receiver_phone),
            "delivery_province": order.province, "delivery_city": order.city,
            "delivery_district": order.district, "delivery_address": sealed("address", street),
            "delivery_postal_code": order.postal_code, "address_extra": "", "self_fetch_info": "",
        },
        "remark_info": {"buyer_message": order.buyer_message, "star": 0, "trade_memo": ""},
        "source_info": {"is_offline_order": False, "source": {"platform": "wx", "wx_entrance": "wx_mini_program"}},
        "orders": [_line(order, line) for line in order.lines],
    }


def _express_id(carrier: str | None) -> int:
    """The express id of a line's carrier: the world's code, or the id an upload named."""
    carrier = carrier or ""
    return EXPRESS_IDS.get(carrier) or (int(carrier) if carrier.isdigit() else 0)


def delivery_order(order: SimOrder) -> list[dict]:
    """One package per tracking number, with the oids it holds."""
    packages: dict[str, dict] = {}
    for line in order.lines:
        if line.tracking_no is None:
            continue
        package = packages.get(line.tracking_no)
        if package is None:
            package = packages[line.tracking_no] = {
                "pk_id": 300_000_000 + _digits(line.tracking_no, 8), "express_state": 1, "express_type": 0,
                "oids": [],
                "dists": [{"dist_id": f"{_digits(line.tracking_no, 12):012d}",
                           "express_info": {"express_id": _express_id(line.carrier),
                                            "express_no": line.tracking_no}}]}
        package["oids"].append({"oid": line.line_id})
    return list(packages.values())


def refund_order(order: SimOrder) -> list[dict]:
    """One refund per line with a refund, in the refund order states of youzan.md §5."""
    return [{"refund_id": f"2{line.line_id[-17:]}", "refund_type": 1, "refund_fee": yuan(line.total),
             "refund_state": REFUND_ORDER_STATE[line.refund_status], "oids": [{"oid": line.line_id}]}
            for line in order.lines if line.refund_status != "NONE"]


def detail_data(order: SimOrder, plaintext: bool = False) -> dict:
    """The `data` of `youzan.trade.get`: the order and its refunds, packages and promotions."""
    return {"full_order_info": full_order_info(order, plaintext), "refund_order": refund_order(order),
            "delivery_order": delivery_order(order),
            "order_promotion": {"item": [{"oid": line.line_id, "promotion_title": "限时折扣",
                                          "promotion_type": "timelimitedDiscount", "discount_fee": yuan(line.discount)}
                                         for line in order.lines if line.discount],
                                "order": [], "adjust_fee": "0.00"}}


def trace_id() -> str:
    """A fresh Youzan trace id ('yz7.0a1b2c3d.1710728400123.4567890')."""
    return f"yz7.{secrets.token_hex(4)}.{int(time.time() * 1000)}.{secrets.randbelow(10**7):07d}"


def envelope(data) -> bytes:
    """A successful answer of an API version ≥ 4.0.0."""
    return orjson.dumps({"trace_id": trace_id(), "code": 200, "data": data, "success": True, "message": "successful"})


def list_data(orders: list[SimOrder], total: int, plaintext: bool = False) -> dict:
    return {"total_results": total,
            "full_order_info_list": [{"full_order_info": full_order_info(o, plaintext)} for o in orders]}


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """A `youzan.trades.sold.get` answer listing `orders` (one page); receivers in clear with `plaintext`."""
    return envelope(list_data(orders, len(orders), plaintext))


def detail_body(order: SimOrder, plaintext: bool = False) -> bytes:
    """A `youzan.trade.get` answer for `order`."""
    return envelope(detail_data(order, plaintext))


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a list page, `order_info.status` forced to `platform_status` and every line's
    `refund_state` to `refund_status` (the manifest's tables name both)."""
    data = list_data([order], 1)
    info = data["full_order_info_list"][0]["full_order_info"]
    if platform_status is not None:
        info["order_info"]["status"] = platform_status
    if refund_status is not None:
        for line in info["orders"]:
            line["refund_state"] = refund_status
    return envelope(data)


def push_body(order: SimOrder, shop: dict, kind: str, send_count: int = 0, plaintext: bool = False) -> bytes:
    """The JSON Youzan POSTs for a message of `kind` about `order` (youzan.md §6).

    Trade messages carry the order as `youzan.trade.get` gives it; refund messages name the refund and
    its trade only. `msg` is URL-encoded JSON and signed in the body the older way as well.
    """
    if kind.startswith("trade_refund_"):
        refunds = refund_order(order)
        message = {"kdt_id": kdt_id(order.shop_id), "tid": order.external_id,
                   "refund_id": refunds[-1]["refund_id"] if refunds else "",
                   "oids": ",".join(oid["oid"] for r in refunds for oid in r["oids"]),
                   "update_time": _time(order.updated_at)}
    else:
        message = detail_data(order, plaintext)
    msg = quote(orjson.dumps(message).decode(), safe="")
    client_id, secret = shop["app_key"], shop["app_secret"]
    return orjson.dumps({
        "client_id": client_id, "id": order.external_id, "kdt_id": kdt_id(order.shop_id),
        "kdt_name": shop.get("kdt_name", order.shop_id), "mode": 1, "msg": msg, "sendCount": send_count,
        "sign": message_sign(client_id, msg, secret), "status": trade_status(order), "test": False, "type": kind,
        "version": order.updated_at // 1000,
    })

