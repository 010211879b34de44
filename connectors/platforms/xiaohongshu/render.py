"""Simulated orders rendered as Xiaohongshu answers: list summaries, order details, receiver info.

Shapes follow the recorded answers (samples/) and the public field lists: ids `P` + 18 digits, money in
fen, times in epoch milliseconds, 0 for "not yet". The receiver's name, phone and street come only from
`order.getOrderReceiverInfo`, as `#…#` ciphertexts (deterministic per shop and value, so the same buyer
gives the same ciphertext, and reversible by the simulator's decrypt stub), next to the clear province,
city, district and town names; `data.batchDesensitise` masks them (some mobiles shown as privacy
numbers with an extension).
"""
from __future__ import annotations

import base64
import hashlib

import orjson

from connectors.simkit.world import SimLine, SimOrder

from .capture import capture

AFTER_SALE = {"NONE": 1, "REQUESTED": 2, "REFUNDED": 3, "REJECTED": 4}  # skuAfterSaleStatus of a simulated line
CARRIER_CODES = {"SF": "shunfeng", "ZTO": "zhongtong", "YTO": "yuantong", "STO": "shentong", "YUNDA": "yunda",
                 "JD": "jd", "EMS": "ems", "JTSD": "jtexpress"}
PROVINCE_IDS = {"浙江省": "330000", "广东省": "440000", "北京市": "110000", "上海市": "310000", "江苏省": "320000",
                "四川省": "510000", "湖北省": "420000", "山东省": "370000", "福建省": "350000", "陕西省": "610000"}
HOUR_MS = 3_600_000


def xhs_order_id(rng) -> str:
    """An order id shaped like the platform's: `P` + 18 digits (never a bare number)."""
    return "P" + str(rng.randrange(734_000_000_000_000_000, 734_999_999_999_999_999))


def hex_id(text: str, size: int = 24) -> str:
    """A stable hex id standing in for the platform's object ids (users, sellers, products)."""
    return hashlib.sha1(text.encode()).hexdigest()[:size]


def _keystream(shop_id: str, size: int) -> bytes:
    key, out, n = hashlib.sha256(f"xhs-sim|{shop_id}".encode()).digest(), b"", 0
    while len(out) < size:
        out += hashlib.sha256(key + n.to_bytes(4, "big")).digest()
        n += 1
    return out[:size]


_TAG = 9  # bytes of a per-value tag in front, so that short names do not give short ciphertexts


def encrypt(shop_id: str, text: str) -> str:
    """The simulated ciphertext of a receiver value: `#` + base64 + `#`, like the platform's."""
    data = text.encode("utf-8")
    tag = hashlib.sha256(f"{shop_id}|{text}".encode()).digest()[:_TAG]
    sealed = bytes(a ^ b for a, b in zip(data, _keystream(shop_id + tag.hex(), len(data)), strict=True))
    return "#" + base64.b64encode(tag + sealed).decode() + "#"


def decrypt(shop_id: str, cipher: str) -> str:
    """The value `encrypt` sealed (ValueError when it is not one of this shop's ciphertexts)."""
    if len(cipher) < 3 or cipher[0] != "#" or cipher[-1] != "#":
        raise ValueError("not a ciphertext")
    raw = base64.b64decode(cipher[1:-1], validate=True)
    tag, data = raw[:_TAG], raw[_TAG:]
    plain = bytes(a ^ b for a, b in zip(data, _keystream(shop_id + tag.hex(), len(data)), strict=True)).decode()
    if hashlib.sha256(f"{shop_id}|{plain}".encode()).digest()[:_TAG] != tag:
        raise ValueError("not a ciphertext of this shop")
    return plain


_KEEP_IN_STREET = frozenset("路街道巷弄号楼栋幢院室单元村镇乡")


def virtual_number(shop_id: str, phone: str) -> str | None:
    """The privacy number a quarter of the buyers' mobiles are shown as: 170 + 8 digits and a 4-digit
    extension, bound to the shop and the mobile (so one buyer keeps one)."""
    if not (len(phone) == 11 and phone.isdigit()):
        return None
    digest = int(hashlib.md5(f"{shop_id}|{phone}".encode()).hexdigest(), 16)
    return None if digest % 4 else f"170{digest % 10**8:08d}-{digest // 10**8 % 10**4:04d}"


def desensitised(shop_id: str, plain: str, kind: str) -> str:
    """The platform's mask of a receiver value (`data.batchDesensitise`), `kind` phone, street or name:
    a phone (or the privacy number shown for it) keeps 3 + 4 digits, its extension starred; a street its
    first character and its road and number words; a name its first character."""
    if kind == "phone":
        main, _, extension = (virtual_number(shop_id, plain) or plain).partition("-")
        keep = 3 if len(main) >= 8 else 1
        masked = main[:keep] + "*" * max(len(main) - keep - (4 if keep == 3 else 1), 1) + main[-(4 if keep == 3 else 1):]
        return masked + ("-" + "*" * len(extension) if extension else "")
    if kind == "street":
        return plain[:1] + "".join(ch if ch in _KEEP_IN_STREET else "*" for ch in plain[1:])
    return plain[:1] + "*" * max(len(plain) - 1, 1)


def open_address_id(order: SimOrder) -> str:
    """Computed from name + phone + address, as the platform's `openAddressId` is."""
    plain = (f"{order.shop_id}|{order.receiver_name}|{order.receiver_phone}|{order.province}{order.city}"
             f"{order.district}{order.town}{order.street}")
    return hashlib.md5(plain.encode()).hexdigest()


def order_status(order: SimOrder) -> int:
    """The orderStatus of a simulated order."""
    status = order.status
    if status == "PENDING_PAYMENT":
        return 1
    if status == "PAID":
        return 4
    if status == "PARTIALLY_SHIPPED":
        return 5
    if status in ("SHIPPED", "DELIVERED"):  # no "delivered" state: 待收货 until the buyer confirms
        return 6
    if status == "COMPLETED":
        return 7
    if status == "CANCELLED":
        return 8 if order.paid_at is not None else 9  # 已关闭 after a refund, 已取消 before payment
    raise ValueError(f"unknown simulated status {status!r}")


def after_sale_status(order: SimOrder) -> int:
    states = {line.refund_status for line in order.lines}
    for state in ("REQUESTED", "REFUNDED", "REJECTED"):
        if state in states:
            return AFTER_SALE[state]
    return 1


def _ms(value: int | None) -> int:
    return value or 0


def summary(order: SimOrder) -> dict:
    """An `order.getOrderList` entry: state and times, no lines, no amounts, no receiver."""
    return {
        "orderId": order.external_id, "orderType": 1, "orderStatus": order_status(order),
        "orderAfterSalesStatus": after_sale_status(order), "cancelStatus": 0,
        "createdTime": order.created_at, "paidTime": _ms(order.paid_at), "updateTime": order.updated_at,
        "deliveryTime": _ms(order.shipped_at), "cancelTime": _ms(order.cancelled_at),
        "finishTime": _ms(order.finished_at if order.status == "COMPLETED" else None),
        "promiseLastDeliveryTime": order.paid_at + 48 * HOUR_MS if order.paid_at else 0,
        "planInfoId": hex_id(f"plan|{order.shop_id}"), "planInfoName": "默认物流方案",
        "receiverCountryId": "1", "receiverCountryName": "中国",
        "receiverProvinceId": PROVINCE_IDS.get(order.province, ""), "receiverProvinceName": order.province,
        "receiverCityName": order.city, "receiverDistrictName": order.district,
        "logistics": "red_auto", "customerRemark": order.buyer_message, "sellerRemark": "", "sellerRemarkFlag": 0,
    }


def _sku(order: SimOrder, line: SimLine, extra_discount: int = 0, tax: int = 0) -> dict:
    discount = line.discount + extra_discount
    red = discount // 3 if discount >= 300 else 0  # the platform bears part of bigger discounts
    return {
        "skuId": line.line_id, "skuName": line.title, "erpcode": line.merchant_sku,
        "skuSpec": line.title.rsplit(" ", 1)[-1], "skuImage": f"https://ci.xiaohongshu.com/{hex_id(line.merchant_sku)}.jpg",
        "skuQuantity": line.quantity, "totalPaidAmount": line.total - extra_discount + tax,
        "totalMerchantDiscount": discount - red, "totalRedDiscount": red, "totalTaxAmount": tax,
        "skuAfterSaleStatus": AFTER_SALE[line.refund_status], "skuTag": 0, "isChannel": False,
        "skuDetailList": [{"skuId": hex_id(line.merchant_sku), "erpcode": line.merchant_sku,
                           "skuSpec": line.title.rsplit(" ", 1)[-1], "price": line.unit_price,
                           "quantity": line.quantity}],
    }


def _packages(order: SimOrder) -> list[dict]:
    """`simpleDeliveryOrderList`: one package per waybill, plus one for the lines still to ship."""
    shipped: dict[str, list[SimLine]] = {}
    waiting = []
    for line in order.lines:
        if line.tracking_no:
            shipped.setdefault(line.tracking_no, []).append(line)
        elif line.refund_status != "REFUNDED":
            waiting.append(line)
    if not shipped:
        return []
    done = 7 if order.status == "COMPLETED" else 6
    packages = [{"deliveryOrderIndex": n, "status": done, "expressTrackingNo": tracking,
                 "expressCompanyCode": CARRIER_CODES.get(lines[0].carrier or "", (lines[0].carrier or "").lower()),
                 "skuIdList": [line.line_id for line in lines]} for n, (tracking, lines) in enumerate(shipped.items())]
    if waiting:
        packages.append({"deliveryOrderIndex": len(packages), "status": 4, "expressTrackingNo": "",
                         "expressCompanyCode": "", "skuIdList": [line.line_id for line in waiting]})
    return packages


def detail(order: SimOrder) -> dict:
    """The `data` of `order.getOrderDetail`: the summary plus lines, amounts and packages (the receiver's
    name, phone and address are not returned here)."""
    out = summary(order)
    last = len(order.lines) - 1  # a discount on the whole order is carried by the last sku, tax by the first
    skus = [_sku(order, line, order.order_discount if n == last else 0, order.tax if n == 0 else 0)
            for n, line in enumerate(order.lines)]
    packages = _packages(order)
    first = next((p for p in packages if p["expressTrackingNo"]), None)
    out.update({
        "openAddressId": open_address_id(order), "userId": hex_id(order.buyer_id or order.external_id),
        "shopId": order.shop_id, "paymentType": 1 if int(order.created_at) % 2 else 2,
        "totalPayAmount": order.paid_total, "totalShippingFree": order.shipping_fee,
        "totalMerchantDiscount": sum(s["totalMerchantDiscount"] for s in skus),
        "totalRedDiscount": sum(s["totalRedDiscount"] for s in skus), "totalDepositAmount": 0,
        "totalChangePriceAmount": 0, "unpack": len(packages) > 1,
        "expressTrackingNo": first["expressTrackingNo"] if first else "",
        "expressCompanyCode": first["expressCompanyCode"] if first else "",
        "simpleDeliveryOrderList": packages, "skuList": skus,
    })
    return out


def receiver_info(order: SimOrder, plaintext: bool = False) -> dict:
    """An `order.getOrderReceiverInfo` entry: ciphertexts (clear with `plaintext`, as an app authorised to
    decrypt reads them) next to the clear region names."""
    def seal(value: str) -> str:
        return value if plaintext or not value else encrypt(order.shop_id, value)

    return {"orderId": order.external_id, "matched": True, "receiverName": seal(order.receiver_name),
            "receiverPhone": seal(order.receiver_phone), "receiverAddress": seal(order.street),
            "receiverCountryName": "中国", "receiverProvinceName": order.province,
            "receiverCityName": order.city, "receiverDistrictName": order.district,
            "receiverTownName": order.town}


def masks(order: SimOrder) -> list[dict]:
    """`data.batchDesensitise` entries for an order's three ciphertexts."""
    out = []
    for kind, plain in (("name", order.receiver_name), ("phone", order.receiver_phone), ("street", order.street)):
        if plain:
            out.append({"dataTag": order.external_id, "encryptedData": encrypt(order.shop_id, plain),
                        "desensitisedData": desensitised(order.shop_id, plain, kind), "errorCode": 0, "errorMsg": ""})
    return out


def answer(data) -> bytes:
    """A successful answer around `data`."""
    return orjson.dumps({"success": True, "code": 0, "msg": "成功", "data": data})


def list_data(orders: list[SimOrder], page_no: int = 1, page_size: int = 50, total: int | None = None) -> dict:
    total = len(orders) if total is None else total
    return {"total": total, "pageNo": page_no, "pageSize": page_size,
            "maxPageNo": max(1, -(-total // page_size)), "orderList": [summary(o) for o in orders]}


def _capture(orders: list[SimOrder], details: list[dict], plaintext: bool) -> bytes:
    receivers = answer({"receiverInfos": [receiver_info(o, plaintext) for o in orders]})
    masked = None if plaintext else [answer({"desensitiseInfoList": [m for o in orders for m in masks(o)]})]
    return capture([answer(d) for d in details], receivers, masked)


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """A capture of one list page holding `orders` (see capture.py), as the client publishes it."""
    return _capture(orders, [detail(o) for o in orders], plaintext)


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a capture, its `orderStatus` forced to `platform_status` and its after-sale status
    (order and every sku) to `refund_status` (the manifest's tables name both)."""
    data = detail(order)
    if platform_status is not None:
        data["orderStatus"] = int(platform_status)
    if refund_status is not None:
        data["orderAfterSalesStatus"] = int(refund_status)
        for sku in data["skuList"]:
            sku["skuAfterSaleStatus"] = int(refund_status)
    return _capture([order], [data], False)
