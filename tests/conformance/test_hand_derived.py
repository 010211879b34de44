"""Two recorded samples whose canonical orders were worked out by hand from the payload and the fact
sheets (docs of the platforms), not recorded from the mapping: a mapping bug cannot hide in them.

Left out of the hand derivation: `receiver.phone_valid` / `receiver.address_vague`, judgements of
the phone-number and street rules (tests/unit/test_verdicts.py), asserted separately here.
"""
from datetime import datetime
from pathlib import Path

from connectors import platforms

ROOT = Path(__file__).parents[2] / "connectors/platforms"


def _utc_ms(text: str) -> int:
    """An ISO-8601 time with its offset -> epoch ms (independent of the mapping's converters)."""
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def _without_verdicts(order: dict) -> dict:
    receiver = {k: v for k, v in order["receiver"].items() if k not in ("phone_valid", "address_vague")}
    return dict(order, receiver=receiver)


def test_taobao_trade_fullinfo_get_by_hand():
    body = (ROOT / "taobao/samples/trade_fullinfo_get.json").read_bytes()
    (got,) = platforms.map_payload("taobao", body, "json", "tonglu-home")
    expected = {
        "order_id": "taobao:tonglu-home:2841736650118523691",  # "{platform}:{shop}:{tid_str}"
        "platform": "taobao", "shop_id": "tonglu-home", "external_id": "2841736650118523691",
        "status": "PAID",                   # taobao.md §5: WAIT_SELLER_SEND_GOODS -> PAID
        "refund_status": "NONE",            # both sub-orders NO_REFUND -> NONE
        "platform_status": "WAIT_SELLER_SEND_GOODS",
        # TOP times are Beijing (UTC+8): 2024-03-18 09:58:12 +08:00 = 01:58:12 UTC
        "created_at": _utc_ms("2024-03-18T01:58:12+00:00"),
        "paid_at": _utc_ms("2024-03-18T01:58:40+00:00"),      # pay_time 09:58:40
        "updated_at": _utc_ms("2024-03-18T01:58:41+00:00"),   # modified 09:58:41
        "shipped_at": None, "delivered_at": None,             # no consign_time, no invoice_no
        "currency": "CNY",
        "items_total": 16980,      # Σ num × price = 2 × "39.90" + 1 × "90.00" = 7980 + 9000 fen
        "shipping_fee": 0,         # post_fee "0.00"
        "discount_total": 1200,    # discount_fee "12.00" − adjust_fee "0.00"
        "tax_total": 0,
        "paid_total": 15780,       # payment "157.80"; 16980 + 0 − 1200 + 0 = 15780
        "buyer": {"id": "AAGvBxk2AAE3fEnKPdxwRr4w",  # buyer_open_uid
                  "nick_masked": None,               # buyer_nick "" (hidden by TOP)
                  "message": "请尽快发货"},            # no digits: nothing to mask
        "receiver": {
            "name_masked": "张**",          # TOP's own mask kept: 3 characters -> first + "**"
            "phone_masked": "*******1111",  # TOP's own mobile mask kept
            "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
            # street = receiver_town + receiver_address = "文新街道" + "文**路***号" (4 + 8 chars): first 2 kept
            "address_masked": "文新" + "*" * 10,
            "postal_code": "310012",
            "secure_token": "1aQnJ0dpbOvg7bVRdgs3RMAXpOYHb0LnUHJWWfr5AbicsVcqTAFF2mrtsib8yVyu8K2fC",  # oaid
        },
        "lines": [
            # line total = the sub-order payment; discount = its discount_fee
            {"line_id": "2841736650119523691", "sku_id": "5012345678901", "merchant_sku": "TL-MUG-350-WHT",
             "title": "同路陶瓷马克杯 350ml", "quantity": 2, "unit_price": 3990, "total": 7380, "discount": 600,
             "refund_status": "NONE"},
            {"line_id": "2841736650120523691", "sku_id": "5012345679902", "merchant_sku": "TL-TOWEL-L-GRY",
             "title": "同路纯棉浴巾 大号", "quantity": 1, "unit_price": 9000, "total": 8400, "discount": 600,
             "refund_status": "NONE"},
        ],
        "shipments": [],
        "version": 0,
        "refunded_total": 0,
    }
    assert _without_verdicts(got) == expected
    assert got["receiver"]["phone_valid"] is True      # a TOP-masked mainland mobile
    assert got["receiver"]["address_vague"] is False   # road + number markers present


def test_shopify_webhook_orders_paid_by_hand():
    body = (ROOT / "shopify/samples/webhook_orders_paid.body.json").read_bytes()
    (got,) = platforms.map_payload("shopify", body, "json", "tonglu-demo")
    expected = {
        "order_id": "shopify:tonglu-demo:6120419004411", "platform": "shopify", "shop_id": "tonglu-demo",
        "external_id": "6120419004411",     # `id`, not the display name "#1042"
        "status": "PAID",                   # shopify.md: financial_status paid, fulfillment_status null
        "refund_status": "NONE",            # refunds []
        "platform_status": "paid/unfulfilled",
        # Shopify times carry the shop's offset: 11:05:10 −04:00 = 15:05:10 UTC
        "created_at": _utc_ms("2024-05-28T15:05:10+00:00"),
        "paid_at": _utc_ms("2024-05-28T15:05:09+00:00"),      # processed_at 11:05:09 −04:00
        "updated_at": _utc_ms("2024-05-28T15:05:12+00:00"),
        "shipped_at": None, "delivered_at": None,             # fulfillments []
        "currency": "USD",
        "items_total": 3600,       # 2 × "18.00" = 36.00 USD = 3600 cents
        "shipping_fee": 0,         # shipping_lines[0].price "0.00"
        "discount_total": 0,       # total_discounts "0.00"
        "tax_total": 0,            # total_tax "0.00"
        "paid_total": 3600,        # total_price "36.00"; 3600 + 0 − 0 + 0 = 3600
        "buyer": {"id": "7300000002",              # customer.id
                  "nick_masked": "l***@example.com",  # e-mail leo.park@example.com: first letter + domain
                  "message": "Gift wrap please"},     # note; no digits or e-mail: unchanged
        "receiver": {
            "name_masked": "L***",           # "Leo Park": first character + "***"
            "phone_masked": "121****0143",   # +12125550143: first 3 and last 4 digits
            "country": "US", "province": "CA", "city": "San Francisco", "district": None,
            "address_masked": "1 *********",  # "1 Market St" (11 chars): first 2 kept
            "postal_code": "94105", "secure_token": None,
        },
        "lines": [{"line_id": "15001120001", "sku_id": "44100000011",  # line id; variant_id
                   "merchant_sku": "TL-MUG-BLK", "title": "Ceramic Mug - Black",  # sku; line `name`
                   "quantity": 2, "unit_price": 1800, "total": 3600, "discount": 0, "refund_status": "NONE"}],
        "shipments": [],
        "version": 0,
        "refunded_total": 0,
    }
    assert _without_verdicts(got) == expected
    assert got["receiver"]["address_vague"] is False
