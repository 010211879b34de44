"""Simulated orders rendered as Shopify resources map back to what the simulated order says."""

import random

import orjson

from connectors.simkit.world import World
from schemas.canonical import mask_phone, mask_street

from ..mapping import map_payload
from ..render import order_json, seconds
from ..simulator import shopify_id

T0 = 1_716_900_000_123


def _expected_shipments(order) -> list[tuple]:
    groups = {}
    for line in order.lines:
        if line.shipped_at is not None:
            groups.setdefault((line.shipped_at, line.carrier_name, line.tracking_no), []).append(line.line_id)
    return sorted(
        (carrier, tracking, seconds(at), sorted(ids)) for (at, carrier, tracking), ids in groups.items()
    )


def _check(order, got: dict) -> None:
    assert got["external_id"] == order.external_id
    assert got["order_id"] == f"shopify:{order.shop_id}:{order.external_id}"
    assert got["status"] == order.status
    refunded = [line.refund_status == "REFUNDED" for line in order.lines]
    assert got["refund_status"] == (
        "REFUNDED" if all(refunded) else "PARTIALLY_REFUNDED" if any(refunded) else "NONE"
    )
    for name in ("created_at", "updated_at", "paid_at", "shipped_at"):
        assert got[name] == seconds(getattr(order, name)), name
    assert got["delivered_at"] == (
        seconds(order.delivered_at) if order.status in ("DELIVERED", "COMPLETED") else None
    )
    assert (
        got["items_total"],
        got["shipping_fee"],
        got["discount_total"],
        got["tax_total"],
        got["paid_total"],
    ) == (
        order.items_total,
        order.shipping_fee,
        order.line_discounts + order.order_discount,
        order.tax,
        order.paid_total,
    )
    assert (
        got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"]
        == got["paid_total"]
    )
    assert got["refunded_total"] == order.refunded_total
    assert got["currency"] == "USD"
    assert [
        (
            x["line_id"],
            x["merchant_sku"],
            x["title"],
            x["quantity"],
            x["unit_price"],
            x["discount"],
            x["total"],
            x["refund_status"],
        )
        for x in got["lines"]
    ] == [
        (
            x.line_id,
            x.merchant_sku,
            x.title,
            x.quantity,
            x.unit_price,
            x.discount,
            x.total,
            "REFUNDED" if x.refund_status == "REFUNDED" else "NONE",
        )
        for x in order.lines
    ]
    assert sorted(
        (s["carrier"], s["tracking_no"], s["shipped_at"], sorted(s["line_ids"])) for s in got["shipments"]
    ) == _expected_shipments(order)
    assert got["buyer"]["id"] == order.buyer_id
    receiver = got["receiver"]
    assert receiver["phone_masked"] == mask_phone(order.receiver_phone)
    assert receiver["address_masked"] == mask_street(order.street)
    assert (receiver["country"], receiver["city"], receiver["postal_code"]) == (
        "US",
        order.city,
        order.postal_code,
    )
    text = orjson.dumps(got).decode()
    for secret in (order.receiver_name, order.receiver_phone, order.street, order.buyer_nick):
        assert secret not in text


def test_random_lifecycles_round_trip():
    world = World(seed=11, region="US", currency="USD", id_factory=shopify_id)
    rng = random.Random(5)
    orders = world.create_orders("rt-shop", 120, T0) + world.create_orders("rt-shop", 80, T0, paid=False)
    now = T0
    for order in orders:
        for _ in range(rng.randrange(0, 7)):
            now += rng.randrange(1, 5000)
            world.step(order, now)
    seen = set()
    for order in orders:
        body = orjson.dumps(order_json(order, "rt-shop.myshopify.com"))
        (got,) = map_payload(body, "json", "rt-shop")
        _check(order, got)
        seen.add(order.status)
    assert {"PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED", "COMPLETED", "CANCELLED"} <= seen


def test_list_body_round_trip():
    world = World(seed=3, region="US", currency="USD", id_factory=shopify_id)
    orders = world.create_orders("s", 30, T0)
    body = orjson.dumps({"orders": [order_json(o, "s.myshopify.com") for o in orders]})
    got = map_payload(body, "json", "s")
    assert len(orders) == 30
    for order, mapped in zip(orders, got, strict=True):
        _check(order, mapped)
