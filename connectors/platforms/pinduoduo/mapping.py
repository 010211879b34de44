"""Pure mapping of PDD POP order answers to canonical orders (schemas/tonglu.Order.avsc).

Accepted bodies (JSON; PDD answers JSON with `data_type=JSON`, the only format the client asks for):
- `order_sn_increment_get_response.order_sn_list` (pdd.order.number.list.increment.get) and
  `order_list_get_response.order_list` (pdd.order.list.get): full order objects; a page without
  orders is empty only when it says so (`total_count` 0 or `has_next` false);
- `order_info_get_response.order_info` (pdd.order.information.get): one order;
- `error_response`: MappingError naming error_code/error_msg/sub_code;
- a PMC message (`commandType` + `message`): names an order only, maps to [] (fetch the order instead).
A summary without the order's details (pdd.order.basic.list.get, an order without `item_list`, a bare
order_sn) is refused with a reason naming the detail call it needs.

The field table is FIELDS below. Choices where the fact sheet is silent:
- Status: `platform_status` names the deciding field and value (manifest [statuses]); the order's
  one after-sales state applies to every line (PDD has no per-line refunds, and an order object
  carries no refunded amount: a successful refund counts as the whole payment, `refunded_total` =
  `paid_total`, and the order is CANCELLED like a closed Taobao trade; PARTIALLY_REFUNDED needs
  pdd.refund.information.get and is never inferred here).
- PARTIALLY_SHIPPED is never given: PDD moves the order to 已发货 with the first package and lists
  further packages in `extra_delivery_list`. Each package is a shipment; a single package holds
  every line, several packages hold lines PDD does not name (`line_ids` empty).
- Lines have no id on PDD: `line_id` is `{order_sn}-{position}` (1-based, in `item_list` order), and
  no per-line discount (`discount` 0, `total` = count × price); discounts are order-level.
- Amounts, from PDD's own formulas 商品金额 goods_amount = Σ price × count − 改价 and 支付金额
  pay_amount = goods_amount − discount_amount + postage: items_total = Σ price × count,
  discount_total = discount_amount + (items_total − goods_amount), tax 0, so the identity
  items_total + shipping_fee − discount_total + tax_total == paid_total holds for every order PDD
  computes by its formula (pay_amount is taken as given, so a platform-side error still shows).
- Receivers stay as PDD gives them: the `*_mask` fields (a virtual number's extension masked too),
  the ciphertexts of name, phone and street joined by ',' as `secure_token` for the decrypt channel
  (pdd.open.decrypt.batch). A field that is not a ciphertext (older apps got plaintext phones) is
  masked here and never kept; verdicts (phone_valid, address_vague) use the plainest value given.
- `buyer_memo` is free text typed by the buyer: masked (schemas/free_text.py). PDD gives no buyer id.
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

_MANIFEST = folder_manifest(__file__)
STATUSES = dict(_MANIFEST.statuses)  # platform_status -> (status, refund)
REFUND_STATUS = {int(k.partition("=")[2]): v for k, v in _MANIFEST.refund_statuses.items()
                 if k.startswith("refund_status=")}
AFTER_SALES = {int(k.partition("=")[2]): v for k, v in _MANIFEST.refund_statuses.items()
               if k.startswith("after_sales_status=")}
CARRIERS = dict(_MANIFEST.carriers)
COUNTRIES = {"": "CN", "中国": "CN", "中国大陆": "CN", "中国香港": "HK", "中国澳门": "MO", "中国台湾": "TW"}
LISTS = {"order_sn_increment_get_response": "order_sn_list", "order_list_get_response": "order_list"}
SUMMARIES = {"order_basic_list_get_response": "pdd.order.basic.list.get"}
DETAIL_CALL = "pdd.order.information.get"
# canonical field <- PDD field (the functions below read them)
FIELDS = {
    "external_id": "order_sn", "created_at": "created_time", "paid_at": "pay_time (else confirm_time)",
    "updated_at": "updated_at",
    "shipped_at": "shipping_time", "delivered_at": "receive_time (else updated_at once order_status 3)",
    "items_total": "Σ item_list[].goods_price × goods_count", "shipping_fee": "postage",
    "discount_total": "discount_amount + items_total − goods_amount", "paid_total": "pay_amount",
    "buyer.message": "buyer_memo (masked)", "receiver.name_masked": "receiver_name_mask",
    "receiver.phone_masked": "receiver_phone_mask", "receiver.address_masked": "receiver_address_mask",
    "receiver.province/city/district": "province/city/town", "receiver.country": "country",
    "receiver.secure_token": "receiver_name,receiver_phone,receiver_address ciphertexts",
    "lines[].sku_id": "sku_id", "lines[].merchant_sku": "outer_id, else outer_goods_id",
    "lines[].title": "goods_name", "lines[].quantity": "goods_count", "lines[].unit_price": "goods_price",
    "shipments[]": "logistics_id/tracking_number/shipping_time, then extra_delivery_list[]",
}
_EXTENSION_SEPARATORS = ("-", "_", "转", "#", ",")


# ---- value converters ----

_FEN: dict = {}  # amounts repeat a lot (0.0, catalogue prices); bounded below


def _fen(value, name: str) -> int:
    """Yuan as a JSON float, int or decimal string -> fen, exactly (never int(x * 100))."""
    kind = value.__class__
    if kind is float or kind is int or kind is str:  # bool is none of them
        fen = _FEN.get(value)
        if fen is None:
            if value == "":
                return 0
            # repr of a float is the shortest decimal that reads back as it: 64.35 -> '64.35' -> 6435 fen
            fen = to_minor(repr(value) if kind is float else value, "CNY")
            if len(_FEN) < 50_000:
                _FEN[value] = fen
        return fen
    if value is None:
        return 0
    raise MappingError(f"{name} is not a money amount: {value!r}")


@lru_cache(maxsize=8192)
def _ms_of(text: str) -> int:
    return beijing_to_ms(text)


def _ms(value, name: str) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' Beijing time -> UTC epoch ms; '' and null are no time."""
    if not value:
        return None
    if value.__class__ is not str:
        raise MappingError(f"{name} is not a 'yyyy-MM-dd HH:mm:ss' time: {value!r}")
    return _ms_of(value)


def _count(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MappingError(f"{name} is not an integer: {value!r}")


def _id(value, name: str, required: bool = False) -> str | None:
    """An id as an exact string: strings as they are, bare JSON integers digit for digit."""
    if value.__class__ is str and value:
        return value
    if value is None or value == "":
        if required:
            raise MappingError(f"missing required field {name!r}")
        return None
    if value.__class__ is int:
        return str(value)
    if value.__class__ is float:
        raise LostPrecision(name)
    raise MappingError(f"{name} is not an id: {value!r}")


def _code(value) -> int | None:
    """A status code: PDD sends integers; a digit string is read the same way."""
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _clear(value) -> str | None:
    """The value when it is clear text; None when it is a PDD ciphertext (`~…~~` name/address, `$…$$`
    phone) or empty."""
    if value.__class__ is not str:
        return None if value is None else str(value)
    if not value or (len(value) > 4 and value[-2:] in ("~~", "$$") and value[0] in "~$"):
        return None
    return value


def _split_extension(phone: str) -> tuple[str, str, str]:
    """(number, separator, extension) of a virtual number such as 17012345678-1234 or 170****5678转1234."""
    if len(phone) <= 11:
        return phone, "", ""
    for sep in _EXTENSION_SEPARATORS:
        main, found, ext = phone.rpartition(sep)
        if found and ext.isdigit() and len(ext) <= 6 and sum(ch.isdigit() or ch == "*" for ch in main) == 11:
            return main, sep, ext
    return phone, "", ""


def _receiver(get) -> dict:
    """The canonical receiver: PDD's masks (ours where it gave clear text), its ciphertexts as the token."""
    name, phone, street = get("receiver_name"), get("receiver_phone"), get("receiver_address")
    plain_name, plain_phone, plain_street = _clear(name), _clear(phone), _clear(street)
    name_mask, phone_mask = get("receiver_name_mask"), _text(get("receiver_phone_mask"))
    street_mask = get("receiver_address_mask")
    phone_masked = phone_valid = None
    if plain_phone or phone_mask:
        main, sep, ext = _split_extension(plain_phone or phone_mask)
        phone_valid = phone_verdict(main, "CN")  # judged on the plainest number, not its extension
        if phone_mask and "*" in phone_mask:
            main, sep, ext = _split_extension(phone_mask)
        elif "*" not in main:
            main = mask_phone(main)
        phone_masked = main + sep + "*" * len(ext) if sep else main
    tokens = [value for value, plain in ((name, plain_name), (phone, plain_phone), (street, plain_street))
              if value and plain is None]
    if name_mask.__class__ is not str or "*" not in name_mask:
        name_mask = mask_name(plain_name or _text(name_mask))
    if street_mask.__class__ is not str or "*" not in street_mask:
        street_mask = mask_street(plain_street or _text(street_mask))
    return {
        "name_masked": name_mask, "phone_masked": phone_masked,
        "country": COUNTRIES.get(get("country") or "", None),
        "province": _text(get("province")), "city": _text(get("city")), "district": _text(get("town")),
        "address_masked": street_mask, "postal_code": None, "secure_token": ",".join(tokens) or None,
        "phone_valid": phone_valid,
        "address_vague": street_vague(plain_street or _text(get("receiver_address_mask")), "CN"),
    }


# ---- the order object ----

def _platform_status(o: dict, paid: bool, refund: str) -> str:
    group, confirm = _code(o.get("group_status")), _code(o.get("confirm_status"))
    if group == 2:
        return "group_status=2"
    if confirm == 2:
        return "confirm_status=2"
    if not paid:
        return "unpaid"
    if group == 0:
        return "group_status=0"
    if confirm == 0:
        return "confirm_status=0"
    status = o.get("order_status")
    if refund == "REFUNDED":
        return f"order_status={status}+refunded"
    if _code(status) == 3 and o.get("receive_time"):
        return "order_status=3+received"
    return f"order_status={status}"


def _refund(o: dict) -> str:
    after = _code(o.get("after_sales_status"))
    if after:
        refund = AFTER_SALES.get(after)
        if refund is not None:
            return refund
    status = o.get("refund_status")
    if status is None:
        return "NONE"
    return REFUND_STATUS.get(_code(status), "UNKNOWN")


def _shipments(o: dict, line_ids: list[str], shipped_at: int | None) -> list[dict]:
    if not o.get("tracking_number") and not o.get("extra_delivery_list"):
        return []
    packages = []
    if o.get("tracking_number"):
        packages.append((o.get("logistics_id"), o["tracking_number"], shipped_at))
    extra = o.get("extra_delivery_list") or []
    if not isinstance(extra, list):
        raise MappingError("extra_delivery_list must be a list")
    for package in extra:
        if not isinstance(package, dict):
            raise MappingError("extra_delivery_list items must be objects")
        if package.get("tracking_number"):
            packages.append((package.get("logistics_id"), package["tracking_number"], None))
    ids = line_ids if len(packages) == 1 else []
    out = []
    for carrier, tracking, at in packages:
        code = None if carrier in (None, "", 0, "0") else str(carrier)
        out.append({"carrier": CARRIERS.get(code, code) if code else None, "tracking_no": str(tracking),
                    "shipped_at": at, "line_ids": list(ids)})
    return out


def map_order(o: dict, shop_id: str, platform: str = "pinduoduo") -> dict:
    """One PDD order object -> canonical order dict (version 0); MappingError when unusable."""
    if not isinstance(o, dict):
        if isinstance(o, (str, int)) and not isinstance(o, bool):
            raise MappingError(f"order {o} is only an order number: fetch it with {DETAIL_CALL}")
        raise MappingError(f"an order must be an object, got {type(o).__name__}")
    get = o.get
    sn = _id(get("order_sn"), "order_sn", required=True)
    items = get("item_list")
    if items is None or "pay_amount" not in o:
        raise MappingError(f"order {sn} is a summary without item_list/pay_amount: "
                           f"fetch it with {DETAIL_CALL}")
    if not isinstance(items, list):
        raise MappingError("item_list must be a list")
    if get("order_status") is None:
        raise MappingError(f"order {sn}: missing required field 'order_status'")
    # 成交时间 confirm_time follows payment: it stands in when an answer leaves pay_time out
    created_at = _ms(get("created_time"), "created_time")
    paid_at = _ms(get("pay_time"), "pay_time") or _ms(get("confirm_time"), "confirm_time")
    updated_at, shipped_at = _ms(get("updated_at"), "updated_at"), _ms(get("shipping_time"), "shipping_time")
    received_at = _ms(get("receive_time"), "receive_time")
    refund = _refund(o)
    platform_status = _platform_status(o, paid_at is not None, refund)
    entry = STATUSES.get(platform_status)
    if entry is not None and entry.refund != "NONE":
        refund = entry.refund
    lines, prefix = [], sn + "-"
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise MappingError("item_list items must be objects")
        missing = next((k for k in ("goods_count", "goods_price") if k not in item), None)
        if missing:
            raise MappingError(f"order {sn}: item missing {missing!r}")
        quantity, price = _count(item["goods_count"], "goods_count"), _fen(item["goods_price"], "goods_price")
        lines.append({"line_id": prefix + str(n), "sku_id": _id(item.get("sku_id"), "sku_id"),
                      "merchant_sku": _text(item.get("outer_id")) or _text(item.get("outer_goods_id")),
                      "title": str(item.get("goods_name") or ""), "quantity": quantity, "unit_price": price,
                      "total": quantity * price, "discount": 0, "refund_status": refund})
    items_total = sum([line["total"] for line in lines])
    goods_amount = get("goods_amount")
    change = (items_total - _fen(goods_amount, "goods_amount") if goods_amount not in (None, "")
              else _fen(get("order_change_amount"), "order_change_amount"))
    paid_total = _fen(get("pay_amount"), "pay_amount")
    order_status = get("order_status")
    return {
        "order_id": order_id(platform, shop_id, sn),
        "platform": platform, "shop_id": shop_id, "external_id": sn,
        "status": entry.status if entry is not None else "UNKNOWN",
        "refund_status": refund,
        "platform_status": platform_status,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at, "shipped_at": shipped_at,
        "delivered_at": received_at or (updated_at if _code(order_status) == 3 else None),
        "currency": "CNY",
        "items_total": items_total,
        "shipping_fee": _fen(get("postage"), "postage"),
        "discount_total": _fen(get("discount_amount"), "discount_amount") + change,
        "tax_total": 0,
        "paid_total": paid_total,
        "buyer": {"id": None, "nick_masked": None, "message": mask_free_text(_text(get("buyer_memo")))},
        "receiver": _receiver(get),
        "lines": lines,
        "shipments": _shipments(o, [line["line_id"] for line in lines], shipped_at),
        "version": 0,
        "refunded_total": paid_total if refund == "REFUNDED" else 0,
    }


def orders_of(doc) -> list:
    """The order objects of a parsed PDD answer ([] for an empty page or a PMC message)."""
    if not isinstance(doc, dict):
        raise MappingError(f"not a PDD answer: top level is {type(doc).__name__}")
    if "error_response" in doc:
        err = doc["error_response"] if isinstance(doc["error_response"], dict) else {}
        raise MappingError(f"pinduoduo error_response error_code={err.get('error_code')} "
                           f"error_msg={err.get('error_msg')!r} sub_code={err.get('sub_code')!r} "
                           f"sub_msg={err.get('sub_msg')!r}")
    if "commandType" in doc and isinstance(doc.get("message"), dict):
        return []  # a PMC message only names the order (`tid` in its content); fetch the order itself
    names = [k for k in doc if k.endswith("_response")]
    if len(names) != 1:
        raise MappingError("not a PDD answer: expected one '<api>_response' object")
    name = names[0]
    resp = doc[name]
    if not isinstance(resp, dict):
        raise MappingError(f"{name} is not an object")
    if name in SUMMARIES:
        raise MappingError(f"{SUMMARIES[name]} answers carry no receiver and no order times: "
                           f"fetch each order with {DETAIL_CALL}")
    if name == "order_info_get_response":
        if not isinstance(resp.get("order_info"), dict):
            raise MappingError("order_info_get_response carries no order_info object")
        return [resp["order_info"]]
    key = LISTS.get(name)
    if key is None:
        raise MappingError(f"{name} carries no order")
    orders = resp.get(key)
    if orders is not None and not isinstance(orders, list):
        raise MappingError(f"{name}.{key} must be a list")
    if orders:
        return orders
    if str(resp.get("total_count")) == "0" or resp.get("has_next") is False:
        return []
    raise MappingError(f"{name} carries no order and does not say the page is empty "
                       f"(total_count={resp.get('total_count')!r}, has_next={resp.get('has_next')!r})")


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "pinduoduo") -> list[dict]:
    """Every order in a PDD answer body -> canonical order dicts (MappingError on anything unusable)."""
    if content_type and "xml" in content_type.lower():
        raise MappingError("pinduoduo answers are JSON (data_type=JSON); XML is not supported")
    return map_exactly(lambda exact: [map_order(o, shop_id, platform) for o in orders_of(parse_json(body, exact))],
                       platform)
