"""Simulated orders rendered as PDD POP answers: the order object of `pdd.order.number.list.increment.get`
and `pdd.order.information.get`, with PDD's receiver ciphertexts and masks.

Shape (pinduoduo.md §5): `order_sn` a string, `goods_id`/`sku_id`/`group_order_id` bare JSON integers,
money yuan as JSON floats, times `yyyy-MM-dd HH:mm:ss` Beijing, one order-level after-sales state, the
first package in `logistics_id`/`tracking_number`/`shipping_time` and further ones in
`extra_delivery_list`. Receivers: `receiver_name`/`receiver_address`/`address` as
`~<base64>~<search index>~<ver>~~`, `receiver_phone` as `$<index>$<base64>$<ver>$$`, the `*_mask`
fields beside them; about one valid mobile in four is hidden behind a virtual number with an
extension (`170xxxxxxxx-1234`), stable per receiver. The ciphertexts are a reversible toy cipher
under a simulator key (`decrypt` undoes it), so the simulated `pdd.open.decrypt.batch` can answer.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.simkit.world import SimOrder
from schemas.canonical import BEIJING

_MANIFEST = folder_manifest(__file__)
LOGISTICS_ID = {name: int(code) for code, name in _MANIFEST.carriers.items()}  # company name -> logistics_id
_SIM_KEY = b"tonglu-pdd-simulated-cipher-key"
_HEADER = b"\x02\x00\x00\x00"  # real ciphertexts start with AgAAAA… in base64
_KEEP = frozenset("路街道巷弄号楼栋单元室院村区镇乡")
_ORDER_STATUS = {"DELIVERED": 3, "COMPLETED": 3, "SHIPPED": 2, "PARTIALLY_SHIPPED": 2}  # else 1 待发货
# an after-sales state and the order-level refund_status PDD shows beside it
AFTER_SALES_REFUND = {0: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 2, 7: 2, 8: 2, 9: 1, 10: 4, 11: 1, 12: 1, 13: 1, 14: 2,
                      15: 2, 16: 1, 17: 1, 18: 2, 21: 2, 22: 2, 24: 1, 25: 1, 27: 2, 31: 3, 32: 2}


def _beijing(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: int) -> float:
    return fen / 100  # the nearest double of the decimal: 6435 -> 64.35, printed as 64.35


# ---- receiver ciphertexts and masks ----

def _stream(nonce: bytes, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(_SIM_KEY + nonce + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:size]


def _index(plain: str, size: int) -> str:
    digest = hashlib.sha256(b"index" + _SIM_KEY + plain.encode()).digest()
    return base64.b64encode(digest).decode()[:size]


def encrypt(plain: str, kind: str, version: int = 0) -> str:
    """A PDD-shaped ciphertext of `plain`: `kind` 'phone' gives `$index$b64$ver$$`, anything else
    `~b64~index~ver~~`. Deterministic (the same receiver gives the same ciphertext), like the platform's."""
    data = plain.encode("utf-8")
    nonce = hashlib.sha256(b"nonce" + _SIM_KEY + data).digest()[:8]
    sealed = bytes(a ^ b for a, b in zip(data, _stream(nonce, len(data))))
    body = base64.b64encode(_HEADER + nonce + sealed).decode()
    if kind == "phone":
        return f"${_index(plain, 12)}${body}${version}$$"
    return f"~{body}~{_index(plain, 36 if kind == 'address' else 8)}~{version}~~"


def decrypt(cipher: str) -> str | None:
    """The plaintext of a ciphertext made by `encrypt`; None for anything else."""
    try:
        if cipher.startswith("$") and cipher.endswith("$$"):
            body = cipher.split("$")[2]
        elif cipher.startswith("~") and cipher.endswith("~~"):
            body = cipher.split("~")[1]
        else:
            return None
        raw = base64.b64decode(body, validate=True)
    except (ValueError, IndexError):
        return None
    if not raw.startswith(_HEADER) or len(raw) < 12:
        return None
    nonce, data = raw[4:12], raw[12:]
    try:
        return bytes(a ^ b for a, b in zip(data, _stream(nonce, len(data)))).decode("utf-8")
    except UnicodeDecodeError:
        return None


def mask_name_pdd(name: str) -> str:
    """PDD's name mask: first and last character kept ('林*坤'), of two characters the first ('李*')."""
    if len(name) <= 2:
        return name[:1] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone_pdd(phone: str) -> str:
    """PDD's phone mask: '138****1111'; a virtual number keeps its extension after '-'."""
    main, sep, ext = phone.partition("-")
    digits = "".join(ch for ch in main if ch.isdigit())
    masked = digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "*" * (len(digits) - 1) + digits[-1:]
    return masked + sep + ext


def mask_address_pdd(street: str) -> str:
    """PDD-like street mask: the first character and road/number words kept, every other character starred."""
    return street[:1] + "".join(ch if ch in _KEEP else "*" for ch in street[1:])


def virtual_number(order: SimOrder) -> str | None:
    """The privacy number standing in for the receiver's mobile (about one in four valid mobiles), with an
    extension; None when the real number is shown (encrypted) instead."""
    phone = order.receiver_phone
    if len(phone) != 11 or not phone.isdigit() or phone[0] != "1":
        return None  # only real mobiles are hidden; a broken number stays as the buyer typed it
    digest = hashlib.sha256(f"virtual|{order.shop_id}|{phone}".encode()).digest()
    if digest[0] % 4:
        return None
    number = int.from_bytes(digest[1:9], "big")
    return f"170{number % 10**8:08d}-{number // 10**8 % 10**4:04d}"


def receiver_fields(order: SimOrder, plaintext: bool = False) -> dict:
    """The receiver part of an order object: ciphertexts and masks (or, with `plaintext`, the clear values
    an app authorised to read them was once given, masks beside)."""
    phone = order.receiver_phone if plaintext else (virtual_number(order) or order.receiver_phone)
    street = order.town + order.street  # PDD's receiver_address: no province/city/district
    full = f"{order.province}{order.city}{order.district}{street}"
    masked_street = order.town + mask_address_pdd(order.street)
    if plaintext:
        name_v, phone_v, street_v, full_v = order.receiver_name, phone, street, full
    else:
        name_v, phone_v = encrypt(order.receiver_name, "name"), encrypt(phone, "phone")
        street_v, full_v = encrypt(street, "address", 0), encrypt(full, "address", 1)
    return {
        "receiver_name": name_v, "receiver_name_mask": mask_name_pdd(order.receiver_name),
        "receiver_phone": phone_v, "receiver_phone_mask": mask_phone_pdd(phone),
        "receiver_address": street_v, "receiver_address_mask": masked_street,
        "address": full_v, "address_mask": f"{order.province}{order.city}{order.district}{masked_street}",
    }


# ---- state ----

def _refund_state(order: SimOrder) -> tuple[int, int]:
    """(refund_status, after_sales_status) of a simulated order: PDD keeps one after-sales state per order."""
    states = {line.refund_status for line in order.lines}
    if "REQUESTED" in states:
        return 2, 3 if order.shipped_at is not None else 2  # 退货退款 once shipped, 仅退款 before
    if "REFUNDED" in states:
        return 4, 10
    if "REJECTED" in states:
        return 2, 6
    return 1, 0


def _state(order: SimOrder) -> dict:
    paid = order.paid_at is not None
    if order.status == "CANCELLED":
        # a paid order ends by a successful refund (its order_status stays); an unpaid one is 已取消
        order_status = 3 if order.delivered_at is not None else 2 if order.shipped_at is not None else 1
        confirm = 1 if paid else 2
    else:
        order_status = _ORDER_STATUS.get(order.status, 1)
        confirm = 1 if paid else 0
    refund, after = _refund_state(order)
    return {"order_status": order_status, "refund_status": refund, "after_sales_status": after,
            "confirm_status": confirm, "group_status": 1 if paid else 0,
            "receive_time": _beijing(order.finished_at) if order.status == "COMPLETED" else ""}


def _packages(order: SimOrder) -> list[tuple[int, str, int]]:
    """(logistics_id, tracking number, shipped at) per package, first shipped first."""
    seen: dict[str, tuple[int, str, int]] = {}
    for line in order.lines:
        if line.tracking_no and line.tracking_no not in seen:
            carrier = LOGISTICS_ID.get(line.carrier_name or "", 0)
            seen[line.tracking_no] = (carrier, line.tracking_no, line.shipped_at)
    return sorted(seen.values(), key=lambda p: p[2] or 0)


def _item(line) -> dict:
    sku = int(line.sku_id)
    return {"goods_id": 500_000_000_000 + sku % 1_000_000_000, "sku_id": sku, "outer_id": line.merchant_sku,
            "outer_goods_id": line.merchant_sku.rsplit("-", 1)[0], "goods_name": line.title,
            "goods_spec": line.title.rsplit(" ", 1)[-1], "goods_count": line.quantity,
            "goods_price": _yuan(line.unit_price),
            "goods_img": f"https://img.pddpic.com/mms-material-img/sim/{line.merchant_sku.lower()}.jpeg"}


def order_dict(order: SimOrder, plaintext: bool = False) -> dict:
    """A simulated order as a PDD order object (see the module doc)."""
    state = _state(order)
    packages = _packages(order)
    first = packages[0] if packages else (0, "", None)
    discount = order.order_discount + order.line_discounts  # PDD discounts are order-level coupons
    paid_time = _beijing(order.paid_at)
    group_id = 2**53 + int(hashlib.sha256(order.external_id.encode()).hexdigest()[:12], 16)
    return {
        "order_sn": order.external_id, **state, "trade_type": 0, "is_lucky_flag": 1, "risk_control_status": 0,
        "group_order_id": group_id, "group_role": 0,
        "created_time": _beijing(order.created_at), "confirm_time": paid_time, "pay_time": paid_time,
        "updated_at": _beijing(order.updated_at),
        "last_ship_time": _beijing(order.paid_at + 48 * 3_600_000) if order.paid_at is not None else "",
        "shipping_time": _beijing(first[2]), "logistics_id": first[0], "tracking_number": first[1],
        "extra_delivery_list": [{"logistics_id": lid, "tracking_number": no} for lid, no, _ in packages[1:]],
        "pay_amount": _yuan(order.paid_total), "goods_amount": _yuan(order.items_total),
        "discount_amount": _yuan(discount), "platform_discount": 0.0, "seller_discount": _yuan(discount),
        "postage": _yuan(order.shipping_fee), "order_change_amount": 0.0, "capital_free_discount": 0.0,
        "pay_no": "", "pay_type": "WEIXIN" if paid_time else "",
        "country": "中国", "country_id": 0, "province": order.province, "city": order.city,
        "town": order.district,
        **receiver_fields(order, plaintext),
        "buyer_memo": order.buyer_message, "remark": "", "invoice_status": 0, "is_pre_sale": 0,
        "pre_sale_time": "", "self_contained": 0, "shipping_type": 0, "stock_out_handle_status": -1,
        "is_stock_out": 0, "free_sf": 0,
        "item_list": [_item(line) for line in order.lines],
        "card_info_list": [], "gift_list": [], "promotion_detail_list": [], "service_fee_detail": [],
    }


def request_id() -> str:
    """A fresh PDD-looking request id (17 digits)."""
    return str(10**16 + secrets.randbelow(9 * 10**16))


def list_answer(objects: list[dict], total: int, has_next: bool) -> dict:
    """The `order_sn_increment_get_response` object around order objects."""
    return {"total_count": total, "has_next": has_next, "order_sn_list": objects, "request_id": request_id()}


def page_body(orders: list[SimOrder], plaintext: bool = False) -> bytes:
    """A `pdd.order.number.list.increment.get` answer listing `orders` (one page); receivers in clear with
    `plaintext=True` (see receiver_fields)."""
    objects = [order_dict(o, plaintext) for o in orders]
    return orjson.dumps({"order_sn_increment_get_response": list_answer(objects, len(objects), False)})


def _force_status(obj: dict, key: str, order: SimOrder) -> None:
    obj.update(confirm_status=1, group_status=1, refund_status=1, after_sales_status=0, receive_time="")
    if key == "unpaid":
        obj.update(pay_time="", confirm_time="", confirm_status=0, group_status=0, order_status=1)
        return
    field, _, value = key.partition("=")
    value, extra = value.partition("+")[::2]
    if field == "order_status":
        obj["order_status"] = int(value)
        if extra == "received":
            obj["receive_time"] = _beijing(order.updated_at)
        elif extra == "refunded":
            obj.update(refund_status=4, after_sales_status=10)
    elif field == "confirm_status":
        obj["confirm_status"] = int(value)
    elif field == "group_status":
        obj.update(group_status=int(value), confirm_status={"0": 0, "2": 2}.get(value, 1))
        if value == "2":
            obj.update(refund_status=4, after_sales_status=10)  # a failed group's payment goes back
    else:
        raise ValueError(f"not a platform status of the manifest: {key!r}")


def status_page(order: SimOrder, platform_status: str | None = None,
                refund_status: str | None = None) -> bytes:
    """One order as a list page, its state forced to a manifest `platform_status` (`order_status=2`,
    `group_status=0`, `unpaid`…) and/or a manifest refund key (`refund_status=4`, `after_sales_status=6`)."""
    obj = order_dict(order)
    if platform_status is not None:
        _force_status(obj, platform_status, order)
    if refund_status is not None:
        field, _, value = refund_status.partition("=")
        if field == "refund_status":
            obj.update(refund_status=int(value), after_sales_status=0)
        elif field == "after_sales_status":
            obj.update(after_sales_status=int(value), refund_status=AFTER_SALES_REFUND[int(value)])
        else:
            raise ValueError(f"not a refund status of the manifest: {refund_status!r}")
    return orjson.dumps({"order_sn_increment_get_response": list_answer([obj], 1, False)})
