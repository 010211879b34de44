"""phonenumbers' mobile-or-not answer for plain digit strings, without its generic parsing.

`phonenumbers.parse` + `number_type` cost tens of µs a number: most of it goes to input handling
an order's phone rarely needs (RFC 3966, extensions, vanity letters, IDD prefixes) and to cached
pattern look-ups for up to eleven number types. `mobile_verdict` follows the same steps for the
usual shapes, ASCII digits with or without one leading `+`: the country calling code, the national
prefix, the region the number belongs to, then the type patterns in phonenumbers' order, over
patterns compiled once per region from phonenumbers' own metadata. Wherever parsing would take a
branch not mirrored here (an IDD or national prefix to strip, the calling code written without `+`,
a `+0`, a digit string too short or too long to be ordinary) it answers None and the caller asks
phonenumbers. tests/unit/test_phone_types.py holds the two to the same answers.

Only the compiled metadata is kept (by region and calling code); no number is ever remembered.
"""
from __future__ import annotations

import re
from functools import cache

from phonenumbers import PhoneNumberType
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    REGION_CODE_FOR_NON_GEO_ENTITY,
    SUPPORTED_REGIONS,
)

MOBILE_TYPES = frozenset((PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE))
_UNKNOWN = PhoneNumberType.UNKNOWN
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national significant number
_MIN_DIGITS, _MAX_DIGITS = 3, 17  # outside these, leave the edge cases (viability, TOO_LONG ...) to phonenumbers
# the types phonenumbers tries before fixed line and mobile, in its order
_SPECIAL_TYPES = (("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
                  ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
                  ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
                  ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL))


def _desc(desc):
    """(possible lengths or None, fullmatch) of a PhoneNumberDesc, None when it can match nothing."""
    if desc is None or not desc.national_number_pattern:
        return None
    return (frozenset(desc.possible_length) or None, re.compile(desc.national_number_pattern).fullmatch)


class _Region:
    """One region's metadata, compiled: what parsing and typing a number of it need."""

    __slots__ = ("country_code", "fixed", "general", "idd", "leading_digits", "mobile", "national_prefix",
                 "same_mobile_and_fixed", "special")

    def __init__(self, meta: PhoneMetadata):
        self.country_code = str(meta.country_code)
        self.idd = re.compile(meta.international_prefix).match if meta.international_prefix is not None else None
        prefix = meta.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix).match if prefix else None
        self.leading_digits = re.compile(meta.leading_digits).match if meta.leading_digits is not None else None
        self.general = _desc(meta.general_desc)
        self.special = tuple((found, kind) for found, kind in
                             ((_desc(getattr(meta, name)), kind) for name, kind in _SPECIAL_TYPES) if found)
        self.fixed, self.mobile = _desc(meta.fixed_line), _desc(meta.mobile)
        self.same_mobile_and_fixed = bool(meta.same_mobile_and_fixed_line_pattern)

    def number_type(self, nsn: str) -> int:
        """phonenumbers' `_number_type_helper`: the first type whose lengths and pattern `nsn` fits."""
        size = len(nsn)
        general = self.general
        if general is None or (general[0] is not None and size not in general[0]) or general[1](nsn) is None:
            return _UNKNOWN
        for (lengths, fullmatch), kind in self.special:
            if (lengths is None or size in lengths) and fullmatch(nsn) is not None:
                return kind
        mobile = self.mobile
        is_mobile = mobile is not None and (mobile[0] is None or size in mobile[0]) and mobile[1](nsn) is not None
        fixed = self.fixed
        if fixed is not None and (fixed[0] is None or size in fixed[0]) and fixed[1](nsn) is not None:
            if self.same_mobile_and_fixed or is_mobile:
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same_mobile_and_fixed and is_mobile:
            return PhoneNumberType.MOBILE
        return _UNKNOWN


@cache
def _region(code: str) -> _Region | None:
    meta = PhoneMetadata.metadata_for_region(code, None)
    return _Region(meta) if meta is not None else None


@cache
def _calling_code_regions(country_code: int) -> tuple[tuple[str, _Region | None], ...]:
    return tuple((code, (_region(code) if code != REGION_CODE_FOR_NON_GEO_ENTITY else
                         _nongeo(country_code))) for code in COUNTRY_CODE_TO_REGION_CODE[country_code])


def _nongeo(country_code: int) -> _Region | None:
    meta = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
    return _Region(meta) if meta is not None else None


def _type_of(country_code: int, nsn: str) -> int:
    """phonenumbers' `number_type` of a parsed number: the type in the region the number belongs to."""
    regions = _calling_code_regions(country_code)
    if len(regions) == 1:
        region = regions[0][1]
        return _UNKNOWN if region is None else region.number_type(nsn)
    for code, region in regions:
        if region is None or code == REGION_CODE_FOR_NON_GEO_ENTITY:
            continue  # phonenumbers looks these up as geographic regions, which they are not
        if region.leading_digits is not None:
            if region.leading_digits(nsn):
                return region.number_type(nsn)
        else:
            found = region.number_type(nsn)
            if found != _UNKNOWN:
                return found  # the same region and number: typing it again gives the same answer
    return _UNKNOWN


def _calling_code(digits: str) -> int:
    """phonenumbers' `_extract_country_code`: the shortest known calling code `digits` starts with, else 0."""
    if digits[0] == "0":
        return 0
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code
    return 0


def mobile_verdict(text: str, region: str | None) -> bool | None:
    """Would `phonenumbers.parse(text, region)` succeed with a number of type MOBILE or FIXED_LINE_OR_MOBILE?

    `text` is already stripped of separators; `region` is an upper-case ISO code or None. None when
    `text` is not of a shape this module mirrors exactly: ask phonenumbers then.
    """
    international = text[:1] == "+"
    digits = text[1:] if international else text
    if not (_MIN_DIGITS <= len(digits) <= _MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return None
    if region is not None and region not in SUPPORTED_REGIONS:
        return None
    if international:
        country_code = _calling_code(digits)
        if not country_code:
            return None  # phonenumbers retries without the '+' in the default region
        nsn = digits[len(str(country_code)):]
        if len(nsn) < _MIN_NSN:
            return False
        home = _calling_code_regions(country_code)[0][1]  # parsing uses the calling code's main region
    else:
        if region is None:
            return None
        home = _region(region)
        if home is None or (home.idd is not None and home.idd(digits)) or digits.startswith(home.country_code):
            return None
        country_code, nsn = int(home.country_code), digits
    if home is None or (home.national_prefix is not None and home.national_prefix(nsn)):
        return None
    if len(nsn) > _MAX_NSN:
        return False
    return _type_of(country_code, nsn) in MOBILE_TYPES
