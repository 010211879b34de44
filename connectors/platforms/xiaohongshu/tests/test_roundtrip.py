"""Simulated orders through their whole lives, rendered as Xiaohongshu captures, map back to what the
World meant: status, refunds, amounts, times, packages."""
import random

from connectors.simkit.world import World
from schemas.canonical import beijing_to_ms

from ..mapping import map_payload
from ..render import page_body, xhs_order_id

START = beijing_to_ms("2024-12-31 23:30:00")  # lives that cross Beijing midnight and the new year
EXPECTED_STATUS = {"DELIVERED": "SHIPPED"}  # no delivered state: 待收货 until the buyer confirms


def _expected_refund(states):
    if "REQUESTED" in states:
        return "REQUESTED"
    if "REFUNDED" in states:
        return "REFUNDED" if all(s == "REFUNDED" for s in states) else "PARTIALLY_REFUNDED"
    return "REJECTED" if "REJECTED" in states else "NONE"


def _lives():
    world = World(seed=2025, id_factory=xhs_order_id)
    rng = random.Random(8)
    orders = world.create_orders("shop-rt", 120, START) + world.create_orders("shop-rt", 80, START, paid=False)
    clock = START
    for order in orders:
        for _ in range(rng.randrange(0, 7)):
            clock += rng.randrange(1000, 600_000)
            world.step(order, clock)
    return orders


ORDERS = _lives()


def test_lifecycles_cover_every_status_and_refund():
    assert {o.status for o in ORDERS} >= {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED",
                                          "COMPLETED", "CANCELLED"}
    assert {line.refund_status for o in ORDERS for line in o.lines} == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}


def test_roundtrip():
    mapped = map_payload(page_body(ORDERS), "json", "shop-rt")
    assert len(mapped) == len(ORDERS) == 200
    for order, got in zip(ORDERS, mapped, strict=True):
        assert got["external_id"] == order.external_id and got["external_id"].startswith("P")
        assert got["status"] == EXPECTED_STATUS.get(order.status, order.status)
        assert got["refund_status"] == _expected_refund([line.refund_status for line in order.lines])
        assert (got["paid_total"], got["items_total"], got["shipping_fee"]) == \
            (order.paid_total, order.items_total, order.shipping_fee)
        assert got["discount_total"] == order.line_discounts + order.order_discount
        assert got["refunded_total"] == order.refunded_total
        assert (got["created_at"], got["paid_at"], got["updated_at"], got["shipped_at"]) == \
            (order.created_at, order.paid_at, order.updated_at, order.shipped_at)
        assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["discount"], ln["total"],
                 ln["refund_status"]) for ln in got["lines"]] == \
            [(ln.line_id, ln.merchant_sku, ln.quantity, ln.unit_price, ln.discount, ln.total, ln.refund_status)
             for ln in order.lines]
        shipped = {}
        for line in order.lines:
            if line.tracking_no:
                shipped.setdefault((line.carrier_name, line.tracking_no), []).append(line.line_id)
        assert {(s["carrier"], s["tracking_no"]): s["line_ids"] for s in got["shipments"]} == shipped
        receiver = got["receiver"]
        assert (receiver["province"], receiver["city"], receiver["district"]) == \
            (order.province, order.city, order.district)
        assert receiver["phone_masked"].startswith("#") and receiver["phone_valid"] is None
        assert order.receiver_phone not in str(got) and order.street not in str(got)


def test_plaintext_receivers_are_judged():
    mapped = map_payload(page_body(ORDERS[:20], plaintext=True), "json", "shop-rt")
    for order, got in zip(ORDERS[:20], mapped, strict=True):
        receiver = got["receiver"]
        assert receiver["phone_masked"] == order.receiver_phone[:3] + "****" + order.receiver_phone[-4:]
        assert receiver["phone_valid"] is True and receiver["address_vague"] is False
        assert receiver["name_masked"][0] == order.receiver_name[0] and "*" in receiver["name_masked"]
