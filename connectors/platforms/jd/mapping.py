"""Pure mapping of JOS order answers to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies (jd.md §1, §4):
- `jingdong_pop_order_enSearch_responce` / `…_search_responce`: every order in
  `searchorderinfo_result.orderInfoList` (a page without orders is empty only if it says so: an explicit
  `orderInfoList` or `orderTotal` 0);
- `jingdong_pop_order_enGet_responce` / `…_get_responce`: the one `orderDetailInfo.orderInfo`;
- `error_response`, a gateway `code` other than "0", or `apiResult.success` false: MappingError with the
  codes and descriptions; any other answer (e.g. `order.shipment`) carries no order: MappingError.

An order without `itemInfoList` is a summary (the list was asked for too few `optional_fields`): it is
refused, naming the detail call that gives the whole order. A split order's children (`parentOrderId`)
are orders of their own, each with its own state: that is how JD shows a partial shipment.

Amounts: `items_total` = Σ jdPrice × itemTotal, `shipping_fee` = freightPrice, `discount_total` =
sellerDiscount (it includes the per-SKU coupons of `couponDetailList`, which give the line discounts),
`paid_total` = orderPayment, plus balanceUsed when the manifest says orderPayment excludes the JD
balance — so items_total + shipping_fee − discount_total + tax_total == paid_total (JD has no tax field
on POP orders). Refunds are not on the order (they live in the after-sale APIs): `LOCKED` says one is in
progress — on an order that already carries a waybill that is an after-sale on a shipped order, so it
stays SHIPPED — and every line takes the order's refund state (JD locks the whole order).

Receivers: under enSearch/enGet the name, phones and address are TDE ciphertexts. They are never
decrypted: `secure_token` keeps them (`fullname|mobile|fullAddress`) for an authorised decrypt or
print channel, the phone comes from JD's own masked `desen_mobile`, and the name and street are
unknown (null). The plaintext-era search/get answers are masked here. A virtual number keeps its
masked base and loses its extension's digits (`170****5678-****`). `orderRemark` is free text typed
by the buyer and passes through schemas/free_text.py.
"""
from __future__ import annotations

from functools import lru_cache

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import (
    MappingError,
    beijing_to_ms,
    mask_name,
    mask_phone,
    mask_street,
    order_id,
    to_minor,
)
from schemas.exact_json import LostPrecision, map_exactly, parse_json
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from .answer import read
from .api import BALANCE_IN_PAYMENT, COUPONS, EXTENSION, MASKED_MOBILE, WAYBILLS

_MANIFEST = folder_manifest(__file__)
STATUS = {name: (entry.status, entry.refund) for name, entry in _MANIFEST.statuses.items()}  # [statuses]
CARRIERS = dict(_MANIFEST.carriers)  # logisticsId -> name
REQUIRED = ("orderState", "modified", "orderPayment")
CIPHERTEXTS = ("fullname", "mobile", "fullAddress")  # what secure_token keeps, in this order
MUNICIPALITIES = frozenset(("北京", "上海", "天津", "重庆"))


# ---- values ----

@lru_cache(maxsize=65536)
def _minor(value) -> int:
    return to_minor(value, "CNY")


_FEN_OF_TEXT: dict[str, int] = {}  # amounts repeat ("0.00", catalogue prices); cleared when full


def _fen(value) -> int:
    """Yuan as a string, integer or float -> fen, exactly (floats through their shortest repr)."""
    if value.__class__ is str:
        fen = _FEN_OF_TEXT.get(value)
        if fen is None:
            fen = _minor(value) if value else 0
            if len(_FEN_OF_TEXT) >= 16384:
                _FEN_OF_TEXT.clear()
            _FEN_OF_TEXT[value] = fen
        return fen
    if value is None:
        return 0
    if value.__class__ is bool or not isinstance(value, (str, int, float)):
        raise MappingError(f"not a money amount: {value!r}")
    return _minor(value)


_beijing_ms = lru_cache(maxsize=8192)(beijing_to_ms)


def _ms(value) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' Beijing time -> UTC epoch ms; '' -> None. A Java timestamp's fraction
    ('…:12.0') is dropped: JOS times are whole seconds."""
    if not value:
        return None
    if value.__class__ is not str:
        raise MappingError(f"not a Beijing time 'yyyy-MM-dd HH:mm:ss': {value!r}")
    if len(value) > 20 and value[19] == "." and value[20:].isdigit():
        value = value[:19]
    return _beijing_ms(value)


def _id(obj: dict, key: str, what: str = "order") -> str:
    value = obj.get(key)
    if value.__class__ is str and value.isdigit():
        return value
    if value is None or value == "":
        raise MappingError(f"{what} missing required field {key!r}")
    if value.__class__ is int:
        return str(value)
    if value.__class__ is float:
        raise LostPrecision(key)
    raise MappingError(f"{key} is not an integer id: {value!r}")


def _quantity(value) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is str and value.isdigit():
        return int(value)
    raise MappingError(f"itemTotal is not a whole quantity: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _mobile(value) -> tuple[str | None, str | None]:
    """(masked phone, the base number as given, for the verdict): a virtual number `17012345678-1234`
    keeps its masked base and stars its extension; a landline (`0571-88886666`) is masked as one number."""
    if not value:
        return None, None
    text = str(value).strip()
    if len(text) == 11 and text[3:7] == "****" and text[7:].isdigit():
        return text, text  # JD's own mask (138****1111, *******1111): already what we keep
    base, sep, ext = text.partition(EXTENSION)
    if sep and len(base) == 11 and ext.isdigit() and len(ext) <= 6:
        return f"{mask_phone(base)}{sep}{'*' * len(ext)}", base
    return mask_phone(text), text


# ---- parts of an order ----

def _coupons(info: dict) -> dict[str, int]:
    """Per-SKU discounts of `couponDetailList` (entries without a skuId are order-level)."""
    coupons = info.get(COUPONS)
    if not coupons:
        return {}
    if not isinstance(coupons, list):
        raise MappingError(f"{COUPONS} is not a list")
    out: dict[str, int] = {}
    for coupon in coupons:
        if not isinstance(coupon, dict):
            raise MappingError(f"{COUPONS} holds a {type(coupon).__name__}, not an object")
        sku = coupon.get("skuId")
        if sku not in (None, "", 0, "0"):
            out[str(sku)] = out.get(str(sku), 0) + _fen(coupon.get("couponPrice"))
    return out


def _lines(items: list, coupons: dict, refund: str) -> list[dict]:
    lines, seen = [], {}
    for item in items:
        if not isinstance(item, dict):
            raise MappingError(f"itemInfoList holds a {type(item).__name__}, not an object")
        get = item.get
        sku = _id(item, "skuId", "item")
        if "jdPrice" not in item or "itemTotal" not in item:
            raise MappingError(f"item {sku} missing required field {'jdPrice' if 'jdPrice' not in item else 'itemTotal'!r}")
        quantity, unit_price = _quantity(item["itemTotal"]), _fen(item["jdPrice"])
        n = seen[sku] = seen.get(sku, 0) + 1
        discount = coupons.get(sku, 0) if n == 1 else 0
        lines.append({
            "line_id": sku if n == 1 else f"{sku}-{n}",  # JD has no line id: a line is a SKU of the order
            "sku_id": sku,
            "merchant_sku": _text(get("outerSkuId")) or _text(get("productNo")),
            "title": str(get("skuName") or ""),
            "quantity": quantity,
            "unit_price": unit_price,
            "total": quantity * unit_price - discount,
            "discount": discount,
            "refund_status": refund,
        })
    return lines


def _shipments(info: dict, lines: list[dict]) -> list[dict]:
    """One shipment per waybill number; JD does not say which package holds which line, so only a single
    waybill names the lines (all of them)."""
    waybill = info.get("waybill")
    if not waybill:
        return []
    numbers = [n.strip() for n in str(waybill).split(WAYBILLS) if n.strip()]
    logistics = _text(info.get("logisticsId"))
    carrier = CARRIERS.get(logistics, logistics)
    line_ids = [line["line_id"] for line in lines] if len(numbers) == 1 else []
    return [{"carrier": carrier, "tracking_no": n, "shipped_at": None, "line_ids": list(line_ids)} for n in numbers]


def _region(c: dict) -> tuple[str | None, str | None, str | None]:
    """(province, city, district). JD files a municipality's district as its city (北京 > 朝阳区 >
    三环到四环之间): the city becomes the municipality itself and the district JD's city."""
    province, city, county = _text(c.get("province")), _text(c.get("city")), _text(c.get("county"))
    short = province.removesuffix("市") if province else None
    if short in MUNICIPALITIES and city and city.removesuffix("市") != short:
        return province, short + "市", city
    return province, city, county


def _street(c: dict) -> str | None:
    """The street part of a plaintext `fullAddress` (which starts with province, city, county, town)."""
    address = str(c.get("fullAddress") or "").strip()
    for part in ("province", "city", "county", "town"):
        value = c.get(part)
        if value and address.startswith(value):
            address = address[len(value):]
    return address or None


def _receiver(c, encrypted: bool) -> dict:
    if not isinstance(c, dict):
        c = {}
    province, city, district = _region(c)
    if encrypted:  # TDE ciphertexts: kept opaque for the authorised channel, never decrypted
        phone, base = _mobile(c.get(MASKED_MOBILE))
        cipher = [str(c.get(k) or "") for k in CIPHERTEXTS]
        if not cipher[1]:
            cipher[1] = str(c.get("telephone") or "")
        return {"name_masked": None, "phone_masked": phone, "country": "CN", "province": province, "city": city,
                "district": district, "address_masked": None, "postal_code": None,
                "secure_token": "|".join(cipher) if any(cipher) else None,
                "phone_valid": phone_verdict(base, "CN"), "address_vague": None}
    phone, base = _mobile(c.get("mobile") or c.get("telephone"))
    street = _street(c)
    return {"name_masked": mask_name(_text(c.get("fullname"))), "phone_masked": phone, "country": "CN",
            "province": province, "city": city, "district": district, "address_masked": mask_street(street),
            "postal_code": None, "secure_token": None,
            "phone_valid": phone_verdict(base, "CN"), "address_vague": street_vague(street, "CN")}


def _buyer(info: dict) -> dict:
    pin = _text(info.get("pin"))
    return {"id": _text(info.get("open_id_buyer")),
            "nick_masked": pin if pin is None or "*" in pin else mask_name(pin),  # JD masks the pin itself
            "message": mask_free_text(_text(info.get("orderRemark")))}


def map_order(info: dict, shop_id: str, platform: str = "jd", encrypted: bool = True) -> dict:
    """One JD order object (`orderInfo` / an `orderInfoList` entry) -> canonical order dict (version 0)."""
    if not isinstance(info, dict):
        raise MappingError(f"an order must be an object, got {type(info).__name__}")
    external_id = _id(info, "orderId")
    items = info.get("itemInfoList")
    if items is None:
        raise MappingError(f"order {external_id} is a summary without itemInfoList: fetch its detail "
                           "(jingdong.pop.order.enGet with optional_fields)")
    if not isinstance(items, list):
        raise MappingError("itemInfoList must be a list")
    for key in REQUIRED:
        if info.get(key) in (None, ""):
            raise MappingError(f"order {external_id} missing required field {key!r}")
    get = info.get
    state = str(get("orderState"))
    status, refund = STATUS.get(state, ("UNKNOWN", "NONE"))
    # canonical created_at, paid_at, updated_at <- JD orderStartTime, paymentConfirmTime, modified
    created_at, paid_at, updated_at = _ms(get("orderStartTime")), _ms(get("paymentConfirmTime")), _ms(get("modified"))
    lines = _lines(items, _coupons(info), refund)
    shipments = _shipments(info, lines)
    if state == "LOCKED" and shipments:
        status = "SHIPPED"  # an after-sale refund on an order that has left the warehouse
    paid_total = _fen(get("orderPayment"))
    if not BALANCE_IN_PAYMENT:
        paid_total += _fen(get("balanceUsed"))
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": status, "refund_status": refund, "platform_status": state,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at,
        "shipped_at": None,  # JD's order carries no shipping time
        "delivered_at": None,  # nor a delivered state
        "currency": "CNY",
        "items_total": sum([line["quantity"] * line["unit_price"] for line in lines]),
        "shipping_fee": _fen(get("freightPrice")),
        "discount_total": _fen(get("sellerDiscount")),
        "tax_total": 0,
        "paid_total": paid_total,
        "buyer": _buyer(info),
        "receiver": _receiver(get("consigneeInfo"), encrypted),
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": sum([line["total"] for line in lines if line["refund_status"] == "REFUNDED"]),
    }


def orders_of(doc) -> tuple[list, bool]:
    """(the order objects of a decoded JOS answer, whether their receivers are ciphertexts)."""
    answer = read(doc)
    if answer.kind == "error":
        raise MappingError(f"jd error code={answer.code} {answer.message!r}"
                           + (f" in {answer.name}" if answer.name else ""))
    if answer.kind == "business":
        raise MappingError(f"jd {answer.name} failed: apiResult.success false numberCode={answer.number_code} "
                           f"{answer.message!r}")
    if answer.kind == "other":
        raise MappingError(f"{answer.name} carries no order")
    if not answer.orders and not answer.listed and answer.total != 0:
        raise MappingError(f"{answer.name} carries no order and does not say the page is empty "
                           f"(orderTotal={answer.total!r}, no orderInfoList)")
    return answer.orders, answer.encrypted


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "jd") -> list[dict]:
    """Every order in a JOS answer body -> canonical order dicts (MappingError on anything unusable)."""
    if content_type and "json" not in content_type.lower():
        raise MappingError(f"jd answers are JSON, not {content_type!r}")

    def mapped(exact: bool) -> list[dict]:
        orders, encrypted = orders_of(parse_json(body, exact))
        return [map_order(o, shop_id, platform, encrypted) for o in orders]

    return map_exactly(mapped, platform)
