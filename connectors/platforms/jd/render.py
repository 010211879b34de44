"""Simulated orders rendered as JOS answers (jd.md §4, §5): `orderInfo` objects and the enSearch/enGet
(ciphertext receivers) or search/get (plaintext, the older APIs) answers around them.

How the world's orders look on JD:
- unpaid: NOT_PAY (the list leaves them out unless asked for); paid: WAIT_SELLER_STOCK_OUT; a line
  waiting for a refund locks the order (LOCKED), before or after shipping;
- JD has no partial-shipment state: the order waits for stock-out until the seller ships it, then shows
  every package's number in `waybill` (joined by api.toml's separator) and one `logisticsId`;
- delivered but not confirmed stays WAIT_GOODS_RECEIVE_CONFIRM; completed is FINISHED_L; cancelled
  (refunded in full, or never paid) is TRADE_CANCELED;
- line discounts are per-SKU entries of `couponDetailList`, and `sellerDiscount` their sum plus the
  order's own discount; some receivers get a virtual number with an extension; some orders are one
  shop's share of a cart JD split across shops (`parentOrderId`).
"""
from __future__ import annotations

import hashlib
import zlib

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.world import SimOrder
from schemas.canonical import mask_phone, ms_to_beijing

from . import tde
from .answer import DETAIL_METHOD, LIST_METHOD, PLAIN_LIST_METHOD, wrapper
from .api import COUPONS, EXTENSION, MASKED_MOBILE, WAYBILLS

_MANIFEST = folder_manifest(__file__)
LOGISTICS_IDS = {name: code for code, name in _MANIFEST.carriers.items()}  # carrier name -> logisticsId
STATE_REMARKS = {"WAIT_SELLER_STOCK_OUT": "等待出库", "WAIT_SELLER_DELIVERY": "等待发货", "WAIT_SEND_CODE": "等待发码",
                 "POP_ORDER_PAUSE": "暂停", "PAUSE": "暂停", "LOCKED": "已锁定", "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
                 "FINISHED_L": "完成", "TRADE_CANCELED": "(删除)取消", "NOT_PAY": "未付款"}
# JD region ids of the provinces (jingdong.area.province.get)
PROVINCE_IDS = {"北京": 1, "上海": 2, "天津": 3, "重庆": 4, "河北": 5, "山西": 6, "河南": 7, "辽宁": 8, "吉林": 9,
                "黑龙江": 10, "内蒙古": 11, "江苏": 12, "山东": 13, "安徽": 14, "浙江": 15, "福建": 16, "湖北": 17,
                "湖南": 18, "广东": 19, "广西": 20, "江西": 21, "四川": 22, "海南": 23, "贵州": 24, "云南": 25,
                "西藏": 26, "陕西": 27, "甘肃": 28, "青海": 29, "宁夏": 30, "新疆": 31}
# a municipality's third level on JD is a zone of the city, not a district
ZONES = {"北京": ("三环以内", "三环到四环之间", "四环到五环之间", "五环到六环之间"),
         "上海": ("内环以内", "内环到中环之间", "中环到外环之间", "外环以外")}
ALL_STATES = tuple(_MANIFEST.statuses)
LISTED_STATES = tuple(s for s in ALL_STATES if s != "NOT_PAY")  # what order.search lists by default


def yuan(fen: int) -> str:
    """Integer fen -> JOS yuan string with two decimals ('157.80')."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _digits(text: str, size: int, offset: int = 0) -> str:
    return str(offset + zlib.crc32(text.encode()) % 10**size)


def order_state(order: SimOrder) -> str:
    """The JD orderState of a simulated order."""
    status = order.status
    if status == "PENDING_PAYMENT":
        return "NOT_PAY"
    if status == "COMPLETED":
        return "FINISHED_L"
    if status == "CANCELLED":
        return "TRADE_CANCELED"
    if any(line.refund_status == "REQUESTED" for line in order.lines):
        return "LOCKED"
    if status in ("PAID", "PARTIALLY_SHIPPED"):
        return "WAIT_SELLER_STOCK_OUT"
    if status in ("SHIPPED", "DELIVERED"):
        return "WAIT_GOODS_RECEIVE_CONFIRM"
    raise ValueError(f"unknown simulated status {status!r}")


def short_province(name: str) -> str:
    """JD writes provinces without 省/市/自治区: 浙江省 -> 浙江, 北京市 -> 北京, 广西壮族自治区 -> 广西."""
    for suffix in ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def region(order: SimOrder) -> tuple[str, str, str, str]:
    """(province, city, county, town) as JD files the address."""
    province = short_province(order.province)
    if province in ("北京", "上海", "天津", "重庆"):
        zones = ZONES.get(province, ("城区",))
        return province, order.district, zones[zlib.crc32(order.street.encode()) % len(zones)], order.town
    return province, order.city, order.district, order.town


def virtual_number(order: SimOrder) -> str | None:
    """About every fourth receiver with a mobile hides behind a virtual number with an extension
    (17012345678-1234), bound to the buyer and receiver (a re-placed order gets the same one)."""
    phone = order.receiver_phone
    if not (len(phone) == 11 and phone.isdigit() and phone.startswith("1")):
        return None
    digest = hashlib.sha256(f"{order.buyer_id}:{phone}".encode()).hexdigest()
    if int(digest[:2], 16) % 4:
        return None
    return f"170{int(digest[2:10], 16) % 10**8:08d}{EXTENSION}{int(digest[10:14], 16) % 10**4:04d}"


def split_parent(order: SimOrder) -> str | None:
    """Every fifth order is this shop's share of a cart JD split across shops: it names its parent."""
    digest = hashlib.sha256(f"parent:{order.external_id}".encode()).digest()
    return str(int(order.external_id) - 1 - digest[1]) if digest[0] % 5 == 0 else None


def _masked(phone: str) -> str:
    """JD's `desen_mobile`: the number masked, an extension left as it is."""
    base, sep, ext = phone.partition(EXTENSION)
    return f"{mask_phone(base)}{sep}{ext}"


def consignee(order: SimOrder, plaintext: bool = False, key: str = tde.DEMO_KEY) -> dict:
    """`consigneeInfo`: names, phones and address as TDE ciphertexts with `desen_mobile` beside them, or
    in clear (`plaintext`) as the older search/get APIs gave them."""
    province, city, county, town = region(order)
    full = province + city + county + town + order.street
    ids = {"provinceId": str(PROVINCE_IDS.get(province, 0)), "cityId": _digits(city, 4),
           "countyId": _digits(city + county, 4), "townId": _digits(county + town, 5) if town else "0"}
    if plaintext:
        name, phone, address = order.receiver_name, order.receiver_phone, full
    else:
        phone = virtual_number(order) or order.receiver_phone
        name, address = tde.encrypt(order.receiver_name, key), tde.encrypt(full, key)
        masked, phone = _masked(phone), tde.encrypt(phone, key)
    out = {"fullname": name, "telephone": phone, "mobile": phone, "fullAddress": address,
           "province": province, "provinceId": ids["provinceId"], "city": city, "cityId": ids["cityId"],
           "county": county, "countyId": ids["countyId"], "town": town, "townId": ids["townId"]}
    if not plaintext:
        out[MASKED_MOBILE] = masked
    return out


def _coupons(order: SimOrder) -> list[dict]:
    out = [{"orderId": order.external_id, "skuId": line.sku_id, "couponType": "30-单品促销优惠",
            "couponPrice": yuan(line.discount)} for line in order.lines if line.discount]
    if order.order_discount:
        out.append({"orderId": order.external_id, "skuId": "", "couponType": "100-店铺优惠",
                    "couponPrice": yuan(order.order_discount)})
    return out


def _waybill(order: SimOrder) -> tuple[str, str]:
    """(waybill, logisticsId) once the whole order has left the warehouse, else ('', '')."""
    shipped = [line for line in order.lines if line.tracking_no]
    if order.status not in ("SHIPPED", "DELIVERED", "COMPLETED") or not shipped:
        return "", ""
    numbers = list(dict.fromkeys(n for line in shipped for n in line.tracking_no.split(WAYBILLS)))
    first = shipped[0]
    logistics = LOGISTICS_IDS.get(first.carrier_name or "", first.carrier if (first.carrier or "").isdigit() else "")
    return WAYBILLS.join(numbers), logistics


def order_info(order: SimOrder, fields=None, plaintext: bool = False, key: str = tde.DEMO_KEY) -> dict:
    """A simulated order as a JD `orderInfo` (ids and amounts as strings, Beijing times).

    `fields` (an iterable of `optional_fields` names) limits the answer as the API does; receivers are
    ciphertexts unless `plaintext`.
    """
    state = order_state(order)
    end = order.finished_at if state == "FINISHED_L" else order.cancelled_at if state == "TRADE_CANCELED" else None
    seller_discount = order.line_discounts + order.order_discount
    waybill, logistics = _waybill(order)
    buyer = order.buyer_id or order.external_id
    info = {
        "orderId": order.external_id, "venderId": _digits(order.shop_id, 8, 10_000_000), "orderType": "22",
        "payType": "4-在线支付", "orderState": state, "orderStateRemark": STATE_REMARKS[state],
        "orderTotalPrice": yuan(order.items_total), "orderSellerPrice": yuan(order.items_total - seller_discount),
        "orderPayment": yuan(order.paid_total), "freightPrice": yuan(order.shipping_fee),
        "sellerDiscount": yuan(seller_discount), "balanceUsed": "0.00", "deliveryType": "任意时间",
        "invoiceCode": "", "orderRemark": order.buyer_message, "venderRemark": "", "orderSource": "移动端订单",
        "pin": "jd_***" + buyer[-3:].lower(), "open_id_buyer": order.buyer_id,
        "xid_buyer": "o*AA" + hashlib.sha256(buyer.encode()).hexdigest()[:28],
        "orderStartTime": ms_to_beijing(order.created_at),
        "paymentConfirmTime": ms_to_beijing(order.paid_at) if order.paid_at is not None else "",
        "orderEndTime": ms_to_beijing(end) if end is not None else "",
        "modified": ms_to_beijing(order.updated_at), "waybill": waybill, "logisticsId": logistics,
        "parentOrderId": split_parent(order) or "0", "directParentOrderId": split_parent(order) or "",
        "consigneeInfo": consignee(order, plaintext, key),
        "itemInfoList": [{"skuId": line.sku_id, "outerSkuId": line.merchant_sku,
                          "wareId": _digits(line.merchant_sku, 8, 10_000_000_000),
                          "productNo": "-".join(line.merchant_sku.split("-")[:2]), "skuName": line.title,
                          "jdPrice": yuan(line.unit_price), "itemTotal": str(line.quantity), "giftPoint": "0"}
                         for line in order.lines],
        COUPONS: _coupons(order),
    }
    if fields is None:
        return info
    wanted = {f.strip() for f in fields if f and f.strip()}
    return {k: v for k, v in info.items() if k in wanted}


def _api_result() -> dict:
    return {"success": True, "englishErrCode": "success", "chineseErrCode": "成功", "numberCode": 0}


def list_answer(infos: list[dict], total: int, method: str = LIST_METHOD) -> dict:
    return {wrapper(method): {"code": "0", "searchorderinfo_result": {
        "apiResult": _api_result(), "orderTotal": total, "orderInfoList": infos}}}


def detail_answer(info: dict, method: str = DETAIL_METHOD) -> dict:
    return {wrapper(method): {"code": "0", "orderDetailInfo": {"apiResult": _api_result(), "orderInfo": info}}}


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """One enSearch answer listing `orders` (search, receivers in clear, with `plaintext`)."""
    infos = [order_info(o, plaintext=plaintext) for o in orders]
    return orjson.dumps(list_answer(infos, len(infos), PLAIN_LIST_METHOD if plaintext else LIST_METHOD))


def status_page(order: SimOrder, platform_status: str | None = None, refund_status: str | None = None) -> bytes:
    """One order as a list page, its `orderState` forced to `platform_status`. JD orders carry no refund
    field (refunds live in the after-sale APIs), so there is no refund status to force."""
    if refund_status is not None:
        raise ValueError("JD orders carry no refund field: refunds live in the after-sale APIs")
    info = order_info(order)
    if platform_status is not None:
        info["orderState"] = platform_status
        info["orderStateRemark"] = STATE_REMARKS.get(platform_status, "")
    return orjson.dumps(list_answer([info], 1))
