"""The fast mobile verdict gives phonenumbers' answer on every number it answers for.

phonenumbers (parse + number_type) is the reference. The corpora: generated strings (hypothesis) shaped
like phone numbers and their usual slips, the example number of every region and type in its written
forms with one digit dropped, added or changed, and every number-like string the platform simulators
render. A fast answer of None hands the number to phonenumbers, so it is always allowed; the tests
also make sure the fast path answers the ordinary shapes, or they would prove nothing.
"""
from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from connectors import platforms
from connectors.simkit.server import WORLD
from schemas.phone_types import mobile_verdict
from schemas.verdicts import _CN_MOBILE_MASKS, phone_verdict

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_REGIONS = sorted(SUPPORTED_REGIONS)
_CALLING_CODES = sorted(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)
_SEPARATORS = str.maketrans("", "", " -()\u3000")  # what phone_verdict removes before judging


def reference(text: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE


def verdict_before(phone, country):
    """phone_verdict as it was before the fast path: phonenumbers judges every plain number."""
    if phone is None:
        return None
    text = phone.strip().translate(_SEPARATORS)
    if not text:
        return None
    if "*" in text:
        text = text.removeprefix("+86")
        return any(mask.fullmatch(text) for mask in _CN_MOBILE_MASKS)
    region = country.upper() if country else None
    if region is None and not text.startswith("+"):
        return None
    return reference(text, region)


def check(text: str, region: str | None) -> bool | None:
    fast = mobile_verdict(text, region)
    assert fast is None or fast is reference(text, region), (text, region, fast)
    return fast


def cleaned(text: str) -> str:
    return text.strip().translate(_SEPARATORS)


# --- generated ------------------------------------------------------------------------------------------

_PREFIXES = ["", "+", "++", "+0", "0", "00", "000", "011", "810", "8", "1", "12", "179", "1790", "1201200",
             "86", "+86", "+1", "+44", "+7", "+39", "+800", "+882", "+979", "+1242", "+1684", "\uff0b", "tel:+"]
_digits = st.text(alphabet="0123456789", min_size=0, max_size=19)
_number = st.one_of(
    st.builds(lambda p, d: p + d, st.sampled_from(_PREFIXES), _digits),
    st.builds(lambda p, c, d: p + c + d, st.sampled_from(["+", "", "00", "011"]), st.sampled_from(_CALLING_CODES),
              _digits),
    st.builds(lambda head, d: head + d, st.sampled_from(["13", "138", "170", "1700", "199", "021", "02112",
                                                          "212555", "1212555", "+1212555", "07911", "+447"]),
              st.text(alphabet="0123456789", min_size=4, max_size=9)),
    st.text(alphabet="0123456789+*#x-() \uff11\u0661ab", max_size=20),
)


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_number, st.one_of(st.none(), st.sampled_from(_REGIONS), st.sampled_from(["CN", "US", "GB", "ZZ", "001"])))
def test_generated_numbers_get_phonenumbers_answer(text, region):
    check(text, region)
    check(cleaned(text), region)


_masked = st.builds(lambda head, stars, tail: head + "*" * stars + tail, st.sampled_from(["", "138", "1387677", "+86138",
                                                                                      "123", " 138"]),
                    st.integers(0, 8), st.text(alphabet="0123456789 ", max_size=5))


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_number, _masked, st.none()), st.one_of(st.none(), st.sampled_from(["CN", "cn", "US", "us", "GB", ""])))
def test_phone_verdict_is_what_it_was(phone, country):
    assert phone_verdict(phone, country) is verdict_before(phone, country)


# --- every region's example numbers, written as people write them, with slips ----------------------------

def _examples():
    for region in _REGIONS:
        for kind in PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield region, number
    for code in COUNTRY_CODE_TO_REGION_CODE:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            yield None, number


def _written(number) -> set[str]:
    forms = {phonenumbers.format_number(number, style) for style in
             (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL)}
    nsn = phonenumbers.national_significant_number(number)
    code = str(number.country_code)
    for slip in (nsn[:-1], nsn + "5", nsn + "05", "9" + nsn[1:], nsn[:1] + "0" + nsn[2:], "0" + nsn, code + nsn):
        forms |= {slip, "+" + code + slip}
    return {cleaned(form) for form in forms}


def test_example_numbers_of_every_region_get_phonenumbers_answer():
    answered = total = 0
    for region, number in _examples():
        for text in _written(number):
            for as_region in {region, "CN", "US", None}:
                total += 1
                answered += check(text, as_region) is not None
    assert total > 10_000
    assert answered > total * 0.6, f"the fast path answered only {answered} of {total}"


# --- what the simulators render ----------------------------------------------------------------------

_NUMBERISH = re.compile(r"\+?\d[\d \-()]{1,24}\d")


def _simulator_numbers() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per simulated country: the receivers' phones, and every number-like string of the rendered pages."""
    receivers: dict[str, set[str]] = {}
    found: dict[str, set[str]] = {}
    for n, code in enumerate(platforms.codes()):
        world = platforms.module(code, "simulator").create_app()[WORLD]
        world.rng.seed(n)
        shop = f"corpus-{code}"
        orders = world.create_orders(shop, 40, 1_767_225_600_000)
        orders += world.create_orders(shop, 2, 1_767_225_600_000, defect="invalid_phone")
        render = platforms.module(code, "render")
        pages = [render.page_body(orders, plaintext) for plaintext in (True, False)]
        country = orders[0].country
        receivers.setdefault(country, set()).update(order.receiver_phone for order in orders)
        numbers = found.setdefault(country, set())
        for page in pages:
            for token in _NUMBERISH.findall(page.decode("utf-8")):
                numbers |= {token, token.split("-")[0]}
    return receivers, found


def test_simulator_numbers_get_phonenumbers_answer():
    receivers, found = _simulator_numbers()
    assert set(found) == {"CN", "US"}
    for country, numbers in found.items():
        numbers = numbers | receivers[country]
        for number in numbers:
            check(cleaned(number), country)
            check(cleaned(number), None)


def test_simulated_receivers_are_answered_fast_and_as_before():
    """Every simulated receiver's phone takes the fast path, and phone_verdict says what phonenumbers says."""
    receivers, _ = _simulator_numbers()
    for country, phones in receivers.items():
        phones = {phone for phone in phones if phone not in ("110", "+1 911")}  # the invalid_phone defect
        assert len(phones) > 20
        for phone in phones:
            assert mobile_verdict(cleaned(phone), country) is not None, phone
            assert phone_verdict(phone, country) is reference(cleaned(phone), country), phone


@pytest.mark.parametrize("text, region, expected", [
    ("13812345678", "CN", True), ("+8613812345678", None, True), ("+12125550143", "US", True),
    ("+447911123456", "GB", True), ("+442071234567", "GB", False), ("02112345678", "CN", None),
    ("+1911", "US", False), ("+86", "CN", None), ("008613812345678", "CN", None), ("8613812345678", "CN", None),
    ("12125550143", "US", None), ("+0123456", "CN", None), ("１３８１２３４５６７８", "CN", None),
])
def test_fast_answers_and_hand_overs(text, region, expected):
    assert check(text, region) is expected
