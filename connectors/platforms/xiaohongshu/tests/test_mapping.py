"""Mapping edge cases, each against values worked out by hand from the payload and the fact sheet."""
import copy
import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from schemas.canonical import MappingError, order_json
from schemas.model import Order

from ..capture import capture
from ..mapping import map_payload

SAMPLES = Path(__file__).parents[1] / "samples"
SHOP = "tonglu-xiaohongshu-home"
DETAIL = json.loads((SAMPLES / "order_getOrderDetail.json").read_text(encoding="utf-8"))
RECEIVERS = json.loads((SAMPLES / "order_getOrderReceiverInfo.json").read_text(encoding="utf-8"))


def _utc_ms(text: str) -> int:
    """An ISO-8601 time with its offset -> epoch ms, independent of the mapping's converters."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _detail(**changes) -> dict:
    answer = copy.deepcopy(DETAIL)
    answer["data"].update(changes)
    return answer


def _one(answer, receivers=None) -> dict:
    body = orjson.dumps(answer) if receivers is None else capture([orjson.dumps(answer)], orjson.dumps(receivers))
    (order,) = map_payload(body, "json", SHOP)
    Order.model_validate(order)
    assert order["items_total"] + order["shipping_fee"] - order["discount_total"] + order["tax_total"] \
        == order["paid_total"] or order["refund_status"] != "NONE"
    return order


def test_recorded_detail_by_hand():
    got = _one(DETAIL, RECEIVERS)
    assert got["external_id"] == "P734212345678901234" and got["order_id"] == f"xiaohongshu:{SHOP}:P734212345678901234"
    assert (got["platform_status"], got["status"], got["refund_status"]) == ("4", "PAID", "NONE")  # 4 待发货
    assert got["created_at"] == _utc_ms("2024-03-18T10:15:00+08:00")  # 1710728100000 ms
    assert got["paid_at"] == _utc_ms("2024-03-18T10:16:00+08:00")
    assert got["updated_at"] == _utc_ms("2024-03-18T10:16:01+08:00")
    assert got["shipped_at"] is None and got["shipments"] == []  # deliveryTime 0
    # 2 × 39.90 + 90.00 = 169.80; paid 73.80 + 84.20 = 158.00, so 6.00 + 5.80 of discounts
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["tax_total"], got["paid_total"]) \
        == (16980, 0, 1180, 0, 15800)
    assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["discount"], ln["total"])
            for ln in got["lines"]] == [("65f1a2b3c4d5e6f7a8b9c0e1", "TL-MUG-350-WHT", 2, 3990, 600, 7380),
                                        ("65f1a2b3c4d5e6f7a8b9c0f2", "TL-TOWEL-L-GRY", 1, 9000, 580, 8420)]
    assert got["buyer"] == {"id": "5f0e1d2c3b4a59687766554a", "nick_masked": None, "message": None}
    assert got["receiver"] == {  # ciphertexts kept as given, never opened; region names in clear
        "name_masked": "#Vm9KcTJMOXhLM3BSN3RCMW5XNQ==#", "phone_masked": "#UGs3ZUgyak05cVQ0dlgxekI2bg==#",
        "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
        "address_masked": "#WnQ0a1E4cFcybVg2dkI5blIxeUw1Y0gzakY3Z0Qwc0s=#", "postal_code": None,
        "secure_token": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "phone_valid": None, "address_vague": None}


@pytest.mark.parametrize("created, want", [
    (1735660799000, "2024-12-31T23:59:59+08:00"),   # the last second of the year in Beijing
    (1735660800000, "2025-01-01T00:00:00+08:00"),   # Beijing midnight: still 2024-12-31 16:00 in UTC
    (1735660800, "2025-01-01T00:00:00+08:00"),      # the same instant in seconds
    ("1735660800000", "2025-01-01T00:00:00+08:00"),  # as a string of digits
    ("2025-01-01 00:00:00", "2025-01-01T00:00:00+08:00"),  # a Beijing wall-clock string
])
def test_times_are_utc_across_beijing_midnight_and_the_new_year(created, want):
    got = _one(_detail(createdTime=created, paidTime=0, updateTime=1735660900000))
    assert got["created_at"] == _utc_ms(want) and got["paid_at"] is None
    utc = order_json(got)["created_at"]
    assert utc.endswith("Z") and utc.startswith("2024-12-31T15:59:59" if "23:59:59" in want else "2024-12-31T16:00:00")


@pytest.mark.parametrize("price, quantity, paid, unit", [
    (6435, 1, 6435, 6435),         # 64.35 yuan, which int(64.35 * 100) makes 6434
    (6435.0, 1, "6435", 6435),     # a whole float and a string of digits
    (7, 1, 7.0, 7),                # 0.07 yuan
    (1999, 3, 5997, 1999),         # 19.99 × 3, which int(59.97 * 100) makes 5996
])
def test_money_is_exact_from_ints_whole_floats_and_strings(price, quantity, paid, unit):
    answer = _detail(totalPayAmount=paid, totalShippingFree=0, skuList=[{
        "skuId": "s1", "skuName": "x", "erpcode": "E1", "skuQuantity": quantity, "totalPaidAmount": paid,
        "skuDetailList": [{"skuId": "s1", "price": price, "quantity": quantity}]}])
    got = _one(answer)
    assert got["lines"][0]["unit_price"] == unit and got["paid_total"] == unit * quantity
    assert got["discount_total"] == 0 and got["items_total"] == unit * quantity


@pytest.mark.parametrize("bad", [64.35, "64.35", "12abc", True])
def test_a_fraction_of_a_fen_is_refused_in_one_line(bad):
    with pytest.raises(MappingError) as refused:
        map_payload(orjson.dumps(_detail(totalPayAmount=bad)), "json", SHOP)
    assert "totalPayAmount is not a whole number of fen" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("raw_id", ["9007199254740993", "734212345678901234567", "18446744073709551617"])
def test_ids_above_2_53_as_bare_numbers_keep_every_digit(raw_id):
    text = json.dumps(DETAIL).replace('"P734212345678901234"', raw_id).replace(
        '"65f1a2b3c4d5e6f7a8b9c0e1"', raw_id + "1")
    (got,) = map_payload(text.encode(), "json", SHOP)
    assert got["external_id"] == raw_id and got["order_id"].endswith(":" + raw_id)
    assert got["lines"][0]["line_id"] == raw_id + "1"


def test_a_partial_shipment_names_the_shipped_lines():
    got = _one(_detail(orderStatus=5, deliveryTime=1710800000000, unpack=True, simpleDeliveryOrderList=[
        {"deliveryOrderIndex": 0, "status": 6, "expressTrackingNo": "73100000000001", "expressCompanyCode": "zhongtong",
         "skuIdList": ["65f1a2b3c4d5e6f7a8b9c0f2"]},
        {"deliveryOrderIndex": 1, "status": 4, "expressTrackingNo": "", "expressCompanyCode": "",
         "skuIdList": ["65f1a2b3c4d5e6f7a8b9c0e1"]}]))
    assert got["status"] == "PARTIALLY_SHIPPED" and got["shipped_at"] == 1710800000000
    assert got["shipments"] == [{"carrier": "中通快递", "tracking_no": "73100000000001", "shipped_at": 1710800000000,
                                 "line_ids": ["65f1a2b3c4d5e6f7a8b9c0f2"]}]


def test_the_order_waybill_ships_every_line_when_there_are_no_packages():
    got = _one(_detail(orderStatus=6, deliveryTime=1710800000000, expressTrackingNo="SF1", expressCompanyCode="shunfeng"))
    assert got["status"] == "SHIPPED"
    assert got["shipments"] == [{"carrier": "顺丰速运", "tracking_no": "SF1", "shipped_at": 1710800000000,
                                 "line_ids": ["65f1a2b3c4d5e6f7a8b9c0e1", "65f1a2b3c4d5e6f7a8b9c0f2"]}]


def _with_after_sale(status: int, order_after_sale: int, *sku_after_sale: int, **changes) -> dict:
    answer = _detail(orderStatus=status, orderAfterSalesStatus=order_after_sale, **changes)
    for sku, state in zip(answer["data"]["skuList"], sku_after_sale, strict=True):
        sku["skuAfterSaleStatus"] = state
    return answer


def test_refunds_before_shipping():
    asked = _one(_with_after_sale(4, 2, 2, 1))  # 售后处理中 on the mug, before anything shipped
    assert (asked["status"], asked["refund_status"], asked["refunded_total"]) == ("PAID", "REQUESTED", 0)
    assert [ln["refund_status"] for ln in asked["lines"]] == ["REQUESTED", "NONE"]
    one = _one(_with_after_sale(4, 3, 3, 1))  # the mug refunded, the towel still to ship
    assert (one["refund_status"], one["refunded_total"]) == ("PARTIALLY_REFUNDED", 7380)
    closed = _one(_with_after_sale(8, 3, 3, 3))  # 已关闭 after everything was refunded
    assert (closed["status"], closed["refund_status"], closed["refunded_total"]) == ("CANCELLED", "REFUNDED", 15800)


def test_refunds_after_shipping():
    shipped = {"deliveryTime": 1710800000000, "expressTrackingNo": "YT1", "expressCompanyCode": "yuantong"}
    rejected = _one(_with_after_sale(6, 4, 1, 4, **shipped))  # 售后拒绝 on the towel
    assert (rejected["status"], rejected["refund_status"]) == ("SHIPPED", "REJECTED")
    refunded = _one(_with_after_sale(7, 3, 1, 3, finishTime=1711000000000, **shipped))
    assert (refunded["status"], refunded["refund_status"], refunded["refunded_total"]) == \
        ("COMPLETED", "PARTIALLY_REFUNDED", 8420)
    arbitration = _one(_with_after_sale(6, 6, 6, 1, **shipped))  # 平台介入中
    assert arbitration["refund_status"] == "REQUESTED"


def test_the_order_after_sale_counts_when_the_skus_do_not_say():
    answer = _detail(orderStatus=9, orderAfterSalesStatus=3)
    for sku in answer["data"]["skuList"]:
        del sku["skuAfterSaleStatus"]
    got = _one(answer)
    assert (got["status"], got["refund_status"], got["refunded_total"]) == ("CANCELLED", "REFUNDED", 15800)
    assert {ln["refund_status"] for ln in got["lines"]} == {"REFUNDED"}


def test_an_exchange_keeps_the_state_the_order_was_in():
    assert _one(_detail(orderStatus=10, deliveryTime=1710800000000))["status"] == "SHIPPED"
    assert _one(_detail(orderStatus=10, finishTime=1711000000000))["status"] == "COMPLETED"


def test_cross_border_tax_is_paid_with_the_goods():
    answer = _detail(orderStatus=3, totalPayAmount=16600, totalShippingFree=500)  # 清关中
    answer["data"]["skuList"][0].update(totalTaxAmount=300, totalPaidAmount=7680)
    got = _one(answer)
    assert got["status"] == "PAID" and got["tax_total"] == 300
    assert got["lines"][0]["total"] == 7380 and got["lines"][0]["discount"] == 600
    assert 16980 + 500 - 1180 + 300 == got["paid_total"] == 16600  # 76.80 + 84.20 + 5.00 shipping


def test_a_bundle_is_one_line_priced_by_its_parts():
    answer = _detail(totalPayAmount=9000, skuList=[{
        "skuId": "bundle", "skuName": "同路茶具礼盒", "erpcode": "", "skuQuantity": 2, "totalPaidAmount": 9000,
        "totalMerchantDiscount": 1000, "skuDetailList": [
            {"skuId": "p1", "erpCode": "TL-CUP", "pricePerSku": 1500, "quantity": 4},
            {"skuId": "p2", "erpCode": "TL-POT", "pricePerSku": 2000, "quantity": 2}]}])
    (line,) = _one(answer)["lines"]
    # (4 × 15.00 + 2 × 20.00) / 2 = 50.00 per box; 100.00 − 90.00 paid = 10.00 discount
    assert (line["quantity"], line["unit_price"], line["discount"], line["total"], line["merchant_sku"]) == \
        (2, 5000, 1000, 9000, None)


def test_plaintext_receivers_are_masked_and_virtual_numbers_lose_their_extension():
    receivers = copy.deepcopy(RECEIVERS)
    info = receivers["data"]["receiverInfos"][0]
    info.update(receiverName="张三丰", receiverPhone="17012345678-1234", receiverAddress="文三路477号3号楼")
    got = _one(DETAIL, receivers)["receiver"]
    assert got["name_masked"] == "张**" and got["phone_masked"] == "170****5678-****" and got["phone_valid"] is True
    # 文新街道 + 文三路477号3号楼: 14 characters, the first 2 kept
    assert got["address_masked"] == "文新" + "*" * 12 and got["address_vague"] is False
    text = json.dumps(got, ensure_ascii=False)
    assert "1234" not in text and "477" not in text and "三丰" not in text
    info.update(receiverPhone="138 1234 5678")
    assert _one(DETAIL, receivers)["receiver"]["phone_masked"] == "138****5678"
    info.update(receiverPhone="110")
    assert _one(DETAIL, receivers)["receiver"]["phone_valid"] is False


def _masked(phone_mask: str) -> dict:
    info = RECEIVERS["data"]["receiverInfos"][0]
    entries = [(info["receiverName"], "张*"), (info["receiverPhone"], phone_mask), (info["receiverAddress"], "文*路***号")]
    return {"success": True, "code": 0, "msg": "成功", "data": {"desensitiseInfoList": [
        {"dataTag": "P734212345678901234", "encryptedData": c, "desensitisedData": m, "errorCode": 0, "errorMsg": ""}
        for c, m in entries]}}


@pytest.mark.parametrize("phone_mask, valid", [("138****5678", True), ("170****5678-****", True), ("1*0", False)])
def test_the_platforms_masks_replace_ciphertexts_and_are_judged(phone_mask, valid):
    body = capture([orjson.dumps(DETAIL)], orjson.dumps(RECEIVERS), [orjson.dumps(_masked(phone_mask))])
    (got,) = map_payload(body, "json", SHOP)
    receiver = got["receiver"]
    assert (receiver["name_masked"], receiver["phone_masked"], receiver["phone_valid"]) == ("张*", phone_mask, valid)
    # 文新街道 + 文*路***号 (11 characters): the first 2 kept; a road and a number: not vague
    assert receiver["address_masked"] == "文新" + "*" * 9 and receiver["address_vague"] is False
    assert receiver["secure_token"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def test_an_unmatched_receiver_leaves_the_detail_alone():
    receivers = {"success": True, "code": 0, "data": {"receiverInfos": [
        {"orderId": "P734212345678901234", "matched": False}]}}
    got = _one(DETAIL, receivers)["receiver"]
    assert got["name_masked"] is None and got["province"] == "浙江省" and got["secure_token"]


def test_buyer_remarks_are_masked():
    got = _one(_detail(customerRemark="到了打电话 138 1234 5678，送到文三路477号"))
    assert got["buyer"]["message"] == "到了打电话 138****5678，送到文三路***号"


def test_summaries_need_a_detail_call():
    listed = (SAMPLES / "order_getOrderList.json").read_bytes()
    with pytest.raises(MappingError, match="3 order summaries without lines or amounts"):
        map_payload(listed, "json", SHOP)
    orders = map_payload(capture([orjson.dumps(DETAIL)], orjson.dumps(RECEIVERS)), "json", SHOP)
    assert [o["external_id"] for o in orders] == ["P734212345678901234"]
    assert map_payload(capture([]), "json", SHOP) == []  # nothing new on the page
    empty = orjson.dumps({"success": True, "code": 0, "data": {"total": 0, "pageNo": 1, "pageSize": 100,
                                                               "maxPageNo": 0, "orderList": []}})
    assert map_payload(empty, "json", SHOP) == []
    with pytest.raises(MappingError, match="does not say the page is empty"):
        map_payload(empty.replace(b'"total":0', b'"total":5').replace(b'"maxPageNo":0', b'"maxPageNo":1'), "json",
                    SHOP)


@pytest.mark.parametrize("body, reason", [
    (orjson.dumps(_detail(skuList=[])), "skuList must be a non-empty list"),
    (orjson.dumps(_detail(orderStatus=None)), "missing or bad orderStatus"),
    (orjson.dumps(_detail(createdTime=0)), "missing createdTime"),
    (orjson.dumps(_detail(createdTime="yesterday")), "not a Beijing time"),
    (orjson.dumps(_detail(skuList=[{"skuId": "s", "skuQuantity": 3, "totalPaidAmount": 100,
                                    "skuDetailList": [{"price": 100, "quantity": 1}]}])), "no whole price"),
    (orjson.dumps({"success": False, "code": 100003, "msg": "订单不存在"}), "xiaohongshu error 100003: 订单不存在"),
    (orjson.dumps({"success": True, "data": {"foo": 1}}), "carries no order"),
    (b'{"order.getOrderDetail": {}}', "must be a list of answers"),
    (b'[{"no": "tag"}]', "not a xiaohongshu push"),
    (b'{"a": 1}', "not a xiaohongshu answer"),
])
def test_wrong_shapes_are_refused_in_one_line(body, reason):
    with pytest.raises(MappingError) as refused:
        map_payload(body, "json", SHOP)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_xml_is_refused_and_pushes_carry_no_order():
    with pytest.raises(MappingError, match="JSON only"):
        map_payload(b"<a/>", "xml", SHOP)
    assert map_payload((SAMPLES / "push_order_status_change.json").read_bytes(), "json", SHOP) == []
