"""TOP signing against the worked example of taobao.md §2."""
import pytest

from ..signing import canonical_string, sign

SECRET = "tb_demo_secret_9f8e"
PARAMS = {
    "method": "taobao.trade.fullinfo.get", "app_key": "12345678", "session": "6100a1b2c3d4e5f",
    "timestamp": "2024-03-18 10:15:00", "format": "json", "v": "2.0", "sign_method": "md5",
    "fields": "tid,status,payment", "tid": "2841736650118523691",
}


def test_string_to_hash():
    assert SECRET + canonical_string(PARAMS) + SECRET == (
        "tb_demo_secret_9f8eapp_key12345678fieldstid,status,paymentformatjsonmethodtaobao.trade.fullinfo.get"
        "session6100a1b2c3d4e5fsign_methodmd5tid2841736650118523691timestamp2024-03-18 10:15:00v2.0"
        "tb_demo_secret_9f8e")


@pytest.mark.parametrize("method, expected", [
    ("md5", "639E4EB48391AB4D93AF8424B66AB227"),
    ("hmac", "CA329B44D7C5BC4DABA13D2FC9562F9B"),
    ("hmac-sha256", "30516B7296915F61AA70716B7253ED0629EE7A3AE9F98926D8A73DA9AD442AC5"),
])
def test_worked_example(method, expected):
    assert sign(PARAMS, SECRET, method) == expected


def test_sign_and_empty_values_are_ignored():
    noisy = {**PARAMS, "sign": "WHATEVER", "partner_id": "", "simplify": None}
    assert sign(noisy, SECRET, "md5") == "639E4EB48391AB4D93AF8424B66AB227"


def test_unknown_method():
    with pytest.raises(ValueError):
        sign(PARAMS, SECRET, "sha1")
