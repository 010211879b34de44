"""Pure helpers every platform mapping uses to build canonical orders: ids, money, time, masking."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

ORDER_STATUSES = ("PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED", "CANCELLED")
REFUND_STATUSES = ("NONE", "REQUESTED", "PARTIALLY_REFUNDED", "REFUNDED", "REJECTED")
BEIJING = timezone(timedelta(hours=8))
_EPOCH = date(1970, 1, 1)
# ISO 4217 minor-unit exponents that are not 2
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "IDR": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


class MappingError(ValueError):
    """A platform payload that cannot be mapped to canonical orders (the message says why)."""


def order_id(platform: str, shop_id: str, external_id: str) -> str:
    return f"{platform}:{shop_id}:{external_id}"


def to_minor(amount, currency: str = "CNY") -> int:
    """A money amount given as a decimal string, int or float of major units -> integer minor units."""
    if amount is None or amount == "":
        return 0
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise MappingError(f"not a money amount: {amount!r}") from None
    scale = Decimal(10) ** _EXPONENTS.get(currency.upper(), 2)
    return int((value * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(amount: int | None, currency: str = "CNY") -> str:
    """Integer minor units -> a decimal string of major units, as receivers of yuan strings want: 15780 -> '157.80'."""
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return str((Decimal(amount or 0) / (Decimal(10) ** exponent)).quantize(Decimal(1).scaleb(-exponent)))


def beijing_to_ms(text: str | None) -> int | None:
    """'yyyy-MM-dd HH:mm:ss' in Beijing time (UTC+8) -> UTC epoch milliseconds."""
    if not text:
        return None
    try:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise MappingError(f"not a Beijing time 'yyyy-MM-dd HH:mm:ss': {text!r}") from None
    return int(local.timestamp() * 1000)


def iso_to_ms(text: str | None) -> int | None:
    """ISO-8601 with an offset or Z -> UTC epoch milliseconds."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MappingError(f"not an ISO-8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise MappingError(f"ISO-8601 time without offset: {text!r}")
    return int(parsed.timestamp() * 1000)


@lru_cache(maxsize=8192)
def _day_iso(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


def ms_to_iso(ms: int | None) -> str | None:
    """UTC epoch milliseconds -> ISO-8601 with Z (the JSON form of canonical times).

    Integer arithmetic, exact at every millisecond; the seconds part is kept for the seconds seen lately
    (the times of a busy stream share them), so most calls format only the milliseconds.
    """
    if ms is None:
        return None
    sec, milli = divmod(ms, 1000)
    return f"{_second_iso(sec)}.{milli:03d}Z"


@lru_cache(maxsize=8192)
def _second_iso(sec: int) -> str:
    day, rem = divmod(sec, 86_400)
    hour, rem = divmod(rem, 3600)
    minute, rem = divmod(rem, 60)
    return f"{_day_iso(day)}T{hour:02d}:{minute:02d}:{rem:02d}"


def ms_to_beijing(ms: int) -> str:
    return _beijing_second(ms // 1000)


@lru_cache(maxsize=1024)
def _beijing_second(second: int) -> str:
    # signed API calls stamp "now" thousands of times a second: formatted once per second
    return datetime.fromtimestamp(second, tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def mask_phone(phone: str | None) -> str | None:
    """Keep the first 3 and last 4 digits: 13812345678 -> 138****5678. Already-masked input stays masked."""
    if not phone:
        return None
    if isinstance(phone, str) and phone.isascii() and (phone[1:] if phone[:1] == "+" else phone).isdigit():
        digits = phone[3:] if phone.startswith("+86") else phone.removeprefix("+")  # plain: nothing to drop
    elif phone.__class__ is str and len(phone) == 11 and phone[3:7] == "****" and phone[:3].isdigit() \
            and phone[7:].isdigit() and phone.isascii():
        return phone  # a platform's own mask (138****5678) is already the canonical one
    else:
        digits = "".join([ch for ch in phone if ch.isdigit() or ch == "*"])
        if phone.replace(" ", "").startswith("+86"):
            digits = digits[2:]
    if len(digits) <= 7:
        return "*" * max(len(digits) - 2, 1) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(name: str | None) -> str | None:
    """Keep the first character: 张三丰 -> 张**, John Smith -> J***. Already-masked input stays masked."""
    if not name:
        return None
    name = name.strip()
    size = len(name)
    return name[0] + ("*" if size <= 2 else "**" if size == 3 else "***")


def mask_street(street: str | None) -> str | None:
    """Mask the street part of an address (province/city/district are kept in their own fields)."""
    if not street:
        return None
    street = street.strip()
    size = len(street)
    keep = 2 if size >= 8 else 1  # a quarter of the street, at least 1 and at most 2 characters
    return street[:keep] + ("*" * (size - keep) if size - keep > 3 else "***")


_TIME_FIELDS = ("created_at", "paid_at", "updated_at", "shipped_at", "delivered_at")
# What the courier-tracking service says about a shipment (Order v4); mappings leave them out (platforms
# do not know them), the normalizer fills them in (streams/tracking.py).
TRACKING_FIELDS = ("tracking_state", "tracking_status", "tracking_step", "tracking_at", "delivered_at")
_TRACKING_TIMES = ("tracking_at", "delivered_at")


def order_json(order: dict) -> dict:
    """The JSON form of a canonical order: times as ISO-8601 with Z."""
    out = dict(order)
    for name in _TIME_FIELDS:
        out[name] = ms_to_iso(order.get(name))
    out["shipments"] = [_shipment_json(s) for s in order["shipments"]]
    return out


def _shipment_json(shipment: dict) -> dict:
    out = dict(shipment, shipped_at=ms_to_iso(shipment.get("shipped_at")))
    for name in _TRACKING_TIMES:
        if name in out:
            out[name] = ms_to_iso(out[name])
    return out


def with_tracking_fields(shipment: dict) -> dict:
    """A mapped shipment with the tracking fields of Order v4 present and empty (as Avro reads it back)."""
    missing = [name for name in TRACKING_FIELDS if name not in shipment]
    return dict(shipment, **dict.fromkeys(missing)) if missing else shipment
