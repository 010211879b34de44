"""The PDD mapping on real-shaped answers and their edge cases; expected values worked out by hand."""
import copy
import json
from datetime import datetime
from pathlib import Path

import pytest

from schemas.canonical import MappingError
from schemas.model import Order

from ..mapping import map_payload

SAMPLES = Path(__file__).parents[1] / "samples"
SHOP = "tonglu-pinduoduo-home"
DETAIL = json.loads((SAMPLES / "order_information_get.json").read_text(encoding="utf-8"))
BASE = DETAIL["order_info_get_response"]["order_info"]


def _utc_ms(text: str) -> int:
    """An ISO-8601 time with its offset -> epoch ms (independent of the mapping's converters)."""
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def _order(**changes) -> dict:
    order = copy.deepcopy(BASE)
    order.update(changes)
    return order


def _body(*orders, raw: str | None = None) -> bytes:
    if raw is not None:
        return raw.encode()
    return json.dumps({"order_sn_increment_get_response": {"total_count": len(orders), "has_next": False,
                                                           "order_sn_list": list(orders), "request_id": "t"}},
                      ensure_ascii=False).encode()


def _one(order: dict) -> dict:
    (got,) = map_payload(_body(order), "json", SHOP)
    Order.model_validate(got)
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]
    return got


def _refused(body: bytes) -> str:
    with pytest.raises(MappingError) as refused:
        map_payload(body, "json", SHOP)
    message = str(refused.value)
    assert "\n" not in message and message
    return message


def test_order_information_get_by_hand():
    (got,) = map_payload(json.dumps(DETAIL, ensure_ascii=False).encode(), "json", SHOP)
    name_c, phone_c, street_c = BASE["receiver_name"], BASE["receiver_phone"], BASE["receiver_address"]
    assert got == {
        "order_id": "pinduoduo:tonglu-pinduoduo-home:240318-512347896540213",  # platform:shop:order_sn
        "platform": "pinduoduo", "shop_id": SHOP, "external_id": "240318-512347896540213",  # dash kept
        "status": "PAID",  # order_status 1 待发货, confirm 1, group 1, paid
        "refund_status": "NONE",  # refund_status 1, after_sales_status 0
        "platform_status": "order_status=1",
        "created_at": _utc_ms("2024-03-18T02:02:09+00:00"),  # 10:02:09 Beijing
        "paid_at": _utc_ms("2024-03-18T02:02:11+00:00"),
        "updated_at": _utc_ms("2024-03-18T02:02:12+00:00"),
        "shipped_at": None, "delivered_at": None,  # shipping_time "", receive_time ""
        "currency": "CNY",
        "items_total": 16980,  # 2 × 39.9 + 1 × 90.0 = 169.80 yuan
        "shipping_fee": 0,  # postage 0.0
        "discount_total": 1200,  # discount_amount 12.0 (seller_discount); goods_amount 169.8 = Σ: no 改价
        "tax_total": 0,
        "paid_total": 15780,  # pay_amount 157.8 = 169.8 − 12.0 + 0
        "buyer": {"id": None, "nick_masked": None, "message": None},  # PDD gives no buyer; buyer_memo ""
        "receiver": {"name_masked": "林*坤", "phone_masked": "138****1111", "country": "CN",  # 中国
                     "province": "浙江省", "city": "杭州市", "district": "西湖区",  # `town` is the district
                     "address_masked": "文新街道文**路***号", "postal_code": None,
                     "secure_token": f"{name_c},{phone_c},{street_c}",  # the ciphertexts, for decrypt
                     "phone_valid": True, "address_vague": False},  # judged on the masks
        "lines": [
            {"line_id": "240318-512347896540213-1", "sku_id": "1342567890123", "merchant_sku": "TL-MUG-350-WHT",
             "title": "同路陶瓷马克杯 350ml 办公室水杯", "quantity": 2, "unit_price": 3990, "total": 7980,
             "discount": 0, "refund_status": "NONE"},
            {"line_id": "240318-512347896540213-2", "sku_id": "1342567890456", "merchant_sku": "TL-TOWEL-L-GRY",
             "title": "同路纯棉浴巾 大号加厚", "quantity": 1, "unit_price": 9000, "total": 9000,
             "discount": 0, "refund_status": "NONE"}],
        "shipments": [],
        "version": 0,
        "refunded_total": 0,
    }


@pytest.mark.parametrize("text, utc", [
    ("2024-03-18 00:00:00", "2024-03-17T16:00:00+00:00"),  # Beijing midnight is the previous UTC day
    ("2025-01-01 00:00:00", "2024-12-31T16:00:00+00:00"),  # new year in Beijing, still the old year in UTC
    ("2024-12-31 23:59:59", "2024-12-31T15:59:59+00:00"),
    ("2024-03-01 07:59:59", "2024-02-29T23:59:59+00:00"),  # leap day
])
def test_beijing_times_become_utc(text, utc):
    got = _one(_order(created_time=text, pay_time=text, updated_at=text))
    assert got["created_at"] == got["paid_at"] == got["updated_at"] == _utc_ms(utc)


def test_floats_that_break_int_x_100_are_exact():
    assert (int(19.99 * 100), int(0.29 * 100), int(64.35 * 100)) == (1998, 28, 6434)  # the trap
    items = [dict(BASE["item_list"][0], goods_price=19.99, goods_count=3),
             dict(BASE["item_list"][1], goods_price=0.07, goods_count=1)]
    got = _one(_order(item_list=items, goods_amount=60.04, discount_amount=0.29, seller_discount=0.29,
                      postage=4.6, pay_amount=64.35))  # 60.04 − 0.29 + 4.60
    assert [(ln["unit_price"], ln["total"]) for ln in got["lines"]] == [(1999, 5997), (7, 7)]
    assert (got["items_total"], got["discount_total"], got["shipping_fee"], got["paid_total"]) == \
        (6004, 29, 460, 6435)


@pytest.mark.parametrize("value", ["64.35", 64.35, "64.350"])
def test_money_as_string_float_or_int(value):
    got = _one(_order(postage=value, pay_amount=157.8 + 64.35))
    assert got["shipping_fee"] == 6435
    assert _one(_order(postage=64, pay_amount=221.8))["shipping_fee"] == 6400


def test_ids_above_2_53_as_bare_numbers_keep_their_digits():
    raw = json.dumps(_order(item_list=[dict(BASE["item_list"][0], sku_id=1, goods_id=2)]), ensure_ascii=False)
    raw = raw.replace('"order_sn": "240318-512347896540213"', '"order_sn": 18446744073709551617')  # > 2^64
    raw = raw.replace('"sku_id": 1,', '"sku_id": 9007199254740993,')  # 2^53 + 1
    body = ('{"order_info_get_response": {"order_info": ' + raw + ', "request_id": "1"}}').encode()
    (got,) = map_payload(body, "json", SHOP)
    assert got["external_id"] == "18446744073709551617"
    assert got["lines"][0]["sku_id"] == "9007199254740993"
    assert got["lines"][0]["line_id"] == "18446744073709551617-1"
    raw = raw.replace("9007199254740993", "36893488147419103233")  # a sku id beyond 64 bits
    (got,) = map_payload(('{"order_info_get_response": {"order_info": ' + raw + "}}").encode(), "json", SHOP)
    assert got["lines"][0]["sku_id"] == "36893488147419103233"


def test_several_packages_are_several_shipments():
    got = _one(_order(order_status=2, shipping_time="2024-03-18 16:20:00", logistics_id=115,
                      tracking_number="78451236987412", updated_at="2024-03-18 16:20:01",
                      extra_delivery_list=[{"logistics_id": 85, "tracking_number": "SF1400012345678"},
                                           {"logistics_id": 999, "tracking_number": "X1"}]))
    assert (got["status"], got["platform_status"]) == ("SHIPPED", "order_status=2")  # PDD has no partly-shipped
    assert got["shipped_at"] == _utc_ms("2024-03-18T08:20:00+00:00")
    assert got["shipments"] == [
        {"carrier": "中通快递", "tracking_no": "78451236987412", "shipped_at": got["shipped_at"], "line_ids": []},
        {"carrier": "顺丰速运", "tracking_no": "SF1400012345678", "shipped_at": None, "line_ids": []},
        {"carrier": "999", "tracking_no": "X1", "shipped_at": None, "line_ids": []}]  # an unknown id stays


def test_one_package_holds_every_line():
    got = _one(_order(order_status=2, shipping_time="2024-03-18 16:20:00", logistics_id=115, tracking_number="7845"))
    assert got["shipments"][0]["line_ids"] == ["240318-512347896540213-1", "240318-512347896540213-2"]


@pytest.mark.parametrize("fields, status, refund, platform_status", [
    # before shipping: a request, then the refund done (the order ends: nothing is left to ship)
    ({"refund_status": 2, "after_sales_status": 2}, "PAID", "REQUESTED", "order_status=1"),
    ({"refund_status": 4, "after_sales_status": 10}, "CANCELLED", "REFUNDED", "order_status=1+refunded"),
    # after shipping: return-and-refund asked, refused, done
    ({"order_status": 2, "refund_status": 2, "after_sales_status": 3}, "SHIPPED", "REQUESTED", "order_status=2"),
    ({"order_status": 2, "refund_status": 2, "after_sales_status": 6}, "SHIPPED", "REJECTED", "order_status=2"),
    ({"order_status": 3, "refund_status": 4, "after_sales_status": 10}, "CANCELLED", "REFUNDED",
     "order_status=3+refunded"),
    # an exchange returns no money; a closed after-sale is no refund
    ({"order_status": 3, "refund_status": 2, "after_sales_status": 14}, "DELIVERED", "NONE", "order_status=3"),
    ({"refund_status": 1, "after_sales_status": 11}, "PAID", "NONE", "order_status=1"),
    ({"refund_status": 1, "after_sales_status": 9}, "PAID", "REJECTED", "order_status=1"),
    # an after-sales code not in the table: refund_status says it
    ({"refund_status": 3, "after_sales_status": 99}, "PAID", "REQUESTED", "order_status=1"),
])
def test_refunds_before_and_after_shipping(fields, status, refund, platform_status):
    got = _one(_order(**fields))
    assert (got["status"], got["refund_status"], got["platform_status"]) == (status, refund, platform_status)
    assert {line["refund_status"] for line in got["lines"]} == {refund}
    assert got["refunded_total"] == (got["paid_total"] if refund == "REFUNDED" else 0)


@pytest.mark.parametrize("fields, status, platform_status", [
    ({"pay_time": "", "confirm_time": "", "confirm_status": 0, "group_status": 0}, "PENDING_PAYMENT", "unpaid"),
    ({"pay_time": ""}, "PAID", "order_status=1"),  # confirm_time (成交) stands in for a missing pay_time
    ({"confirm_status": 0, "group_status": 0}, "PAID", "group_status=0"),  # 拼团中
    ({"confirm_status": 2}, "CANCELLED", "confirm_status=2"),
    ({"group_status": 2, "confirm_status": 2, "refund_status": 4}, "CANCELLED", "group_status=2"),
    ({"order_status": 3, "receive_time": "2024-03-21 09:00:00"}, "COMPLETED", "order_status=3+received"),
    ({"order_status": 3}, "DELIVERED", "order_status=3"),
    ({"order_status": 7}, "UNKNOWN", "order_status=7"),
])
def test_states(fields, status, platform_status):
    got = _one(_order(**fields))
    assert (got["status"], got["platform_status"]) == (status, platform_status)
    if status == "PENDING_PAYMENT":
        assert got["paid_at"] is None
    if status == "COMPLETED":
        assert got["delivered_at"] == _utc_ms("2024-03-21T01:00:00+00:00")


def test_a_repriced_order_keeps_the_amount_identity():
    # 改价: goods_amount = Σ price × count − change; pay_amount = goods_amount − discount + postage
    got = _one(_order(goods_amount=159.8, order_change_amount=10.0, pay_amount=147.8 + 6.0, postage=6.0))
    assert (got["items_total"], got["discount_total"], got["shipping_fee"], got["paid_total"]) == \
        (16980, 1200 + 1000, 600, 15380)


def test_virtual_numbers_keep_their_extension_masked():
    got = _one(_order(receiver_phone_mask="170****5678-1234"))
    assert got["receiver"]["phone_masked"] == "170****5678-****"
    assert got["receiver"]["phone_valid"] is True  # judged on the number, not its extension
    got = _one(_order(receiver_phone="17012345678-1234", receiver_phone_mask=""))  # an old app's plaintext
    assert got["receiver"]["phone_masked"] == "170****5678-****" and "1234" not in json.dumps(got["receiver"])


def test_plaintext_receivers_are_masked_and_never_kept():
    got = _one(_order(receiver_name="林振坤", receiver_name_mask="", receiver_phone="13811111111",
                      receiver_phone_mask="", receiver_address="文新街道文三路477号", receiver_address_mask=""))
    text = json.dumps(got, ensure_ascii=False)
    for secret in ("林振坤", "13811111111", "文三路477号"):
        assert secret not in text
    assert got["receiver"]["name_masked"] == "林**" and got["receiver"]["phone_masked"] == "138****1111"
    assert got["receiver"]["secure_token"] is None  # only ciphertexts travel as the token
    assert got["receiver"]["phone_valid"] is True and got["receiver"]["address_vague"] is False
    assert _one(_order(receiver_phone="110", receiver_phone_mask=""))["receiver"]["phone_valid"] is False
    # older answers: the phone masked by PDD in receiver_phone itself, first seven digits kept
    old = _one(_order(receiver_phone="1387677****", receiver_phone_mask=""))["receiver"]
    assert (old["phone_masked"], old["phone_valid"], old["secure_token"].count(",")) == ("1387677****", True, 1)


def test_buyer_memo_is_masked_free_text():
    got = _one(_order(buyer_memo="到了打电话 138 1234 5678，放文三路477号门口"))
    assert "1234 5678" not in got["buyer"]["message"] and "477" not in got["buyer"]["message"]


def test_summaries_need_a_detail_call():
    basic = {"order_basic_list_get_response": {"total_count": 1, "has_next": False, "order_list": [
        {"order_sn": "240318-512347896540213", "order_status": 1, "pay_amount": "157.80", "item_list": []}]}}
    assert "pdd.order.information.get" in _refused(json.dumps(basic).encode())
    summary = {k: BASE[k] for k in ("order_sn", "order_status", "refund_status", "updated_at")}
    assert "summary" in _refused(_body(summary)) and "pdd.order.information.get" in _refused(_body(summary))
    assert "only an order number" in _refused(_body("240318-512347896540213"))


def test_a_pmc_message_names_an_order_and_maps_to_nothing():
    assert map_payload((SAMPLES / "pmc_message_trade_confirmed.json").read_bytes(), "json", SHOP) == []


def test_empty_pages_say_so():
    assert map_payload(_body(), "json", SHOP) == []
    assert "does not say the page is empty" in _refused(
        b'{"order_sn_increment_get_response": {"total_count": 3, "has_next": true}}')


@pytest.mark.parametrize("changes, reason", [
    ({"goods_count": "two"}, "goods_count is not an integer"),
    ({"goods_price": True}, "goods_price is not a money amount"),
    ({"goods_price": "abc"}, "not a money amount"),
])
def test_broken_items_are_one_line_errors(changes, reason):
    item = dict(BASE["item_list"][0], **changes)
    assert reason in _refused(_body(_order(item_list=[item])))


@pytest.mark.parametrize("changes, reason", [
    ({"created_time": 1710727329}, "created_time is not a 'yyyy-MM-dd HH:mm:ss' time"),
    ({"updated_at": "2024/03/18 10:02:12"}, "not a Beijing time"),
    ({"item_list": {"goods_id": 1}}, "item_list must be a list"),
    ({"order_sn": None}, "missing required field 'order_sn'"),
    ({"order_sn": 1.5}, "order_sn lost precision"),
    ({"extra_delivery_list": "SF123"}, "extra_delivery_list must be a list"),
])
def test_wrong_shapes_are_one_line_errors(changes, reason):
    assert reason in _refused(_body(_order(**changes)))


def test_errors_and_foreign_bodies_are_refused():
    assert "error_code=10019" in _refused((SAMPLES / "error_access_token_expired.json").read_bytes())
    assert "not a PDD answer" in _refused(b'{"trades_sold_get_response": {}, "x_response": {}}')
    assert "not a PDD answer" in _refused(b"[1, 2]")
    assert "malformed JSON" in _refused(b'{"order_info_get_response": ')
    with pytest.raises(MappingError, match="XML is not supported"):
        map_payload(b"<order_info_get_response/>", "xml", SHOP)
