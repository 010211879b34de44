"""Request and push signatures against values worked out by hand from the fact sheet's formulas."""
import hashlib
import hmac
from pathlib import Path

import pytest

from ..signing import param_json, sign
from ..webhooks import sign_push

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
APP_KEY, SECRET = "7300000000000000001", "dd_demo_secret_ab12"


def test_the_worked_example_of_the_fact_sheet():
    text = param_json({"shop_order_id": "6932187654321098765"})
    assert text == '{"shop_order_id":"6932187654321098765"}'
    # to_sign = secret + "app_key…method…param_json…timestamp…v2" + secret, spelled out by hand
    to_sign = ('dd_demo_secret_ab12app_key7300000000000000001methodorder.orderDetailparam_json'
               '{"shop_order_id":"6932187654321098765"}timestamp1710728100v2dd_demo_secret_ab12')
    assert hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest() == \
        "97d46c1ea73c622dac671e9cffbd1b5a0fe84a2e0393ebe9c2e6a62298f1df76"
    assert sign(APP_KEY, SECRET, "order.orderDetail", text, 1710728100) == \
        "97d46c1ea73c622dac671e9cffbd1b5a0fe84a2e0393ebe9c2e6a62298f1df76"
    assert sign(APP_KEY, SECRET, "order.orderDetail", text, "1710728100", "md5") == \
        "babe70f4b571aac713ff0a9afb491d65"


def test_param_json_is_sorted_compact_and_unescaped():
    text = param_json({"size": 100, "page": 0, "order_asc": False, "combine_status": [{"order_status": "2"}],
                       "buyer_words": "周末<送>&到"})
    assert text == ('{"buyer_words":"周末<送>&到","combine_status":[{"order_status":"2"}],"order_asc":false,'
                    '"page":0,"size":100}')


def test_every_signed_field_counts_and_the_token_does_not():
    base = sign(APP_KEY, SECRET, "order.searchList", "{}", 1710728100)
    assert sign(APP_KEY, SECRET, "order.searchList", "{}", 1710728101) != base
    assert sign(APP_KEY, SECRET, "order.orderDetail", "{}", 1710728100) != base
    assert sign(APP_KEY, SECRET, "order.searchList", "{ }", 1710728100) != base  # the body's exact text
    assert sign("7300000000000000002", SECRET, "order.searchList", "{}", 1710728100) != base
    with pytest.raises(ValueError):
        sign(APP_KEY, SECRET, "order.searchList", "{}", 1710728100, "sha1")


def test_the_recorded_push_carries_the_event_sign_of_md5_app_key_body_secret():
    body = (SAMPLES / "push_trade_paid.body.json").read_bytes()
    header = next(line.split(":", 1)[1].strip() for line in (SAMPLES / "push_trade_paid.http").read_text().splitlines()
                  if line.startswith("event-sign:"))
    assert header == "8dfa7b2b4fbe216121548d3a2e31116e"
    assert hashlib.md5(APP_KEY.encode() + body + SECRET.encode()).hexdigest() == header
    assert sign_push(APP_KEY, body, SECRET) == header
