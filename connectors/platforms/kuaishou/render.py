"""Simulated orders rendered as Kuaishou answers: one order object per item (see world.py), ids as bare
JSON numbers, money in fen, times in Unix ms, receivers as ciphertext with masked copies beside them."""
from __future__ import annotations

import base64
import hashlib
import secrets

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.world import SimLine, SimOrder

from .world import packages

STATUS_CODE = {"PENDING_PAYMENT": 10, "PAID": 30, "PARTIALLY_SHIPPED": 30, "SHIPPED": 40, "DELIVERED": 50,
               "COMPLETED": 70, "CANCELLED": 80}
REFUND_CODE = {"REQUESTED": 10, "REJECTED": 40, "REFUNDED": 60}
REFUND_REASONS = ("不想要了", "拍错了/多拍了", "商品与描述不符", "未按约定时间发货")
_CARRIER_CODE = {name: int(code) for code, name in folder_manifest(__file__).carriers.items()}
_KEEP_IN_STREET = set("路街道巷弄号楼栋院室单元区")
# administrative codes of the simulated addresses (GB/T 2260), by name
PROVINCE_CODES = {"浙江省": 330000, "广东省": 440000, "北京市": 110000, "上海市": 310000, "江苏省": 320000,
                  "四川省": 510000, "湖北省": 420000, "山东省": 370000, "福建省": 350000, "陕西省": 610000}
CITY_CODES = {"杭州市": 330100, "深圳市": 440300, "北京市": 110100, "上海市": 310100, "南京市": 320100,
              "成都市": 510100, "武汉市": 420100, "青岛市": 370200, "厦门市": 350200, "西安市": 610100}
DISTRICT_CODES = {"西湖区": 330106, "南山区": 440305, "朝阳区": 110105, "浦东新区": 310115, "鼓楼区": 320106,
                  "武侯区": 510107, "洪山区": 420111, "市南区": 370202, "思明区": 350203, "雁塔区": 610113}
_CIPHER_KEY = hashlib.sha256(b"tonglu simulated kuaishou receiver key").digest()


def _keystream(size: int) -> bytes:
    blocks = (hashlib.sha256(_CIPHER_KEY + n.to_bytes(4, "big")).digest() for n in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def encrypt(plain: str) -> str:
    """The simulated platform ciphertext of a receiver field: `#base64#`, the same for the same text
    (as Kuaishou's: two orders of one receiver carry one ciphertext)."""
    data = plain.encode("utf-8")
    mixed = bytes(a ^ b for a, b in zip(data, _keystream(len(data)), strict=True))
    return "#" + base64.b64encode(mixed).decode("ascii").rstrip("=") + "#"


def decrypt(cipher: str) -> str | None:
    """The clear text of a simulated ciphertext (the batch-decrypt stub), None if it is not one."""
    if len(cipher) < 2 or cipher[0] != "#" or cipher[-1] != "#":
        return None
    try:
        mixed = base64.b64decode(cipher[1:-1] + "=" * (-len(cipher[1:-1]) % 4), validate=True)
        return bytes(a ^ b for a, b in zip(mixed, _keystream(len(mixed)), strict=True)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def desensitise_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def desensitise_mobile(phone: str) -> str:
    """Kuaishou's mask: 138****5678; a virtual number keeps its extension (138****5678-1234)."""
    main, _, extension = phone.partition("-")
    digits = "".join(ch for ch in main if ch.isdigit())
    masked = digits[:3] + "****" + digits[-4:] if len(digits) == 11 else \
        digits[:1] + "*" * max(len(digits) - 2, 1) + digits[-1:]
    return f"{masked}-{extension}" if extension else masked


def desensitise_address(street: str) -> str:
    """First character and road/number markers kept, everything else starred (one star per character)."""
    return street[:1] + "".join(ch if ch in _KEEP_IN_STREET else "*" for ch in street[1:]) if street else ""


def _open_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def status_code(order: SimOrder) -> int:
    return STATUS_CODE[order.status]


def _refunds(order: SimOrder, seed: int) -> list[dict]:
    """One refund entry per line under refund (Kuaishou refunds an order, which holds one item)."""
    return [{"refundId": int(line.line_id) * 10 + 3, "refundStatus": REFUND_CODE[line.refund_status],
             "refundReason": REFUND_REASONS[seed % len(REFUND_REASONS)]}
            for line in order.lines if line.refund_status in REFUND_CODE]


def _packages(order: SimOrder) -> list[tuple[str, str]]:
    """(tracking number, carrier name) of every package sent, in order, each once."""
    out: dict[str, str] = {}
    for line in order.lines:
        names = packages(line.carrier_name)
        for n, tracking in enumerate(packages(line.tracking_no)):
            out.setdefault(tracking, names[n] if n < len(names) else "")
    return list(out.items())


def _logistics_id(tracking: str) -> int:
    """A package's logisticsId, stable per tracking number (which may hold letters)."""
    return int(tracking) // 7 if tracking.isdigit() else int(hashlib.md5(tracking.encode()).hexdigest()[:13], 16)


def _delivery(order: SimOrder, sent: int, open_address_id: str) -> dict:
    if order.status == "PARTIALLY_SHIPPED":
        state = {"deliveryStatus": 1, "splitDeliveryOrder": True, "packageNum": sent, "totalPackageNum": sent + 1}
    elif sent:
        state = {"deliveryStatus": 2, "splitDeliveryOrder": sent > 1, "packageNum": sent, "totalPackageNum": sent}
    else:
        state = {"deliveryStatus": 0, "splitDeliveryOrder": False, "packageNum": 0, "totalPackageNum": 1}
    return {**state, "openAddressId": open_address_id}


def _item(line: SimLine) -> dict:
    return {
        "orderItemId": int(line.line_id), "itemId": 21445500000 + int(line.sku_id) % 100000, "relItemId": 0,
        "skuId": int(line.sku_id), "relSkuId": 0, "skuNick": line.merchant_sku, "goodsCode": line.merchant_sku,
        "itemTitle": line.title, "skuDesc": line.title.rsplit(" ", 1)[-1], "num": line.quantity,
        "price": line.unit_price, "originalPrice": line.unit_price, "discountFee": line.discount,
        "itemType": 1, "itemPicUrl": f"https://p1.a.yximgs.com/ufile/demo/{line.merchant_sku.lower()}.jpg",
        "itemLinkUrl": f"https://app.kwaixiaodian.com/merchant/shop/detail?id={line.sku_id}", "warehouseCode": "",
    }


def order_dict(order: SimOrder, plaintext: bool = False) -> dict:
    """A simulated order as `open.order.detail` returns it in `data`.

    The simulator's own orders hold one item (`orderItemInfo`); an order of several lines handed in by
    a caller carries the others in `subOrderInfo`, in the same shape. Receivers come as ciphertext plus
    masked copies, the clear fields empty, as for every app today; `plaintext=True` fills the clear
    fields too, as an app authorised to decrypt receives them.
    """
    first = order.lines[0]
    sent = _packages(order)
    street = order.street
    seller = _open_id(order.shop_id)
    address_id = "kOA_" + hashlib.sha256(f"{order.shop_id}|{order.receiver_name}|{order.receiver_phone}|"
                                         f"{street}".encode()).hexdigest()[:16]
    refunds = _refunds(order, int(order.external_id))
    base = {
        "oid": int(order.external_id), "status": status_code(order),
        "totalFee": order.paid_total, "expressFee": order.shipping_fee,
        "discountFee": order.line_discounts + order.order_discount,
        "createTime": order.created_at, "payTime": order.paid_at or 0, "updateTime": order.updated_at,
        "sendTime": order.shipped_at or 0, "recvTime": order.delivered_at or 0,
        "refundTime": order.updated_at if refunds else 0,
        "payType": 1, "payChannel": "WECHAT" if int(order.external_id) % 3 else "ALIPAY",
        "buyerOpenId": order.buyer_id, "buyerNick": order.buyer_nick or "快***户",
        "buyerImage": "https://p2.a.yximgs.com/uhead/AB/2024/03/demo.jpg",
        "sellerOpenId": seller, "sellerNick": order.shop_id, "remark": order.buyer_message,
        "cpsType": 1, "preSale": 0, "activityType": 0, "commentStatus": 0, "riskCode": 0,
        "promiseTimeStampOfDelivery": (order.paid_at or order.created_at) + 48 * 3_600_000,
        "theDayOfDeliverGoodsTime": 2, "orderLabels": [],
        "enableSplitDeliveryOrder": any(line.quantity > 1 for line in order.lines),
    }
    if order.tax:  # cross-border orders
        base["orderTaxInfo"] = {"taxAmount": order.tax, "sellerBearAmount": 0}
    return {
        "orderBaseInfo": base,
        "orderItemInfo": _item(first),
        "orderAddress": {
            "consignee": order.receiver_name if plaintext else "",
            "mobile": order.receiver_phone if plaintext else "",
            "address": street if plaintext else "",
            "encryptedConsignee": encrypt(order.receiver_name), "encryptedMobile": encrypt(order.receiver_phone),
            "encryptedAddress": encrypt(street),
            "desensitiseConsignee": desensitise_name(order.receiver_name),
            "desensitiseMobile": desensitise_mobile(order.receiver_phone),
            "desensitiseAddress": desensitise_address(street),
            "province": order.province, "provinceCode": PROVINCE_CODES.get(order.province, 0),
            "city": order.city, "cityCode": CITY_CODES.get(order.city, 0),
            "district": order.district, "districtCode": DISTRICT_CODES.get(order.district, 0),
            "town": order.town, "townCode": DISTRICT_CODES.get(order.district, 0) * 1000 + 1 if order.town else 0,
        },
        "orderLogisticsInfo": [{"logisticsId": _logistics_id(tracking), "expressNo": tracking,
                                "expressCode": _CARRIER_CODE.get(name, 0)} for tracking, name in sent],
        "orderRefundList": refunds,
        "orderDeliveryInfo": _delivery(order, len(sent), address_id),
        "subOrderInfo": [_item(line) for line in order.lines[1:]],
    }


def answer(data: dict, request_id: str | None = None) -> bytes:
    """A successful Kuaishou answer around `data`."""
    return orjson.dumps({"result": 1, "msg": "success", "code": "", "error_msg": "", "sub_code": "", "sub_msg": "",
                         "requestId": request_id or secrets.token_hex(8), "data": data})


def list_data(entries: list[dict], cursor: str, page_size: int, begin: int, end: int) -> dict:
    return {"cursor": cursor, "pageSize": page_size, "beginTime": begin, "endTime": end, "orderList": entries}


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """An `open.order.cursor.list` answer listing `orders` as its last page (cursor "nomore")."""
    times = [o.updated_at for o in orders] or [0]
    entries = [order_dict(o, plaintext) for o in orders]
    return answer(list_data(entries, "nomore", max(len(orders), 1), min(times), max(times)))


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a list page, its `status` forced to `platform_status` and its refund (one
    orderRefundList entry) to `refund_status` (the manifest's tables name both)."""
    entry = order_dict(order)
    if platform_status is not None:
        entry["orderBaseInfo"]["status"] = int(platform_status)
    if refund_status is not None:
        entry["orderRefundList"] = [{"refundId": int(order.lines[0].line_id) * 10 + 3,
                                     "refundStatus": int(refund_status), "refundReason": REFUND_REASONS[0]}]
    times = order.updated_at
    return answer(list_data([entry], "nomore", 1, times, times))
