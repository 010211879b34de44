"""Simulated orders that carry one defect each, named by the anomaly rule that should catch it.

Used by `tonglu sim orders --anomaly RULE` and the tests: a plain simulated order raises no finding;
one of these raises exactly its rule.
"""
from __future__ import annotations

import copy

from connectors.simkit.world import SimOrder, World, bump_id, new_order

DEFECTS = ("zero_amount", "amount_mismatch", "duplicate_order", "invalid_address", "invalid_phone",
           "price_anomaly", "quantity_spike")
HISTORY = 30  # normal orders of a SKU created first, so price and quantity statistics have a baseline


def _zero_amount(order: SimOrder) -> None:
    for line in order.lines:
        line.unit_price = line.discount = 0
    order.shipping_fee = order.tax = order.order_discount = 0


def _amount_mismatch(order: SimOrder) -> None:
    order.paid_delta = -min(500, max(order.paid_total - 1, 1))


def _invalid_address(order: SimOrder) -> None:
    if order.country == "CN":  # a real province, city and district that do not belong together
        order.province, order.city, order.district = "浙江省", "北京市", "朝阳区"
    else:
        order.postal_code = "ABC"


def _invalid_phone(order: SimOrder) -> None:
    order.receiver_phone = "110" if order.country == "CN" else "+1 911"


SIMPLE = {"zero_amount": _zero_amount, "amount_mismatch": _amount_mismatch,
          "invalid_address": _invalid_address, "invalid_phone": _invalid_phone}


def apply_defect(world: World, defect: str, shop_id: str, count: int, now_ms: int) -> list[SimOrder]:
    """Create `count` orders carrying `defect` (and the background they need); returns the defective ones."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; one of {', '.join(DEFECTS)}")
    def fresh() -> SimOrder:
        return new_order(world.rng, shop_id, now_ms, world.region, world.currency, world.id_factory)

    made = []
    with world._lock:
        if defect in SIMPLE:
            for _ in range(count):
                order = fresh()
                SIMPLE[defect](order)
                made.append(world.add(order, True, now_ms))
        elif defect == "duplicate_order":
            for _ in range(count):
                original = world.add(fresh(), True, now_ms)
                twin = copy.deepcopy(original)  # same buyer, receiver and lines, placed again
                twin.external_id = bump_id(original.external_id, 7919)
                twin.created_at = twin.paid_at = twin.updated_at = now_ms + 1000
                made.append(world.add(twin, False, now_ms))
        else:
            line = fresh().lines[0]
            for n in range(HISTORY):  # earlier buyers of the SKU at its usual price, one piece each
                normal = fresh()
                normal.created_at = normal.updated_at = now_ms - 120_000 + n * 100
                normal.lines = [copy.deepcopy(line)]
                normal.lines[0].quantity, normal.lines[0].discount = 1, 0
                world.add(normal, True, now_ms - 120_000 + n * 100)
            for _ in range(count):
                odd = fresh()
                odd.lines = [copy.deepcopy(line)]
                odd.lines[0].discount = 0
                if defect == "price_anomaly":
                    odd.lines[0].unit_price = max(1, line.unit_price // 100)
                else:
                    odd.lines[0].quantity = 500
                made.append(world.add(odd, True, now_ms))
    return made
