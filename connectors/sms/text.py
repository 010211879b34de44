"""Numbers and text as SMS providers take and count them: one normal form of a phone number (so hashes, masks and
requests agree) and the billed segments of a text."""
from __future__ import annotations

import math
import re

_NON_DIGITS = re.compile(r"[^0-9]")
SINGLE_SEGMENT, MULTI_SEGMENT = 70, 67


def normalize_phone(phone: str) -> str:
    """A mainland number as its 11 digits (`+86 138-0013-8000` → `13800138000`); any other number written with
    its country code as `+` and digits (`+1 415 555 0100` → `+14155550100`)."""
    digits = _NON_DIGITS.sub("", phone)
    if phone.strip().startswith("+") or phone.strip().startswith("00"):
        digits = digits.removeprefix("00") if phone.strip().startswith("00") else digits
        return digits[2:] if digits.startswith("86") and len(digits) == 13 else f"+{digits}"
    return digits


def segments(text: str) -> int:
    """Billed segments of a message whose full text (sign included) is `text`: 70 characters fit in one; a longer
    message is split into parts of 67."""
    return 1 if len(text) <= SINGLE_SEGMENT else math.ceil(len(text) / MULTI_SEGMENT)
