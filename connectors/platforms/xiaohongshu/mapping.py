"""Pure mapping of Xiaohongshu order answers to canonical orders (schemas/tonglu.Order.avsc).

The order list answers summaries only (no lines, no amounts, no receiver), so an order is known from
its `order.getOrderDetail` answer, and its receiver from `order.getOrderReceiverInfo`. Accepted bodies,
JSON only:
- a capture, what the client publishes per list page: `{"order.getOrderDetail": [<answer>, …],
  "order.getOrderReceiverInfo": <answer>, "data.batchDesensitise": [<answer>, …]}`, every answer byte
  for byte as received (capture.py); one order per detail answer, its receiver joined by `orderId`, the
  platform's masks by ciphertext; no detail at all: a page with nothing new;
- one `order.getOrderDetail` answer (or its bare `data` object): its order;
- a push, a JSON array of `{msgTag, sellerId, data}` messages: it only names the order, so [] (the connectors
  read the order with a detail call);
- an error answer (`success` false, `error_code`/`error_msg` or `code`/`msg`): MappingError with both;
- an `order.getOrderList` answer alone: [] when it says it is empty (`total` 0, or a page past
  `maxPageNo`), else MappingError: summaries need a detail call;
- an `order.getOrderReceiverInfo` answer alone: MappingError (it holds no order).

Amounts are integer fen (a float or string must be a whole number of fen). A line's goods value is
Σ `skuDetailList[].price` × `quantity`; its `total` is the sku's `totalPaidAmount` less its
`totalTaxAmount` (cross-border tax is part of what the buyer paid and goes to `tax_total`); its
`discount` is whatever of the goods value the buyer did not pay (merchant + platform discounts + price
changes). Then items_total + shipping_fee − discount_total + tax_total == paid_total exactly when the
skus' paid amounts plus `totalShippingFree` make `totalPayAmount`, which is the check that matters. The
order-level discount fields are not used: they can disagree with the skus (the recorded detail says
`totalMerchantDiscount` 1200 while its skus carry 600 + 580 and add up to what was paid).

Times are epoch milliseconds (a value below 10^11 is taken as seconds, a 'yyyy-MM-dd HH:mm:ss' string
as Beijing time); 0 means "not yet". Ids are kept as given (`P734…` strings); a bare number keeps
every digit. Receivers: the platform gives name, phone and address as `#…#` ciphertexts. Where the
capture has the platform's masks of them (`data.batchDesensitise`) the masks are kept and judged by
shape; else the ciphertexts are kept as given (never decrypted) and cannot be judged (verdicts None).
Plaintext (an app authorised to decrypt) is masked here; a privacy number's extension is starred.
`customerRemark` is free text typed by the buyer and is masked (schemas/free_text.py).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import MappingError, beijing_to_ms, mask_name, mask_phone, mask_street, order_id
from schemas.exact_json import LostPrecision, map_exactly, parse_json
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from . import errors
from .capture import DETAIL, LIST, MASKS, RECEIVERS

_MANIFEST = folder_manifest(__file__)
STATUS = {code: entry.status for code, entry in _MANIFEST.statuses.items()}  # manifest [statuses]
REFUND = dict(_MANIFEST.refund_statuses)  # manifest [refund_statuses]
CARRIERS = dict(_MANIFEST.carriers)  # manifest [carriers]
EXCHANGE = "10"  # 换货申请中: keeps the state the order was in (see the manifest)

# the field table: what each canonical value is read from (detail answer, sku, receiver-info entry)
F = {"external_id": "orderId", "platform_status": "orderStatus", "refund": "orderAfterSalesStatus",
     "created_at": "createdTime", "paid_at": "paidTime", "updated_at": "updateTime", "shipped_at": "deliveryTime",
     "finished_at": "finishTime", "cancelled_at": "cancelTime", "paid_total": "totalPayAmount",
     "shipping_fee": "totalShippingFree", "buyer_id": "userId", "message": "customerRemark",
     "country": "receiverCountryId", "secure_token": "openAddressId", "lines": "skuList",
     "packages": "simpleDeliveryOrderList"}
LINE = {"line_id": "skuId", "merchant_sku": "erpcode", "title": "skuName", "quantity": "skuQuantity",
        "paid": "totalPaidAmount", "tax": "totalTaxAmount", "refund": "skuAfterSaleStatus", "parts": "skuDetailList",
        "price": "price", "part_quantity": "quantity", "merchant_discount": "totalMerchantDiscount",
        "red_discount": "totalRedDiscount"}
RECEIVER_FIELDS = {"name": "receiverName", "phone": "receiverPhone", "street": "receiverAddress",
                   "province": "receiverProvinceName", "city": "receiverCityName",
                   "district": "receiverDistrictName", "town": "receiverTownName"}
R_NAME, R_PHONE, R_STREET, R_PROVINCE, R_CITY, R_DISTRICT, R_TOWN = RECEIVER_FIELDS.values()
# a phone with an extension (a privacy number): 17012345678-1234, 170****5678转****
_EXTENSION = re.compile(r"^(?P<main>[\d*][\d* ]{5,}[\d*])\s*(?:-|_|#|,|，|转|ext\.?|EXT\.?)\s*(?P<ext>[\d*]{1,6})$")


# ---- values ----

def _fen(value, name: str) -> int:
    """An integer amount of fen given as an int, a whole float or a string of digits."""
    if value.__class__ is int:
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            amount = None
        if amount is not None and amount.is_finite() and amount == amount.to_integral_value():
            return int(amount)
    raise MappingError(f"{name} is not a whole number of fen: {value!r}")


def _count(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MappingError(f"{name} is not a whole number: {value!r}")


def _ms(value, name: str) -> int | None:
    """Epoch milliseconds (seconds below 10^11, Beijing wall-clock strings) -> UTC ms; 0/None -> None."""
    if value.__class__ is int and value > 100_000_000_000:
        return value
    if not value:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            return beijing_to_ms(text)
        value = int(text)
    if value.__class__ is not int or value < 0:
        raise MappingError(f"{name} is not an epoch time: {value!r}")
    return value if value >= 100_000_000_000 else value * 1000


def _code(value, name: str) -> str:
    """A status number as the manifest's key ('4')."""
    if value.__class__ is int:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    raise MappingError(f"missing or bad {name}: {value!r}")


def _id(value, name: str) -> str:
    if value.__class__ is str and value:
        return value
    if value.__class__ is int:
        return str(value)
    if isinstance(value, float):
        raise LostPrecision(name)
    raise MappingError(f"missing or bad {name}: {value!r}")


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _cipher(value: str) -> bool:
    return len(value) > 2 and value[0] == "#" and value[-1] == "#"


# ---- receiver ----

def _phone(value) -> tuple[str | None, bool | None]:
    """(kept form, verdict): ciphertext as given, a mask as given, plaintext masked; the verdict is on the
    number without its extension, which is starred."""
    if not value:
        return None, None
    if _cipher(value):
        return value, None
    match = _EXTENSION.match(value)
    main, extension = (match["main"], match["ext"]) if match else (value, None)
    masked = main if "*" in main else mask_phone(main)
    if extension is not None:
        masked += "-" + "*" * len(extension)
    return masked, phone_verdict(main, "CN")


def _pick(key: str, rec: dict, d: dict) -> str | None:
    """The receiver-info entry's value of `key`, else the detail's, as text (None when neither has one)."""
    value = rec.get(key)
    if value is None or value == "":
        value = d.get(key)
        if value is None or value == "":
            return None
    return value if value.__class__ is str else str(value)


def _receiver(d: dict, rec: dict, masks: dict) -> dict:
    """The canonical receiver: the platform's masks of its ciphertexts where known, else the ciphertexts."""
    name, phone = _pick(R_NAME, rec, d), _pick(R_PHONE, rec, d)
    address = _pick(R_STREET, rec, d)
    if masks:
        name, phone, address = masks.get(name, name), masks.get(phone, phone), masks.get(address, address)
    phone_masked, phone_valid = _phone(phone)
    if address is None or _cipher(address):
        address_masked, vague = address, None
    else:
        town = _pick(R_TOWN, rec, d)
        street = address if not town or address.startswith(town) else town + address
        address_masked, vague = mask_street(street), street_vague(street, "CN")
    country = d.get(F["country"])
    return {"name_masked": name if name is None or "*" in name or _cipher(name) else mask_name(name),
            "phone_masked": phone_masked,
            "country": country if country.__class__ is str and len(country) == 2 and country.isalpha() else "CN",
            "province": _pick(R_PROVINCE, rec, d), "city": _pick(R_CITY, rec, d), "district": _pick(R_DISTRICT, rec, d),
            "address_masked": address_masked, "postal_code": None, "secure_token": _text(d.get(F["secure_token"])),
            "phone_valid": phone_valid, "address_vague": vague}


# ---- lines, refunds, shipments ----

def _line(sku: dict, order_refund: str, seen: set) -> tuple[dict, int]:
    """One `skuList` entry -> (canonical line, its tax in fen)."""
    if not isinstance(sku, dict):
        raise MappingError("skuList holds a non-object")
    sku_id = _id(sku.get(LINE["line_id"]), "skuId")
    try:
        return _sku_line(sku, sku_id, order_refund, seen)
    except MappingError as exc:
        raise MappingError(f"sku {sku_id}: {exc}") from None


def _sku_line(sku: dict, sku_id: str, order_refund: str, seen: set) -> tuple[dict, int]:
    get = sku.get
    line_id = sku_id
    while line_id in seen:  # skus are aggregated per order; a repeated one still gets its own line
        line_id += "#"
    seen.add(line_id)
    quantity = _count(get(LINE["quantity"]), "skuQuantity")
    paid = _fen(get(LINE["paid"]), "totalPaidAmount")
    tax = _fen(get(LINE["tax"]), "totalTaxAmount")
    parts = get(LINE["parts"]) or ()
    if parts:
        value = 0
        for part in parts:
            price = part.get(LINE["price"])
            if price is None:
                price = part.get("pricePerSku")  # both names are in use
            value += _fen(price, "price") * _count(part.get(LINE["part_quantity"]), "quantity")
    else:  # no prices given: the goods value is what was paid plus the stated discounts
        value = (paid - tax + _fen(get(LINE["merchant_discount"]), "totalMerchantDiscount")
                 + _fen(get(LINE["red_discount"]), "totalRedDiscount"))
    if quantity <= 0 or value % quantity:
        raise MappingError(f"goods value {value} fen is no whole price for quantity {quantity}")
    refund = get(LINE["refund"])
    merchant_sku = get(LINE["merchant_sku"]) or get("erpCode")
    if not merchant_sku and len(parts) == 1:  # a bundle has no code of its own, its single part may
        merchant_sku = parts[0].get("erpcode") or parts[0].get("erpCode")
    total = paid - tax
    return {
        "line_id": line_id, "sku_id": sku_id, "merchant_sku": _text(merchant_sku),
        "title": str(get(LINE["title"]) or ""), "quantity": quantity, "unit_price": value // quantity,
        "total": total, "discount": value - total,
        "refund_status": order_refund if refund is None else REFUND.get(_code(refund, "skuAfterSaleStatus"),
                                                                        "UNKNOWN"),
    }, tax


def _refund(lines: list[dict], order_refund: str, cancelled: bool) -> str:
    """The order's refund state from its lines; the order's own after-sale state when no line has one."""
    states = {line["refund_status"] for line in lines}
    for asked in ("REQUESTED", "UNKNOWN"):
        if asked in states:
            return asked
    if "REFUNDED" in states:
        return "REFUNDED" if states == {"REFUNDED"} else "PARTIALLY_REFUNDED"
    if "REJECTED" in states:
        return "REJECTED"
    if order_refund == "REFUNDED":  # money went back but no line says so: all of it when the order closed
        return "REFUNDED" if cancelled else "PARTIALLY_REFUNDED"
    return order_refund if order_refund in ("REQUESTED", "REJECTED") else "NONE"


def _shipments(d: dict, lines: list[dict], shipped_at: int | None) -> list[dict]:
    """Packages with a waybill (`simpleDeliveryOrderList`), else the order's own waybill for every line."""
    packages = d.get(F["packages"]) or ()
    if not packages:
        if not d.get("expressTrackingNo"):
            return []
        packages = ({"expressTrackingNo": d["expressTrackingNo"], "expressCompanyCode": d.get("expressCompanyCode"),
                     "skuIdList": [line["sku_id"] for line in lines]},)
    by_sku = {line["sku_id"]: line["line_id"] for line in reversed(lines)}
    groups: dict[tuple, dict] = {}
    for package in packages:
        tracking = _text(package.get("expressTrackingNo"))
        if tracking is None:
            continue  # a package not shipped yet
        code = _text(package.get("expressCompanyCode"))
        carrier = CARRIERS.get(code, code) if code else None
        skus = package.get("skuIdList")
        line_ids = [by_sku.get(str(s), str(s)) for s in skus] if skus else [line["line_id"] for line in lines]
        group = groups.get((carrier, tracking))
        if group is None:
            groups[(carrier, tracking)] = {"carrier": carrier, "tracking_no": tracking, "shipped_at": shipped_at,
                                           "line_ids": line_ids}
        else:
            group["line_ids"] += [i for i in line_ids if i not in group["line_ids"]]
    return list(groups.values())


# ---- one order ----

def map_order(d: dict, shop_id: str, platform: str = "xiaohongshu", receiver: dict | None = None,
              masks: dict | None = None) -> dict:
    """One order detail (`data` of order.getOrderDetail), with its receiver-info entry and the platform's
    masks of ciphertexts (ciphertext -> mask) when known, -> canonical order dict (version 0)."""
    if not isinstance(d, dict):
        raise MappingError(f"an order must be an object, got {type(d).__name__}")
    external_id = _id(d.get(F["external_id"]), "orderId")
    try:
        return _map(d, external_id, shop_id, platform, receiver or {}, masks or {})
    except MappingError as exc:
        raise MappingError(f"xiaohongshu order {external_id}: {exc}") from None


def _map(d: dict, external_id: str, shop_id: str, platform: str, receiver: dict, masks: dict) -> dict:
    get = d.get
    code = _code(get(F["platform_status"]), "orderStatus")
    refund_code = get(F["refund"])
    order_refund = REFUND.get(_code(refund_code, "orderAfterSalesStatus"), "UNKNOWN") if refund_code else "NONE"
    created_at = _ms(get(F["created_at"]), "createdTime")
    if created_at is None:
        raise MappingError("missing createdTime")
    paid_at, shipped_at = _ms(get(F["paid_at"]), "paidTime"), _ms(get(F["shipped_at"]), "deliveryTime")
    finished_at = _ms(get(F["finished_at"]), "finishTime")
    updated_at = _ms(get(F["updated_at"]), "updateTime") or max(
        t for t in (created_at, paid_at, shipped_at, finished_at, _ms(get(F["cancelled_at"]), "cancelTime")) if t)
    skus = get(F["lines"])
    if not isinstance(skus, list) or not skus:
        raise MappingError("skuList must be a non-empty list (an order summary needs its detail call)")
    seen: set = set()
    lines = []
    items_total = discount_total = tax_total = refunded_total = 0
    for sku in skus:
        line, tax = _line(sku, order_refund, seen)
        lines.append(line)
        items_total += line["quantity"] * line["unit_price"]
        discount_total += line["discount"]
        tax_total += tax
        if line["refund_status"] == "REFUNDED":
            refunded_total += line["total"]
    status = STATUS.get(code, "UNKNOWN")
    if code == EXCHANGE and finished_at is not None:
        status = "COMPLETED"
    refund_status = _refund(lines, order_refund, status == "CANCELLED")
    paid_total = _fen(get(F["paid_total"]), "totalPayAmount")
    if refund_status == "REFUNDED" and not refunded_total:
        refunded_total = paid_total
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": status, "refund_status": refund_status, "platform_status": code,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at, "shipped_at": shipped_at,
        "delivered_at": None,  # the platform shows no delivery: 待收货 lasts until the order completes
        "currency": "CNY",
        "items_total": items_total,
        "shipping_fee": _fen(get(F["shipping_fee"]), "totalShippingFree"),
        "discount_total": discount_total,
        "tax_total": tax_total,
        "paid_total": paid_total,
        "buyer": {"id": _text(get(F["buyer_id"])), "nick_masked": None,
                  "message": mask_free_text(_text(get(F["message"])))},
        "receiver": _receiver(d, receiver, masks),
        "lines": lines,
        "shipments": _shipments(d, lines, shipped_at),
        "version": 0,
        "refunded_total": refunded_total,
    }


# ---- answers ----

def data_of(answer, what: str) -> dict:
    """The `data` object of a successful answer; MappingError with the platform's code and message for an
    error answer (either envelope: `error_code`/`error_msg` or `code`/`msg`)."""
    if not isinstance(answer, dict):
        raise MappingError(f"{what} is not a JSON object")
    if errors.is_error(answer):
        code, message = errors.code_and_message(answer)
        raise MappingError(f"xiaohongshu error {code}: {message}")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise MappingError(f"{what} answer has no data object")
    return data


def _says_empty(data: dict) -> bool:
    """An empty list page is empty by the platform's word: total 0, or a page past maxPageNo."""
    total, page, last = data.get("total"), data.get("pageNo"), data.get("maxPageNo")
    return str(total) == "0" or (isinstance(page, int) and isinstance(last, int) and page > last)


def _capture(doc: dict, shop_id: str, platform: str) -> list[dict]:
    details = doc[DETAIL]
    if not isinstance(details, list):
        raise MappingError(f"capture: {DETAIL} must be a list of answers")
    if not details:  # a page whose orders were all captured before in the same window
        return []
    receivers = {}
    if doc.get(RECEIVERS) is not None:
        infos = data_of(doc[RECEIVERS], RECEIVERS).get("receiverInfos") or []
        if not isinstance(infos, list):
            raise MappingError("receiverInfos must be a list")
        receivers = {str(r.get("orderId")): r for r in infos if isinstance(r, dict) and r.get("matched", True)}
    masks = {}
    for answer in doc.get(MASKS) or ():
        for entry in data_of(answer, MASKS).get("desensitiseInfoList") or ():
            if isinstance(entry, dict) and entry.get("desensitisedData") and entry.get("errorCode") in (0, None):
                masks[entry.get("encryptedData")] = str(entry["desensitisedData"])
    out = []
    for answer in details:
        d = data_of(answer, DETAIL)
        oid = str(d.get("orderId"))
        out.append(map_order(d, shop_id, platform, receivers.get(oid), masks))
    return out


def _map_doc(doc, shop_id: str, platform: str) -> list[dict]:
    if isinstance(doc, list) or (isinstance(doc, dict) and "msgTag" in doc):
        messages = doc if isinstance(doc, list) else [doc]
        if messages and all(isinstance(m, dict) and m.get("msgTag") for m in messages):
            return []  # a push names the order only; the connectors read it with a detail call
        raise MappingError("not a xiaohongshu push: expected a non-empty array of {msgTag, sellerId, data}")
    if not isinstance(doc, dict):
        raise MappingError(f"not a xiaohongshu answer: top level is {type(doc).__name__}")
    if DETAIL in doc:
        return _capture(doc, shop_id, platform)
    if "orderId" in doc and "skuList" in doc:
        return [map_order(doc, shop_id, platform)]
    if not ({"success", "data", "error_code", "code"} & doc.keys()):
        raise MappingError(f"not a xiaohongshu answer: no success/data envelope (keys: {', '.join(list(doc)[:5])})")
    data = data_of(doc, "xiaohongshu")
    if "orderList" in data:
        summaries = data["orderList"]
        if not summaries and _says_empty(data):
            return []
        if not isinstance(summaries, list) or not summaries:
            raise MappingError(f"{LIST} answer has no orders and does not say the page is empty")
        raise MappingError(f"{LIST} holds {len(summaries)} order summaries without lines or amounts; the orders "
                           f"are in the {DETAIL} answers (the connector publishes them together)")
    if "receiverInfos" in data:
        raise MappingError(f"{RECEIVERS} holds receivers only, no order")
    if "orderId" in data:
        return [map_order(data, shop_id, platform)]
    raise MappingError(f"xiaohongshu answer carries no order (data keys: {', '.join(list(data)[:5])})")


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "xiaohongshu") -> list[dict]:
    """Every order in a Xiaohongshu body -> canonical order dicts (MappingError on anything unusable)."""
    if content_type and "json" not in content_type.lower():
        raise MappingError(f"xiaohongshu answers JSON only, not {content_type!r}")
    return map_exactly(lambda exact: _map_doc(parse_json(body, exact), shop_id, platform), platform)
