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


class ShipRefusal(ValueError):
    """The platform refuses a shipment upload: `kind` says why (closed, unpaid, refunded, already_shipped,
    unknown_line); each simulator answers it in its platform's own words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class ActRefused(ValueError):
    """An act (`World.perform`) that does not fit the order's state; the message says why."""


# What a person can do to an order through the control API (`tonglu sim order --do`), in which states.
ACTS = {
    "pay": ("PENDING_PAYMENT",),
    "ship": ("PAID", "PARTIALLY_SHIPPED"),
    "change_address": ("PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED"),
    "request_refund": ("PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"),
    "cancel": ("PENDING_PAYMENT", "PAID"),
    "deliver": ("SHIPPED",),
}
SHIPPED_LOG_MAX = 200_000

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
        self.uploads: list[dict] = []  # shipments accepted through the platform's ship API, oldest first
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

    def ship(self, order: SimOrder, line_ids: list[str], carrier: str, carrier_name: str, tracking_no: str,
             now_ms: int) -> list[SimLine]:
        """Mark lines shipped as the platform's ship API does: `line_ids` (empty: every line not shipped or
        refunded yet) leave with `carrier`/`tracking_no`. Returns the lines shipped; ShipRefusal when the
        platform would refuse (order closed or unpaid, a line refunded, unknown or shipped already)."""
        with self._lock:
            if order.status == "CANCELLED":
                raise ShipRefusal("closed", "the order is closed")
            if order.status == "PENDING_PAYMENT":
                raise ShipRefusal("unpaid", "the order is not paid")
            by_id = {line.line_id: line for line in order.lines}
            unknown = [x for x in line_ids if x not in by_id]
            if unknown:
                raise ShipRefusal("unknown_line", f"line {unknown[0]} is not part of the order")
            if line_ids:
                todo = [by_id[x] for x in line_ids]
                if any(line.refund_status == "REFUNDED" for line in todo):
                    raise ShipRefusal("refunded", "a line was refunded")
                if any(line.shipped_at is not None for line in todo):
                    raise ShipRefusal("already_shipped", "a line was shipped already")
            else:
                todo = [line for line in order.lines if line.shipped_at is None and line.refund_status != "REFUNDED"]
                if not todo:
                    if all(line.refund_status == "REFUNDED" for line in order.lines):
                        raise ShipRefusal("refunded", "every line was refunded")
                    raise ShipRefusal("already_shipped", "every line was shipped already")
            self.changes += 1
            order.updated_at = max(now_ms, order.updated_at + 1000)
            self._ship_lines(order, todo, carrier, carrier_name, tracking_no, order.updated_at)
            self.uploads.append({"shop_id": order.shop_id, "external_id": order.external_id, "carrier": carrier,
                                 "tracking_no": tracking_no, "line_ids": [line.line_id for line in todo],
                                 "accepted_at": now_ms})
            del self.uploads[:-SHIPPED_LOG_MAX]
            return todo

    def perform(self, order: SimOrder, act: str, now_ms: int) -> None:
        """Do `act` (one of ACTS) to an order as its buyer or the platform would; ActRefused when the order's
        state does not allow it."""
        if act not in ACTS:
            raise ActRefused(f"unknown act {act!r}; one of {', '.join(ACTS)}")
        if order.status not in ACTS[act]:
            raise ActRefused(f"cannot {act} an order in status {order.status} (only {', '.join(ACTS[act])})")
        if act == "request_refund" and not any(line.refund_status in ("NONE", "REJECTED") for line in order.lines):
            raise ActRefused("every line is refunded or has a refund requested already")
        with self._lock:
            if act == "request_refund":
                for line in order.lines:
                    if line.refund_status in ("NONE", "REJECTED"):
                        line.refund_status = "REQUESTED"
                self.changes += 1
                order.updated_at = max(now_ms, order.updated_at + 1000)
            else:
                self._apply(order, act, now_ms)

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
            self._ship_lines(order, todo, code, cname, tracking, now)
        elif name == "change_address":
            self._move(order)
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

    @staticmethod
    def _ship_lines(order: SimOrder, lines: list[SimLine], carrier: str, carrier_name: str, tracking_no: str,
                    at: int) -> None:
        for line in lines:
            line.shipped_at, line.carrier, line.carrier_name, line.tracking_no = at, carrier, carrier_name, tracking_no
        order.shipped_at = order.shipped_at or at
        left = [line for line in order.lines if line.shipped_at is None and line.refund_status != "REFUNDED"]
        order.status = "PARTIALLY_SHIPPED" if left else "SHIPPED"

    def _move(self, order: SimOrder) -> None:
        """The buyer gives another address (another street, and city when the catalogue has one)."""
        if order.country == "CN":
            choices = [a for a in catalog.ADDRESSES_CN if a[4] != order.street] or catalog.ADDRESSES_CN
            order.province, order.city, order.district, order.town, order.street, order.postal_code = \
                self.rng.choice(choices)
        else:
            choices = [a for a in catalog.ADDRESSES_US if a[0] != order.street] or catalog.ADDRESSES_US
            order.street, order.city, order.province, _code, order.postal_code = self.rng.choice(choices)
