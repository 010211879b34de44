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
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national significant number
_MIN_DIGITS, _MAX_DIGITS = 3, 17  # outside these, leave the edge cases (viability, TOO_LONG ...) to phonenumbers
# the types phonenumbers tries before fixed line and mobile, in its order
_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail")


def _fits(desc, size: int) -> str | None:
    """The pattern of a PhoneNumberDesc if a number of `size` digits may match it (its possible lengths
    allow the size, or it lists none), else None."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and size not in desc.possible_length:
        return None
    return f"(?:{desc.national_number_pattern})"


class _Region:
    """One region's metadata, compiled: its prefixes, and per number size one typing pattern."""

    __slots__ = ("country_code", "idd", "leading_digits", "national_prefix", "typers")

    def __init__(self, meta: PhoneMetadata):
        self.country_code = str(meta.country_code)
        self.idd = re.compile(meta.international_prefix).match if meta.international_prefix is not None else None
        prefix = meta.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix).match if prefix else None
        self.leading_digits = re.compile(meta.leading_digits).match if meta.leading_digits is not None else None
        self.typers = {size: typer for size in range(_MIN_NSN, _MAX_NSN + 1)
                       if (typer := _typer(meta, size)) is not None}


def _typer(meta: PhoneMetadata, size: int):
    """fullmatch of one pattern holding phonenumbers' `_number_type_helper` for numbers of `size` digits.

    The general pattern must match, then the first type whose pattern matches wins (the regex engine
    tries the alternatives in order): the types tried before fixed line and mobile, then what makes
    MOBILE or FIXED_LINE_OR_MOBILE (group `m`), then FIXED_LINE. Where the metadata says mobile and fixed
    line share one pattern, phonenumbers never tries the mobile pattern: a fixed-line match is
    FIXED_LINE_OR_MOBILE. Otherwise a mobile match is MOBILE or FIXED_LINE_OR_MOBILE either way.
    None: no number of this size has a type.
    """
    general = _fits(meta.general_desc, size)
    fixed, mobile = _fits(meta.fixed_line, size), _fits(meta.mobile, size)
    if meta.same_mobile_and_fixed_line_pattern:
        mobile, fixed = fixed, None
    others = [found for found in (_fits(getattr(meta, name), size) for name in _TYPE_DESCS) if found]
    choices = others + ([f"(?P<m>{mobile})"] if mobile else []) + ([fixed] if fixed else [])
    return re.compile(f"(?={general}\\Z)(?:{'|'.join(choices)})").fullmatch if general and choices else None


class _CallingCode:
    """A calling code: its main region (whose national prefix parsing strips) and every region sharing it,
    in phonenumbers' order."""

    __slots__ = ("main", "regions", "size")

    def __init__(self, code: int):
        self.size = len(str(code))
        regions = []
        for name in COUNTRY_CODE_TO_REGION_CODE[code]:
            if name == REGION_CODE_FOR_NON_GEO_ENTITY:
                meta = PhoneMetadata.metadata_for_nongeo_region(code, None)
                found = _Region(meta) if meta is not None else None
            else:
                found = _region(name)
            regions.append(found)
        self.main = regions[0]
        # sharing the code, phonenumbers looks regions up as geographic ones: a missing one is skipped
        self.regions = [found for name, found in zip(COUNTRY_CODE_TO_REGION_CODE[code], regions)
                        if found is not None and name != REGION_CODE_FOR_NON_GEO_ENTITY] if len(regions) > 1 else None

    def is_mobile(self, nsn: str) -> bool:
        """phonenumbers' `number_type`, in the region the number belongs to, is MOBILE or FIXED_LINE_OR_MOBILE."""
        size = len(nsn)
        if self.regions is None:  # the code's only region
            typer = self.main.typers.get(size) if self.main is not None else None
            found = typer(nsn) if typer is not None else None
            return found is not None and found.lastgroup == "m"
        for region in self.regions:  # the first region whose leading digits match, or that types the number
            typer = region.typers.get(size)
            if region.leading_digits is not None:
                if region.leading_digits(nsn):
                    found = typer(nsn) if typer is not None else None
                    return found is not None and found.lastgroup == "m"
            elif typer is not None and (found := typer(nsn)) is not None:
                return found.lastgroup == "m"
        return False


@cache
def _region(code: str) -> _Region | None:
    meta = PhoneMetadata.metadata_for_region(code, None)
    return _Region(meta) if meta is not None else None


@cache
def _calling_code(code: int) -> _CallingCode:
    return _CallingCode(code)


def _prefix_codes() -> dict[str, int]:
    """phonenumbers' `_extract_country_code` for every three digits a number can start with: the shortest
    known calling code they start with (none for a leading 0, or none known)."""
    found = {}
    for start in range(100, 1000):
        digits = str(start)
        code = next((int(digits[:size]) for size in (1, 2, 3) if int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE),
                    None)
        if code is not None:
            found[digits] = code
    return found


_CODE_OF_PREFIX = _prefix_codes()


def mobile_verdict(text: str, region: str | None) -> bool | None:
    """Would `phonenumbers.parse(text, region)` succeed with a number of type MOBILE or FIXED_LINE_OR_MOBILE?

    `text` is already stripped of separators; `region` is an upper-case ISO code or None. None when
    `text` is not of a shape this module mirrors exactly: ask phonenumbers then.
    """
    if text[:1] == "+":
        digits = text[1:]
        if not (_MIN_DIGITS <= len(digits) <= _MAX_DIGITS and digits.isdigit() and digits.isascii()) or (
                region is not None and region not in SUPPORTED_REGIONS):
            return None
        code = _CODE_OF_PREFIX.get(digits[:3])
        if code is None:
            return None  # phonenumbers retries without the '+' in the default region
        calling = _calling_code(code)
        nsn = digits[calling.size:]
        if len(nsn) < _MIN_NSN:
            return False
        home = calling.main  # parsing strips the national prefix of the calling code's main region
    else:
        if not (_MIN_DIGITS <= len(text) <= _MAX_DIGITS and text.isdigit() and text.isascii()) or (
                region not in SUPPORTED_REGIONS):
            return None
        home = _region(region)
        if home is None or (home.idd is not None and home.idd(text)) or text.startswith(home.country_code):
            return None  # an IDD prefix, or the calling code written without '+'
        calling, nsn = _calling_code(int(home.country_code)), text
    if home is None or (home.national_prefix is not None and home.national_prefix(nsn)):
        return None
    return calling.is_mobile(nsn)  # at most 17 digits: never too long for phonenumbers
