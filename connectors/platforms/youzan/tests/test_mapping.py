"""The Youzan mapping on recorded and hand-made payloads: times, money, ids, shipments, refunds, receivers,
summaries and broken bodies."""
import copy
import json
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from schemas.canonical import MappingError
from schemas.model import Order

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _detail() -> dict:
    return json.loads((SAMPLES / "trade_get_partial_shipment.json").read_text())


def _listed() -> dict:
    return json.loads((SAMPLES / "trades_sold_get_4.0.4.json").read_text())


def _map(doc, shop="s") -> list[dict]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    orders = map_payload(body, "json", shop)
    for order in orders:
        Order.model_validate(order)
        assert order["items_total"] + order["shipping_fee"] - order["discount_total"] + order["tax_total"] \
            == order["paid_total"]
    return orders


def _utc(ms: int) -> str:
    from schemas.canonical import ms_to_iso

    return ms_to_iso(ms)


def test_the_recorded_detail_by_hand():
    """trade_get_4.0.2.json (the recorded fixture) worked out from the payload and youzan.md."""
    (got,) = _map((SAMPLES / "trade_get_4.0.2.json").read_bytes(), "tonglu-youzan-home")
    assert {k: v for k, v in got.items() if k not in ("receiver", "lines", "buyer")} == {
        "order_id": "youzan:tonglu-youzan-home:E20240318101530012345678", "platform": "youzan",
        "shop_id": "tonglu-youzan-home", "external_id": "E20240318101530012345678",
        "status": "PAID", "refund_status": "NONE",  # WAIT_SELLER_SEND_GOODS, no package yet; both lines NO_REFUND
        "platform_status": "WAIT_SELLER_SEND_GOODS",
        "created_at": 1710728130000,  # 2024-03-18 10:15:30 +08:00 = 02:15:30 UTC
        "paid_at": 1710728161000,  # 10:16:01
        "updated_at": 1710728162000,  # 10:16:02
        "shipped_at": None, "delivered_at": None, "currency": "CNY",
        "items_total": 16980,  # 2 × 39.90 + 1 × 90.00 (= pay_info.total_fee 169.80)
        "shipping_fee": 0,  # post_fee 0.00
        "discount_total": 1200,  # 169.80 − (73.80 + 84.00): the 满100减12 of order_promotion, apportioned
        "tax_total": 0, "paid_total": 15780,  # payment 157.80 = 169.80 + 0 − 12.00
        "shipments": [], "version": 0, "refunded_total": 0}
    assert got["buyer"] == {"id": "yzOpen_9f8e7d6c5b4a3210", "nick_masked": "同***", "message": None}
    assert [(line["line_id"], line["unit_price"], line["quantity"], line["total"], line["discount"])
            for line in got["lines"]] == [("2871234567890123456", 3990, 2, 7380, 600),
                                          ("2871234567890123457", 9000, 1, 8400, 600)]
    assert got["receiver"]["secure_token"] == \
        "$Jk3mN2Qw9xTq8Lr$,$Pk7eH2jM9qT4vX1zB6nC3w==$,$Zt4kQ8pW2mX6vB9nR1yL5cH3jF7gD0sK$"


def test_the_partial_shipment_detail_by_hand():
    """trade_get_partial_shipment.json worked out from the payload and youzan.md, not from the mapping."""
    (got,) = _map(_detail(), "tonglu-youzan-tea")
    assert got["external_id"] == "E20231231235959008765432"  # tid verbatim, prefix and all
    # status WAIT_SELLER_SEND_GOODS, but delivery_order already holds a package: partly shipped
    assert (got["status"], got["platform_status"]) == ("PARTIALLY_SHIPPED", "WAIT_SELLER_SEND_GOODS")
    assert got["refund_status"] == "REQUESTED"  # the socks line is FULL_REFUNDING
    # Beijing times: 2023-12-31 23:59:59 +08:00 is 15:59:59 UTC; midnight of the new year is 16:00 the day before
    assert _utc(got["created_at"]) == "2023-12-31T15:59:59.000Z"
    assert _utc(got["paid_at"]) == "2023-12-31T16:00:00.000Z"
    assert _utc(got["updated_at"]) == "2023-12-31T16:02:00.000Z"
    assert got["shipped_at"] is None and got["delivered_at"] is None  # consign_time "" until everything shipped
    # 2 × 128.00 + 3 × 29.90 = 256.00 + 89.70; line payments 250.00 + 63.70; postage 10.00; paid 323.70
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["paid_total"]) == \
        (34570, 1000, 34570 - 31370, 32370)
    assert [(line["line_id"], line["quantity"], line["unit_price"], line["total"], line["discount"],
             line["sku_id"], line["merchant_sku"], line["refund_status"]) for line in got["lines"]] == [
        ("2871234567890300001", 2, 12800, 25000, 600, "36123470", "TL-TEA-500", "NONE"),
        ("2871234567890300002", 3, 2990, 6370, 2600, None, "TL-SOCKS-5P", "REQUESTED"),  # sku_id 0: none
    ]
    assert got["shipments"] == [{"carrier": "顺丰速运", "tracking_no": "SF1402123456789", "shipped_at": None,
                                 "line_ids": ["2871234567890300001"]}]  # express_id 7
    assert got["receiver"] == {
        "name_masked": "欧***",              # 欧阳晓明
        "phone_masked": "170****5678-****",  # virtual number 17012345678 with extension 1234
        "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
        "address_masked": "文新" + "*" * 17,  # 19 characters, first 2 kept
        "postal_code": "310012", "secure_token": None,
        "phone_valid": True, "address_vague": False}
    assert got["buyer"] == {"id": "yzOpen_1a2b3c4d5e6f7a8b", "nick_masked": "茶*",
                            "message": "到了打电话 138****5678，放门卫"}
    assert got["refunded_total"] == 0


def test_the_same_order_listed_has_no_packages():
    doc = _detail()
    listed = {"trace_id": "t", "code": 200, "success": True, "message": "successful",
              "data": {"total_results": 1, "full_order_info_list": [{"full_order_info": doc["data"]["full_order_info"]}]}}
    (got,) = _map(listed)
    assert got["status"] == "PAID" and got["shipments"] == []


@pytest.mark.parametrize("text, fen", [("64.35", 6435), ("0.07", 7), ("59.97", 5997), ("1.13", 113), ("100", 10000),
                                       ("0.29", 29)])
def test_money_is_exact_from_strings_numbers_and_floats(text, fen):
    doc = _listed()
    item = doc["data"]["full_order_info_list"][1]["full_order_info"]
    for as_number in (False, True):
        value = json.loads(text) if as_number else text
        item["orders"][0].update(price=value, payment=value, total_fee=value)
        item["pay_info"].update(payment=value, total_fee=value)
        (_, got, _) = _map(doc)
        assert got["lines"][0]["unit_price"] == got["paid_total"] == fen
    assert int(json.loads("64.35") * 100) == 6434  # what the shortcut would have given


def test_a_line_of_three_at_19_99_is_59_97():
    doc = _listed()
    line = doc["data"]["full_order_info_list"][1]["full_order_info"]["orders"][0]
    line.update(num=3, price=19.99, payment=19.99 * 3, total_fee=19.99 * 3)
    doc["data"]["full_order_info_list"][1]["full_order_info"]["pay_info"].update(payment=59.97)
    (_, got, _) = _map(doc)
    assert got["lines"][0]["total"] == 5997 and got["items_total"] == 5997 and got["paid_total"] == 5997


def test_ids_above_2_to_the_53_keep_every_digit_as_bare_numbers():
    text = (SAMPLES / "trades_sold_get_4.0.4.json").read_text()
    text = text.replace('"tid": "E20240318101530012345678"', '"tid": 123456789012345678901234567')
    text = text.replace('"oid": "2871234567890123456"', '"oid": 9007199254740993')
    text = text.replace('"oid": "2871234567890123457"', '"oid": 28712345678901234567')
    first, *_ = _map(text.encode())
    assert first["external_id"] == "123456789012345678901234567"
    assert first["order_id"] == "youzan:s:123456789012345678901234567"
    assert [line["line_id"] for line in first["lines"]] == ["9007199254740993", "28712345678901234567"]


def test_refunds_before_and_after_shipping():
    doc = _listed()
    rows = doc["data"]["full_order_info_list"]
    rows[0]["full_order_info"]["orders"][1]["refund_state"] = "FULL_REFUNDING"  # paid, not shipped: asks back
    rows[1]["full_order_info"]["orders"].append(copy.deepcopy(rows[1]["full_order_info"]["orders"][0]))
    rows[1]["full_order_info"]["orders"][1].update(oid="2871234567890001112", refund_state="FULL_REFUNDED")
    rows[1]["full_order_info"]["pay_info"]["payment"] = "118.00"  # shipped; one of two pillows returned
    before, after, closed = _map(doc)
    assert (before["status"], before["refund_status"]) == ("PAID", "REQUESTED")
    assert [line["refund_status"] for line in before["lines"]] == ["NONE", "REQUESTED"]
    assert (after["status"], after["refund_status"], after["refunded_total"]) == ("SHIPPED", "PARTIALLY_REFUNDED", 5900)
    assert (closed["status"], closed["refund_status"], closed["refunded_total"]) == ("CANCELLED", "REFUNDED", 4500)


def test_the_order_level_refund_state_decides_when_no_line_says():
    doc = _listed()
    foi = doc["data"]["full_order_info_list"][2]["full_order_info"]  # refund_state 12, closed
    for line in foi["orders"]:
        del line["refund_state"]
    for state, order_refund, line_refund in ((12, "REFUNDED", "REFUNDED"), (11, "REQUESTED", "REQUESTED"),
                                             (2, "PARTIALLY_REFUNDED", "UNKNOWN"), (0, "NONE", "NONE")):
        foi["order_info"]["refund_state"] = state
        (*_, got) = _map(doc)
        assert (got["refund_status"], got["lines"][0]["refund_status"]) == (order_refund, line_refund), state


def test_a_rejected_refund_and_a_completed_order():
    (*_, success, closed_unpaid) = _map((SAMPLES / "trades_sold_get_refunds.json").read_bytes())
    assert (success["status"], success["refund_status"]) == ("COMPLETED", "REJECTED")
    assert _utc(success["delivered_at"]) == "2024-03-08T15:59:59.000Z"  # success_time, Beijing 23:59:59
    assert (closed_unpaid["status"], closed_unpaid["paid_at"]) == ("CANCELLED", None)


def test_ciphertext_receivers_stay_sealed():
    (got, *_) = _map(_listed())
    receiver = got["receiver"]
    assert receiver["secure_token"] == "$Jk3mN2Qw9xTq8Lr$,$Pk7eH2jM9qT4vX1zB6nC3w==$,$Zt4kQ8pW2mX6vB9nR1yL5cH3jF7gD0sK$"
    assert receiver["name_masked"] is receiver["phone_masked"] is receiver["address_masked"] is None
    assert receiver["phone_valid"] is None and receiver["address_vague"] is None  # nothing to judge


@pytest.mark.parametrize("tel, masked, valid", [
    ("13812345678", "138****5678", True),
    ("17012345678-1234", "170****5678-****", True),
    ("+86 170 1234 5678转5678", "170****5678-****", True),
    ("17012345678,12", "170****5678-**", True),
    ("110", "*10", False),
])
def test_plain_phones_and_virtual_numbers_are_masked(tel, masked, valid):
    doc = _listed()
    doc["data"]["full_order_info_list"][0]["full_order_info"]["address_info"]["receiver_tel"] = tel
    (got, *_) = _map(doc)
    assert (got["receiver"]["phone_masked"], got["receiver"]["phone_valid"]) == (masked, valid)
    assert tel not in json.dumps(got, ensure_ascii=False)
    assert got["receiver"]["secure_token"] == "$Jk3mN2Qw9xTq8Lr$,$Zt4kQ8pW2mX6vB9nR1yL5cH3jF7gD0sK$"


def _push(message: dict, kind: str = "trade_TradeSellerShip") -> bytes:
    msg = quote(orjson.dumps(message).decode(), safe="")
    return orjson.dumps({"client_id": "c", "id": "E1", "kdt_id": 1, "mode": 1, "msg": msg, "sendCount": 0,
                         "sign": "x", "status": "", "test": False, "type": kind, "version": 1})


def test_a_push_carrying_the_order_maps_as_its_detail_and_a_notice_to_nothing():
    detail = _detail()
    assert _map(_push(detail["data"])) == _map(detail)
    assert _map(_push({"tid": "E20231231235959008765432"}, "trade_TradeBuyerPay")) == []
    assert _map((SAMPLES / "push_refund_success.json").read_bytes()) == []
    twice = orjson.loads(_push(detail["data"]))
    twice["msg"] = quote(twice["msg"], safe="")  # encoded twice: still read
    assert _map(orjson.dumps(twice)) == _map(detail)


def _broken(edit) -> bytes:
    doc = _listed()
    edit(doc, doc["data"]["full_order_info_list"][0]["full_order_info"])
    return json.dumps(doc).encode()


@pytest.mark.parametrize("body, reason", [
    (b'{"truncated": ', "malformed JSON"),
    (b"[1, 2]", "the top level is list"),
    (b'{"unexpected": true}', "not a Youzan answer"),
    (b'{"success": true, "code": 200, "data": null}', "youzan error code=200"),
    (b'{"success": true, "code": 200, "data": {"total_results": 3}}', "does not say it is empty"),
    (b'{"success": true, "data": {"full_order_info_list": {"a": 1}}}', "full_order_info_list must be a list"),
    (b'{"success": true, "data": {"full_order_info_list": [1]}}', "items must be objects"),
    (_broken(lambda d, f: f["order_info"].pop("status")), "missing required field 'status'"),
    (_broken(lambda d, f: f["order_info"].pop("tid")), "missing required field 'tid'"),
    (_broken(lambda d, f: f["order_info"].update(created="2024/03/18 10:15:30")), "not a Beijing time"),
    (_broken(lambda d, f: f["order_info"].update(created=1710728130)), "not a Beijing time"),
    (_broken(lambda d, f: f["orders"][0].update(num="two")), "num is not an integer"),
    (_broken(lambda d, f: f["orders"][0].update(price="abc")), "not a money amount"),
    (_broken(lambda d, f: f["orders"][0].update(price=True)), "not a money amount"),
    (_broken(lambda d, f: f.update(orders={"oid": 1})), "orders must be a list"),
    (_broken(lambda d, f: f.pop("pay_info")), "pay_info.payment"),
    (_broken(lambda d, f: f.update(order_info=[])), "order_info must be an object"),
    (_broken(lambda d, f: f["orders"][0].update(oid=1.5)), "oid lost precision"),
    (_broken(lambda d, f: f["orders"][0].update(oid=[1])), "oid is not an id"),
    (b'{"client_id": "c", "type": "trade_TradeCreate", "msg": "%7Bnot"}', "msg is not URL-encoded JSON"),
    (b'{"client_id": "c", "type": "trade_TradeCreate", "msg": "%7B%7D"}', "msg names no trade"),
])
def test_broken_payloads_are_one_line_mapping_errors(body, reason):
    with pytest.raises(MappingError) as refused:
        map_payload(body, "json", "s")
    assert reason in str(refused.value) and "\n" not in str(refused.value), str(refused.value)


def test_xml_is_refused():
    with pytest.raises(MappingError, match="JSON only"):
        map_payload(b"<trades/>", "xml", "s")


def test_every_sample_keeps_the_amount_identity():
    for path in SAMPLES.glob("*.json"):
        if path.name.endswith(".expected.json"):
            continue
        try:
            _map(path.read_bytes())
        except MappingError:
            assert path.name.startswith("error_")
