"""mask_phone: plain numbers, platforms' own masks and anything else give the same masks by one rule."""
from hypothesis import given
from hypothesis import strategies as st

from schemas.canonical import mask_phone


def _by_the_rule(phone: str) -> str:
    """The rule as the docstring says it: digits and stars kept, +86 dropped, first 3 and last 4 shown."""
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "*")
    if phone.replace(" ", "").startswith("+86"):
        digits = digits[2:]
    if len(digits) <= 7:
        return "*" * max(len(digits) - 2, 1) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def test_a_platforms_own_mask_stays_as_it_is():
    assert mask_phone("138****5678") == "138****5678"
    assert mask_phone("+86 170****5678") == "170****5678"
    assert mask_phone("13812345678") == "138****5678"


@given(st.text(alphabet="0123456789*+ -１", min_size=1, max_size=16))
def test_every_input_is_masked_by_the_one_rule(phone):
    assert mask_phone(phone) == _by_the_rule(phone)


@given(st.from_regex(r"\A1[3-9][0-9]\*{4}[0-9]{4}\Z"))
def test_masked_mobiles_take_the_short_way_to_the_same_mask(phone):
    assert mask_phone(phone) == _by_the_rule(phone) == phone
