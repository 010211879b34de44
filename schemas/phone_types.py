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
_MIN_NSN = 2  # phonenumbers' shortest national significant number (the longest, 17, is _MAX_DIGITS)
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


def _type_pattern(meta: PhoneMetadata, size: int) -> str | None:
    """One pattern holding phonenumbers' `_number_type_helper` for numbers of `size` digits, for fullmatch.

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
    return f"(?={general}\\Z)(?:{'|'.join(choices)})" if general and choices else None


class _Table(dict):
    """Compiled metadata looked up by a key and built on first use (a region code, a number size ...)."""

    def __init__(self, build):
        super().__init__()
        self.build = build

    def __missing__(self, key):
        found = self[key] = self.build(key)
        return found


def _compiled(pattern: str | None):
    return re.compile(pattern).fullmatch if pattern is not None else None


class _Region:
    """One region's metadata, compiled: its prefixes, and per number size its typing pattern (on first use)."""

    __slots__ = ("calling", "country_code", "idd", "leading_digits", "meta", "national_prefix", "typers")

    def __init__(self, meta: PhoneMetadata):
        self.meta = meta
        self.country_code = str(meta.country_code)
        self.idd = re.compile(meta.international_prefix).match if meta.international_prefix is not None else None
        prefix = meta.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix).match if prefix else None
        self.leading_digits = re.compile(meta.leading_digits).match if meta.leading_digits is not None else None
        self.typers = _Table(lambda size: _compiled(_type_pattern(meta, size)))
        self.calling: _CallingCode | None = None  # set when a number is read in this region


class _CallingCode:
    """A calling code: its main region (whose national prefix parsing strips) and every region sharing it,
    in phonenumbers' order."""

    __slots__ = ("_regions", "first", "main", "names", "size")

    def __init__(self, code: int):
        self.names = COUNTRY_CODE_TO_REGION_CODE[code]
        self.size = len(str(code))
        if self.names[0] == REGION_CODE_FOR_NON_GEO_ENTITY:
            meta = PhoneMetadata.metadata_for_nongeo_region(code, None)
            self.main = _Region(meta) if meta is not None else None
        else:
            self.main = _region(self.names[0])
        self._regions: list[_Region] | None = None
        # the usual case in one regex call per number: the main region's national prefix (`np`: parsing
        # would strip it, leave that to phonenumbers) or the main region's typing, where that region comes
        # first among those sharing the code and types every number it can (a region with leading digits
        # claims numbers by them instead)
        main = self.main
        usual = main is not None and (len(self.names) == 1 or (
            self.names[0] != REGION_CODE_FOR_NON_GEO_ENTITY and main.leading_digits is None))
        self.first = _Table(self._first_pattern) if usual else None

    def _first_pattern(self, size: int):
        prefix = self.main.meta.national_prefix_for_parsing
        choices = ([f"(?P<np>(?:{prefix})[0-9]*)"] if prefix else []) + [
            pattern for pattern in (_type_pattern(self.main.meta, size),) if pattern]
        return _compiled("|".join(choices) if choices else None)

    @property
    def regions(self) -> list[_Region]:
        """Every region sharing the code that has metadata (phonenumbers looks them up as geographic ones
        and skips a missing one), on first use."""
        if self._regions is None:
            self._regions = [found for found in map(_region, self.names) if found is not None]
        return self._regions

    def verdict(self, nsn: str, home: _Region) -> bool | None:
        """Mobile (True) or not, for a national number read with `home`'s national prefix; None when
        parsing would strip a national prefix from it."""
        if home is self.main and self.first is not None:
            match = self.first[len(nsn)]
            found = match(nsn) if match is not None else None
            if found is not None:
                return None if found.lastgroup == "np" else found.lastgroup == "m"
            if len(self.names) == 1:
                return False
            return self._belongs_elsewhere(nsn, 1)
        if home.national_prefix is not None and home.national_prefix(nsn):
            return None
        if len(self.names) == 1:
            typer = self.main.typers[len(nsn)]
            found = typer(nsn) if typer is not None else None
            return found is not None and found.lastgroup == "m"
        return self._belongs_elsewhere(nsn, 0)

    def _belongs_elsewhere(self, nsn: str, start: int) -> bool:
        """phonenumbers' region of a number shared by several regions: the first whose leading digits match,
        or that gives the number a type; mobile or not there."""
        size = len(nsn)
        for region in self.regions[start:]:
            typer = region.typers[size]
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


def _home(region: str) -> _Region | None:
    """A supported region, with its calling code, to read numbers written without '+'."""
    found = _region(region)
    if found is not None and found.calling is None:
        found.calling = _calling_code(int(found.country_code))
    return found


@cache
def _calling_code(code: int) -> _CallingCode:
    return _CallingCode(code)


def _calling_code_of(prefix: str) -> _CallingCode | None:
    """phonenumbers' `_extract_country_code` for the first three digits: the shortest known calling code
    they start with (none for a leading 0, or none known)."""
    if prefix[0] == "0":
        return None
    code = next((int(prefix[:size]) for size in (1, 2, 3) if int(prefix[:size]) in COUNTRY_CODE_TO_REGION_CODE), 0)
    return _calling_code(code) if code else None


_HOMES = _Table(_home)
_CALLING_CODES = _Table(_calling_code_of)


def mobile_verdict(text: str, region: str | None) -> bool | None:
    """Would `phonenumbers.parse(text, region)` succeed with a number of type MOBILE or FIXED_LINE_OR_MOBILE?

    `text` is already stripped of separators; `region` is an upper-case ISO code or None. None when
    `text` is not of a shape this module mirrors exactly: ask phonenumbers then.
    """
    if not ((text[1:] if text[:1] == "+" else text).isdigit() and text.isascii()):
        return None
    return digits_verdict(text, region)


def digits_verdict(text: str, region: str | None) -> bool | None:
    """mobile_verdict of a `text` the caller knows to be ASCII digits, after at most one leading '+'."""
    if text[:1] == "+":
        if not _MIN_DIGITS < len(text) <= _MAX_DIGITS + 1 or (region is not None and region not in SUPPORTED_REGIONS):
            return None
        calling = _CALLING_CODES[text[1:4]]
        if calling is None:
            return None  # phonenumbers retries without the '+' in the default region
        nsn = text[calling.size + 1:]
        if len(nsn) < _MIN_NSN:
            return False
        home = calling.main  # parsing strips the national prefix of the calling code's main region
        if home is None:
            return None
    else:
        if not _MIN_DIGITS <= len(text) <= _MAX_DIGITS or region not in SUPPORTED_REGIONS:
            return None
        home = _HOMES[region]
        if home is None or (home.idd is not None and home.idd(text)) or text.startswith(home.country_code):
            return None  # an IDD prefix, or the calling code written without '+'
        calling, nsn = home.calling, text
    return calling.verdict(nsn, home)  # at most 17 digits: never too long for phonenumbers
