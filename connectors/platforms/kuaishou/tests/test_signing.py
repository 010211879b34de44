"""Kuaishou request signing against the worked example of kuaishou.md §2 and hand-computed values."""
import hashlib
import hmac

import pytest

from ..signing import digest, sign, string_to_sign

SECRET = "ks_demo_signsecret_55"
PARAMS = {"access_token": "ks_tok_demo_001", "appkey": "ks_demo_appkey_001", "method": "open.order.detail",
          "param": '{"oid":2414900123456789}', "signMethod": "MD5", "timestamp": "1710728100000", "version": "1"}
SHEET_STRING = ("access_token=ks_tok_demo_001&appkey=ks_demo_appkey_001&method=open.order.detail"
                '&param={"oid":2414900123456789}&signMethod=MD5&timestamp=1710728100000&version=1'
                "&signSecret=ks_demo_signsecret_55")


def test_the_string_to_sign_is_the_sheets():
    assert string_to_sign(PARAMS, SECRET) == SHEET_STRING
    # `sign` itself and parameters outside the signed set take no part
    assert string_to_sign({**PARAMS, "sign": "x", "extra": "y"}, SECRET) == SHEET_STRING


def test_worked_example_md5():
    assert sign(PARAMS, SECRET) == "a18fc4c1cc433d6d76513c71975c3d97"


def test_worked_example_hmac_sha256_over_the_same_string():
    assert digest(SHEET_STRING, SECRET, "HMAC_SHA256") == \
        "04e9a9654b8dcc66add6e5679d956cbbb3a72c9d639c552681d6e9452943a38b"


def test_hmac_request_signs_its_own_sign_method():
    """A request signed with HMAC_SHA256 carries signMethod=HMAC_SHA256 in the signed string: the value
    below was computed from the sheet's formula with hashlib/hmac directly."""
    text = SHEET_STRING.replace("signMethod=MD5", "signMethod=HMAC_SHA256")
    by_hand = hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert by_hand == "12fe8397b072c621130f28e8e920fbd59b2a48b74f372cfb329f91105827deb4"
    assert sign({**PARAMS, "signMethod": "HMAC_SHA256"}, SECRET) == by_hand


def test_the_secret_and_every_value_matter():
    assert sign(PARAMS, "other_secret") != sign(PARAMS, SECRET)
    assert sign({**PARAMS, "timestamp": "1710728100001"}, SECRET) != sign(PARAMS, SECRET)
    assert sign({**PARAMS, "param": '{"oid": 2414900123456789}'}, SECRET) != sign(PARAMS, SECRET)


def test_unknown_sign_method():
    with pytest.raises(ValueError, match="unsupported signMethod"):
        sign({**PARAMS, "signMethod": "SHA1"}, SECRET)
