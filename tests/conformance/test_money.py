"""Money is exact whichever JSON type a platform's answer carries it in.

A simulated order with amounts that break `int(x * 100)` (64.35 yuan is 6434.999… fen as a float, 0.07
and 11.57 likewise, 19.99 × 3 is 59.97000000000001) is rendered as the platform answers, then its money
values are rewritten as strings, integers and floats (and floats one step off, as a platform that
computes prices in floating point sends them). Every variant maps to the same canonical order, to the fen.
"""
import dataclasses
import json
import math
import re
from decimal import Decimal

import pytest

from connectors import platforms
from tests.conformance.common import PLATFORMS, sim_order

# (unit price, quantity, line discount) in minor units; the 0.07 discount is the order's, which every
# platform can express (not all have line discounts)
LINES = ((6435, 1, 0), (1999, 3, 0), (1157, 2, 0))
SHIPPING, TAX, DISCOUNT = 1029, 515, 7
_DECIMAL = re.compile(r"^-?\d+\.\d{2}$")


def _tricky_order(platform: str):
    order = sim_order(platform)
    template = order.lines[0]
    order.lines = [dataclasses.replace(template, line_id=f"{order.external_id[:-3]}{n + 1:03d}",
                                       sku_id=f"{template.sku_id[:-1]}{n}", merchant_sku=f"{template.merchant_sku}-{n}",
                                       unit_price=price, quantity=quantity, discount=discount)
                   for n, (price, quantity, discount) in enumerate(LINES)]
    order.shipping_fee, order.order_discount = SHIPPING, DISCOUNT
    order.tax = TAX if order.country != "CN" else 0
    return order


def _minor_amounts(order) -> set[int]:
    """Amounts (minor units) a render may carry: prices, line sums and order totals, at least 1.00."""
    lines = order.lines
    discounts = order.line_discounts + order.order_discount
    found = {order.items_total, order.paid_total, order.shipping_fee, order.tax, discounts,
             order.items_total - discounts, order.paid_total - order.shipping_fee}
    for line in lines:
        found |= {line.unit_price, line.quantity * line.unit_price, line.total}
    return {a for a in found if a >= 100}


def _rewrite(node, convert, counter: list):
    if isinstance(node, dict):
        return {k: _rewrite(v, convert, counter) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, convert, counter) for v in node]
    new = convert(node)
    if new is not node:
        counter.append(node)
    return new


def _major_variants(amounts: set[int]):
    def money(v) -> Decimal | None:  # a yuan/dollar amount as the render sent it (string or number)
        if isinstance(v, str) and _DECIMAL.match(v):
            return Decimal(v)
        if isinstance(v, float) and round(v * 100) in amounts and abs(v * 100 - round(v * 100)) < 1e-6:
            return Decimal(repr(v)).quantize(Decimal("0.01"))
        return None

    def strings(v):
        amount = money(v)
        return f"{amount:.2f}" if amount is not None and not isinstance(v, str) else v

    def floats(v):
        amount = money(v)
        return float(amount) if amount is not None and isinstance(v, str) else v

    def integers(v):  # whole amounts as JSON integers ("64.00" -> 64)
        amount = money(v)
        return int(amount) if amount is not None and amount == amount.to_integral_value() else v

    def off_by_one_step(v):  # 64.35 -> 64.35000000000001 / 64.34999999999999, like 19.99 * 3
        amount = money(v)
        if amount is None:
            return v
        return math.nextafter(float(amount), math.inf if int(amount * 100) % 2 else -math.inf)

    return {"strings": strings, "floats": floats, "integers": integers, "floats one step off": off_by_one_step}


def _minor_variants(amounts: set[int]):
    def strings(v):
        return str(v) if type(v) is int and v in amounts else v

    def floats(v):
        return float(v) if type(v) is int and v in amounts else v

    return {"strings": strings, "floats": floats}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_money_is_exact_from_strings_integers_and_floats(platform):
    order = _tricky_order(platform)
    body = platforms.module(platform, "render").page_body([order])
    (plain,) = platforms.map_payload(platform, body, "json", "conf")
    # (line totals may carry a share of the order's discount on platforms that allocate it)
    assert [(line["unit_price"], line["quantity"]) for line in plain["lines"]] == \
        [(line.unit_price, line.quantity) for line in order.lines]
    assert (plain["items_total"], plain["shipping_fee"], plain["paid_total"]) == \
        (order.items_total, order.shipping_fee, order.paid_total)
    assert order.items_total == 14746 and order.paid_total == 14746 - DISCOUNT + SHIPPING + order.tax
    doc = json.loads(body)
    unit = platforms.manifest(platform).money_unit
    amounts = _minor_amounts(order)
    variants = _major_variants(amounts) if unit == "major" else _minor_variants(amounts)
    rewrote = {}
    for name, convert in variants.items():
        changed: list = []
        rewritten = _rewrite(doc, convert, changed)
        rewrote[name] = len(changed)
        (got,) = platforms.map_payload(platform, json.dumps(rewritten, ensure_ascii=False).encode(), "json", "conf")
        assert got == plain, f"{platform}: money as {name} maps differently"
    # the amounts were found: every one is rewritten one float step off (major) or as a string (minor)
    assert rewrote["floats one step off" if unit == "major" else "strings"] >= len(LINES) + 2, \
        f"{platform}: found too little money to rewrite ({rewrote}) in {body[:300]!r}"
