"""The shared simulated world, shaped the way Kuaishou keeps orders.

- One item per order: a cart of several SKUs becomes several orders with their own `oid`, paid
  together (same buyer, receiver and payTime); the cart's shipping fee rides on its first order.
- Order ids are 16-digit int64s above 2^53 (JavaScript loses their last digits).
- Some receivers have a virtual (privacy) number with an extension, `17012345678-1234`.
- An item of several pieces may leave in two packages (a split delivery): the first package makes the
  order PARTIALLY_SHIPPED, the second SHIPPED. The packages' tracking numbers and carrier codes are kept
  comma-separated in the line, so a saved world keeps them.
"""
from __future__ import annotations

import copy

from connectors.simkit import catalog
from connectors.simkit.world import SimOrder, World, new_order

OID_LOW, OID_HIGH = 9_007_199_254_740_993, 9_999_999_999_999_999  # 16 digits, above 2^53
VIRTUAL_PREFIXES = ("170", "171", "165", "167")
VIRTUAL_SHARE = 0.2


def kuaishou_oid(rng) -> str:
    return str(rng.randrange(OID_LOW, OID_HIGH))


def packages(value: str | None) -> list[str]:
    """The comma-separated package values of a line (tracking numbers, carrier codes or names)."""
    return value.split(",") if value else []


class KuaishouWorld(World):
    """A World whose orders hold one item each (see the module docstring)."""

    def __init__(self, seed: int = 7):
        super().__init__(seed=seed, region="CN", currency="CNY", id_factory=kuaishou_oid)

    def create_orders(self, shop_id: str, count: int, now_ms: int, paid: bool = True,
                      defect: str | None = None) -> list[SimOrder]:
        """`count` new orders; consecutive ones may come from one cart (one order per SKU)."""
        if defect is not None:
            return super().create_orders(shop_id, count, now_ms, paid, defect)
        self.ensure_shop(shop_id)
        made: list[SimOrder] = []
        with self._lock:
            while len(made) < count:
                cart = new_order(self.rng, shop_id, now_ms, self.region, self.currency, self.id_factory)
                if self.rng.random() < VIRTUAL_SHARE:
                    cart.receiver_phone = (self.rng.choice(VIRTUAL_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
                                           + f"-{self.rng.randrange(10**4):04d}")
                for n, line in enumerate(cart.lines[: count - len(made)]):
                    order = copy.copy(cart)
                    if n:
                        order.external_id, order.shipping_fee = self.id_factory(self.rng), 0
                    order.lines = [line]
                    made.append(self.add(order, paid, now_ms))
        return made

    def add(self, order: SimOrder, paid: bool, now_ms: int) -> SimOrder:
        """Register an order; one with several lines (a defect's background) keeps its first item."""
        del order.lines[1:]
        order.lines[0].line_id = str(self.rng.randrange(10**11, 10**12))  # orderItemId, an id of its own
        return super().add(order, paid, now_ms)

    def _apply(self, order: SimOrder, name: str, now_ms: int) -> None:
        line = order.lines[0] if len(order.lines) == 1 else None
        if name == "ship_part" and line and line.quantity > 1 and line.shipped_at is None \
                and line.refund_status != "REFUNDED":
            super()._apply(order, "ship", now_ms)  # the first package
            order.status = "PARTIALLY_SHIPPED"
            return
        if name == "ship" and line and order.status == "PARTIALLY_SHIPPED":
            self.changes += 1
            order.updated_at = max(now_ms, order.updated_at + 1000)
            code, carrier_name = self.rng.choice(catalog.CARRIERS_CN)  # the second package
            line.tracking_no += f",{self.rng.randrange(7 * 10**13, 8 * 10**13)}"
            line.carrier, line.carrier_name = f"{line.carrier},{code}", f"{line.carrier_name},{carrier_name}"
            order.status = "SHIPPED"
            return
        super()._apply(order, name, now_ms)
