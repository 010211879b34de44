"""The Douyin mapping on the recorded samples (worked out by hand) and on the edge cases of real answers."""
import copy
import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from schemas.canonical import MappingError, order_json
from schemas.model import Order

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SHOP = "tonglu-douyin-home"


def _utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def _detail() -> dict:
    return orjson.loads((SAMPLES / "order_orderDetail.json").read_bytes())["data"]["shop_order_detail"]


def _page(*orders, total=None) -> bytes:
    return orjson.dumps({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "log_id": "t",
                         "data": {"page": 0, "size": 20, "total": len(orders) if total is None else total,
                                  "shop_order_list": list(orders)}})


def _map_one(order: dict) -> dict:
    (got,) = map_payload(_page(order), "json", SHOP)
    Order.model_validate(got)
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]
    return got


def test_the_recorded_detail_by_hand():
    (got,) = map_payload((SAMPLES / "order_orderDetail.json").read_bytes(), "json", SHOP)
    assert got["external_id"] == "6932187654321098765" and got["order_id"] == f"douyin:{SHOP}:6932187654321098765"
    assert (got["status"], got["platform_status"], got["refund_status"]) == ("PAID", "2", "NONE")  # 2 待发货
    # Unix seconds: 1710728100 = 2024-03-18 10:15:00 Beijing = 02:15:00 UTC
    assert got["created_at"] == _utc_ms("2024-03-18T10:15:00+08:00") == _utc_ms("2024-03-18T02:15:00+00:00")
    assert got["paid_at"] == _utc_ms("2024-03-18T02:16:00+00:00")      # pay_time 1710728160
    assert got["updated_at"] == _utc_ms("2024-03-18T02:16:01+00:00")   # update_time 1710728161
    assert (got["shipped_at"], got["delivered_at"]) == (None, None)    # ship_time 0, no receipt time
    # fen: skus origin 7980 (2 × 3990) + 9000 = 16980; paid 7380 + 8420 = 15800 = pay_amount
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["tax_total"], got["paid_total"]) == \
        (16980, 0, 600 + 580, 0, 15800)
    assert [(li["line_id"], li["sku_id"], li["merchant_sku"], li["quantity"], li["unit_price"], li["total"],
             li["discount"]) for li in got["lines"]] == [
        ("6932187654321098766", "1781234567890123", "TL-MUG-350-WHT", 2, 3990, 7380, 600),
        ("6932187654321098767", "1781234567890456", "TL-TOWEL-L-GRY", 1, 9000, 8420, 580)]
    assert got["buyer"] == {"id": "1@#Zk3mN2Qw9xTq8LrV0bYh4uE6sA1cD=", "nick_masked": None, "message": "周末前送到"}
    receiver = got["receiver"]
    assert (receiver["name_masked"], receiver["phone_masked"]) == ("张*", "138****1111")  # Douyin's masks kept
    # town is the district, street the sub-district: "文新街道" + "文***路***号" (13 characters), first 2 kept
    assert (receiver["province"], receiver["city"], receiver["district"]) == ("浙江省", "杭州市", "西湖区")
    assert receiver["address_masked"] == "文新" + "*" * 11
    assert json.loads(receiver["secure_token"]) == {
        "name": _detail()["encrypt_post_receiver"], "phone": _detail()["encrypt_post_tel"],
        "address": _detail()["post_addr"]["encrypt_detail"]}
    assert (receiver["phone_valid"], receiver["address_vague"]) == (True, False)


def test_the_recorded_list_refund_before_shipping_and_a_shipment():
    got = {o["external_id"]: o for o in map_payload((SAMPLES / "order_searchList.json").read_bytes(), "json", SHOP)}
    shipped, cancelled = got["6932099887766554433"], got["6931955443322110099"]
    assert (shipped["status"], shipped["shipped_at"]) == ("SHIPPED", _utc_ms("2024-03-18T01:40:00+00:00"))
    assert shipped["shipments"] == [{"carrier": "中通快递", "tracking_no": "78451236987412",
                                     "shipped_at": _utc_ms("2024-03-18T01:40:00+00:00"),
                                     "line_ids": ["6932099887766554433"]}]
    # 售前退款 (after_sale_type 2) that succeeded: after_sale_status 12, refund_status 3
    assert (cancelled["status"], cancelled["refund_status"], cancelled["refunded_total"]) == \
        ("CANCELLED", "REFUNDED", 4500)
    assert cancelled["receiver"]["address_masked"] is None and cancelled["receiver"]["secure_token"] is None


def test_beijing_midnight_and_the_year_crossing():
    order = _detail()
    order.update(create_time=1735660799, pay_time=1735660800, update_time="1735660801")  # 23:59:59 / 00:00 / 00:00:01
    got = order_json(_map_one(order))
    assert (got["created_at"], got["paid_at"], got["updated_at"]) == \
        ("2024-12-31T15:59:59.000Z", "2024-12-31T16:00:00.000Z", "2024-12-31T16:00:01.000Z")
    order.update(create_time="2025-01-01 00:00:00", pay_time=1735660800000)  # older answers: text, milliseconds
    got = order_json(_map_one(order))
    assert (got["created_at"], got["paid_at"]) == ("2024-12-31T16:00:00.000Z", "2024-12-31T16:00:00.000Z")


@pytest.mark.parametrize("origin, quantity, pay, unit, discount", [
    (5997, 3, 5997, 1999, 0),       # 19.99 × 3 yuan: int(19.99 * 3 * 100) would be 5996
    (6435, 1, 6435.0, 6435, 0),     # 64.35 yuan as a float number of fen
    (7, 1, "7", 7, 0),              # 0.07 yuan as a digit string
    (1000, 3, 900, 333, 99),        # an original price that does not divide: floor, the rest is discount
])
def test_money_is_exact_from_integers_strings_and_floats(origin, quantity, pay, unit, discount):
    order = _detail()
    sku = order["sku_order_list"][0]
    sku.update(origin_amount=origin, item_num=quantity, pay_amount=pay)
    order["sku_order_list"] = [sku]
    order["pay_amount"] = order["order_amount"] = pay
    (line,) = _map_one(order)["lines"]
    assert (line["unit_price"], line["total"], line["discount"]) == (unit, int(float(pay)), discount)


@pytest.mark.parametrize("field, value, reason", [
    ("pay_amount", 64.35, "pay_amount is not a whole number of fen: 64.35"),
    ("pay_amount", "12.5", "pay_amount is not a whole number of fen: '12.5'"),
    ("post_amount", "free", "post_amount is not an amount in fen: 'free'"),
    ("create_time", "yesterday", "create_time is not a Unix time in seconds: 'yesterday'"),
    ("create_time", -5, "create_time is not a Unix time in seconds: -5"),
    ("order_id", "69321876543210987x", "order_id is not an id: '69321876543210987x'"),
])
def test_a_wrong_value_is_a_one_line_error(field, value, reason):
    order = _detail()
    order[field] = value
    with pytest.raises(MappingError) as refused:
        map_payload(_page(order), "json", SHOP)
    assert str(refused.value) == reason


def test_ids_above_2_53_given_as_bare_numbers_keep_their_digits():
    order = _detail()
    order["order_id"] = 6932187654321098765
    order["sku_order_list"][0]["order_id"] = 6932187654321098766
    order["sku_order_list"][0]["sku_id"] = 9007199254740993  # 2^53 + 1
    got = _map_one(order)
    assert got["external_id"] == "6932187654321098765" and got["lines"][0]["line_id"] == "6932187654321098766"
    assert got["lines"][0]["sku_id"] == "9007199254740993"
    # beyond 64 bits a fast parser gives a float; the exact parser keeps every digit
    body = _page(order).replace(b"6932187654321098765", b"69321876543210987654321", 1)
    (got,) = map_payload(body, "json", SHOP)
    assert got["external_id"] == "69321876543210987654321"
    with pytest.raises(MappingError, match="order_id lost precision"):
        map_payload(_page(order).replace(b"6932187654321098765", b"6.932187654321099e18", 1), "json", SHOP)


def _partly_shipped() -> dict:
    order = _detail()
    order.update(order_status=101, ship_time=1710800000, logistics_info=[{
        "tracking_no": "JT5001234567890", "company": "jtexpress", "ship_time": 1710800000,
        "product_info": [{"sku_order_id": "6932187654321098767", "product_count": 1}]}])
    order["sku_order_list"][1]["order_status"] = 3
    return order


def test_a_partial_shipment_names_the_shipped_sku():
    got = _map_one(_partly_shipped())
    assert (got["status"], got["platform_status"]) == ("PARTIALLY_SHIPPED", "101")
    assert got["shipments"] == [{"carrier": "极兔速递", "tracking_no": "JT5001234567890",
                                 "shipped_at": 1710800000000, "line_ids": ["6932187654321098767"]}]
    second = _partly_shipped()
    second["logistics_info"][0].pop("product_info")  # without product_info: the skus that say they shipped
    assert _map_one(second)["shipments"][0]["line_ids"] == ["6932187654321098767"]


def test_refunds_before_and_after_shipping():
    before = _detail()  # 售前退款 of one of two skus, requested then refunded
    before["sku_order_list"][0]["after_sale_info"] = {"after_sale_status": 6, "after_sale_type": 2, "refund_status": 1}
    got = _map_one(before)
    assert (got["status"], got["refund_status"], got["refunded_total"]) == ("PAID", "REQUESTED", 0)
    before["sku_order_list"][0]["after_sale_info"] = {"after_sale_status": 12, "after_sale_type": 2, "refund_status": 3}
    got = _map_one(before)
    assert (got["refund_status"], got["refunded_total"]) == ("PARTIALLY_REFUNDED", 7380)
    assert [li["refund_status"] for li in got["lines"]] == ["REFUNDED", "NONE"]

    after = _partly_shipped()  # 退货退款 of the shipped sku: returning, refused, then refunded
    after["order_status"] = 3
    info = after["sku_order_list"][1]["after_sale_info"]
    for status, refund, line_state, order_state in ((7, 1, "REQUESTED", "REQUESTED"), (29, 4, "REJECTED", "REJECTED"),
                                                    (53, 3, "REFUNDED", "PARTIALLY_REFUNDED"),
                                                    (28, 0, "NONE", "NONE"), (99, 0, "UNKNOWN", "NONE")):
        info.update(after_sale_status=status, after_sale_type=0, refund_status=refund)
        got = _map_one(after)
        assert (got["lines"][1]["refund_status"], got["refund_status"]) == (line_state, order_state), status


def test_a_receipt_time_makes_a_shipped_order_delivered():
    order = _partly_shipped()
    order.update(order_status=3, logistics_receipt_time=1710900000)
    got = _map_one(order)
    assert (got["status"], got["platform_status"], got["delivered_at"]) == ("DELIVERED", "3", 1710900000000)
    order.update(order_status=5, logistics_receipt_time=0, confirm_receipt_time=1711000000)
    got = _map_one(order)
    assert (got["status"], got["delivered_at"]) == ("COMPLETED", 1711000000000)


@pytest.mark.parametrize("tel, masked", [
    ("170****5678-1234", "170****5678-****"),
    ("17012345678-1234", "170****5678-****"),
    ("170****5678转123", "170****5678-***"),
    ("138****1111", "138****1111"),
])
def test_virtual_numbers_lose_their_extension(tel, masked):
    order = _detail()
    order["mask_post_tel"] = tel
    receiver = _map_one(order)["receiver"]
    assert (receiver["phone_masked"], receiver["phone_valid"]) == (masked, True)


def test_plaintext_receivers_are_judged_and_masked_never_kept():
    order = _detail()
    order.update(post_receiver="张三丰", post_tel="13812341111")
    order["post_addr"]["detail"] = "文三路477号华星科技大厦3号楼"
    got = _map_one(order)
    text = json.dumps(got, ensure_ascii=False)
    assert "张三丰" not in text and "13812341111" not in text and "477" not in text
    assert (got["receiver"]["name_masked"], got["receiver"]["phone_masked"]) == ("张**", "138****1111")
    # "文新街道" + "文三路477号华星科技大厦3号楼": 4 + 16 characters, the first 2 kept
    assert got["receiver"]["address_masked"] == "文新" + "*" * 18 and got["receiver"]["address_vague"] is False


def test_buyer_words_are_masked_free_text():
    order = _detail()
    order["buyer_words"] = "到了打电话 138 1234 5678，放文三路477号"
    assert _map_one(order)["buyer"]["message"] == "到了打电话 138****5678，放文三路***号"


def test_sku_amounts_with_shipping_shares_are_taken_without_them():
    order = _detail()
    order.update(post_amount=1000, pay_amount=16800, order_amount=16800)
    for sku, share in zip(order["sku_order_list"], (600, 400)):
        sku.update(post_amount=share, pay_amount=sku["pay_amount"] + share)
    got = _map_one(order)
    assert [li["total"] for li in got["lines"]] == [7380, 8420] and got["shipping_fee"] == 1000
    for sku in order["sku_order_list"]:  # amounts without shares (post_amount 0): taken as they are
        sku.update(pay_amount=sku["pay_amount"] - sku["post_amount"], post_amount=0)
    assert [li["total"] for li in _map_one(order)["lines"]] == [7380, 8420]


def test_an_amount_the_skus_do_not_account_for_breaks_the_identity():
    order = _detail()
    order["pay_amount"] = 15300  # the buyer paid 5 yuan less than the skus say: amount_mismatch must see it
    (got,) = map_payload(_page(order), "json", SHOP)
    assert got["items_total"] - got["discount_total"] == 15800 != got["paid_total"]


def test_a_summary_needs_the_detail_call():
    order = _detail()
    del order["sku_order_list"]
    with pytest.raises(MappingError) as refused:
        map_payload(_page(order), "json", SHOP)
    assert str(refused.value) == \
        "order 6932187654321098765 is a summary without sku_order_list: fetch order.orderDetail"


def test_empty_pages_only_when_douyin_says_so():
    assert map_payload(_page(), "json", SHOP) == []
    past = orjson.loads(_page(total=40))
    past["data"].update(page=2, size=20)
    assert map_payload(orjson.dumps(past), "json", SHOP) == []
    past["data"].update(page=1)
    with pytest.raises(MappingError, match="does not say the page is empty"):
        map_payload(orjson.dumps(past), "json", SHOP)


def test_a_push_batch_names_orders_but_carries_none():
    assert map_payload((SAMPLES / "push_trade_paid.body.json").read_bytes(), "json", SHOP) == []
    for body, reason in ((b"[]", "douyin push batch holds no message"),
                         (b'[{"tag": "101", "data": {"p_id": 1}}]', "must be an object with `tag` and a `data`"),
                         (b'[{"tag": "101", "msg_id": "1", "data": "{"}]', "`data` is not JSON")):
        with pytest.raises(MappingError, match=reason):
            map_payload(body, "json", SHOP)


@pytest.mark.parametrize("body, reason", [
    ('{"code": 40003, "msg": "非法的参数", "sub_code": "isv.signature-invalid", "sub_msg": "sign", "data": null}'
     .encode(),
     "douyin error code=40003 msg='非法的参数' sub_code='isv.signature-invalid' sub_msg='sign'"),
    (b'{"code": 10000, "data": null}', "douyin answer: `data` is not an object"),
    (b'{"code": 10000, "data": {"shop_order_list": {}}}', "data.shop_order_list must be a list"),
    (b'{"code": 10000, "data": {"shop_order_list": [7], "total": 1}}', "a shop order must be an object, got int"),
    (b'{"code": 10000, "data": {"orders": []}}', "neither data.shop_order_list nor data.shop_order_detail"),
    (b'"text"', "not a douyin answer: top level is str"),
    (b"<xml/>", "douyin answers JSON only, not XML"),
])
def test_wrong_shapes_are_one_line_errors(body, reason):
    with pytest.raises(MappingError) as refused:
        map_payload(body, "xml" if body.startswith(b"<") else "json", SHOP)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_a_sku_without_quantity_or_price_is_refused():
    order = _detail()
    broken = copy.deepcopy(order)
    broken["sku_order_list"][0]["item_num"] = 0
    with pytest.raises(MappingError, match="item_num must be positive"):
        map_payload(_page(broken), "json", SHOP)
    for key in ("origin_amount", "sum_amount"):
        order["sku_order_list"][0].pop(key)
    with pytest.raises(MappingError, match="no price"):
        map_payload(_page(order), "json", SHOP)


def test_the_shipped_after_sale_sample_by_hand():
    body = (SAMPLES / "order_searchList_shipped_after_sale.json").read_bytes()
    part, delivered = (order_json(o) for o in map_payload(body, "json", "4463798"))
    # 101 部分发货: the tea shipped (product_info names its sku), the socks refunded before shipping (售前退款)
    assert (part["status"], part["refund_status"], part["platform_status"]) == \
        ("PARTIALLY_SHIPPED", "PARTIALLY_REFUNDED", "101")
    # 1735660799 = 2024-12-31 23:59:59 Beijing; 1735660800 = 2025-01-01 00:00:00 Beijing
    assert (part["created_at"], part["paid_at"]) == ("2024-12-31T15:59:59.000Z", "2024-12-31T16:00:00.000Z")
    # items 2 × 12800 + 3 × 2990 = 34570; shipping 600; discounts 1000 + 0; paid 34570 + 600 − 1000 = 34170
    assert (part["items_total"], part["shipping_fee"], part["discount_total"], part["paid_total"],
            part["refunded_total"]) == (34570, 600, 1000, 34170, 8970)
    assert [(li["merchant_sku"], li["unit_price"], li["refund_status"]) for li in part["lines"]] == \
        [("TL-TEA-500", 12800, "NONE"), ("TL-SOCKS-5P", 2990, "REFUNDED")]  # empty out_sku_id: the `code`
    assert part["shipments"] == [{"carrier": "极兔速递", "tracking_no": "JT0001234567890",
                                  "shipped_at": "2024-12-31T17:00:00.000Z", "line_ids": ["6934512300000000112"]}]
    assert part["receiver"]["phone_masked"] == "170****5678-****"  # a virtual number: extension hidden
    assert part["buyer"]["message"] == "请尽快发货，到了打电话 139****5678"
    # 3 已发货 with a receipt time at Beijing midnight on new year's day: delivered; a return under way (退货中)
    assert (delivered["status"], delivered["refund_status"], delivered["delivered_at"]) == \
        ("DELIVERED", "REQUESTED", "2024-12-31T16:00:00.000Z")
    assert (delivered["created_at"], delivered["updated_at"]) == ("2024-12-30T16:00:00.000Z", "2025-01-01T00:00:00.000Z")
