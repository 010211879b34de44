"""Simulated worlds saved to disk and loaded back: same shops, same orders, the same next order."""
import logging

from connectors.platforms.shopify.simulator import shopify_id
from connectors.simkit.persistence import load_world, restore_world, world_bytes
from connectors.simkit.world import World

NOW = 1_780_000_000_000


def _lived_world(**kwargs) -> World:
    world = World(seed=11, **kwargs)
    world.ensure_shop("home", app_key="k", demo=True)
    world.create_orders("home", 30, NOW)
    world.create_orders("home", 3, NOW, defect="duplicate_order")
    for n, order in enumerate(list(world.orders.values())):
        world.step(order, NOW + n)
    return world


def test_a_saved_world_loads_back_identical_and_continues_where_it_stopped():
    for kwargs in ({}, {"region": "US", "currency": "USD", "id_factory": shopify_id}):
        original = _lived_world(**kwargs)
        copy = World(seed=11, **kwargs)
        restore_world(copy, world_bytes(original))
        assert copy.shops == original.shops and copy.orders == original.orders
        assert any(line.shipped_at for o in copy.orders.values() for line in o.lines)
        # the random generator continues too: the next order is the one the original would have made
        assert copy.create_orders("home", 1, NOW + 5000) == original.create_orders("home", 1, NOW + 5000)


def test_a_missing_file_leaves_the_world_empty_and_a_damaged_one_is_set_aside(tmp_path, caplog):
    world = World()
    assert load_world(world, tmp_path / "taobao.json") is False and world.orders == {}
    saved = world_bytes(_lived_world())
    (tmp_path / "taobao.json").write_bytes(saved[: len(saved) // 2])
    with caplog.at_level(logging.WARNING):
        assert load_world(world, tmp_path / "taobao.json") is False
    assert world.orders == {} and (tmp_path / "taobao.json.damaged").exists() and "unreadable" in caplog.text
    (tmp_path / "taobao.json").write_bytes(saved)
    assert load_world(world, tmp_path / "taobao.json") is True and len(world.orders) > 30


def test_every_change_is_counted_so_the_saver_knows_when_to_save():
    world = World()
    before = world.changes
    world.ensure_shop("a")
    world.ensure_shop("a")
    assert world.changes == before + 1
    [order] = world.create_orders("a", 1, NOW, paid=False)
    counted = world.changes
    world.step(order, NOW + 1)
    assert world.changes > counted
