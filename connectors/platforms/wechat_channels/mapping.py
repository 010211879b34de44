"""Pure mapping of `channels/ec` order answers (order/get) to canonical orders (schemas/tonglu.Order.avsc).

Field table (wechat_channels.md §4-§6):

| canonical | order/get |
|---|---|
| external_id | `order_id` (a decimal string; a bare number keeps its digits) |
| status, platform_status | `status` through the manifest's [statuses]; a status with `delivery_info.ship_done_time` set is `"{status}/ship_done"` when the table names it (30/ship_done → DELIVERED) |
| created_at / updated_at / paid_at | `create_time` / `update_time` / `order_detail.pay_info.pay_time`, Unix seconds (0 = not yet) |
| shipped_at, shipments | `delivery_info.delivery_product_info[]`: one shipment per package (`waybill_id`, `delivery_name` or the manifest's [carriers] name of `delivery_id`, `delivery_time`, the lines of its `product_infos`) |
| delivered_at | `delivery_info.ship_done_time` |
| items_total | Σ `sale_price` × `sku_cnt` |
| shipping_fee | `price_info.freight` (`change_freight` when `is_change_freight`) |
| discount_total | `price_info.discounted_price` + `change_down_price` |
| paid_total | `price_info.order_price` |
| lines | `product_infos[]`: line_id = `sku_id` (the API has no line id), merchant_sku = `sku_code` or `out_sku_id` |
| refund_status | lines (below); the [statuses] refund of the order status when it names one (200 → REFUNDED) |
| buyer | id = `openid`, message = `ext_info.customer_notes` (free text, masked) |
| receiver | `delivery_info.address_info`, kept as WeChat masks it and masked again; secure_token = `hash_code` |

Amounts are integer fen; strings and floats are read exactly (`"6435"`, `6435.0`), a fraction of a
fen is rounded half up by the shared money helper. The identity items_total + shipping_fee −
discount_total + tax_total == paid_total holds for every consistent order (order_price = product_price
+ freight − discounted_price − change_down_price); an order that breaks it is passed on as it is, for
the amount_mismatch rule to see.

`real_price` is the paid price of the line. The recorded answers give it per unit (2 × 36.90 + 84.00
= order_price 157.80), some client libraries document it as the line's total: the reading whose sum
matches order_price − freight is taken, per unit when both or neither do. Line total = that paid
amount, line discount = sku_cnt × sale_price − total.

Refunds live in after-sale orders: `aftersale_detail.aftersale_order_list[]` ({aftersale_order_id,
status}, not naming lines) and per line `on_aftersale_sku_cnt` (units in an open after-sale) and
`finish_aftersale_sku_cnt` (units refunded). A line is REFUNDED when all its units finished,
PARTIALLY_REFUNDED when some did, and while units are open REQUESTED — REJECTED when the open after-sale
orders are all rejected ones. When no line is named by its counts, the order's after-sale state (the
manifest's [refund_statuses]) applies to every line, and so does REFUNDED of status 200 ("every item
refunded, then cancelled").

Receivers come masked (`张*`, `138****1111`, `文***路***号`); a virtual number keeps its extension
(`139****2222-8512`). Nothing is decrypted: plaintext is only available through
`order/sensitiveinfo/decode`, which Tonglu does not call.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from connectors.platforms.manifest import folder_manifest
from schemas.canonical import MappingError, mask_name, mask_phone, mask_street, order_id, to_minor
from schemas.exact_json import LostPrecision, map_exactly
from schemas.free_text import mask_free_text
from schemas.verdicts import phone_verdict, street_vague

from .payload import orders_of, parse_body

_MANIFEST = folder_manifest(__file__)
ORDER_STATUS = {code: entry.status for code, entry in _MANIFEST.statuses.items()}  # manifest [statuses]
STATUS_REFUND = {code: entry.refund for code, entry in _MANIFEST.statuses.items()}
AFTERSALE_STATUS = dict(_MANIFEST.refund_statuses)  # manifest [refund_statuses]
CARRIERS = dict(_MANIFEST.carriers)
SHIP_DONE = "/ship_done"  # suffix of a status whose delivery_info.ship_done_time is set (manifest [statuses])
_LAST_SECOND = 4_102_444_800  # 2100-01-01: a larger "Unix seconds" value is milliseconds or garbage


def _id(value, name: str) -> str:
    if value.__class__ is str and value.isdigit():
        return value
    if isinstance(value, bool) or value is None or value == "":
        raise MappingError(f"missing required field {name!r}" if value in (None, "") else
                           f"{name} is not an id: {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise LostPrecision(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise MappingError(f"{name} is not an id: {value!r}")


def _fen(value, name: str) -> int:
    """Integer fen from an int, a decimal string or a float (exact; half a fen rounds up)."""
    if value.__class__ is int:
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, float)) and not isinstance(value, bool):
        try:
            amount = Decimal(repr(value) if isinstance(value, float) else value.strip())
            if amount.is_finite():
                return to_minor(amount.scaleb(-2), "CNY")
        except InvalidOperation:
            pass
    raise MappingError(f"{name} is not an amount in fen: {value!r}")


def _count(value, name: str) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MappingError(f"{name} is not a whole number: {value!r}")


def _ms(value, name: str) -> int | None:
    """Unix seconds -> epoch ms; 0 / missing means "not yet"."""
    if value.__class__ is int and 0 < value < _LAST_SECOND:
        return value * 1000
    if value in (None, "", 0):
        return None
    seconds = _count(value, name) if not isinstance(value, bool) else -1
    if seconds == 0:
        return None
    if not 0 < seconds < _LAST_SECOND:
        raise MappingError(f"{name} is not a time in Unix seconds: {value!r}")
    return seconds * 1000


def _text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _obj(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}.{key} is not an object")
    return value


def _list(parent: dict, key: str, where: str) -> list:
    value = parent.get(key)
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise MappingError(f"{where}.{key} must be a list")
    return value


def _status(value) -> str:
    if value.__class__ is int:
        return str(value)
    if value is None or value == "":
        raise MappingError("missing required field 'status'")
    return str(_count(value, "status"))


def _tel(tel) -> tuple[str | None, str | None]:
    """(masked, what the phone verdict judges): WeChat's `138****1111` stays as it is; a virtual number
    `13900002222-8512` becomes `139****2222-8512`, judged by its masked shape (the platform issued it)."""
    if not tel:
        return None, None
    if tel.__class__ is str and len(tel) == 11 and tel[3:7] == "****":
        return tel, tel  # the usual case: WeChat's own mask
    tel = str(tel).strip()
    number, sep, ext = tel.rpartition("-")
    if sep and ext.isdigit() and len(number.replace("*", "").replace(" ", "")) >= 7:
        masked = mask_phone(number)
        return f"{masked}-{ext}", masked
    return mask_phone(tel), tel


# ---- lines and refunds ----

def _lines(products: list, goods_paid: int) -> tuple[list[dict], list[tuple[int, int, int]] | None, dict]:
    """Canonical lines (refund status NONE, set later), (sku_cnt, on, finish) per line when any line is in
    an after-sale (else None), sku_id -> line_id."""
    lines, counts, by_sku, reals = [], [], {}, []
    in_aftersale = several = False
    for p in products:
        if p.__class__ is not dict:
            raise MappingError("order_detail.product_infos[] is not an object")
        get = p.get
        qty, unit, real = get("sku_cnt"), get("sale_price"), get("real_price")
        if qty is None or unit is None:
            raise MappingError(f"product_infos[] missing required field {'sku_cnt' if qty is None else 'sale_price'!r}")
        if qty.__class__ is not int:
            qty = _count(qty, "sku_cnt")
        if unit.__class__ is not int:
            unit = _fen(unit, "sale_price")
        if real.__class__ is not int:
            real = None if real is None or real == "" else _fen(real, "real_price")
        reals.append(real)
        sku = get("sku_id")
        if sku.__class__ is not str or not sku.isdigit():
            sku = _id(sku, "sku_id")
        line_id = sku if sku not in by_sku else f"{sku}#{len(lines) + 1}"
        by_sku.setdefault(sku, line_id)
        total = qty * unit if real is None else real * qty
        merchant = get("sku_code") or get("out_sku_id")
        title = get("title")
        lines.append({
            "line_id": line_id, "sku_id": sku,
            "merchant_sku": merchant if merchant.__class__ is str or merchant is None else _text(merchant),
            "title": title if title.__class__ is str else str(title or ""), "quantity": qty, "unit_price": unit,
            "total": total, "discount": qty * unit - total, "refund_status": "NONE",
        })
        on, done = get("on_aftersale_sku_cnt"), get("finish_aftersale_sku_cnt")
        on = _count(on, "on_aftersale_sku_cnt") if on else 0
        done = _count(done, "finish_aftersale_sku_cnt") if done else 0
        in_aftersale = in_aftersale or bool(on or done)
        counts.append((qty, on, done))
        several = several or qty != 1
    # real_price per unit (the recorded answers) or per line (some client libraries): see the module doc;
    # with every quantity 1 both readings agree
    if several and None not in reals and sum(reals) == goods_paid and \
            sum([line["total"] for line in lines]) != goods_paid:
        for line, real in zip(lines, reals):
            line["total"], line["discount"] = real, line["quantity"] * line["unit_price"] - real
    return lines, counts if in_aftersale else None, by_sku


def _aftersale_states(aftersale: dict) -> list[str]:
    states = []
    for entry in _list(aftersale, "aftersale_order_list", "aftersale_detail"):
        if not isinstance(entry, dict):
            raise MappingError("aftersale_detail.aftersale_order_list[] is not an object")
        states.append(AFTERSALE_STATUS.get(str(entry.get("status") or ""), "UNKNOWN"))
    return states


def _first(states: list[str], order: tuple[str, ...], default: str) -> str:
    return next((s for s in order if s in states), default)


def _set_refunds(lines: list[dict], counts: list[tuple[int, int, int]] | None, states: list[str],
                 status_refund: str) -> int:
    """Fill each line's refund_status (see the module doc); returns the refunded amount."""
    refunded = 0
    if counts is not None:
        for line, (qty, on, done) in zip(lines, counts):
            if done and done >= qty:
                line["refund_status"] = "REFUNDED"
                refunded += line["total"]
            elif on:
                line["refund_status"] = _first(states, ("REQUESTED", "REJECTED"), "REQUESTED")
            elif done:
                line["refund_status"] = "PARTIALLY_REFUNDED"
                refunded += line["total"] * done // qty
        return refunded
    state = _first(states, ("REQUESTED", "REJECTED", "REFUNDED", "UNKNOWN"), "NONE") if states else "NONE"
    if state == "NONE" and status_refund == "REFUNDED":
        state = "REFUNDED"
    if state != "NONE":
        for line in lines:
            line["refund_status"] = state
        if state == "REFUNDED":
            refunded = sum([line["total"] for line in lines])
    return refunded


def _order_refund(lines: list[dict]) -> str:
    states = [line["refund_status"] for line in lines]
    if states.count("NONE") == len(states):
        return "NONE"
    if "REQUESTED" in states:
        return "REQUESTED"
    refunded = states.count("REFUNDED")
    if refunded and refunded == len(states):
        return "REFUNDED"
    if refunded or "PARTIALLY_REFUNDED" in states:
        return "PARTIALLY_REFUNDED"
    if "REJECTED" in states:
        return "REJECTED"
    return "UNKNOWN" if "UNKNOWN" in states else "NONE"


def _shipments(packages: list, by_sku: dict) -> list[dict]:
    out = []
    for package in packages:
        if not isinstance(package, dict):
            raise MappingError("delivery_info.delivery_product_info[] is not an object")
        get = package.get
        code = _text(get("delivery_id"))
        line_ids = []
        for item in _list(package, "product_infos", "delivery_product_info[]"):
            if not isinstance(item, dict):
                raise MappingError("delivery_product_info[].product_infos[] is not an object")
            sku = _id(item.get("sku_id"), "delivery_product_info[].product_infos[].sku_id")
            line_id = by_sku.get(sku, sku)
            if line_id not in line_ids:
                line_ids.append(line_id)
        out.append({"carrier": _text(get("delivery_name")) or CARRIERS.get(code or "", code),
                    "tracking_no": _text(get("waybill_id")),
                    "shipped_at": _ms(get("delivery_time"), "delivery_time"), "line_ids": line_ids})
    return out


def map_order(order: dict, shop_id: str, platform: str = "wechat_channels") -> dict:
    """One `order` object of order/get -> canonical order dict (version 0)."""
    if order.__class__ is not dict:
        raise MappingError(f"an order must be an object, got {type(order).__name__}")
    get = order.get
    external_id = get("order_id")
    if external_id.__class__ is not str or not external_id.isdigit():
        external_id = _id(external_id, "order_id")
    status = get("status")
    status = str(status) if status.__class__ is int else _status(status)
    if "order_detail" not in order:
        raise MappingError("missing required field 'order_detail'")
    # the usual shapes inline (this runs for every order); _obj/_list for the odd ones
    detail = get("order_detail")
    if detail.__class__ is not dict:
        detail = _obj(order, "order_detail", "order")
    price, pay, delivery = detail.get("price_info"), detail.get("pay_info"), detail.get("delivery_info")
    if price.__class__ is not dict:
        price = _obj(detail, "price_info", "order_detail")
    if pay.__class__ is not dict:
        pay = _obj(detail, "pay_info", "order_detail")
    if delivery.__class__ is not dict:
        delivery = _obj(detail, "delivery_info", "order_detail")
    address = delivery.get("address_info")
    if address.__class__ is not dict:
        address = _obj(delivery, "address_info", "delivery_info")
    if "order_price" not in price:
        raise MappingError("missing required field 'price_info.order_price'")
    created_at, updated_at = _ms(get("create_time"), "create_time"), _ms(get("update_time"), "update_time")
    paid_at = _ms(pay.get("pay_time"), "pay_time")
    shipping_fee = _fen(price.get("change_freight") if price.get("is_change_freight") else price.get("freight"),
                        "freight")
    paid_total = _fen(price["order_price"], "order_price")
    discount_total = _fen(price.get("discounted_price"), "discounted_price") + \
        _fen(price.get("change_down_price"), "change_down_price")
    products = detail.get("product_infos")
    if products.__class__ is not list:
        products = _list(detail, "product_infos", "order_detail")
    lines, counts, by_sku = _lines(products, paid_total - shipping_fee)
    delivered_at = _ms(delivery.get("ship_done_time"), "ship_done_time")
    if delivered_at is not None and status + SHIP_DONE in ORDER_STATUS:
        status += SHIP_DONE  # delivered-not-completed is no status of its own (manifest: 30/ship_done)
    status_refund = STATUS_REFUND.get(status, "NONE")
    aftersale = detail.get("aftersale_detail")
    if aftersale.__class__ is dict and not aftersale.get("aftersale_order_list"):
        states = []
    else:
        states = _aftersale_states(_obj(detail, "aftersale_detail", "order_detail"))
    if counts or states or status_refund != "NONE":
        refunded_total = _set_refunds(lines, counts, states, status_refund)
        refund_status = status_refund if status_refund != "NONE" else _order_refund(lines)
    else:
        refunded_total, refund_status = 0, "NONE"
    packages = delivery.get("delivery_product_info")
    shipments = (_shipments(packages if packages.__class__ is list else
                            _list(delivery, "delivery_product_info", "delivery_info"), by_sku) if packages else [])
    canonical = ORDER_STATUS.get(status, "UNKNOWN")
    street = (address.get("detail_info") or "") + (address.get("house_number") or "")
    phone_masked, phone = _tel(address.get("tel_number") or address.get("virtual_order_tel_number"))
    ext = detail.get("ext_info")
    notes = (ext if ext.__class__ is dict else _obj(detail, "ext_info", "order_detail")).get("customer_notes")
    aget = address.get
    return {
        "order_id": order_id(platform, shop_id, external_id),
        "platform": platform, "shop_id": shop_id, "external_id": external_id,
        "status": canonical,
        "refund_status": refund_status,
        "platform_status": status,
        "created_at": created_at, "paid_at": paid_at, "updated_at": updated_at,
        "shipped_at": min([s["shipped_at"] for s in shipments if s["shipped_at"] is not None], default=None)
        if shipments else None,
        "delivered_at": delivered_at,
        "currency": "CNY",
        "items_total": sum([line["quantity"] * line["unit_price"] for line in lines]),
        "shipping_fee": shipping_fee,
        "discount_total": discount_total,
        "tax_total": 0,
        "paid_total": paid_total,
        "buyer": {"id": _text(get("openid")), "nick_masked": None, "message": mask_free_text(notes or None)},
        "receiver": {"name_masked": mask_name(_text(aget("user_name"))), "phone_masked": phone_masked,
                     "country": "CN", "province": _text(aget("province_name")),
                     "city": _text(aget("city_name")), "district": _text(aget("county_name")),
                     "address_masked": mask_street(street), "postal_code": _text(aget("postal_code")),
                     "secure_token": _text(aget("hash_code")),
                     "phone_valid": phone_verdict(phone, "CN"), "address_vague": street_vague(street, "CN")},
        "lines": lines,
        "shipments": shipments,
        "version": 0,
        "refunded_total": refunded_total,
    }


def map_payload(body: bytes, content_type: str, shop_id: str, platform: str = "wechat_channels") -> list[dict]:
    """Every order in a channels/ec body -> canonical order dicts (MappingError on anything unusable)."""
    return map_exactly(lambda exact: [map_order(o, shop_id, platform)
                                      for o in orders_of(parse_body(body, content_type, exact))], platform)
