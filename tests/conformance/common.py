"""What the conformance suite's modules share: the registered platforms, their samples, a simulated
order, and the amount identity (with the manifest's documented exception)."""
from __future__ import annotations

import json
from pathlib import Path

from connectors import platforms
from connectors.simkit.server import WORLD

PLATFORMS = platforms.codes()


def samples(platform: str):
    """(platform, payload, expected) for every recorded sample (`platforms.samples`)."""
    for source, expected in platforms.samples(platform):
        yield platform, source, expected


def content_type(body: bytes) -> str:
    return "xml" if body.lstrip()[:1] == b"<" else "json"


def expected_orders(expected: Path) -> list[dict] | None:
    """The canonical orders a sample expects (None when it expects a mapping error)."""
    want = json.loads(expected.read_text(encoding="utf-8"))
    return None if isinstance(want, dict) else want


def sim_order(platform: str, status: str = "PAID"):
    """One simulated order of the platform's own simulator world (paid unless PENDING_PAYMENT)."""
    world = platforms.module(platform, "simulator").create_app()[WORLD]
    (order,) = world.create_orders("conf", 1, 1_710_000_000_000, paid=status != "PENDING_PAYMENT")
    return order


def assert_amount_identity(platform: str, order: dict) -> None:
    """items_total + shipping_fee − discount_total + tax_total == paid_total, unless the platform's manifest
    documents why not (`amount_identity_exception`)."""
    if platforms.manifest(platform).amount_identity_exception:
        return
    parts = (order["items_total"], order["shipping_fee"], order["discount_total"], order["tax_total"])
    assert parts[0] + parts[1] - parts[2] + parts[3] == order["paid_total"], (
        f"{order['order_id']}: items {parts[0]} + shipping {parts[1]} - discount {parts[2]} + tax {parts[3]} "
        f"!= paid {order['paid_total']} (a platform that documents why declares amount_identity_exception)")
