"""Masking of free text that people type (buyer messages, seller memos) before it leaves a mapping.

Buyers write phone numbers, ID-card numbers, e-mail addresses and house numbers into order messages
("到了打电话 138 1234 5678", "放3号楼2单元301室门口"). Every platform mapping passes each free-text
field through `mask_free_text`; catalogue text (product titles, SKU names) is not free text.

The rule, chosen so that order numbers, prices and dates stay readable:
- a run counts only when no digit touches either end (a 19-digit order number holds 11-digit runs
  starting with 13, but none of them is a phone); full-width digits count as digits, and one
  separator (space, full-width space, hyphen or dash, dot) may sit between any two digits;
- mainland mobile: 1[3-9] + 9 digits, optionally after +86 / 0086 / (+86) → `138****5678`;
- landline: 0 + 2-3 digit area code + 7-8 digits, the area code optionally in brackets, optionally
  with an extension (转 / ext / -) → `057*****6666` (first 3 and last 4 digits, like a mobile);
- ID card: 18 characters, 17 digits + digit/X, whose 7th-14th are a plausible birth date
  (19xx/20xx, month 01-12, day 01-31) → first and last character kept; an 18-digit order or refund
  id almost never carries such a date (no checksum test: a mistyped ID must still be masked);
- e-mail → `l***@example.com`;
- house numbers: the digits before 号楼/号院/栋/幢/单元/室/层/楼/弄, and before 号 when a road word
  (路/街/大道/巷/弄/胡同/村) precedes them → `*`; road names stay, so 文三路477号 becomes 文三路***号
  and a date such as "3号发货" is left alone.
Not recognised: local numbers without an area code (7-8 digits), QQ/WeChat ids, numbers written in
Chinese numerals, and addresses without a house number.
"""
from __future__ import annotations

import re

# full-width digits and signs -> ASCII, one character for one, so that match positions stay valid
_FOLD = str.maketrans("０１２３４５６７８９＋－（）ＸｘＥＸＴ", "0123456789+-()XxEXT")
_FOLDABLE = re.compile("[０１２３４５６７８９＋－（）ＸｘＥＸＴ]")  # a C scan: a third of a set's per-character test
_SEP = "[ \u3000\u00a0\\-\u2010\u2011\u2012\u2013\u2014\u2015.]"  # at most one between two digits
_D = "[0-9]"


def _digits(count: str) -> str:
    """`count` digits with at most one separator between neighbours (count like '9' or '7,8')."""
    low, _, high = count.partition(",")
    more = f"{{{int(low) - 1},{int(high or low) - 1}}}"
    return f"{_D}(?:{_SEP}?{_D}){more}"


_NO_DIGIT_BEFORE = "(?<![0-9])"
_NO_DIGIT_AFTER = "(?![0-9])"
# each number pattern starts with a lookahead for the characters it can begin with, so that the engine skips
# every other position at one test instead of trying each optional prefix there (a third of a mobile's search)
_MOBILE = re.compile(
    "(?=[(+081])" + _NO_DIGIT_BEFORE
    + rf"(?:(?:\(\+?86\)|\+86|0086|86){_SEP}?)?"
    + rf"(?P<national>1{_SEP}?[3-9](?:{_SEP}?{_D}){{9}})"
    + _NO_DIGIT_AFTER)
_LANDLINE = re.compile(
    "(?=[+0(])" + _NO_DIGIT_BEFORE
    + rf"(?:(?:\+86|0086){_SEP}?(?P<area_intl>[1-9]{_D}{{1,2}})|(?P<area>\(0[1-9]{_D}{{1,2}}\)|0[1-9]{_D}{{1,2}}))"
    + rf"{_SEP}?(?P<local>{_D}(?:{_SEP}?{_D}){{6,7}})"
    + rf"(?:{_SEP}?(?:转|ext\.?|EXT\.?|-){_SEP}?{_D}{{1,5}})?"
    + _NO_DIGIT_AFTER)
_ID_CARD = re.compile(
    r"(?<![0-9A-Za-z])"
    rf"[1-9]{_D}{{5}}{_SEP}?(?:19|20){_D}{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]{_D}|3[01]){_SEP}?{_D}{{3}}[0-9Xx]"
    r"(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_HOUSE_NUMBER = re.compile(
    rf"(?:(?<=[路街巷弄村])|(?<=大道|胡同))\s?{_D}+(?:-{_D}+)?(?=\s?号)"
    # from the start of a digit run only: a later start finds nothing the run's start does not, and trying each
    # one made a long number (an order id beside 订单's 单) cost its length squared
    rf"|(?<![0-9]){_D}+(?:-{_D}+)?(?=\s?(?:号楼|号院|栋|幢|单元|室|层|楼|弄))")


def _only_digits(text: str) -> str:
    if text.isascii() and text.isdigit():
        return text  # the usual number, written without separators
    return "".join([ch for ch in text if "0" <= ch <= "9"])


def _keep_ends(digits: str, head: int, tail: int) -> str:
    return digits[:head] + "*" * (len(digits) - head - tail) + digits[len(digits) - tail:]


def _mask_mobile(match: re.Match) -> str:
    return _keep_ends(_only_digits(match["national"]), 3, 4)


def _mask_landline(match: re.Match) -> str:
    area = match["area"] or "0" + match["area_intl"]
    return _keep_ends(_only_digits(area) + _only_digits(match["local"]), 3, 4)


def _mask_id_card(match: re.Match) -> str:
    chars = [ch for ch in match[0] if ch.isalnum()]
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def _mask_email(match: re.Match) -> str:
    local, _, domain = match[0].partition("@")
    return f"{local[0]}***@{domain}"


def _star_digits(match: re.Match) -> str:
    return "".join("*" if "0" <= ch <= "9" else ch for ch in match[0])


def _sub(pattern: re.Pattern, mask, folded: str, text: str) -> tuple[str, str]:
    """Replace the matches found in the folded text, in both the folded and the original text."""
    if folded is text:  # nothing was folded: one text to rewrite (no pattern here matches the empty string)
        text = pattern.sub(mask, text)
        return text, text
    out_folded, out_text, last = [], [], 0
    for match in pattern.finditer(folded):
        start, end = match.span()
        masked = mask(match)
        out_folded += [folded[last:start], masked]
        out_text += [text[last:start], masked]
        last = end
    if not out_folded:
        return folded, text
    out_folded.append(folded[last:])
    out_text.append(text[last:])
    return "".join(out_folded), "".join(out_text)


# (digits a match holds at least, text one of them needs or None, pattern, mask): an ID card 17 and a
# check character, a mobile 11; every landline holds a 0 (its area code, or 0086) or writes +86
_NUMBER_RULES = ((17, None, _ID_CARD, _mask_id_card), (11, None, _MOBILE, _mask_mobile),
                 (10, re.compile(r"0|\+86"), _LANDLINE, _mask_landline))
_HOUSE_MARKER = re.compile("[号栋幢单元室层楼弄]")  # one C scan; the house-number rule needs one of these


def mask_free_text(text: str | None) -> str | None:
    """Free text typed by a person with phone numbers, ID-card numbers, e-mail addresses and house
    numbers masked (the rule is in this module's docstring); other text unchanged, '' and None as given."""
    if not text:
        return text
    plain = text.__class__ is str  # anything else fails as it always did
    digits = sum(map(str.isdigit, text)) if plain else sum(ch.isdigit() for ch in text)
    has_at = "@" in text
    if not digits and not has_at:
        return text  # the common case costs one pass over the text
    folded = text if plain and _FOLDABLE.search(text) is None else text.translate(_FOLD)
    if has_at:
        folded, text = _sub(_EMAIL, _mask_email, folded, text)
    if digits >= 10:  # every phone and ID card this recognises has at least 10 digits
        for least, needs, pattern, mask in _NUMBER_RULES:
            if digits >= least and (needs is None or needs.search(folded) is not None):
                folded, text = _sub(pattern, mask, folded, text)
    if _HOUSE_MARKER.search(folded) is not None:
        folded, text = _sub(_HOUSE_NUMBER, _star_digits, folded, text)
    return text
