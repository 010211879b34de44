"""Simulated orders rendered as order/get answers map back to what the simulated world says."""
import pytest

from connectors.simkit.world import World
from tests.platform_helpers import expected_refund

from ..mapping import map_payload
from ..render import page_body, virtual_number

START = 1_735_660_000_000  # 2024-12-31 23:46:40 Beijing: lives run across midnight and the new year


def _world(count: int = 400, seed: int = 5):
    world = World(seed=seed)
    orders = world.create_orders("rt", count, START, paid=False)
    for n, order in enumerate(orders):
        for step in range(n % 9):
            world.step(order, START + (step + 1) * 61_000)
    return orders


@pytest.mark.parametrize("plaintext", [False, True])
def test_every_simulated_order_maps_back(plaintext):
    orders = _world()
    mapped = {o["external_id"]: o for o in map_payload(page_body(orders, plaintext), "json", "rt")}
    assert set(mapped) == {o.external_id for o in orders}
    seen_status, seen_refund = set(), set()
    for sim in orders:
        got = mapped[sim.external_id]
        assert got["status"] == sim.status
        assert got["refund_status"] == ("REFUNDED" if sim.status == "CANCELLED" and sim.paid_at is not None
                                        else expected_refund([line.refund_status for line in sim.lines]))
        assert [line["refund_status"] for line in got["lines"]] == [line.refund_status for line in sim.lines]
        assert got["refunded_total"] == sim.refunded_total
        assert (got["paid_total"], got["items_total"], got["shipping_fee"]) == \
            (sim.paid_total, sim.items_total, sim.shipping_fee)
        assert got["items_total"] + got["shipping_fee"] - got["discount_total"] == got["paid_total"]
        assert [(line["line_id"], line["quantity"], line["total"]) for line in got["lines"]] == \
            [(line.line_id, line.quantity, line.total) for line in sim.lines]
        shipped = {line.line_id: line.tracking_no for line in sim.lines if line.tracking_no}
        assert {lid: s["tracking_no"] for s in got["shipments"] for lid in s["line_ids"]} == shipped
        assert got["shipped_at"] == (min(line.shipped_at for line in sim.lines if line.shipped_at) // 1000 * 1000
                                     if shipped else None)
        if sim.status in ("DELIVERED", "COMPLETED"):
            assert got["delivered_at"] == sim.delivered_at // 1000 * 1000
        assert got["receiver"]["phone_valid"] is True and got["receiver"]["address_vague"] is False
        if virtual_number(sim) and not plaintext:
            assert got["receiver"]["phone_masked"].endswith(virtual_number(sim)[-5:])  # the extension kept
        seen_status.add(sim.status)
        seen_refund.update(line.refund_status for line in sim.lines)
    # the world covered every life: partial shipments, refunds asked, refused and paid, before and after shipping
    assert seen_status == {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED",
                           "CANCELLED"}
    assert seen_refund == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}


def test_amount_defects_stay_visible():
    """The amount_mismatch defect (the platform charged less than the items) breaks the amount identity."""
    world = World(seed=3)
    (odd,) = world.create_orders("rt", 1, START, defect="amount_mismatch")
    (got,) = map_payload(page_body([odd]), "json", "rt")
    assert got["paid_total"] == odd.paid_total
    assert got["items_total"] + got["shipping_fee"] - got["discount_total"] != got["paid_total"]
