"""JD mapping: a sample worked out by hand, edge cases of times, money, ids, shipments, refunds,
receivers, and refused payloads (samples vs their expected output: tests/conformance)."""
import copy
import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from connectors.simkit.world import World
from schemas.canonical import MappingError, beijing_to_ms
from schemas.model import Order

from ..mapping import map_payload
from ..render import list_answer, order_info

SAMPLES = Path(__file__).parents[1] / "samples"
SHOP = "tonglu-jd-home"


def _utc_ms(text: str) -> int:
    """An ISO-8601 time with its offset -> epoch ms (independent of the mapping's converters)."""
    return int(datetime.fromisoformat(text).timestamp()) * 1000


def _detail() -> dict:
    return json.loads((SAMPLES / "pop_order_enGet.json").read_text(encoding="utf-8"))


def _info(doc: dict) -> dict:
    return doc["jingdong_pop_order_enGet_responce"]["orderDetailInfo"]["orderInfo"]


def _map(doc) -> dict:
    (order,) = map_payload(orjson.dumps(doc) if not isinstance(doc, bytes) else doc, "json", SHOP)
    Order.model_validate(order)
    return order


def _with(**changes) -> dict:
    doc = _detail()
    _info(doc).update(changes)
    return doc


def test_every_sample_has_its_expected_output():
    payloads = [p for p in SAMPLES.iterdir() if not p.name.endswith(".expected.json")]
    assert len(payloads) >= 10
    assert all((SAMPLES / (p.name[:-len(".json")] + ".expected.json")).is_file() for p in payloads)


def test_the_enget_sample_by_hand():
    got = _map(_detail())
    assert got["order_id"] == "jd:tonglu-jd-home:298765432101"  # orderId, a string (§5)
    assert (got["status"], got["refund_status"], got["platform_status"]) == \
        ("PAID", "NONE", "WAIT_SELLER_STOCK_OUT")  # §5: 等待出库 -> PAID; no refund field on the order
    # GMT+8 wall clock: 09:58:12 +08:00 is 01:58:12 UTC
    assert got["created_at"] == _utc_ms("2024-03-18T01:58:12+00:00")
    assert got["paid_at"] == _utc_ms("2024-03-18T01:58:40+00:00")
    assert got["updated_at"] == _utc_ms("2024-03-18T01:58:41+00:00")
    # 2 × "39.90" + 1 × "90.00" = 79.80 + 90.00 = 169.80 yuan = orderTotalPrice
    assert got["items_total"] == 16980
    assert (got["shipping_fee"], got["discount_total"], got["paid_total"]) == (0, 1200, 15780)  # 0.00, 12.00, 157.80
    assert 16980 + 0 - 1200 + 0 == 15780
    assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["total"]) for ln in got["lines"]] \
        == [("100012345678", "TL-MUG-350-WHT", 2, 3990, 7980), ("100012345699", "TL-TOWEL-L-GRY", 1, 9000, 9000)]
    assert got["buyer"] == {"id": "Vd3kJ8PqR2mN5tX7wZ9yA1cE4gH6iK0l", "nick_masked": "jd_***abc", "message": "请尽快发货"}
    receiver = got["receiver"]
    assert (receiver["name_masked"], receiver["address_masked"]) == (None, None)  # ciphertexts: unknown
    assert receiver["phone_masked"] == "138****1111"  # JD's own desen_mobile
    assert receiver["secure_token"] == "Hm1VYAMRVnsX1n6a9qjQwA==|Qk4p0bRh8bR1Xk0Hc2y1Dg==|" \
                                       "Wk9VZ3J4b1pxYk5Ya2d4Q2RhM0ZkYkE9PQ=="
    assert (receiver["province"], receiver["city"], receiver["district"]) == ("浙江", "杭州市", "西湖区")
    assert got["shipments"] == [] and got["shipped_at"] is None


@pytest.mark.parametrize("beijing, utc", [
    ("2024-03-19 00:00:00", "2024-03-18T16:00:00+00:00"),  # Beijing midnight is the previous UTC day
    ("2025-01-01 00:00:00", "2024-12-31T16:00:00+00:00"),  # new year in Beijing, old year in UTC
    ("2024-12-31 23:59:59", "2024-12-31T15:59:59+00:00"),
    ("2024-02-29 07:59:59", "2024-02-28T23:59:59+00:00"),  # leap day morning
    ("2024-03-19 00:00:00.0", "2024-03-18T16:00:00+00:00"),  # a Java timestamp's text
])
def test_beijing_wall_clock_to_utc(beijing, utc):
    got = _map(_with(orderStartTime=beijing, paymentConfirmTime=beijing, modified=beijing))
    assert got["created_at"] == got["paid_at"] == got["updated_at"] == _utc_ms(utc)


@pytest.mark.parametrize("price, quantity, fen", [
    (64.35, 1, 6435), (1.13, 1, 113), (0.07, 1, 7), (19.99, 3, 5997), (19.99 * 3, 1, 5997), (0.1 + 0.2, 1, 30),
    ("19.99", "3", 5997), (1, 2, 200), ("0.10", 1, 10), (1e-2, 1, 1)])
def test_money_is_exact_from_strings_integers_and_floats(price, quantity, fen):
    assert int(64.35 * 100) == 6434 and int(1.13 * 100) == 112  # the trap
    doc = _with(freightPrice=0, sellerDiscount=0.0, balanceUsed=0, orderPayment=fen / 100 if fen % 100 else fen // 100)
    _info(doc)["itemInfoList"] = [{"skuId": "100012345678", "skuName": "马克杯", "jdPrice": price, "itemTotal": quantity}]
    got = _map(doc)
    assert got["items_total"] == got["paid_total"] == fen == got["lines"][0]["total"]


def test_bare_number_ids_keep_every_digit():
    raw = orjson.dumps(_detail()).replace(b'"orderId":"298765432101"', b'"orderId":9007199254740993')
    raw = raw.replace(b'"skuId":"100012345678"', b'"skuId":18446744073709551617')  # beyond 64 bits
    got = _map(raw)
    assert got["external_id"] == "9007199254740993" and got["order_id"].endswith(":9007199254740993")
    assert got["lines"][0]["line_id"] == got["lines"][0]["sku_id"] == "18446744073709551617"
    assert got["lines"][1]["line_id"] == "100012345699"


def test_a_split_order_s_children_are_orders_of_their_own():
    """JD has no partial-shipment state: a split order's children each carry their own state."""
    sample = (SAMPLES / "pop_order_enSearch_edges.json").read_bytes()
    by_id = {o["external_id"]: o for o in map_payload(sample, "json", SHOP)}
    shipped, waiting = by_id["298755667788"], by_id["298766778900"]
    assert (shipped["status"], waiting["status"]) == ("SHIPPED", "PAID")
    assert shipped["shipments"] == [{"carrier": "顺丰速运", "tracking_no": "SF1400012345678", "shipped_at": None,
                                     "line_ids": ["100012345744"]}]


def test_several_waybills_are_several_shipments():
    got = _map(_with(orderState="WAIT_GOODS_RECEIVE_CONFIRM", waybill="78451236980001|78451236980002 ",
                     logisticsId="463"))
    assert [(s["carrier"], s["tracking_no"], s["line_ids"]) for s in got["shipments"]] == \
        [("圆通速递", "78451236980001", []), ("圆通速递", "78451236980002", [])]
    unknown = _map(_with(orderState="WAIT_GOODS_RECEIVE_CONFIRM", waybill="X1", logisticsId="999"))
    assert unknown["shipments"][0]["carrier"] == "999"  # a carrier id the table does not know stays visible


@pytest.mark.parametrize("state, waybill, expected", [
    ("LOCKED", "", ("PAID", "REQUESTED")),                     # refund before shipping
    ("LOCKED", "78451236987412", ("SHIPPED", "REQUESTED")),   # after-sale on a shipped order
    ("TRADE_CANCELED", "", ("CANCELLED", "NONE")),
    ("FINISHED_L", "78451236987412", ("COMPLETED", "NONE")),
    ("POP_ORDER_PAUSE", "", ("PAID", "NONE")),
    ("SOMETHING_NEW", "", ("UNKNOWN", "NONE")),
])
def test_refunds_before_and_after_shipping(state, waybill, expected):
    got = _map(_with(orderState=state, waybill=waybill, logisticsId="1499" if waybill else ""))
    assert (got["status"], got["refund_status"]) == expected
    assert {line["refund_status"] for line in got["lines"]} == {expected[1]}  # JD locks the whole order
    assert got["platform_status"] == state


def test_coupons_are_line_discounts_and_the_balance_is_paid_money():
    doc = _with(sellerDiscount="15.00", orderSellerPrice="154.80", freightPrice="8.00", orderPayment="132.80",
                balanceUsed="30.00")
    _info(doc)["couponDetailList"] = [
        {"orderId": "298765432101", "skuId": "100012345678", "couponType": "30-单品促销优惠", "couponPrice": "6.00"},
        {"orderId": "298765432101", "skuId": "100012345678", "couponType": "30-单品促销优惠", "couponPrice": "4.00"},
        {"orderId": "298765432101", "skuId": "", "couponType": "100-店铺优惠", "couponPrice": "5.00"}]
    got = _map(doc)
    assert [(ln["discount"], ln["total"]) for ln in got["lines"]] == [(1000, 6980), (0, 9000)]
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["paid_total"]) == \
        (16980, 800, 1500, 16280)  # 132.80 paid by the buyer's account + 30.00 of JD balance
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] == got["paid_total"]


def test_virtual_numbers_and_landlines_are_masked():
    doc = _detail()
    _info(doc)["consigneeInfo"]["desen_mobile"] = "170****5678-1234"
    assert _map(doc)["receiver"]["phone_masked"] == "170****5678-****"
    assert _map(doc)["receiver"]["phone_valid"] is True
    plain = json.loads((SAMPLES / "pop_order_search_plaintext.json").read_text(encoding="utf-8"))
    consignee = plain["jingdong_pop_order_search_responce"]["searchorderinfo_result"]["orderInfoList"][0][
        "consigneeInfo"]
    consignee["mobile"] = "17012345678-0042"
    (order,) = map_payload(orjson.dumps(plain), "json", SHOP)
    assert order["receiver"]["phone_masked"] == "170****5678-****" and order["receiver"]["phone_valid"] is True
    consignee["mobile"] = ""
    (order,) = map_payload(orjson.dumps(plain), "json", SHOP)
    assert order["receiver"]["phone_masked"] == "057*****6666"  # the telephone, a landline
    assert order["receiver"]["phone_valid"] is False  # not a mobile


def test_plaintext_receivers_never_reach_the_canonical_order():
    world = World(seed=3)
    (sim,) = world.create_orders("s1", 1, beijing_to_ms("2024-03-18 10:00:00"))
    sim.receiver_name, sim.receiver_phone, sim.street = "欧阳娜娜", "13987654321", "文三路477号华星科技大厦"
    sim.buyer_message = "改送文三路477号，电话139 8765 4321"
    plain_body = orjson.dumps(list_answer([order_info(sim, plaintext=True)], 1, "jingdong.pop.order.search"))
    secrets = ("欧阳娜娜", "13987654321", "8765 4", "文三路477号", "华星科技大厦")
    assert all(s in plain_body.decode() for s in secrets)
    (order,) = map_payload(plain_body, "json", "s1")
    text = json.dumps(order, ensure_ascii=False)
    assert not [s for s in secrets if s in text]
    assert order["receiver"]["name_masked"] == "欧***" and order["receiver"]["phone_masked"] == "139****4321"
    assert order["receiver"]["address_masked"] == "文三***********" and order["receiver"]["address_vague"] is False
    assert order["buyer"]["message"] == "改送文三路***号，电话139****4321"
    cipher_body = orjson.dumps(list_answer([order_info(sim)], 1))
    assert not [s for s in ("欧阳娜娜", "13987654321", "华星科技大厦") if s in cipher_body.decode()]  # ciphertexts
    (order,) = map_payload(cipher_body, "json", "s1")
    assert not [s for s in secrets if s in json.dumps(order, ensure_ascii=False)]


def test_municipalities_are_filed_with_their_districts():
    doc = _detail()
    _info(doc)["consigneeInfo"].update(province="北京", city="朝阳区", county="三环到四环之间")
    assert [_map(doc)["receiver"][k] for k in ("province", "city", "district")] == ["北京", "北京市", "朝阳区"]
    _info(doc)["consigneeInfo"].update(province="上海", city="上海市", county="浦东新区")  # the other filing
    assert [_map(doc)["receiver"][k] for k in ("province", "city", "district")] == ["上海", "上海市", "浦东新区"]


def test_empty_pages():
    empty = (SAMPLES / "pop_order_enSearch_empty.json").read_bytes()
    assert map_payload(empty, "json", SHOP) == []
    silent = b'{"jingdong_pop_order_enSearch_responce":{"code":"0","searchorderinfo_result":{"apiResult":' \
             b'{"success":true},"orderTotal":3}}}'
    with pytest.raises(MappingError, match="does not say the page is empty"):
        map_payload(silent, "json", SHOP)


@pytest.mark.parametrize("body, fragment", [
    (b'{"jingdong_pop_order_enGet_responce": {"code": "0", "orderDetailInfo": {"orderInfo": {"orderId": "1"', "malformed"),
    (b"[1, 2]", "top level is list"),
    (b'{"orderInfoList": []}', "not a JOS answer"),
    (b'{"a_responce": {}, "b_responce": {}}', "not a JOS answer"),
    (b'{"jingdong_pop_order_enGet_responce": []}', "is not an object"),
    (b'{"jingdong_pop_order_enGet_responce": {"code": "66", "zh_desc": "\xe9\x99\x90\xe6\xb5\x81"}}', "code=66"),
    (b'{"error_response": {"code": "29", "en_desc": "Invalid signature"}}', "code=29"),
    (b'{"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result": {"orderInfoList": {}}}}',
     "orderInfoList is not a list"),
    (b'{"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result": {"orderTotal": "x"}}}',
     "orderTotal is not an integer"),
    ((b'{"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result": {"apiResult": '
     b'{"success": "false", "numberCode": 10401, "chineseErrCode": "x"}}}}'), "numberCode=10401"),
])
def test_bad_answers_are_refused_in_one_line(body, fragment):
    with pytest.raises(MappingError, match=fragment) as refused:
        map_payload(body, "json", SHOP)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("change, fragment", [
    (lambda o: o.pop("orderId"), "orderId"),
    (lambda o: o.update(orderId="29876x"), "not an integer id"),
    (lambda o: o.pop("orderState"), "orderState"),
    (lambda o: o.update(modified=""), "modified"),
    (lambda o: o.pop("orderPayment"), "orderPayment"),
    (lambda o: o.pop("itemInfoList"), "summary without itemInfoList"),
    (lambda o: o.update(itemInfoList={"skuId": "1"}), "must be a list"),
    (lambda o: o.update(itemInfoList=["x"]), "not an object"),
    (lambda o: o["itemInfoList"][0].pop("jdPrice"), "jdPrice"),
    (lambda o: o["itemInfoList"][0].pop("skuId"), "skuId"),
    (lambda o: o["itemInfoList"][0].update(itemTotal="1.5"), "whole quantity"),
    (lambda o: o["itemInfoList"][0].update(itemTotal=2.0), "whole quantity"),
    (lambda o: o.update(orderPayment="157,80"), "money"),
    (lambda o: o.update(orderPayment=True), "money"),
    (lambda o: o.update(orderStartTime="18/03/2024 09:58"), "Beijing time"),
    (lambda o: o.update(orderStartTime=1710727092), "Beijing time"),
    (lambda o: o.update(orderStartTime="2024-03-18 09:58:12.x"), "Beijing time"),
    (lambda o: o.update(couponDetailList="none"), "couponDetailList is not a list"),
    (lambda o: o.update(couponDetailList=[{"skuId": "100012345678", "couponPrice": "x"}]), "money"),
])
def test_broken_orders_are_refused_with_the_reason(change, fragment):
    doc = _detail()
    change(_info(doc))
    with pytest.raises(MappingError, match=fragment):
        map_payload(orjson.dumps(doc), "json", SHOP)


def test_xml_is_not_a_jos_answer():
    with pytest.raises(MappingError, match="JSON"):
        map_payload(b"<jingdong_pop_order_enGet_responce/>", "xml", SHOP)


def test_a_page_is_all_or_nothing():
    doc = json.loads((SAMPLES / "pop_order_enSearch.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(doc)
    del broken["jingdong_pop_order_enSearch_responce"]["searchorderinfo_result"]["orderInfoList"][2]["itemInfoList"]
    assert len(map_payload(orjson.dumps(doc), "json", SHOP)) == 3
    with pytest.raises(MappingError, match="298699887766 is a summary"):
        map_payload(orjson.dumps(broken), "json", SHOP)
