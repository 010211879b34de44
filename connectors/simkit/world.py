"""Shops and orders as the platform knows them (plaintext buyer data included), with their lifecycles.

Platform simulators render these neutral orders into their own API shapes; the expected canonical
order of a simulated order is therefore known, which the conformance suite uses.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from connectors.simkit import catalog


@dataclass
class SimLine:
    line_id: str
    sku_id: str
    merchant_sku: str
    title: str
    quantity: int
    unit_price: int  # minor units
    discount: int = 0
    refund_status: str = "NONE"  # NONE, REQUESTED, REFUNDED, REJECTED
    shipped_at: int | None = None
    carrier: str | None = None
    carrier_name: str | None = None
    tracking_no: str | None = None

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price - self.discount


@dataclass
class SimOrder:
    external_id: str
    shop_id: str
    currency: str
    created_at: int
    updated_at: int
    status: str = "PENDING_PAYMENT"  # canonical status the platform state corresponds to
    paid_at: int | None = None
    shipped_at: int | None = None
    delivered_at: int | None = None
    finished_at: int | None = None
    cancelled_at: int | None = None
    buyer_id: str = ""
    buyer_nick: str = ""
    buyer_message: str = ""
    receiver_name: str = ""
    receiver_phone: str = ""
    country: str = "CN"
    province: str = ""
    city: str = ""
    district: str = ""
    town: str = ""
    street: str = ""
    postal_code: str = ""
    lines: list[SimLine] = field(default_factory=list)
    shipping_fee: int = 0
    order_discount: int = 0
    tax: int = 0
    paid_delta: int = 0  # a platform-side amount error (defect `amount_mismatch`)

    @property
    def items_total(self) -> int:
        return sum(line.quantity * line.unit_price for line in self.lines)

    @property
    def line_discounts(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def paid_total(self) -> int:
        return (self.items_total - self.line_discounts - self.order_discount + self.shipping_fee + self.tax
                + self.paid_delta)

    @property
    def refunded_total(self) -> int:
        return sum(line.total for line in self.lines if line.refund_status == "REFUNDED")


def bump_id(external_id: str, step: int = 1) -> str:
    """The id `step` further on: the trailing digits count up, a platform's prefix (Youzan `E…`) stays."""
    head = external_id.rstrip("0123456789")
    digits = external_id[len(head):] or "0"
    return head + str(int(digits) + step).zfill(len(digits))


def _big_id(rng: random.Random) -> str:
    return str(rng.randrange(2_800_000_000_000_000_000, 2_899_999_999_999_999_999))


def new_order(rng: random.Random, shop_id: str, now_ms: int, region: str = "CN", currency: str = "CNY",
              id_factory=None) -> SimOrder:
    """A freshly placed, unpaid order with 1-3 lines, realistic buyer, receiver and prices."""
    ext = id_factory(rng) if id_factory else _big_id(rng)
    products = catalog.PRODUCTS_CN if region == "CN" else catalog.PRODUCTS_INTL
    lines = []
    for n, (msku, title, price) in enumerate(rng.sample(products, rng.choice([1, 1, 2, 2, 3]))):
        qty = rng.choice([1, 1, 1, 2, 3])
        discount = rng.choice([0, 0, 0, 100 * qty, 300])
        lines.append(SimLine(line_id=f"{ext[:-3]}{n + 1:03d}" if region == "CN" else str(rng.randrange(10**10, 10**11)),
                             sku_id=str(5012345600000 + abs(hash(msku)) % 99999), merchant_sku=msku, title=title,
                             quantity=qty, unit_price=price, discount=min(discount, qty * price - 1)))
    order = SimOrder(external_id=ext, shop_id=shop_id, currency=currency, created_at=now_ms, updated_at=now_ms,
                     lines=lines)
    if region == "CN":
        province, city, district, town, street, postal = rng.choice(catalog.ADDRESSES_CN)
        order.receiver_name = rng.choice(catalog.SURNAMES) + rng.choice(catalog.GIVEN)
        order.receiver_phone = rng.choice(catalog.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        order.country, order.province, order.city, order.district, order.town = "CN", province, city, district, town
        order.street, order.postal_code = street, postal
        order.buyer_id = "AA" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789")
                                        for _ in range(22))
        order.buyer_message = rng.choice(catalog.BUYER_MESSAGES)
        order.shipping_fee = rng.choice([0, 0, 0, 600, 1000])
    else:
        first, last = rng.choice(catalog.NAMES_EN)
        street, city, province, _code, postal = rng.choice(catalog.ADDRESSES_US)
        order.receiver_name = f"{first} {last}"
        order.receiver_phone = f"+1212555{rng.randrange(10**4):04d}"
        order.country, order.province, order.city, order.street, order.postal_code = "US", province, city, street, postal
        order.buyer_id = str(rng.randrange(7_300_000_000, 7_399_999_999))
        order.buyer_nick = f"{first.lower()}.{last.lower()}@example.com"
        order.shipping_fee = rng.choice([0, 800])
        order.tax = round((order.items_total - order.line_discounts) * 0.08875)
    return order


# Lifecycle transitions: from status -> [(weight, name)]
TRANSITIONS = {
    "PENDING_PAYMENT": [(9, "pay"), (1, "cancel")],
    "PAID": [(6, "ship"), (2, "ship_part"), (1, "request_refund"), (1, "cancel")],
    "PARTIALLY_SHIPPED": [(1, "ship")],
    "SHIPPED": [(8, "deliver"), (1, "request_refund")],
    "DELIVERED": [(1, "finish")],
}


class World:
    """All simulated shops of one platform; thread-safe enough for one asyncio loop plus tests."""

    def __init__(self, seed: int = 7, region: str = "CN", currency: str = "CNY", id_factory=None):
        self.rng = random.Random(seed)
        self.region, self.currency, self.id_factory = region, currency, id_factory
        self.shops: dict[str, dict] = {}
        self.orders: dict[str, SimOrder] = {}
        self.changes = 0  # counts changes, so a saver knows when there is something to save
        self._lock = threading.Lock()

    def ensure_shop(self, shop_id: str, **settings) -> dict:
        with self._lock:
            if shop_id not in self.shops:
                self.changes += 1
            return self.shops.setdefault(shop_id, {"shop_id": shop_id, **settings})

    def restore(self, shops: dict[str, dict], orders: dict[str, SimOrder], rng_state: tuple) -> None:
        """Take over a saved world (see simkit/persistence.py)."""
        with self._lock:
            self.shops, self.orders = shops, orders
            self.rng.setstate(rng_state)
            self.changes += 1

    def create_orders(self, shop_id: str, count: int, now_ms: int, paid: bool = True,
                      defect: str | None = None) -> list[SimOrder]:
        """New orders in a shop (paid a moment after creation unless `paid` is False).

        With `defect` (an anomaly rule id, see simkit/defects.py) every returned order carries it;
        orders the defect needs as background (the originals of duplicates, a SKU's price history)
        are created too but not returned.
        """
        from connectors.simkit.defects import apply_defect

        self.ensure_shop(shop_id)
        if defect is not None:
            return apply_defect(self, defect, shop_id, count, now_ms)
        made = []
        with self._lock:
            for _ in range(count):
                made.append(self.add(new_order(self.rng, shop_id, now_ms, self.region, self.currency,
                                               self.id_factory), paid, now_ms))
        return made

    def add(self, order: SimOrder, paid: bool, now_ms: int) -> SimOrder:
        """Register an order under a fresh id (callers hold the lock or own the world)."""
        while order.external_id in self.orders:
            order.external_id = bump_id(order.external_id)
        if paid:
            self._apply(order, "pay", now_ms)
        self.orders[order.external_id] = order
        self.changes += 1
        return order

    def step(self, order: SimOrder, now_ms: int) -> str | None:
        """Move one order one step along its life; returns the transition applied."""
        choices = TRANSITIONS.get(order.status)
        if not choices or any(line.refund_status == "REQUESTED" for line in order.lines):
            if any(line.refund_status == "REQUESTED" for line in order.lines):
                name = self.rng.choice(["approve_refund", "approve_refund", "reject_refund"])
                with self._lock:
                    self._apply(order, name, now_ms)
                return name
            return None
        weights, names = zip(*choices)
        name = self.rng.choices(names, weights)[0]
        with self._lock:
            self._apply(order, name, now_ms)
        return name

    def changed_between(self, shop_id: str, start_ms: int, end_ms: int) -> list[SimOrder]:
        """Orders of a shop modified in [start, end), newest first (like the platforms' increment APIs)."""
        with self._lock:
            hits = [o for o in self.orders.values() if o.shop_id == shop_id and start_ms <= o.updated_at < end_ms]
        return sorted(hits, key=lambda o: (o.updated_at, o.external_id), reverse=True)

    def _apply(self, order: SimOrder, name: str, now_ms: int) -> None:
        self.changes += 1
        order.updated_at = max(now_ms, order.updated_at + 1000)
        now = order.updated_at
        if name == "pay":
            order.status, order.paid_at = "PAID", now
        elif name in ("ship", "ship_part"):
            pending = [line for line in order.lines if line.shipped_at is None and line.refund_status != "REFUNDED"]
            todo = pending[:1] if name == "ship_part" and len(pending) > 1 else pending
            code, cname = (self.rng.choice(catalog.CARRIERS_CN) if self.region == "CN"
                           else (self.rng.choice(catalog.CARRIERS_US),) * 2)
            tracking = str(self.rng.randrange(7 * 10**13, 8 * 10**13))
            for line in todo:
                line.shipped_at, line.carrier, line.carrier_name, line.tracking_no = now, code, cname, tracking
            order.shipped_at = order.shipped_at or now
            order.status = "SHIPPED" if len(todo) == len(pending) else "PARTIALLY_SHIPPED"
        elif name == "deliver":
            order.status, order.delivered_at = "DELIVERED", now
        elif name == "finish":
            order.status, order.finished_at = "COMPLETED", now
        elif name == "request_refund":
            self.rng.choice(order.lines).refund_status = "REQUESTED"
        elif name == "approve_refund":
            for line in order.lines:
                if line.refund_status == "REQUESTED":
                    line.refund_status = "REFUNDED"
            if all(line.refund_status == "REFUNDED" for line in order.lines):
                order.status, order.cancelled_at = "CANCELLED", now
        elif name == "reject_refund":
            for line in order.lines:
                if line.refund_status == "REQUESTED":
                    line.refund_status = "REJECTED"
        elif name == "cancel":
            if order.paid_at is not None:
                for line in order.lines:
                    line.refund_status = "REFUNDED"
            order.status, order.cancelled_at = "CANCELLED", now
