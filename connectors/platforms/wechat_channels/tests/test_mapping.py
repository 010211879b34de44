"""The channels/ec mapping on recorded answers and on hand-made edge cases."""
import copy
import json
from pathlib import Path

import orjson
import pytest

from schemas.canonical import MappingError, iso_to_ms, order_json  # iso_to_ms: not used by the mapping

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SHOP = "tonglu-wechat_channels-home"


def _answer() -> dict:
    return orjson.loads((SAMPLES / "order_get.json").read_bytes())


def _map(doc, shop=SHOP) -> dict:
    (order,) = map_payload(json.dumps(doc, ensure_ascii=False).encode(), "json", shop)
    return order


def test_order_get_by_hand():
    """Worked out from the payload and wechat_channels.md, not recorded from the mapping."""
    got = _map(_answer())
    expected = {
        "order_id": f"wechat_channels:{SHOP}:3718421563829481254", "platform": "wechat_channels", "shop_id": SHOP,
        "external_id": "3718421563829481254",
        "status": "PAID", "refund_status": "NONE", "platform_status": "20",  # §5: 20 待发货 -> PAID
        # Unix seconds: 1710728100 = 2024-03-18 10:15:00 Beijing = 02:15:00 UTC
        "created_at": iso_to_ms("2024-03-18T10:15:00+08:00"),
        "paid_at": iso_to_ms("2024-03-18T10:16:00+08:00"),     # pay_info.pay_time 1710728160
        "updated_at": iso_to_ms("2024-03-18T10:16:01+08:00"),  # update_time 1710728161
        "shipped_at": None, "delivered_at": None,            # no delivery_product_info, ship_done_time 0
        "currency": "CNY",
        "items_total": 16980,     # 2 × 3990 + 1 × 9000 fen (= product_price)
        "shipping_fee": 0,        # freight 0
        "discount_total": 1200,   # discounted_price 1200 + change_down_price 0
        "tax_total": 0,
        "paid_total": 15780,      # order_price; 16980 + 0 − 1200 + 0 = 15780
        "buyer": {"id": "oZx1a5Ff9cXqR2mN8tK3pL7vB0wE", "nick_masked": None, "message": None},  # openid; notes ""
        "receiver": {
            "name_masked": "张*", "phone_masked": "138****1111",  # WeChat's own masks kept
            "country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
            # detail_info "文新街道" + "文***路***号" (4 + 9 = 13 chars): first 2 kept, 11 stars
            "address_masked": "文新" + "*" * 11,
            "postal_code": "310012", "secure_token": "c8b1e6a0f3d24b7a9e5f1c2d3b4a5968",  # hash_code
            "phone_valid": True, "address_vague": False,
        },
        "lines": [
            # real_price per unit: 2 × 3690 + 8400 = 15780 = order_price − freight
            {"line_id": "1000009876543201", "sku_id": "1000009876543201", "merchant_sku": "TL-MUG-350-WHT",
             "title": "同路陶瓷马克杯 350ml", "quantity": 2, "unit_price": 3990, "total": 7380, "discount": 600,
             "refund_status": "NONE"},
            {"line_id": "1000009876543301", "sku_id": "1000009876543301", "merchant_sku": "TL-TOWEL-L-GRY",
             "title": "同路纯棉浴巾 大号", "quantity": 1, "unit_price": 9000, "total": 8400, "discount": 600,
             "refund_status": "NONE"},
        ],
        "shipments": [], "version": 0, "refunded_total": 0,
    }
    assert got == expected


def test_batch_sample_virtual_number_shipment_and_refund_by_hand():
    body = (SAMPLES / "order_get_batch_for_list.json").read_bytes()
    _, shipped, cancelled = map_payload(body, "json", SHOP)
    # a virtual number with its extension: the number masked, the extension kept
    assert shipped["receiver"]["phone_masked"] == "139****2222-8512" and shipped["receiver"]["phone_valid"] is True
    assert "13900002222" not in json.dumps(shipped)
    assert (shipped["status"], shipped["platform_status"]) == ("SHIPPED", "30")
    assert shipped["shipments"] == [{"carrier": "中通快递", "tracking_no": "78451236987412",
                                     "shipped_at": iso_to_ms("2024-03-18T09:40:00+08:00"),  # delivery_time 1710726000
                                     "line_ids": ["1000009876543401"]}]
    assert shipped["shipped_at"] == iso_to_ms("2024-03-18T09:40:00+08:00")
    # 200: every item after-sold, then cancelled; the line finished its after-sale (1 of 1)
    assert (cancelled["status"], cancelled["refund_status"]) == ("CANCELLED", "REFUNDED")
    assert cancelled["lines"][0]["refund_status"] == "REFUNDED" and cancelled["refunded_total"] == 4500


@pytest.mark.parametrize("name", ["order_list_get.json", "push_order_pay.json"])
def test_summaries_carry_no_order(name):
    """An ids-only list page and a push name orders; the client reads each with order/get."""
    assert map_payload((SAMPLES / name).read_bytes(), "json", SHOP) == []


def test_a_push_in_xml_carries_no_order():
    body = (b"<xml><ToUserName><![CDATA[gh_0a1b2c3d4e5f]]></ToUserName><CreateTime>1710728160</CreateTime>"
            b"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[channels_ec_order_pay]]></Event>"
            b"<order_info><order_id>3718421563829481254</order_id></order_info></xml>")
    assert map_payload(body, "xml", SHOP) == []


def test_beijing_midnight_and_the_new_year():
    doc = _answer()
    doc["order"].update(create_time=1735660800, update_time=1735660799)  # 2025-01-01 00:00:00 / 2024-12-31 23:59:59
    doc["order"]["order_detail"]["pay_info"]["pay_time"] = 1735660801
    got = order_json(_map(doc))
    assert got["created_at"] == "2024-12-31T16:00:00.000Z"
    assert got["updated_at"] == "2024-12-31T15:59:59.000Z"
    assert got["paid_at"] == "2024-12-31T16:00:01.000Z"


def test_money_is_exact_from_strings_and_floats_that_break_int_times_100():
    doc = _answer()
    products = doc["order"]["order_detail"]["product_infos"]
    price = doc["order"]["order_detail"]["price_info"]
    # amounts computed from yuan floats: int(64.35 * 100) is 6434, int(19.99 * 3 * 100) is 5996
    products[0].update(sku_cnt=3, sale_price=19.99 * 3 * 100 / 3, real_price="1999")
    products[1].update(sale_price=64.35 * 100, real_price=6435.0)
    price.update(freight=0.07 * 100, discounted_price="0", order_price=19.99 * 3 * 100 + 6435 + 7)
    got = _map(doc)
    assert [line["unit_price"] for line in got["lines"]] == [1999, 6435]
    assert [line["total"] for line in got["lines"]] == [5997, 6435]
    assert (got["items_total"], got["shipping_fee"], got["discount_total"], got["paid_total"]) == (12432, 7, 0, 12439)


def test_ids_above_2_53_as_bare_numbers_keep_their_digits():
    doc = _answer()
    doc["order"]["order_id"] = 9_007_199_254_740_993  # 2^53 + 1: a double would make it ...992
    doc["order"]["order_detail"]["product_infos"][0]["sku_id"] = 18_446_744_073_709_551_617  # beyond 64 bits
    got = _map(doc)
    assert got["external_id"] == "9007199254740993" and got["order_id"].endswith(":9007199254740993")
    assert got["lines"][0]["line_id"] == "18446744073709551617"


def test_real_price_given_per_line_is_recognised():
    doc = _answer()
    doc["order"]["order_detail"]["product_infos"][0]["real_price"] = 7380  # 2 × 3690 as the line's total
    got = _map(doc)
    assert [line["total"] for line in got["lines"]] == [7380, 8400]
    assert [line["discount"] for line in got["lines"]] == [600, 600]


def _shipped_partly() -> dict:
    doc = _answer()
    doc["order"]["status"] = 21
    doc["order"]["order_detail"]["delivery_info"]["delivery_product_info"] = [
        {"waybill_id": "SF1400000000001", "delivery_id": "SF", "delivery_time": 1710800000, "deliver_type": 1,
         "product_infos": [{"product_id": "10000098765432", "sku_id": "1000009876543201", "product_cnt": 2}]}]
    return doc


def test_partial_shipment():
    got = _map(_shipped_partly())
    assert (got["status"], got["shipped_at"]) == ("PARTIALLY_SHIPPED", 1710800000 * 1000)
    # no delivery_name: the manifest's carrier table names SF
    assert got["shipments"] == [{"carrier": "顺丰速运", "tracking_no": "SF1400000000001",
                                 "shipped_at": 1710800000 * 1000, "line_ids": ["1000009876543201"]}]
    doc = _shipped_partly()
    doc["order"]["status"] = 30
    doc["order"]["order_detail"]["delivery_info"]["delivery_product_info"].append(
        {"waybill_id": "YT7000000000002", "delivery_id": "YTO", "delivery_name": "圆通速递", "delivery_time": 1710900000,
         "product_infos": [{"product_id": "10000098765433", "sku_id": "1000009876543301", "product_cnt": 1}]})
    got = _map(doc)
    assert got["status"] == "SHIPPED" and [s["line_ids"] for s in got["shipments"]] == [
        ["1000009876543201"], ["1000009876543301"]]
    doc["order"]["order_detail"]["delivery_info"]["ship_done_time"] = 1711000000
    got = _map(doc)
    assert (got["status"], got["delivered_at"], got["platform_status"]) == ("DELIVERED", 1711000000 * 1000,
                                                                            "30/ship_done")
    doc["order"]["status"] = 100  # completed: no "100/ship_done" in the table, the status stays as it is
    got = _map(doc)
    assert (got["status"], got["delivered_at"], got["platform_status"]) == ("COMPLETED", 1711000000 * 1000, "100")


def _after_sale(doc, status: str, counts: list[tuple[int, int]]) -> dict:
    doc = copy.deepcopy(doc)
    detail = doc["order"]["order_detail"]
    for product, (on, done) in zip(detail["product_infos"], counts, strict=True):
        product.update(on_aftersale_sku_cnt=on, finish_aftersale_sku_cnt=done)
    detail["aftersale_detail"] = {"on_aftersale_order_cnt": int(any(on for on, _ in counts)),
                                  "aftersale_order_list": [{"aftersale_order_id": "4000000123456789012",
                                                            "status": status}]}
    return doc


@pytest.mark.parametrize("status, counts, order_refund, line_refunds, refunded", [
    # before shipping: the buyer asks for the mug's money back
    ("MERCHANT_PROCESSING", [(2, 0), (0, 0)], "REQUESTED", ["REQUESTED", "NONE"], 0),
    ("MERCHANT_REJECT_REFUND", [(2, 0), (0, 0)], "REJECTED", ["REJECTED", "NONE"], 0),
    ("MERCHANT_REFUND_SUCCESS", [(0, 2), (0, 0)], "PARTIALLY_REFUNDED", ["REFUNDED", "NONE"], 7380),
    # one of two mugs returned
    ("MERCHANT_RETURN_SUCCESS", [(0, 1), (0, 0)], "PARTIALLY_REFUNDED", ["PARTIALLY_REFUNDED", "NONE"], 3690),
    ("USER_CANCELD", [(0, 0), (0, 0)], "NONE", ["NONE", "NONE"], 0),
    # an after-sale order whose lines the counts do not name: the whole order is in it
    ("MERCHANT_WAIT_RECEIPT", [(0, 0), (0, 0)], "REQUESTED", ["REQUESTED", "REQUESTED"], 0),
    ("SOMETHING_NEW", [(0, 0), (0, 0)], "UNKNOWN", ["UNKNOWN", "UNKNOWN"], 0),
])
def test_refunds_before_shipping(status, counts, order_refund, line_refunds, refunded):
    got = _map(_after_sale(_answer(), status, counts))
    assert got["refund_status"] == order_refund
    assert [line["refund_status"] for line in got["lines"]] == line_refunds
    assert got["refunded_total"] == refunded and got["status"] == "PAID"


def test_refunds_after_shipping_and_the_cancelled_order():
    shipped = _shipped_partly()
    shipped["order"]["status"] = 30
    got = _map(_after_sale(shipped, "USER_WAIT_RETURN", [(1, 1), (0, 0)]))  # one mug back, one on its way
    assert (got["status"], got["refund_status"]) == ("SHIPPED", "REQUESTED")
    assert got["lines"][0]["refund_status"] == "REQUESTED"
    got = _map(_after_sale(shipped, "MERCHANT_RETURN_SUCCESS", [(0, 2), (0, 1)]))
    assert (got["refund_status"], got["refunded_total"]) == ("REFUNDED", 15780)
    cancelled = _answer()
    cancelled["order"]["status"] = 200  # no after-sale detail at all: 200 still says every item was refunded
    got = _map(cancelled)
    assert (got["status"], got["refund_status"], got["refunded_total"]) == ("CANCELLED", "REFUNDED", 15780)
    assert {line["refund_status"] for line in got["lines"]} == {"REFUNDED"}


def test_receivers_in_clear_are_masked_and_buyer_notes_too():
    doc = _answer()
    address = doc["order"]["order_detail"]["delivery_info"]["address_info"]
    address.update(user_name="张伟", tel_number="13812341111", detail_info="文新街道文三路477号华星科技大厦")
    doc["order"]["order_detail"]["ext_info"]["customer_notes"] = "到了打电话 139 8765 4321，放3号楼"
    got = _map(doc)
    text = json.dumps(got, ensure_ascii=False)
    for secret in ("张伟", "13812341111", "文三路477", "8765 4321"):
        assert secret not in text
    assert got["receiver"]["phone_masked"] == "138****1111" and got["receiver"]["name_masked"] == "张*"
    assert got["buyer"]["message"] == "到了打电话 139****4321，放*号楼"


@pytest.mark.parametrize("body, fragment", [
    (b'{"errcode": 0, "errmsg": "ok", "order": {"order_id": "1"', "malformed JSON"),
    (b'{"errcode": 42001, "errmsg": "access_token expired"}', "errcode=42001"),
    (b'{"errcode": 0, "errmsg": "ok"}', "not a channels/ec order answer"),
    (b"[1, 2]", "not an order/get answer"),
    (b'{"responses": {"order": {}}}', "not a list"),
    (b'{"order": []}', "not an object"),
    (b'{"order_id_list": "1,2"}', "not a list"),
    (b"<trade><id>1</id></trade>", "not a WeChat XML message"),
])
def test_wrong_shapes_are_refused_with_a_reason(body, fragment):
    with pytest.raises(MappingError, match=fragment):
        map_payload(body, "xml" if body[:1] == b"<" else "json", SHOP)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda o: o.pop("order_id"), "order_id"),
    (lambda o: o.pop("status"), "status"),
    (lambda o: o.update(status="待发货"), "status"),
    (lambda o: o.pop("order_detail"), "order_detail"),
    (lambda o: o.update(create_time=1710728100000), "Unix seconds"),
    (lambda o: o["order_detail"]["price_info"].pop("order_price"), "order_price"),
    (lambda o: o["order_detail"]["price_info"].update(order_price="157.80元"), "fen"),
    (lambda o: o["order_detail"]["product_infos"][0].pop("sku_cnt"), "sku_cnt"),
    (lambda o: o["order_detail"]["product_infos"][0].update(sku_cnt=1.5), "sku_cnt"),
    (lambda o: o["order_detail"].update(product_infos={"sku_id": "1"}), "must be a list"),
    (lambda o: o["order_detail"]["delivery_info"].update(delivery_product_info=[1]), "not an object"),
])
def test_broken_orders_are_refused_with_a_reason(mutate, fragment):
    doc = _answer()
    mutate(doc["order"])
    with pytest.raises(MappingError, match=fragment) as refused:
        _map(doc)
    assert "\n" not in str(refused.value)


def test_delivered_from_ship_done_time_is_the_manifests_to_change(monkeypatch):
    """Whether ship_done_time means "signed for" is unverified: the manifest's "30/ship_done" entry says."""
    from .. import mapping

    doc = _shipped_partly()
    doc["order"]["status"] = 30
    doc["order"]["order_detail"]["delivery_info"]["ship_done_time"] = 1711000000
    assert _map(doc)["status"] == "DELIVERED"
    monkeypatch.setitem(mapping.ORDER_STATUS, "30/ship_done", "SHIPPED")
    assert (_map(doc)["status"], _map(doc)["platform_status"]) == ("SHIPPED", "30/ship_done")
    monkeypatch.delitem(mapping.ORDER_STATUS, "30/ship_done")
    assert (_map(doc)["status"], _map(doc)["platform_status"]) == ("SHIPPED", "30")
