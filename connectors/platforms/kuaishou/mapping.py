"""Pure mapping of Kuaishou answers to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies (JSON only, `result` 1 for success):
- `open.order.cursor.list`: every order in `data.orderList` (an explicit `[]` is an empty page);
- `open.order.detail`: the one order in `data`;
- a push message (`event` + `bizId`/`info`): it only names the order (`info` holds oid, status and
  updateTime), so it maps to [] and the order itself comes with the next poll or a detail call;
- an error answer (`result` ≠ 1, keys in snake or camel case): MappingError with result, code and messages.

One order holds one item (`orderItemInfo` is an object): a cart of several SKUs arrives as several
orders paid together, so a canonical order has one line (item-shaped `subOrderInfo` entries, which the
recorded orders do not have, would be further lines; refunds, listed per order, apply to every line). A list entry without `orderItemInfo` is a
summary, refused with the advice to fetch the detail (the client does so before publishing).

Amounts (kuaishou.md §5) are integer fen: items_total = num × price, shipping_fee = expressFee,
discount_total = the order's discountFee, tax_total = orderTaxInfo.taxAmount (cross-border orders,
else 0), paid_total = totalFee, so that items_total + shipping_fee − discount_total + tax_total ==
paid_total (no documented exception; an order where it fails is the platform's inconsistency and is
left for the amount rule to flag). Times are Unix milliseconds, already UTC; 0 means "not yet".

Receivers: the masked copies (`desensitise*`) or, for an app authorised to read them, the clear
fields masked here; the ciphertexts (`encryptedConsignee,encryptedMobile,encryptedAddress`, joined by
commas, never decrypted) travel as `secure_token`. A virtual number with an extension
(`17012345678-1234`, `170****5678转1234`) keeps its masked main number and loses the extension's digits.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import MappingError, mask_name, mask_phone, mask_street
from schemas.exact_json import LostPrecision, map_exactly, parse_json
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

_MANIFEST = folder_manifest(__file__)
ORDER_STATUS = dict(_MANIFEST.statuses)  # manifest [statuses]: "30" -> Status(status, refund)
REFUND_STATUS = dict(_MANIFEST.refund_statuses)  # manifest [refund_statuses]
CARRIERS = dict(_MANIFEST.carriers)  # manifest [carriers]: "4" -> "中通快递"
# statuses during which a split delivery (packageNum < totalPackageNum) is a partial shipment
SHIPPING_STATUSES = ("30", "40")

# The field table: canonical field <- Kuaishou field (times in ms, money in fen); map_order reads them
FIELDS = {
    "external_id": "orderBaseInfo.oid", "platform_status": "orderBaseInfo.status",
    "status": "orderBaseInfo.status via [statuses]; PARTIALLY_SHIPPED when orderDeliveryInfo.packageNum < "
              "totalPackageNum", "refund_status": "orderRefundList[].refundStatus via [refund_statuses]",
    "created_at": "orderBaseInfo.createTime", "paid_at": "orderBaseInfo.payTime",
    "updated_at": "orderBaseInfo.updateTime", "shipped_at": "orderBaseInfo.sendTime",
    "delivered_at": "orderBaseInfo.recvTime", "items_total": "Σ num × price over the lines",
    "shipping_fee": "orderBaseInfo.expressFee", "discount_total": "orderBaseInfo.discountFee",
    "tax_total": "orderBaseInfo.orderTaxInfo.taxAmount", "paid_total": "orderBaseInfo.totalFee",
    "buyer.id": "orderBaseInfo.buyerOpenId", "buyer.nick_masked": "orderBaseInfo.buyerNick, masked",
    "buyer.message": "orderBaseInfo.remark, masked free text",
    "receiver.name_masked": "orderAddress.desensitiseConsignee (else consignee, masked)",
    "receiver.phone_masked": "orderAddress.desensitiseMobile (else mobile, masked)",
    "receiver.province": "orderAddress.province", "receiver.city": "orderAddress.city",
    "receiver.district": "orderAddress.district",
    "receiver.address_masked": "orderAddress.town + desensitiseAddress (else address), masked",
    "receiver.secure_token": "orderAddress.encryptedConsignee,encryptedMobile,encryptedAddress",
    "lines[]": "orderItemInfo (then item-shaped subOrderInfo entries)",
    "lines[].line_id": "orderItemId", "lines[].sku_id": "skuId", "lines[].merchant_sku": "skuNick (else goodsCode)",
    "lines[].title": "itemTitle", "lines[].quantity": "num", "lines[].unit_price": "price",
    "lines[].discount": "discountFee", "lines[].total": "num × price − discountFee",
    "shipments[]": "orderLogisticsInfo[] (expressNo, expressCode via [carriers]; shipped_at = sendTime)",
    "refunded_total": "the line total once refunded",
}
CIPHERTEXTS = ("encryptedConsignee", "encryptedMobile", "encryptedAddress")
_MIN_MS = 100_000_000_000  # 1973-03-03 in ms; a smaller non-zero time is seconds or garbage
# an 11-character mobile (clear or masked) followed by a short extension: a virtual (privacy) number
_VIRTUAL = re.compile(r"^(?:\+?86)?(1[0-9*]{10})(?:-|－|转|,|，|#|＃|ext\.?|x)([0-9]{1,6})$", re.IGNORECASE)


# ---- value converters ----

def _fen(value, name: str) -> int:
    """Integer fen from an int, a digit string or an integral float (Decimal, never float arithmetic)."""
    if value.__class__ is int:
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (str, float)):
        raise MappingError(f"{name} is not an amount in fen: {value!r}")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value.strip())
    except InvalidOperation:
        raise MappingError(f"{name} is not an amount in fen: {value!r}") from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise MappingError(f"{name} is not a whole number of fen: {value!r}")
    return int(amount)


def _ms(value, name: str) -> int | None:
    """Unix milliseconds (int, digit string or integral float); 0 or absent is None."""
    if value.__class__ is not int:
        if value is None or value == "" or value == 0:
            return None
        whole = value.strip().isdigit() if isinstance(value, str) else isinstance(value, float) and value.is_integer()
        if not whole:
            raise MappingError(f"{name} is not Unix milliseconds: {value!r}")
        value = int(value)
    if value == 0:
        return None
    if value < _MIN_MS:
        raise MappingError(f"{name} is not Unix milliseconds: {value!r}")
    return value


def _id(value, name: str) -> str:
    """An int64 id as its exact digits."""
    if value.__class__ is int and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    if isinstance(value, float):
        raise LostPrecision(name)
    if value is None or value == "":
        raise MappingError(f"missing required field {name!r}")
    raise MappingError(f"{name} is not an integer id: {value!r}")


def _opt_id(value) -> str | None:
    """An optional numeric id (skuId, relSkuId): None for 0 or absent."""
    if not value:
        return None
    return _id(value, "id")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _int(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MappingError(f"{name} is not an integer: {value!r}")


# ---- receivers ----

def _phone(text: str | None) -> tuple[str | None, bool | None]:
    """(masked phone, verdict) of a clear or masked number; an extension's digits are starred."""
    if not text:
        return None, None
    if len(text) == 11 and text[3:7] == "****" and text[0] == "1" and "3" <= text[1] <= "9" \
            and text[:3].isdigit() and text[7:].isdigit():
        return text, True  # the usual input: the platform's own mainland mobile mask
    virtual = _VIRTUAL.match(text.replace(" ", "").replace("\u3000", ""))
    if virtual:
        main, extension = virtual.groups()
        return f"{mask_phone(main)}-{'*' * len(extension)}", phone_verdict(main, "CN")
    return mask_phone(text), phone_verdict(text, "CN")


def _receiver(address) -> dict:
    if address is None:
        address = {}
    elif address.__class__ is not dict:
        raise MappingError("order.orderAddress is not an object")
    get = address.get
    name = get("desensitiseConsignee") or get("consignee")
    # the verdicts judge the clearest number and street at hand (clear for authorised apps, else the mask)
    phone_masked, phone_valid = _phone(get("mobile") or get("desensitiseMobile"))
    street = (get("town") or "") + (get("address") or get("desensitiseAddress") or "")
    consignee, mobile, place = get("encryptedConsignee"), get("encryptedMobile"), get("encryptedAddress")
    return {"name_masked": mask_name(name), "phone_masked": phone_masked, "country": "CN",
            "province": _text(get("province")), "city": _text(get("city")), "district": _text(get("district")),
            "address_masked": mask_street(street), "postal_code": None,
            "secure_token": f"{consignee or ''},{mobile or ''},{place or ''}" if consignee or mobile or place
            else None,
            "phone_valid": phone_valid, "address_vague": street_vague(street, "CN")}


# ---- one order ----

def _refund_status(refunds) -> str:
    """The line's refund state from `orderRefundList` (a pending request wins over older outcomes)."""
    if not refunds:
        return "NONE"
    if not isinstance(refunds, list):
        raise MappingError("orderRefundList is not a list")
    states = set()
    for refund in refunds:
        if not isinstance(refund, dict):
            raise MappingError("orderRefundList holds a non-object")
        states.add(REFUND_STATUS.get(str(refund.get("refundStatus")), "UNKNOWN"))
    for state in ("REQUESTED", "REFUNDED", "REJECTED", "UNKNOWN"):
        if state in states:
            return state
    return "NONE"


def _shipments(logistics, line_ids: list[str], shipped_at: int | None) -> list[dict]:
    """One shipment per package with a tracking number; the API gives one send time per order."""
    if not logistics:
        return []
    if not isinstance(logistics, list):
        raise MappingError("orderLogisticsInfo is not a list")
    out = []
    for package in logistics:
        if not isinstance(package, dict):
            raise MappingError("orderLogisticsInfo holds a non-object")
        tracking = package.get("expressNo")
        if not tracking:
            continue
        code = package.get("expressCode")
        carrier = CARRIERS.get(str(code), _text(code)) if code not in (None, "", 0) else None
        out.append({"carrier": carrier, "tracking_no": str(tracking), "shipped_at": shipped_at,
                    "line_ids": list(line_ids)})
    return out


def _line(item: dict, refund: str, where: str) -> dict:
    """One item (`orderItemInfo`, or an item-shaped `subOrderInfo` entry) -> canonical line."""
    if "num" not in item or "price" not in item:
        raise MappingError(f"{where} missing {'num' if 'num' not in item else 'price'!r}")
    quantity, unit_price = _int(item["num"], "num"), _fen(item["price"], "price")
    discount = _fen(item.get("discountFee"), "discountFee")
    return {"line_id": _id(item.get("orderItemId"), "orderItemId"), "sku_id": _opt_id(item.get("skuId")),
            "merchant_sku": _text(item.get("skuNick")) or _text(item.get("goodsCode")),
            "title": str(item.get("itemTitle") or ""), "quantity": quantity, "unit_price": unit_price,
            "total": quantity * unit_price - discount, "discount": discount, "refund_status": refund}


def _more_items(subs, external_id: str) -> list[dict]:
    """`subOrderInfo` entries shaped like `orderItemInfo` (recorded orders carry `[]`; the sheet documents
    one item per order): further items of the order. Entries of another shape are not items."""
    if not subs:
        return []
    if not isinstance(subs, list):
        raise MappingError(f"order {external_id}: subOrderInfo is not a list")
    return [sub for sub in subs if isinstance(sub, dict) and "orderItemId" in sub and "price" in sub]


def map_order(entry: dict, shop_id: str, platform: str = "kuaishou") -> dict:
    """One Kuaishou order (`orderBaseInfo`, `orderItemInfo`, `orderAddress`, …) -> canonical order dict."""
    if not isinstance(entry, dict):
        raise MappingError(f"an order must be an object, got {type(entry).__name__}")
    base = entry.get("orderBaseInfo")
    if not isinstance(base, dict):
        raise MappingError("order without an orderBaseInfo object")
    external_id = _id(base.get("oid"), "oid")
    item = entry.get("orderItemInfo")
    if item is None:
        raise MappingError(f"order {external_id} is a summary without orderItemInfo: fetch open.order.detail")
    if not isinstance(item, dict):
        raise MappingError(f"order {external_id}: orderItemInfo is not an object")
    code = base.get("status")
    if code is None or code == "":
        raise MappingError(f"order {external_id}: missing required field 'status'")
    code = str(code)
    get = base.get
    created_at, updated_at = _ms(get("createTime"), "createTime"), _ms(get("updateTime"), "updateTime")
    if created_at is None or updated_at is None:
        raise MappingError(f"order {external_id}: missing createTime or updateTime")
    paid_at, shipped_at = _ms(get("payTime"), "payTime"), _ms(get("sendTime"), "sendTime")
    delivered_at = _ms(get("recvTime"), "recvTime")
    if "totalFee" not in base:
        raise MappingError(f"order {external_id}: missing required field 'totalFee'")
    paid_total = _fen(base["totalFee"], "totalFee")
    shipping_fee, discount_total = _fen(get("expressFee"), "expressFee"), _fen(get("discountFee"), "discountFee")
    tax = get("orderTaxInfo")
    if tax is not None and not isinstance(tax, dict):
        raise MappingError("orderBaseInfo.orderTaxInfo is not an object")
    tax_total = _fen(tax.get("taxAmount"), "orderTaxInfo.taxAmount") if tax else 0

    state = ORDER_STATUS.get(code)
    status = state.status if state else "UNKNOWN"
    refund = _refund_status(entry.get("orderRefundList"))
    if refund == "NONE" and state is not None:
        refund = state.refund
    where = f"order {external_id}: orderItemInfo"
    lines = [_line(item, refund, where)]
    subs = entry.get("subOrderInfo")
    if subs:
        lines += [_line(sub, refund, f"order {external_id}: subOrderInfo") for sub in _more_items(subs, external_id)]
    delivery = entry.get("orderDeliveryInfo")
    if delivery and code in SHIPPING_STATUSES:
        if delivery.__class__ is not dict:
            raise MappingError("order.orderDeliveryInfo is not an object")
        packages, total_packages = delivery.get("packageNum") or 0, delivery.get("totalPackageNum") or 0
        if 0 < _int(packages, "packageNum") < _int(total_packages, "totalPackageNum"):
            status = "PARTIALLY_SHIPPED"  # a split delivery with packages still to go
    remark = get("remark")
    return {
        "order_id": f"{platform}:{shop_id}:{external_id}",
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": status, "refund_status": refund, "platform_status": code,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at, "shipped_at": shipped_at,
        "delivered_at": delivered_at,
        "currency": "CNY",
        "items_total": sum([line["quantity"] * line["unit_price"] for line in lines]),
        "shipping_fee": shipping_fee,
        "discount_total": discount_total,
        "tax_total": tax_total,
        "paid_total": paid_total,
        "buyer": {"id": _text(get("buyerOpenId")), "nick_masked": mask_name(get("buyerNick")),
                  "message": mask_free_text(str(remark)) if remark else None},
        "receiver": _receiver(entry.get("orderAddress")),
        "lines": lines,
        "shipments": _shipments(entry.get("orderLogisticsInfo"), [line["line_id"] for line in lines], shipped_at),
        "version": 0,
        "refunded_total": sum([line["total"] for line in lines]) if refund == "REFUNDED" else 0,
    }


# ---- whole answers ----

def _error_line(doc: dict) -> str:
    get = doc.get
    return (f"kuaishou error result={get('result')!r} code={get('code')!r} "
            f"error_msg={get('error_msg') or get('errorMsg') or get('msg')!r} "
            f"sub_code={get('sub_code') or get('subCode')!r} sub_msg={get('sub_msg') or get('subMsg')!r}")


def orders_of(doc) -> list:
    """The order objects of a parsed Kuaishou body ([] for an empty page or a push message)."""
    if not isinstance(doc, dict):
        raise MappingError(f"not a Kuaishou answer: top level is {type(doc).__name__}")
    if "result" not in doc:
        if "event" in doc and ("bizId" in doc or "info" in doc):
            return []  # a push message names the order; the order itself comes with a poll or detail call
        raise MappingError("not a Kuaishou answer: no 'result' (and not a push message)")
    if doc["result"] != 1 or doc["result"] is True:
        raise MappingError(_error_line(doc))
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MappingError("kuaishou answer without a 'data' object")
    if "orderList" in data:
        orders = data["orderList"]
        if not isinstance(orders, list):
            raise MappingError("data.orderList is not a list")
        return orders  # an explicit [] is the platform saying the page is empty
    if "orderBaseInfo" in data:
        return [data]
    raise MappingError("kuaishou data carries neither orderList nor orderBaseInfo (and does not say the page "
                       "is empty)")


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "kuaishou") -> list[dict]:
    """Every order in a Kuaishou body -> canonical order dicts (MappingError on anything unusable)."""
    if content_type and "json" not in content_type.lower():
        raise MappingError(f"kuaishou answers are JSON, not {content_type!r}")
    return map_exactly(lambda exact: [map_order(o, shop_id, platform) for o in orders_of(parse_json(body, exact))],
                       platform)
