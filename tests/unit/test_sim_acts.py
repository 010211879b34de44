"""The simulated platform's side of ship-back and of `tonglu sim order --do`: World.ship and World.perform."""
import pytest

from connectors.simkit.world import ActRefused, ShipRefusal, World

NOW = 1_717_000_000_000


def _order(world: World, paid=True, lines=2):
    while True:  # an order with the number of lines the test needs
        (order,) = world.create_orders("s1", 1, NOW, paid=paid)
        if len(order.lines) >= lines:
            return order


def test_a_shipment_marks_its_lines_and_the_order_and_is_logged():
    world = World(seed=3)
    order = _order(world)
    first = order.lines[0].line_id
    before = order.updated_at
    shipped = world.ship(order, [first], "ZTO", "中通快递", "ZT7700001", NOW + 5000)
    assert [line.line_id for line in shipped] == [first] and order.status == "PARTIALLY_SHIPPED"
    assert order.updated_at > before and order.shipped_at == order.updated_at
    assert (order.lines[0].carrier, order.lines[0].carrier_name, order.lines[0].tracking_no) == (
        "ZTO", "中通快递", "ZT7700001")
    world.ship(order, [], "SF", "顺丰速运", "SF1402938475610", NOW + 6000)  # what is left
    assert order.status == "SHIPPED" and {line.tracking_no for line in order.lines[1:]} == {"SF1402938475610"}
    assert [(u["tracking_no"], u["line_ids"]) for u in world.uploads] == [
        ("ZT7700001", [first]), ("SF1402938475610", [line.line_id for line in order.lines[1:]])]


@pytest.mark.parametrize("setup,lines,kind", [
    (lambda w, o: w.perform(o, "cancel", NOW), [], "closed"),
    (lambda w, o: None, ["nope"], "unknown_line"),
    (lambda w, o: w.ship(o, [], "ZTO", "中通快递", "ZT1", NOW), [], "already_shipped"),
    (lambda w, o: w.ship(o, [o.lines[0].line_id], "ZTO", "中通快递", "ZT1", NOW), "first", "already_shipped"),
    (lambda w, o: setattr(o.lines[0], "refund_status", "REFUNDED"), "first", "refunded"),
    (lambda w, o: [setattr(line, "refund_status", "REFUNDED") for line in o.lines], [], "refunded"),
])
def test_the_platform_refuses_what_cannot_ship(setup, lines, kind):
    world = World(seed=5)
    order = _order(world)
    setup(world, order)
    uploads = len(world.uploads)
    with pytest.raises(ShipRefusal) as refused:
        world.ship(order, [order.lines[0].line_id] if lines == "first" else lines, "ZTO", "中通快递", "ZT9", NOW)
    assert refused.value.kind == kind and len(world.uploads) == uploads


def test_an_unpaid_order_cannot_ship():
    world = World(seed=5)
    with pytest.raises(ShipRefusal) as refused:
        world.ship(_order(world, paid=False), [], "ZTO", "中通快递", "ZT9", NOW)
    assert refused.value.kind == "unpaid"


def test_acts_follow_the_life_of_an_order():
    world = World(seed=9)
    order = _order(world, paid=False)
    street = order.street
    for act, status in (("change_address", "PENDING_PAYMENT"), ("pay", "PAID"), ("request_refund", "PAID"),
                        ("ship", "SHIPPED"), ("deliver", "DELIVERED")):
        before = order.updated_at
        world.perform(order, act, NOW + 60_000)
        assert order.status == status and order.updated_at > before, act
    assert order.street != street and all(line.refund_status == "REQUESTED" for line in order.lines)
    assert order.lines[0].tracking_no and order.delivered_at is not None
    with pytest.raises(ActRefused, match="cannot cancel an order in status DELIVERED"):
        world.perform(order, "cancel", NOW)
    with pytest.raises(ActRefused, match="unknown act 'teleport'"):
        world.perform(order, "teleport", NOW)
    unpaid = _order(world, paid=False)
    world.perform(unpaid, "cancel", NOW)
    assert unpaid.status == "CANCELLED"
