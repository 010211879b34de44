"""Simulated orders rendered as PDD answers map back to canonical orders consistent with the World (every
simulated defect raising its rule on the PDD shape is checked for all platforms in tests/unit/test_defects.py)."""
from schemas.canonical import beijing_to_ms
from tests.platform_helpers import to_second

from ..mapping import map_payload
from ..render import page_body, virtual_number
from ..simulator import PddWorld

START = beijing_to_ms("2024-12-31 23:30:00")  # the lives of these orders cross Beijing's new year
# PDD moves an order to 已发货 with its first package; a refund (whole order) ends it like a closed trade
EXPECTED_STATUS = {"PARTIALLY_SHIPPED": "SHIPPED"}


def _world():
    """150 paid and 50 unpaid orders, each moved 0-6 steps along its life, a few minutes apart."""
    world = PddWorld(seed=2024)
    orders = world.create_orders("shop-rt", 150, START) + world.create_orders("shop-rt", 50, START, paid=False)
    for n, order in enumerate(orders):
        for step in range(n * 7 % 11 % 7):
            world.step(order, START + n * 20_000 + (step + 1) * 240_000)
    return orders


ORDERS = _world()


def test_lifecycles_cover_every_status_and_whole_order_refunds():
    assert {o.status for o in ORDERS} >= {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED",
                                          "COMPLETED", "CANCELLED"}
    assert any(len(o.lines) > 1 for o in ORDERS)
    assert {line.refund_status for o in ORDERS for line in o.lines} == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}
    assert all(len({line.refund_status for line in o.lines}) == 1 for o in ORDERS)  # after-sales: whole order


def test_roundtrip():
    mapped = map_payload(page_body(ORDERS), "json", "shop-rt")
    assert len(mapped) == len(ORDERS) == 200
    for order, got in zip(ORDERS, mapped, strict=True):
        refunds = {line.refund_status for line in order.lines}
        assert got["external_id"] == order.external_id
        assert got["status"] == EXPECTED_STATUS.get(order.status, order.status), order
        assert got["refund_status"] == refunds.pop()
        assert got["paid_total"] == order.paid_total and got["items_total"] == order.items_total
        assert got["discount_total"] == order.order_discount and got["shipping_fee"] == order.shipping_fee
        assert got["created_at"] == to_second(order.created_at) and got["paid_at"] == to_second(order.paid_at)
        assert got["updated_at"] == to_second(order.updated_at) and got["shipped_at"] == to_second(order.shipped_at)
        assert got["receiver"]["province"] == order.province and got["receiver"]["district"] == order.district
        phone = virtual_number(order) or order.receiver_phone
        assert got["receiver"]["phone_masked"][-4:] == ("****" if "-" in phone else phone[-4:])
        assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["total"])
                for ln in got["lines"]] == \
            [(ln.line_id, ln.merchant_sku, ln.quantity, ln.unit_price, ln.total) for ln in order.lines]
        packages = {ln.tracking_no for ln in order.lines if ln.tracking_no}
        assert {s["tracking_no"] for s in got["shipments"]} == packages
        assert all(s["carrier"] for s in got["shipments"])


def test_ids_dates_and_virtual_numbers_look_like_pdds():
    day = "241231" if ORDERS[0].created_at < beijing_to_ms("2025-01-01 00:00:00") else "250101"
    assert ORDERS[0].external_id.startswith(day + "-") and len(ORDERS[0].external_id) == 22
    virtual = [virtual_number(o) for o in ORDERS if virtual_number(o)]
    assert 20 < len(virtual) < 90 and all(v.startswith("170") and v[11] == "-" for v in virtual)
