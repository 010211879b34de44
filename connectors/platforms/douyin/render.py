"""Simulated orders rendered as Doudian answers: a shop order as `order.searchList` / `order.orderDetail`
return it (ids as 19-digit strings, product ids as bare numbers above 2^53, fen, Unix seconds, receivers
as ciphertexts with masked values beside them, some phones as virtual numbers with an extension).
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import time

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.world import SimLine, SimOrder

from .facts import FACTS

OK_HEAD = {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": ""}
STATUS_CODE = {"PENDING_PAYMENT": 1, "PAID": 2, "PARTIALLY_SHIPPED": 101, "SHIPPED": 3, "DELIVERED": 3,
               "COMPLETED": 5, "CANCELLED": 4}
STATUS_DESC = {1: "待支付", 105: "已支付", 2: "待发货", 101: "部分发货", 3: "已发货", 4: "已取消", 5: "已完成"}
# simulated carrier codes (simkit catalogue) -> Douyin company codes
CARRIER_CODES = {"ZTO": "zhongtong", "YTO": "yuantong", "SF": "shunfeng", "YUNDA": "yunda", "STO": "shentong"}
PROVINCE_IDS = {"浙江省": "33", "广东省": "44", "北京市": "11", "上海市": "31", "江苏省": "32", "四川省": "51",
                "湖北省": "42", "山东省": "37", "福建省": "35", "陕西省": "61"}
CITY_IDS = {"杭州市": "330100", "深圳市": "440300", "北京市": "110100", "上海市": "310100", "南京市": "320100",
            "成都市": "510100", "武汉市": "420100", "青岛市": "370200", "厦门市": "350200", "西安市": "610100"}
_MANIFEST = folder_manifest(__file__)
_REFUND_FIELD = {"REFUNDED": 3, "REQUESTED": 1}  # after-sale `refund_status` beside a line's state
_KEEP_IN_DETAIL = set("路街道巷弄号楼栋院室单元区")
_KEY_INFO = "CgwIARCtHBiqICABKAESPgo8"


def seconds(ms: int | None) -> int:
    """Epoch ms -> the Unix seconds Douyin answers with (0 for 'not yet')."""
    return 0 if ms is None else ms // 1000


def log_id() -> str:
    """A fresh `log_id` shaped like Douyin's (time of day, then hex)."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def douyin_shop_id(shop_id: str):
    """The `shop_id` a shop's orders and pushes carry: a number for numeric shop ids (as Douyin's are),
    the id itself otherwise, so that a push names the shop it is configured as."""
    return int(shop_id) if shop_id.isdigit() else shop_id


def ciphertext(kind: str, plain: str, shop_id: str) -> str:
    """A deterministic opaque stand-in for Douyin's ciphertext of `plain` (kind: name, phone, address):
    `#index#cipher*keyinfo#1##` with the kind's first character ($ for phones)."""
    mark = getattr(FACTS.ciphertext, kind)
    digest = hashlib.sha256(f"{shop_id}|{kind}|{plain}".encode()).digest()
    index = base64.b64encode(digest[:6]).decode()
    body = base64.b64encode(hashlib.sha512(digest).digest()[: 24 + len(plain.encode()) % 24]).decode()
    return f"{mark}{index}{mark}{body}*{_KEY_INFO}{base64.b64encode(digest[6:12]).decode()}#1##"


def mask_receiver(name: str) -> str:
    """Douyin's receiver-name mask: the first character and one star."""
    return name[:1] + "*" if name else ""


def mask_tel(phone: str) -> str:
    """Douyin's phone mask: first 3 and last 4 digits around four stars (extension kept)."""
    number, sep, extension = phone.partition("-")
    if len(number) < 7:
        masked = number[:1] + "*" * max(len(number) - 2, 1) + number[-1:]
    else:
        masked = number[:3] + "****" + number[-4:]
    return masked + sep + extension


def mask_detail(detail: str) -> str:
    """Douyin-like address detail mask: road/number markers kept, every other run of characters '***'."""
    out, run = [detail[:1]], False
    for ch in detail[1:]:
        if ch in _KEEP_IN_DETAIL:
            out.append(ch)
            run = False
        elif not run:
            out.append("***")
            run = True
    return "".join(out)


def virtual_number(order: SimOrder) -> str | None:
    """About one buyer in five hides the phone behind a virtual number `170xxxxxxxx-ext` (隐私号); the
    same buyer gets the same one, so a re-placed order still looks like its original."""
    phone = order.receiver_phone
    if len(phone) != 11 or not phone.startswith("1"):
        return None
    digits = int(hashlib.sha256(f"{order.shop_id}|{phone}".encode()).hexdigest()[:12], 16)
    if digits % 5:
        return None
    return f"170{digits // 5 % 10**8:08d}-{digits % 9000 + 1000}"


def _area(order: SimOrder) -> dict:
    city_id = CITY_IDS.get(order.city, PROVINCE_IDS.get(order.province, "99") + "0100")
    town_id = city_id[:4] + f"{int(hashlib.md5(order.district.encode()).hexdigest()[:2], 16) % 90 + 2:02d}"
    return {"province": {"name": order.province, "id": PROVINCE_IDS.get(order.province, "99")},
            "city": {"name": order.city, "id": city_id},
            "town": {"name": order.district, "id": town_id},
            "street": {"name": order.town, "id": town_id + "007"}}


def _after_sale(line: SimLine) -> dict:
    state = line.refund_status
    kind = 0 if line.shipped_at is not None else 2  # 退货退款 after shipping, 售前退款 before
    code = {"NONE": 0, "REQUESTED": 6, "REFUNDED": 12, "REJECTED": 27}[state]
    return {"after_sale_status": code, "after_sale_type": kind if code else 0,
            "refund_status": _REFUND_FIELD.get(state, 0)}


def _sku_status(order: SimOrder, line: SimLine, parent: int) -> int:
    if line.refund_status == "REFUNDED":
        return 4
    if parent == 101:
        return 3 if line.shipped_at is not None else 2
    return parent


def _sku(order: SimOrder, line: SimLine, parent: int, extra_discount: int) -> dict:
    product = 3_612_345_678_900_000_000 + int(hashlib.md5(line.merchant_sku.encode()).hexdigest()[:10], 16) % 10**9
    spec = line.title.rsplit(" ", 1)
    status = _sku_status(order, line, parent)
    return {
        "order_id": line.line_id, "parent_order_id": order.external_id, "order_level": 3,
        "order_status": status, "order_status_desc": STATUS_DESC[status],
        "product_id": product, "product_id_str": str(product), "product_name": line.title,
        "sku_id": int(line.sku_id), "out_sku_id": line.merchant_sku, "out_product_id": line.merchant_sku.rsplit("-", 1)[0],
        "code": line.merchant_sku, "spec": [{"name": "规格", "value": spec[-1]}],
        "item_num": line.quantity, "origin_amount": line.quantity * line.unit_price,
        "sum_amount": line.quantity * line.unit_price, "pay_amount": line.total - extra_discount,
        "promotion_amount": line.discount + extra_discount, "post_amount": 0,
        "create_time": seconds(order.created_at), "pay_time": seconds(order.paid_at),
        "update_time": seconds(order.updated_at), "after_sale_info": _after_sale(line),
    }


def _delivery_id(tracking_no: str) -> str:
    """The package's id: 19 digits, stable per tracking number (which may hold letters)."""
    digest = int(hashlib.md5(tracking_no.encode()).hexdigest()[:15], 16)
    return str(7_345_600_000_000_000_000 + (int(tracking_no) if tracking_no.isdigit() else digest) % 10**17)


def _packages(order: SimOrder) -> list[dict]:
    packages: dict[str, dict] = {}
    for line in order.lines:
        if not line.tracking_no:
            continue
        pack = packages.get(line.tracking_no)
        if pack is None:
            code = CARRIER_CODES.get(line.carrier or "", (line.carrier or "").lower())
            pack = packages[line.tracking_no] = {
                "tracking_no": line.tracking_no, "company": code,
                "company_name": _MANIFEST.carriers.get(code, line.carrier_name or ""),
                "ship_time": seconds(line.shipped_at), "delivery_id": _delivery_id(line.tracking_no),
                "product_info": []}
        pack["product_info"].append({"sku_order_id": line.line_id, "product_count": line.quantity,
                                     "product_name": line.title, "outer_sku_id": line.merchant_sku})
    return list(packages.values())


def shop_order(order: SimOrder, plaintext: bool = False) -> dict:
    """A simulated order as a Douyin shop order (a `shop_order_list` element). `plaintext=True` fills
    `post_receiver`/`post_tel`/`post_addr.detail` in clear, as an app allowed to read receivers gets them."""
    code = STATUS_CODE[order.status]
    paid = order.paid_at is not None
    finished = order.finished_at if order.status == "COMPLETED" else order.cancelled_at
    # Douyin allocates every promotion to the skus; an order-level discount goes to the first sku
    skus = [_sku(order, line, code, order.order_discount if n == 0 else 0) for n, line in enumerate(order.lines)]
    virtual = virtual_number(order)
    phone = virtual or order.receiver_phone
    area = _area(order)
    out = {
        "order_id": order.external_id, "order_level": 2, "order_status": code, "order_status_desc": STATUS_DESC[code],
        "order_type": 0, "order_type_desc": "普通订单", "trade_type": 0, "trade_type_desc": "普通",
        "biz": 2, "b_type": 2, "b_type_desc": "抖音", "shop_id": douyin_shop_id(order.shop_id), "shop_name": "同路抖音小店",
        "create_time": seconds(order.created_at), "pay_time": seconds(order.paid_at),
        "update_time": seconds(order.updated_at), "finish_time": seconds(finished) if order.status in (
            "COMPLETED", "CANCELLED") else 0,
        "exp_ship_time": seconds(order.paid_at) + 48 * 3600 if paid else 0, "ship_time": seconds(order.shipped_at),
        "order_amount": order.paid_total, "pay_amount": order.paid_total, "post_amount": order.shipping_fee,
        "promotion_amount": order.line_discounts + order.order_discount, "modify_amount": 0, "pay_type": 1,
        "buyer_words": order.buyer_message, "seller_words": "", "doudian_open_id": "1@#" + order.buyer_id + "=",
        "encrypt_post_receiver": ciphertext("name", order.receiver_name, order.shop_id),
        "encrypt_post_tel": ciphertext("phone", phone, order.shop_id),
        "post_receiver": order.receiver_name if plaintext else "",
        "post_tel": order.receiver_phone if plaintext else "",
        "mask_post_receiver": mask_receiver(order.receiver_name), "mask_post_tel": mask_tel(phone),
        "post_addr": {**area, "detail": order.street if plaintext else "",
                      "encrypt_detail": ciphertext("address", order.street, order.shop_id)},
        "mask_post_addr": {**area, "detail": mask_detail(order.street)},
        "logistics_info": _packages(order),
        "sku_order_list": skus,
    }
    if order.delivered_at is not None and order.status in ("DELIVERED", "COMPLETED"):
        out["logistics_receipt_time"] = seconds(order.delivered_at)
    if order.status == "COMPLETED":
        out["confirm_receipt_time"] = seconds(order.finished_at)
    if order.status == "CANCELLED":
        out["cancel_reason"] = "买家申请售前退款，退款成功" if paid else "超时未支付"
    return out


def answer(data) -> bytes:
    """A successful Douyin answer around `data`."""
    return orjson.dumps({**OK_HEAD, "log_id": log_id(), "data": data})


def list_data(orders: list[dict], page: int, size: int, total: int) -> dict:
    return {"page": page, "size": size, "total": total, "shop_order_list": orders}


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """An `order.searchList` answer listing `orders` (one page); receivers in clear with `plaintext=True`."""
    return answer(list_data([shop_order(o, plaintext) for o in orders], 0, max(len(orders), 1), len(orders)))


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a list page, its `order_status` forced to `platform_status` and every sku's
    `after_sale_status` to `refund_status` (with the `refund_status` field that goes with it)."""
    rendered = shop_order(order)
    if platform_status is not None:
        rendered["order_status"] = int(platform_status)
    if refund_status is not None:
        want = _MANIFEST.refund_statuses[refund_status]
        for sku in rendered["sku_order_list"]:
            sku["after_sale_info"] = {"after_sale_status": int(refund_status), "after_sale_type": 2,
                                      "refund_status": _REFUND_FIELD.get(want, 0)}
    return answer(list_data([rendered], 0, 1, 1))
