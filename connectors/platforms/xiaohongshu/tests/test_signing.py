"""Request and push signatures against values worked out by hand from the fact sheet's formula."""
import hashlib

from ..signing import push_sign, same, sign
from ..webhooks import authenticate, signed_headers


def test_the_sheets_worked_example():
    # xiaohongshu.md §2: md5("order.getOrderDetail?appId=xhs_demo_app_01&timestamp=1710728100&version=2.0"
    #                        + "xhs_demo_secret_e7")
    assert sign("order.getOrderDetail", "xhs_demo_app_01", "1710728100", "xhs_demo_secret_e7") == \
        "04fcbe22b370eb164b49f743a89ec74a"


def test_another_method_by_hand():
    # the string to hash, written out: method "?" appId= & timestamp= & version= then the secret, no separator
    text = "order.getOrderList?appId=xhs_demo_app_01&timestamp=1735660800&version=2.0xhs_demo_secret_e7"
    assert sign("order.getOrderList", "xhs_demo_app_01", "1735660800", "xhs_demo_secret_e7") == \
        hashlib.md5(text.encode()).hexdigest() == "a28c45d9ff724b1e6cfe985f26f03dce"


def test_only_the_four_values_are_signed():
    # changing the token or the business parameters does not change the sign (the gateway checks freshness)
    assert sign("order.getOrderList", "a", "1", "s") == sign("order.getOrderList", "a", "1", "s")
    assert sign("order.getOrderList", "a", "1", "s") != sign("order.getOrderDetail", "a", "1", "s")
    assert sign("m", "a", "1", "s") != sign("m", "a", "2", "s") != sign("m", "a", "2", "t")


def test_push_sign_covers_the_body_and_the_seller():
    body = b'[{"msgTag":"msg_fulfillment_status_change","sellerId":"shop-1","data":"{}"}]'
    by_hand = hashlib.md5(b"push?appKey=app&sellerId=shop-1&timestamp=1710728100" + body + b"sec").hexdigest()
    assert push_sign("app", "shop-1", "1710728100", body, "sec") == by_hand
    assert push_sign("app", "shop-1", "1710728100", body + b" ", "sec") != by_hand
    assert push_sign("app", "shop-2", "1710728100", body, "sec") != by_hand
    assert same(by_hand, by_hand.upper()) and not same(by_hand, None) and not same(by_hand, by_hand[:-1])


def test_pushes_verify_only_fresh_signed_bytes():
    body = b'[{"msgTag":"msg_after_sale_create","sellerId":"shop-1","data":"{}"}]'
    secret_of = {"shop-1": "sec"}.get
    headers = signed_headers(body, "shop-1", "sec", app_key="app", timestamp=1710728100)
    push = authenticate(headers, body, secret_of, now_s=1710728100 + 30)
    assert push is not None and push.shop_id == "shop-1"
    assert authenticate(headers, body, secret_of, now_s=1710728100 + 3600) is None  # replayed an hour later
    assert authenticate(headers, body.replace(b"shop-1", b"shop-9"), secret_of, now_s=1710728100) is None
    assert authenticate({**headers, "seller-id": "shop-2"}, body, {"shop-2": "sec"}.get, now_s=1710728100) is None
    assert authenticate({**headers, "seller-id": "unknown"}, body, secret_of, now_s=1710728100) is None
    assert authenticate({k: v for k, v in headers.items() if k != "sign"}, body, secret_of, now_s=1710728100) is None
