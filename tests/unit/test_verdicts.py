"""Phone and street verdicts computed by the mappings while the plaintext is in hand."""
import pytest

from schemas.verdicts import phone_verdict, street_vague


@pytest.mark.parametrize("phone, country, expected", [
    ("13812345678", "CN", True),
    ("+86 138 1234 5678", "CN", True),
    ("+8613812345678", None, True),
    ("12345678901", "CN", False),          # no such carrier prefix
    ("1381234567", "CN", False),           # one digit short
    ("02112345678", "CN", False),          # Shanghai landline: not a mobile
    ("+12125551234", "US", True),          # US numbers are FIXED_LINE_OR_MOBILE
    ("(212) 555-1234", "US", True),
    ("555-1234", "US", False),
    ("+447911123456", "GB", True),
    ("+442071234567", "GB", False),        # London landline
    ("not a phone", "CN", False),
    ("13812345678", None, None),           # no country, no +: cannot tell
    (None, "CN", None),
    ("  ", "CN", None),
])
def test_plain_numbers(phone, country, expected):
    assert phone_verdict(phone, country) is expected


@pytest.mark.parametrize("mask, expected", [
    ("138****5678", True), ("*******1111", True), ("+86138****5678", True),
    ("123****5678", False), ("138***5678", False), ("****5678", False), ("1********78", False),
])
def test_masked_numbers_are_judged_by_shape(mask, expected):
    assert phone_verdict(mask, "CN") is expected


@pytest.mark.parametrize("street", [
    "文三路477号华星科技大厦", "文新街道文*路***号******", "建国路88号院3号楼", "幸福村5组", "阳光小区3栋2单元501",
    "科技园南区高新南七道12号", "中山北路30号",
])
def test_deliverable_chinese_streets(street):
    assert street_vague(street, "CN") is False


@pytest.mark.parametrize("street", ["附近", "学校附近", "不详", "随便填", "地址不详请电话联系", "家里", "市中心那边吧",
                                    "人民公园对面"])
def test_vague_chinese_streets(street):
    assert street_vague(street, "CN") is True


def test_near_something_with_a_number_is_fine():
    assert street_vague("人民公园附近8号楼", "CN") is False


def test_other_countries_need_a_house_number():
    assert street_vague("350 5th Ave", "US") is False
    assert street_vague("Main Street", "US") is True
    assert street_vague("Flat 2, 10 Downing St", "GB") is False


def test_no_street_is_unknown():
    assert street_vague(None, "CN") is None
    assert street_vague("   ", "US") is None


def test_chinese_text_without_country_is_judged_as_chinese():
    assert street_vague("随便", None) is True
