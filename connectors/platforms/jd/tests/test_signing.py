"""JOS signing against the worked example of jd.md §2, computed by hand from the sheet's formula."""
import hashlib

from ..signing import PARAM_JSON, canonical_string, param_json, sign

SECRET = "jd_demo_secret_77aa"
BUSINESS = '{"order_id":"298765432101","optional_fields":"orderId,orderState"}'
PARAMS = {"method": "jingdong.pop.order.get", "app_key": "A1B2C3D4E5F60718", "access_token": "jd_tok_demo_001",
          "timestamp": "2024-03-18 10:15:00", "v": "2.0", PARAM_JSON: BUSINESS}
# the sheet's string to hash: secret, then name+value sorted by name (360buy_param_json first), then secret
TO_HASH = ('jd_demo_secret_77aa360buy_param_json{"order_id":"298765432101","optional_fields":"orderId,orderState"}'
           "access_tokenjd_tok_demo_001app_keyA1B2C3D4E5F60718methodjingdong.pop.order.get"
           "timestamp2024-03-18 10:15:00v2.0jd_demo_secret_77aa")


def test_string_to_hash_is_the_sheets():
    assert SECRET + canonical_string(PARAMS) + SECRET == TO_HASH


def test_worked_example_signature():
    assert sign(PARAMS, SECRET) == "AAF98E57D77DF51AD3EE76CA9A1BA0C6"  # the value printed in jd.md §2
    assert hashlib.md5(TO_HASH.encode()).hexdigest().upper() == "AAF98E57D77DF51AD3EE76CA9A1BA0C6"


def test_sign_and_empty_values_are_left_out():
    noisy = {**PARAMS, "sign": "WHATEVER", "format": "", "sign_method": None}
    assert sign(noisy, SECRET) == "AAF98E57D77DF51AD3EE76CA9A1BA0C6"


def test_any_change_changes_the_signature():
    assert sign({**PARAMS, "timestamp": "2024-03-18 10:15:01"}, SECRET) != "AAF98E57D77DF51AD3EE76CA9A1BA0C6"
    assert sign(PARAMS, SECRET + "x") != "AAF98E57D77DF51AD3EE76CA9A1BA0C6"


def test_business_params_are_one_compact_json_string_of_strings():
    assert param_json({"order_id": "298765432101", "optional_fields": "orderId,orderState"}) == BUSINESS
    assert param_json({"page": 2, "page_size": 100, "sortType": 1, "skip": None}) == \
        '{"page":"2","page_size":"100","sortType":"1"}'
    assert param_json({"order_state": "等待出库"}) == '{"order_state":"等待出库"}'
