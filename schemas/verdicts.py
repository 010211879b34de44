"""Verdicts the mappings compute while the plain receiver data is in hand.

Only the verdict (a nullable boolean) travels on in the canonical order: `receiver.phone_valid` and
`receiver.address_vague`. The anomaly rules read them later without ever seeing the plaintext.
`None` always means "cannot tell" (nothing given), which the rules treat as "no finding".
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException

from schemas.phone_types import MOBILE_TYPES, digits_verdict, mobile_verdict

_SEPARATORS = str.maketrans("", "", " -()\u3000")
# masks seen in the wild: canonical 138****5678 (3-digit carrier prefix 13x-19x), Taobao *******5678,
# Pinduoduo's older 1387677**** (first seven digits kept)
_CN_MOBILE_MASKS = (re.compile(r"1[3-9]\d\*{4}\d{4}"), re.compile(r"\*{7}\d{4}"),
                    re.compile(r"1[3-9]\d{5}\*{4}"))
_CN_MOBILE_MASK_RE = re.compile("|".join(mask.pattern for mask in _CN_MOBILE_MASKS))

# "don't know / anywhere / whatever": a courier cannot deliver to these, whatever else is written
_VAGUE_WORDS = ("不详", "随便", "未知", "不知道", "待定", "暂无", "不清楚", "详询", "电话联系", "到了打电话")
_NEAR_WORDS = ("附近", "旁边", "周边", "一带", "对面", "那边", "这边")
# something a courier can walk up to: a road, a number, a building, a village ...
_MARKERS = ("路", "街", "道", "巷", "弄", "胡同", "号", "楼", "栋", "幢", "座", "层", "室", "单元", "院", "村",
            "组", "屯", "庄", "镇", "乡", "小区", "大厦", "公寓", "花园", "苑", "广场", "中心", "大学", "学院",
            "学校", "医院", "公司", "厂", "门", "里", "坊", "社区", "驿站", "园")
_NUMBER_MARKERS = ("号", "栋", "幢", "单元", "室", "层", "座")
_MIN_CN_STREET = 4
# one compiled alternation per word list: a mapping judges every order, so this is on the hot path
_VAGUE_RE, _NEAR_RE, _MARKER_RE, _NUMBER_MARKER_RE, _VAGUE_OR_NEAR_RE = (
    re.compile("|".join(map(re.escape, words)))
    for words in (_VAGUE_WORDS, _NEAR_WORDS, _MARKERS, _NUMBER_MARKERS, _VAGUE_WORDS + _NEAR_WORDS))
_DIGIT_RE = re.compile(r"\d")


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def phone_verdict(phone: str | None, country: str | None) -> bool | None:
    """Is `phone` a dialable mobile number in `country` (ISO alpha-2)? None when there is no phone.

    Plain numbers are judged with `phonenumbers` (valid and of type MOBILE or FIXED_LINE_OR_MOBILE;
    numbers with a `+` prefix need no country; plain digit strings take schemas/phone_types.py, the same
    answer from the same metadata without the generic parsing). Masked numbers (containing `*`) can only be judged
    by shape: an 11-character Chinese mobile mask (`138****5678`, `1387677****`) or Taobao's
    `*******5678` is plausible, anything else is not. Without a country and without `+`, the answer is None.
    """
    if phone is None:
        return None
    if isinstance(phone, str):
        if "*" in phone:
            if _CN_MOBILE_MASK_RE.fullmatch(phone):
                return True  # the usual masked input (Taobao's) needs no cleaning
        elif (phone[1:] if phone[:1] == "+" else phone).isdigit() and phone.isascii():
            region = country.upper() if country else None  # the usual plain number: nothing to clean either
            if region is None and phone[:1] != "+":
                return None
            verdict = digits_verdict(phone, region)
            return verdict if verdict is not None else _phonenumbers_verdict(phone, region)
    text = phone.strip().translate(_SEPARATORS)
    if not text:
        return None
    if "*" in text:
        text = text.removeprefix("+86")
        return any(mask.fullmatch(text) for mask in _CN_MOBILE_MASKS)
    return _plain_verdict(text, country)


def _plain_verdict(text: str, country: str | None) -> bool | None:
    region = country.upper() if country else None
    if region is None and not text.startswith("+"):
        return None
    verdict = mobile_verdict(text, region)  # phonenumbers' answer for plain digits, at a tenth of its cost
    return verdict if verdict is not None else _phonenumbers_verdict(text, region)


def _phonenumbers_verdict(text: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return False
    # a number's type is UNKNOWN unless it is valid, so the type alone decides (is_valid_number would
    # repeat the same region lookup and pattern matching)
    return phonenumbers.number_type(number) in MOBILE_TYPES


def street_vague(street: str | None, country: str | None) -> bool | None:
    """Is the street part of an address too vague to deliver to? None when there is no street.

    Chinese streets (country CN, or Chinese text): vague when shorter than 4 characters, when they
    say "unknown / whatever" (不详, 随便, ...), when they name no road, number, building or village
    marker, or when they only point "near" something (附近, 旁边) without a house or building number.
    Masked characters (`*`) count towards the length but are no markers.
    Other countries: an address line without any digit (no house number) is vague.
    """
    if street is None:
        return None
    if country is not None and country.upper() != "CN":  # only a digit counts: no need to drop the spaces first
        return None if not street or street.isspace() else _DIGIT_RE.search(street) is None
    text = "".join(street.split())
    if not text:
        return None
    if country is not None or _is_cjk(text):
        if len(text) < _MIN_CN_STREET:
            return True
        if not _VAGUE_OR_NEAR_RE.search(text):  # the usual case, one scan for both word lists
            return not (_MARKER_RE.search(text) or _DIGIT_RE.search(text))
        if _VAGUE_RE.search(text):
            return True
        has_digit = _DIGIT_RE.search(text) is not None
        if _NEAR_RE.search(text):
            return not (has_digit or _NUMBER_MARKER_RE.search(text))
        return not (has_digit or _MARKER_RE.search(text))
    return _DIGIT_RE.search(text) is None
