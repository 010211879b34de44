"""Simulated orders through their whole lives, rendered as Xiaohongshu captures, map back to what the
World meant: status, refunds, amounts, times, packages."""
import random
from collections import Counter

from connectors.simkit.world import World
from schemas.canonical import ORDER_STATUSES, beijing_to_ms
from tests.platform_helpers import expected_refund

from ..mapping import map_payload
from ..render import page_body, virtual_number, xhs_order_id

START = beijing_to_ms("2024-12-31 23:30:00")  # lives that cross Beijing midnight and the new year
EXPECTED_STATUS = {"DELIVERED": "SHIPPED"}
LINE_FIELDS = ("line_id", "merchant_sku", "quantity", "unit_price", "discount", "total", "refund_status")  # no delivered state: 待收货 until the buyer confirms


def _lives():
    world, rng, clock = World(seed=2025, id_factory=xhs_order_id), random.Random(8), START
    orders = world.create_orders("shop-rt", 120, START) + world.create_orders("shop-rt", 80, START, paid=False)
    for order in orders:  # each order a random number of steps, a few seconds to ten minutes apart
        for clock in sorted(clock + rng.randrange(1000, 600_000) * (n + 1) for n in range(rng.randrange(0, 7))):
            world.step(order, clock)
    return orders


ORDERS = _lives()


def test_lifecycles_cover_every_status_and_refund_more_than_once():
    statuses = Counter(o.status for o in ORDERS)
    refunds = Counter(line.refund_status for o in ORDERS for line in o.lines)
    assert set(statuses) == set(ORDER_STATUSES) and min(statuses.values()) >= 2, statuses
    assert set(refunds) == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"} and min(refunds.values()) >= 2, refunds


def test_roundtrip():
    mapped = map_payload(page_body(ORDERS), "json", "shop-rt")
    assert len(mapped) == len(ORDERS) == 200
    for order, got in zip(ORDERS, mapped, strict=True):
        assert got["external_id"] == order.external_id and got["external_id"].startswith("P")
        assert got["status"] == EXPECTED_STATUS.get(order.status, order.status)
        assert got["refund_status"] == expected_refund([line.refund_status for line in order.lines])
        assert (got["paid_total"], got["items_total"], got["shipping_fee"]) == \
            (order.paid_total, order.items_total, order.shipping_fee)
        assert got["discount_total"] == order.line_discounts + order.order_discount
        assert got["refunded_total"] == order.refunded_total
        assert (got["created_at"], got["paid_at"], got["updated_at"], got["shipped_at"]) == \
            (order.created_at, order.paid_at, order.updated_at, order.shipped_at)
        assert [{k: ln[k] for k in LINE_FIELDS} for ln in got["lines"]] == \
            [{k: getattr(ln, k) for k in LINE_FIELDS} for ln in order.lines]
        shipped = [ln for ln in order.lines if ln.tracking_no]  # one package per waybill, its lines in order
        packages = {(ln.carrier_name, ln.tracking_no, tuple(x.line_id for x in shipped if x.tracking_no == ln.tracking_no))
                    for ln in shipped}
        assert {(s["carrier"], s["tracking_no"], tuple(s["line_ids"])) for s in got["shipments"]} == packages
        assert len(got["shipments"]) == len(packages)
        receiver = got["receiver"]
        assert (receiver["province"], receiver["city"], receiver["district"]) == \
            (order.province, order.city, order.district)
        shown = virtual_number(order.shop_id, order.receiver_phone) or order.receiver_phone
        assert receiver["phone_masked"].startswith(shown[:3] + "****" + shown[7:11]) and receiver["phone_valid"]
        assert receiver["address_vague"] is False and receiver["secure_token"]
        assert order.receiver_phone not in str(got) and order.street not in str(got)


def test_plaintext_receivers_are_judged():
    mapped = map_payload(page_body(ORDERS[:20], plaintext=True), "json", "shop-rt")
    for order, got in zip(ORDERS[:20], mapped, strict=True):
        receiver = got["receiver"]
        assert receiver["phone_masked"] == order.receiver_phone[:3] + "****" + order.receiver_phone[-4:]
        assert receiver["phone_valid"] is True and receiver["address_vague"] is False
        assert receiver["name_masked"][0] == order.receiver_name[0] and "*" in receiver["name_masked"]
