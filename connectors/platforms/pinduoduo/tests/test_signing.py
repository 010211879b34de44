"""PDD POP signing against the worked example of pinduoduo.md §2 (string and hash written out by hand)."""
import hashlib

from ..signing import sign, string_to_sign

SECRET = "pdd_demo_secret_c0ffee"
PARAMS = {"type": "pdd.order.information.get", "client_id": "a1b2c3d4e5f6a7b8", "access_token": "pdd_tok_demo_001",
          "timestamp": "1710728100", "data_type": "JSON", "order_sn": "240318-512347896540213"}
# the sheet's string: names sorted (access_token, client_id, data_type, order_sn, timestamp, type), name+value,
# the secret on both sides
TO_HASH = ("pdd_demo_secret_c0ffeeaccess_tokenpdd_tok_demo_001client_ida1b2c3d4e5f6a7b8data_typeJSON"
           "order_sn240318-512347896540213timestamp1710728100typepdd.order.information.getpdd_demo_secret_c0ffee")


def test_string_to_sign_is_the_sheets():
    assert string_to_sign(PARAMS, SECRET) == TO_HASH


def test_worked_example():
    assert sign(PARAMS, SECRET) == "B2203E0274B838290AF13C6F751E1A93"  # the sheet's value
    assert sign(PARAMS, SECRET) == hashlib.md5(TO_HASH.encode()).hexdigest().upper()


def test_the_sign_parameter_itself_is_left_out():
    assert sign({**PARAMS, "sign": "B2203E0274B838290AF13C6F751E1A93"}, SECRET) == "B2203E0274B838290AF13C6F751E1A93"


def test_every_parameter_counts():
    assert sign({**PARAMS, "order_sn": "240318-512347896540214"}, SECRET) != "B2203E0274B838290AF13C6F751E1A93"
    assert sign(PARAMS, SECRET + "x") != "B2203E0274B838290AF13C6F751E1A93"
