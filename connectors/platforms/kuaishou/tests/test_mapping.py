"""Kuaishou mapping edge cases on payloads shaped like the recorded ones (samples/)."""
import copy
import json
from datetime import datetime
from pathlib import Path

import pytest

from schemas.canonical import MappingError, order_json

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LIST = json.loads((SAMPLES / "open_order_cursor_list.json").read_text(encoding="utf-8"))
SHOP = "tonglu-kuaishou-home"


def _utc_ms(text: str) -> int:
    """An ISO-8601 time with its offset -> epoch ms (independent of the mapping)."""
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def _entry(n: int = 0) -> dict:
    return copy.deepcopy(LIST["data"]["orderList"][n])


def _page(*entries: dict) -> bytes:
    return json.dumps({**LIST, "data": {**LIST["data"], "orderList": list(entries)}}, ensure_ascii=False).encode()


def _one(entry: dict) -> dict:
    (order,) = map_payload(_page(entry), "json", SHOP)
    return order


def test_beijing_midnight_and_the_year_crossing_are_utc():
    entry = _entry()
    base = entry["orderBaseInfo"]
    base["createTime"] = _utc_ms("2024-12-31T23:59:59+08:00")  # the buyer ordered before midnight in Beijing
    base["payTime"] = _utc_ms("2025-01-01T00:00:00+08:00")     # and paid at midnight, in the new year
    base["updateTime"] = _utc_ms("2025-01-01T00:00:01+08:00")
    got = order_json(_one(entry))
    assert (got["created_at"], got["paid_at"], got["updated_at"]) == \
        ("2024-12-31T15:59:59.000Z", "2024-12-31T16:00:00.000Z", "2024-12-31T16:00:01.000Z")


@pytest.mark.parametrize("value, fen", [(6435, 6435), (6435.0, 6435), ("6435", 6435), (7, 7), (7.0, 7)])
def test_fen_amounts_from_ints_floats_and_strings_are_exact(value, fen):
    entry = _entry()
    entry["orderBaseInfo"].update(totalFee=value, discountFee=0, expressFee=0)
    entry["orderItemInfo"].update(price=value, num=1, discountFee=0)
    got = _one(entry)
    assert (got["paid_total"], got["items_total"], got["lines"][0]["unit_price"]) == (fen, fen, fen)


def test_amounts_that_break_float_arithmetic_stay_exact():
    # 19.99 yuan × 3 is 59.97 yuan (int(19.99 * 3 * 100) would be 5996); 0.07 yuan; 64.35 yuan
    entry = _entry()
    entry["orderItemInfo"].update(price=1999.0, num=3, discountFee=7)
    entry["orderBaseInfo"].update(totalFee=6435, expressFee=445.0, discountFee="7")
    got = _one(entry)
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["paid_total"]) == (5997, 445, 7, 6435)
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]
    assert got["lines"][0]["total"] == 5990


@pytest.mark.parametrize("value", [64.35, "64.35", "六十", True, [1]])
def test_a_fraction_of_a_fen_or_no_number_is_a_one_line_error(value):
    entry = _entry()
    entry["orderBaseInfo"]["totalFee"] = value
    with pytest.raises(MappingError, match="totalFee is not") as refused:
        _one(entry)
    assert "\n" not in str(refused.value)


def test_ids_above_2_53_as_bare_numbers_keep_their_digits():
    entry = _entry()
    entry["orderBaseInfo"]["oid"] = 9007199254740993  # 2^53 + 1: a double would make it ...992
    entry["orderItemInfo"]["orderItemId"] = 9223372036854775807
    body = _page(entry)
    assert b'"oid": 9007199254740993' in body  # a bare JSON number, not a string
    got = _one(entry)
    assert got["external_id"] == "9007199254740993" and got["order_id"] == f"kuaishou:{SHOP}:9007199254740993"
    assert got["lines"][0]["line_id"] == "9223372036854775807"


def test_ids_beyond_64_bits_are_still_exact():
    body = _page(_entry()).replace(b"2414900123456789", b"123456789012345678901234567890")
    (got,) = map_payload(body, "json", SHOP)
    assert got["external_id"] == "123456789012345678901234567890"


@pytest.mark.parametrize("status", [30, 40])
def test_a_split_delivery_with_packages_to_go_is_partially_shipped(status):
    entry = _entry()
    entry["orderBaseInfo"].update(status=status, sendTime=_utc_ms("2024-03-18T12:00:00+08:00"))
    entry["orderItemInfo"]["num"], entry["orderBaseInfo"]["totalFee"] = 2, 7380
    entry["orderDeliveryInfo"].update(deliveryStatus=1, splitDeliveryOrder=True, packageNum=1, totalPackageNum=2)
    entry["orderLogisticsInfo"] = [{"logisticsId": 1, "expressNo": "78451236987412", "expressCode": 4}]
    got = _one(entry)
    assert (got["status"], got["platform_status"]) == ("PARTIALLY_SHIPPED", str(status))
    assert got["shipments"] == [{"carrier": "中通快递", "tracking_no": "78451236987412",
                                 "shipped_at": _utc_ms("2024-03-18T12:00:00+08:00"), "line_ids": ["214455667777"]}]
    entry["orderDeliveryInfo"].update(deliveryStatus=2, packageNum=2)  # the second package left too
    entry["orderLogisticsInfo"].append({"logisticsId": 2, "expressNo": "SF1234567890", "expressCode": 1})
    entry["orderBaseInfo"]["status"] = 40
    got = _one(entry)
    assert got["status"] == "SHIPPED"
    assert [(s["carrier"], s["tracking_no"]) for s in got["shipments"]] == \
        [("中通快递", "78451236987412"), ("顺丰速运", "SF1234567890")]


def test_an_unknown_carrier_code_is_kept_as_the_code():
    entry = _entry()
    entry["orderLogisticsInfo"] = [{"expressNo": "X1", "expressCode": 999}, {"expressNo": "", "expressCode": 4}]
    assert [(s["carrier"], s["tracking_no"]) for s in _one(entry)["shipments"]] == [("999", "X1")]


@pytest.mark.parametrize("status, refunds, want_status, want_refund", [
    (30, [10], "PAID", "REQUESTED"),            # refund asked before shipping
    (30, [11], "PAID", "REJECTED"),
    (40, [20], "SHIPPED", "REQUESTED"),         # return agreed after shipping, buyer to send it back
    (40, [30], "SHIPPED", "REQUESTED"),         # returned, seller to confirm
    (50, [40], "DELIVERED", "REJECTED"),        # refused after delivery
    (80, [60], "CANCELLED", "REFUNDED"),        # refunded before shipping: the order closes
    (70, [40, 10], "COMPLETED", "REQUESTED"),   # a new request after a refusal
    (30, [99], "PAID", "UNKNOWN"),
])
def test_refunds_at_every_stage(status, refunds, want_status, want_refund):
    entry = _entry()
    entry["orderBaseInfo"]["status"] = status
    entry["orderRefundList"] = [{"refundId": 2511200333444555 + n, "refundStatus": code, "refundReason": "不想要了"}
                                for n, code in enumerate(refunds)]
    got = _one(entry)
    assert (got["status"], got["refund_status"], got["lines"][0]["refund_status"]) == \
        (want_status, want_refund, want_refund)
    assert got["refunded_total"] == (got["lines"][0]["total"] if want_refund == "REFUNDED" else 0)


def test_receivers_stay_ciphertext_and_masks():
    got = _one(_entry())["receiver"]
    assert got["secure_token"] == ("#vQ2mL9xK3pR7tB1nW5yZ0cF4hJ6gD8sA#,#Pk7eH2jM9qT4vX1zB6nC3wR8yL5uG0fS#,"
                                   "#Zt4kQ8pW2mX6vB9nR1yL5cH3jF7gD0sK#")
    assert (got["name_masked"], got["phone_masked"]) == ("张*", "138****1111")


def test_a_receiver_in_clear_is_masked_and_judged():
    entry = _entry()
    entry["orderAddress"].update(consignee="欧阳娜娜", mobile="13912345678", address="文三路477号华星科技大厦",
                                 desensitiseConsignee="", desensitiseMobile="", desensitiseAddress="",
                                 encryptedConsignee="", encryptedMobile="", encryptedAddress="")
    got = _one(entry)
    text = json.dumps(got, ensure_ascii=False)
    assert "欧阳娜娜" not in text and "13912345678" not in text and "477号" not in text
    receiver = got["receiver"]
    assert (receiver["name_masked"], receiver["phone_masked"], receiver["secure_token"]) == ("欧***", "139****5678", None)
    assert receiver["phone_valid"] is True and receiver["address_vague"] is False


@pytest.mark.parametrize("field, value, masked", [
    ("mobile", "17012345678-1234", "170****5678-****"),
    ("mobile", "+86 170 1234 5678 转 56", "170****5678-**"),
    ("desensitiseMobile", "170****5678-1234", "170****5678-****"),
    ("desensitiseMobile", "171****0000转8866", "171****0000-****"),
])
def test_virtual_numbers_with_extensions_are_masked_and_dialable(field, value, masked):
    entry = _entry()
    entry["orderAddress"].update(mobile="", desensitiseMobile="")
    entry["orderAddress"][field] = value
    got = _one(entry)["receiver"]
    assert got["phone_masked"] == masked
    assert got["phone_valid"] is True  # a privacy number reaches the buyer: not an invalid phone


def test_buyer_remarks_are_masked_free_text():
    entry = _entry()
    entry["orderBaseInfo"]["remark"] = "到了打电话 138 1234 5678，放文三路477号3号楼"
    message = _one(entry)["buyer"]["message"]
    assert "1234 5678" not in message and "477" not in message and message.startswith("到了打电话")


def test_cross_border_tax_joins_the_amount_identity():
    entry = _entry()
    entry["orderBaseInfo"]["orderTaxInfo"] = {"taxAmount": 718, "sellerBearAmount": 0}
    entry["orderBaseInfo"]["totalFee"] = 7380 + 718
    got = _one(entry)
    assert got["tax_total"] == 718
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]


def test_a_summary_needs_a_detail_call():
    entry = _entry()
    del entry["orderItemInfo"]
    with pytest.raises(MappingError, match="2414900123456789 is a summary without orderItemInfo: fetch "
                                           "open.order.detail"):
        _one(entry)


def test_a_push_message_names_an_order_and_maps_to_nothing():
    assert map_payload((SAMPLES / "push_order_pay_success.json").read_bytes(), "json", SHOP) == []


def test_an_explicit_empty_page_is_empty_and_a_silent_one_is_refused():
    assert map_payload(_page(), "json", SHOP) == []
    silent = json.dumps({**LIST, "data": {"cursor": "nomore"}}).encode()
    with pytest.raises(MappingError, match="does not say the page is empty"):
        map_payload(silent, "json", SHOP)


@pytest.mark.parametrize("edit, reason", [
    (lambda e: e.pop("orderBaseInfo"), "order without an orderBaseInfo object"),
    (lambda e: e["orderBaseInfo"].pop("status"), "missing required field 'status'"),
    (lambda e: e["orderBaseInfo"].pop("oid"), "missing required field 'oid'"),
    (lambda e: e["orderBaseInfo"].update(oid="24149-001"), "oid is not an integer id"),
    (lambda e: e["orderBaseInfo"].update(createTime=1710728100), "createTime is not Unix milliseconds"),
    (lambda e: e["orderBaseInfo"].update(payTime="2024-03-18 10:16:00"), "payTime is not Unix milliseconds"),
    (lambda e: e["orderBaseInfo"].pop("totalFee"), "missing required field 'totalFee'"),
    (lambda e: e.update(orderItemInfo=[{"num": 1}]), "orderItemInfo is not an object"),
    (lambda e: e["orderItemInfo"].pop("price"), "orderItemInfo missing 'price'"),
    (lambda e: e["orderItemInfo"].update(num="two"), "num is not an integer"),
    (lambda e: e.update(orderRefundList={"refundStatus": 60}), "orderRefundList is not a list"),
    (lambda e: e.update(orderLogisticsInfo="78451236987412"), "orderLogisticsInfo is not a list"),
    (lambda e: e.update(orderAddress="浙江省杭州市"), "order.orderAddress is not an object"),
])
def test_wrong_shapes_are_one_line_errors(edit, reason):
    entry = _entry()
    edit(entry)
    with pytest.raises(MappingError) as refused:
        _one(entry)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("body, reason", [
    (b"", "malformed JSON"),
    (b'{"result": 1, "data": {"orderList": {"oid": 1}}}', "data.orderList is not a list"),
    (b'{"result": 1, "data": []}', "without a 'data' object"),
    (b'{"result": 1}', "without a 'data' object"),
    (b'[{"orderBaseInfo": {}}]', "top level is list"),
    (b'{"result": 28, "error_msg": "access_token\xe5\xb7\xb2\xe8\xbf\x87\xe6\x9c\x9f", "sub_code": "x"}',
     "kuaishou error result=28 code=None error_msg='access_token已过期' sub_code='x'"),
])
def test_wrong_bodies_are_one_line_errors(body, reason):
    with pytest.raises(MappingError, match=reason):
        map_payload(body, "json", SHOP)


def test_kuaishou_answers_only_json():
    with pytest.raises(MappingError, match="kuaishou answers are JSON, not 'xml'"):
        map_payload(b"<result>1</result>", "xml", SHOP)


def test_the_field_table_names_a_source_for_every_platform_given_field():
    from schemas import registry

    from ..mapping import FIELDS

    given_by_us = {"order_id", "platform", "shop_id", "currency", "version", "buyer", "receiver", "lines"}
    top = {f["name"] for f in registry.current("Order")["fields"]} - given_by_us
    assert top <= {key.split(".")[0].removesuffix("[]") for key in FIELDS}


def test_item_shaped_sub_orders_are_further_lines_and_other_shapes_are_not():
    entry = _entry()
    second = {**entry["orderItemInfo"], "orderItemId": 214455669977, "skuNick": "TL-TOWEL-L-GRY", "num": 1,
              "price": 9000, "discountFee": 0}
    entry["subOrderInfo"] = [second, {"subOrderId": 1, "status": 30}]
    entry["orderBaseInfo"]["totalFee"] = 7380 + 9000
    entry["orderLogisticsInfo"] = [{"expressNo": "78451236987412", "expressCode": 4}]
    got = _one(entry)
    assert [(line["line_id"], line["total"]) for line in got["lines"]] == [("214455667777", 7380),
                                                                           ("214455669977", 9000)]
    assert got["items_total"] == 7980 + 9000 and got["shipments"][0]["line_ids"] == ["214455667777", "214455669977"]
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]
    entry["subOrderInfo"] = {"orderItemId": 1}
    with pytest.raises(MappingError, match="subOrderInfo is not a list"):
        _one(entry)
