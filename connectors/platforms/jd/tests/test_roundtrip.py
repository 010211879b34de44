"""Simulated orders through every stage of their lives, rendered as JD answers, map back to canonical
orders consistent with the World (and with what JD can show of it)."""

import orjson
import pytest

from schemas.canonical import beijing_to_ms
from schemas.model import Order
from tests.platform_helpers import lived_orders, to_second

from .. import tde
from ..mapping import map_payload
from ..render import list_answer, order_info, order_state, page_body, short_province
from ..world import JdWorld

START = beijing_to_ms("2024-12-31 22:00:00")  # the lives run across Beijing's new year


ORDERS = lived_orders(JdWorld(seed=2024), "shop-rt", 150, 50, START)


def _expected(order) -> tuple[str, str]:
    """(status, refund status) as JD can show them: no partial shipment, no delivered state, refunds only
    while in progress (LOCKED)."""
    state = order_state(order)
    if state == "LOCKED":
        return ("SHIPPED" if order.status in ("SHIPPED", "DELIVERED") else "PAID"), "REQUESTED"
    return {"NOT_PAY": "PENDING_PAYMENT", "WAIT_SELLER_STOCK_OUT": "PAID", "WAIT_GOODS_RECEIVE_CONFIRM": "SHIPPED",
            "FINISHED_L": "COMPLETED", "TRADE_CANCELED": "CANCELLED"}[state], "NONE"


def test_the_lives_cover_every_stage():
    assert {o.status for o in ORDERS} >= {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED",
                                          "COMPLETED", "CANCELLED"}
    assert {line.refund_status for o in ORDERS for line in o.lines} == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}
    states = {order_state(o) for o in ORDERS}
    assert states >= {"NOT_PAY", "WAIT_SELLER_STOCK_OUT", "LOCKED", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L",
                      "TRADE_CANCELED"}
    locked = [o for o in ORDERS if order_state(o) == "LOCKED"]
    assert {o.status for o in locked} >= {"PAID", "SHIPPED"}  # refunds before and after shipping
    assert any(len({ln.tracking_no for ln in o.lines if ln.tracking_no}) > 1 for o in ORDERS)  # two packages


@pytest.mark.parametrize("plaintext", [False, True])
def test_roundtrip(plaintext):
    mapped = map_payload(page_body(ORDERS, plaintext=plaintext), "json", "shop-rt")
    assert len(mapped) == len(ORDERS) == 200
    for order, got in zip(ORDERS, mapped, strict=True):
        Order.model_validate(got)
        assert got["external_id"] == order.external_id
        assert (got["status"], got["refund_status"]) == _expected(order), order.status
        assert (got["paid_total"], got["items_total"], got["shipping_fee"]) == \
            (order.paid_total, order.items_total, order.shipping_fee)
        assert got["discount_total"] == order.line_discounts + order.order_discount
        assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] == got["paid_total"]
        assert (got["created_at"], got["paid_at"], got["updated_at"]) == \
            (to_second(order.created_at), to_second(order.paid_at), to_second(order.updated_at))
        assert got["buyer"]["id"] == order.buyer_id
        assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["discount"], ln["total"])
                for ln in got["lines"]] == \
            [(ln.line_id, ln.merchant_sku, ln.quantity, ln.unit_price, ln.discount, ln.total) for ln in order.lines]
        shipped = [ln for ln in order.lines if ln.tracking_no]
        if order.status in ("SHIPPED", "DELIVERED", "COMPLETED"):  # one logisticsId per order: the first's
            assert {(s["carrier"], s["tracking_no"]) for s in got["shipments"]} == \
                {(shipped[0].carrier_name, ln.tracking_no) for ln in shipped}
        else:
            assert got["shipments"] == []  # a partial shipment does not show before the whole order ships
        receiver = got["receiver"]
        assert (receiver["province"], receiver["city"], receiver["district"]) == \
            (short_province(order.province), order.city, order.district)  # 北京 > 北京市 > 朝阳区 too
        if plaintext:
            assert receiver["phone_masked"] == order.receiver_phone[:3] + "****" + order.receiver_phone[-4:]
            assert receiver["secure_token"] is None and receiver["address_vague"] is False
        else:  # the ciphertexts are kept for the authorised channel, which can open them
            name, phone, address = receiver["secure_token"].split("|")
            assert tde.decrypt(name) == order.receiver_name
            assert tde.decrypt(address).endswith(order.town + order.street)
            assert tde.decrypt(phone).partition("-")[0][-4:] == receiver["phone_masked"][7:11]
            assert receiver["name_masked"] is None and receiver["address_masked"] is None


def test_virtual_numbers_appear_and_are_masked():
    mapped = map_payload(page_body(ORDERS), "json", "shop-rt")
    virtual = [o for o in mapped if o["receiver"]["phone_masked"].endswith("-****")]
    assert 20 < len(virtual) < 100
    assert all(o["receiver"]["phone_masked"].startswith("170****") and o["receiver"]["phone_valid"] for o in virtual)


def test_some_orders_are_children_of_a_split_cart():
    parents = [order_info(o)["parentOrderId"] for o in ORDERS]
    assert 20 < sum(p != "0" for p in parents) < 80
    assert all(p == "0" or p != o.external_id for p, o in zip(parents, ORDERS, strict=True))


def test_optional_fields_limit_the_answer():
    info = order_info(ORDERS[0], fields=["orderId", "orderState", "modified"])
    assert set(info) == {"orderId", "orderState", "modified"}
    with pytest.raises(Exception, match="summary"):
        map_payload(orjson.dumps(list_answer([info], 1)), "json", "shop-rt")
