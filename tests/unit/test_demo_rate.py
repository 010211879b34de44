"""`tonglu up --demo-rate` is the whole stack's rate of new demo orders, shared by every demo shop."""
import pytest

from connectors import platforms
from infra.config import default_simulators
from infra.workers import demo_rates


def test_the_total_is_split_evenly_over_the_demo_shops():
    assert demo_rates(6.0, {"a": ["s1", "s2"], "b": ["s3"], "c": []}) == {"a": 4.0, "b": 2.0, "c": 0.0}
    assert demo_rates(0.0, {"a": ["s1"]}) == {"a": 0.0}
    assert demo_rates(5.0, {"a": []}) == {"a": 0.0}


def test_the_default_stack_creates_five_orders_a_second_however_many_platforms():
    shops = {p: platforms.manifest(p).demo_shops for p in default_simulators()}
    assert sum(len(s) for s in shops.values()) >= len(shops)  # every simulated platform has a demo shop
    rates = demo_rates(5.0, shops)
    assert sum(rates.values()) == pytest.approx(5.0)
    per_shop = {rate / len(shops[p]) for p, rate in rates.items()}
    assert max(per_shop) == pytest.approx(min(per_shop))
