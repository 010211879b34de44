"""Simulated lives rendered as Douyin answers map back to what the World meant."""

import orjson

from connectors.simkit.world import World
from tests.platform_helpers import expected_refund, lived_orders, to_second

from ..mapping import map_payload
from ..render import page_body, shop_order, virtual_number
from ..simulator import douyin_order_id

START = 1_735_660_000_000  # 2024-12-31 23:46:40 Beijing: lives cross midnight and the year


ORDERS = lived_orders(World(seed=2024, id_factory=douyin_order_id), "shop-rt", 150, 150, START)


def test_lives_cover_every_state():
    assert {o.status for o in ORDERS} == {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED",
                                          "COMPLETED", "CANCELLED"}
    assert {line.refund_status for o in ORDERS for line in o.lines} == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}
    assert any(virtual_number(o) for o in ORDERS) and not all(virtual_number(o) for o in ORDERS)


def test_roundtrip():
    mapped = map_payload(page_body(ORDERS), "json", "shop-rt")
    assert len(mapped) == len(ORDERS)
    for sim, got in zip(ORDERS, mapped, strict=True):
        assert got["external_id"] == sim.external_id
        assert got["status"] == sim.status  # DELIVERED from the receipt time
        assert got["refund_status"] == expected_refund([line.refund_status for line in sim.lines])
        assert (got["created_at"], got["paid_at"], got["updated_at"], got["shipped_at"]) == \
            tuple(map(to_second, (sim.created_at, sim.paid_at, sim.updated_at, sim.shipped_at)))
        assert got["delivered_at"] == (to_second(sim.delivered_at) if sim.status in ("DELIVERED", "COMPLETED") else None)
        assert (got["items_total"], got["shipping_fee"], got["paid_total"], got["refunded_total"]) == \
            (sim.items_total, sim.shipping_fee, sim.paid_total, sim.refunded_total)
        shipped = {line.line_id: line.tracking_no for line in sim.lines if line.tracking_no}
        assert {i: s["tracking_no"] for s in got["shipments"] for i in s["line_ids"]} == shipped
        assert got["receiver"]["phone_masked"].endswith("-****") == bool(virtual_number(sim))
        assert got["receiver"]["phone_valid"] is True and got["receiver"]["address_vague"] is False
        assert sim.receiver_name not in orjson.dumps(got).decode()


def test_an_order_level_discount_is_allocated_to_the_skus():
    order = ORDERS[0]
    order.order_discount = 150
    try:
        (got,) = map_payload(orjson.dumps({"code": 10000, "data": {"shop_order_detail": shop_order(order)}}),
                             "json", "shop-rt")
    finally:
        order.order_discount = 0
    assert got["discount_total"] == order.line_discounts + 150 and got["paid_total"] == order.paid_total - 150
    assert got["items_total"] - got["discount_total"] + got["shipping_fee"] == got["paid_total"]
