"""Ship-back conformance: every platform whose manifest says `capabilities.ship_back = true` passes the same
checks through its folder's `shipping.Shipper` against its simulator over HTTP (connectors/platforms/README.md).

The platform accepts a shipment and says so in its next answer (the order maps to shipped, with the
tracking number, and the normalizer derives OrderShipped from it); the same shipment again is recognised
("already"), not uploaded twice; what the platform refuses comes back as ShipRefused of the right kind.
A folder whose ship API sends whole orders (`Shipper.whole_orders`) ships the whole order and refuses a part
of it before any call, instead of the split.
"""
import time

import pytest

from connectors import platforms
from connectors.runtime.base import ShopCredentials
from connectors.runtime.caller import HttpCaller
from connectors.runtime.http1 import Http1Pool
from connectors.runtime.shipping import ShipRefused, ShipRequest
from connectors.simkit.server import WORLD, ensure_shop
from streams.derive import derive_events
from tests.integration.helpers import serve_app

SHIP_BACK = [p for p in platforms.codes() if platforms.manifest(p).capabilities.ship_back]
# a ship API that sends whole orders only (no line list): `Shipper.whole_orders`
WHOLE = [p for p in SHIP_BACK if getattr(platforms.module(p, "shipping").Shipper, "whole_orders", False)]
SPLITS = [p for p in SHIP_BACK if p not in WHOLE]
SHOP = "conf-ship"


def test_some_platform_ships_back():
    assert SHIP_BACK, "no platform folder says capabilities.ship_back = true"


@pytest.mark.parametrize("platform", SHIP_BACK)
def test_the_folder_has_a_shipper_and_carriers(platform):
    shipping = platforms.module(platform, "shipping")
    assert callable(shipping.Shipper) and shipping.Shipper.endpoint
    assert platforms.manifest(platform).carriers, "ship-back needs the [carriers] its ship API accepts"


class Platform:
    def __init__(self, platform, app, url, session):
        self.platform, self.app, self.session = platform, app, session
        shop = ensure_shop(app, SHOP)
        self.creds = ShopCredentials(platform, SHOP, url, app_key=shop.get("app_key", ""),
                                     app_secret=shop.get("app_secret", ""), access_token=shop.get("access_token", ""))
        caller = HttpCaller(session, platform, SHOP, base_backoff=0.01)
        self.shipper = platforms.module(platform, "shipping").Shipper(self.creds, caller)
        self.whole = platform in WHOLE
        self.client = platforms.client(self.creds, caller)
        code, name = next(iter(platforms.manifest(platform).carriers.items()))
        self.carrier = (code, name)

    def orders(self, count: int):
        made, tries = [], 0
        while len(made) < count:  # orders of at least two lines (where the platform has them at all)
            tries += 1
            several = not self.whole or tries < 20
            made += [o for o in self.app[WORLD].create_orders(SHOP, 4, int(time.time() * 1000))
                     if len(o.lines) > 1 or not several]
        return made[:count]

    async def ship(self, order, tracking: str, lines=()) -> str:
        return await self.shipper.ship(ShipRequest(order.external_id, *self.carrier, tracking, tuple(lines)))

    async def mapped(self, order) -> dict:
        """The order as the platform's next answer shows it, mapped like every poll."""
        page = await self.client.fetch_order(order.external_id)
        (found,) = platforms.map_payload(self.platform, page.body, page.content_type, SHOP)
        return found


@pytest.fixture
async def live(request):
    platform = request.param
    app = platforms.module(platform, "simulator").create_app()
    runner, url = await serve_app(app)
    pool = Http1Pool(connections=4)  # the shipper's way of calling platforms
    yield Platform(platform, app, url, pool)
    await pool.close()
    await runner.cleanup()


@pytest.mark.parametrize("live", SPLITS, indirect=True)
async def test_a_shipment_is_accepted_shown_on_the_next_read_and_never_uploaded_twice(live):
    order, = live.orders(1)
    before = await live.mapped(order)
    first, rest = order.lines[0].line_id, [line.line_id for line in order.lines[1:]]
    assert await live.ship(order, "TL0000000001", [first]) == "accepted"
    partly = await live.mapped(order)
    assert partly["status"] == "PARTIALLY_SHIPPED"
    assert [(s["tracking_no"], s["line_ids"]) for s in partly["shipments"]] == [("TL0000000001", [first])]
    assert partly["shipments"][0]["carrier"] in live.carrier
    assert await live.ship(order, "TL0000000001", [first]) == "already"  # an earlier attempt landed
    assert await live.ship(order, "TL0000000002") == "accepted"  # what is left
    shipped = await live.mapped(order)
    assert shipped["status"] == "SHIPPED" and shipped["shipped_at"] is not None
    assert {s["tracking_no"]: sorted(s["line_ids"]) for s in shipped["shipments"]} == {
        "TL0000000001": [first], "TL0000000002": sorted(rest)}
    assert "OrderShipped" in [e["event_type"] for e in derive_events(before, shipped, int(time.time() * 1000))]
    assert await live.ship(order, "TL0000000002") == "already"
    with pytest.raises(ShipRefused) as refused:
        await live.ship(order, "TL0000000003")
    assert refused.value.kind == "already_shipped" and "TL0000000001" in str(refused.value)
    uploads = [(u["tracking_no"], u["line_ids"]) for u in live.app[WORLD].uploads]
    assert uploads == [("TL0000000001", [first]), ("TL0000000002", rest)]


@pytest.mark.parametrize("live", WHOLE, indirect=True)
async def test_a_whole_order_is_shipped_once_and_a_part_of_it_refused(live):
    order, = live.orders(1)
    before = await live.mapped(order)
    lines = [line.line_id for line in order.lines]
    if len(lines) > 1:
        with pytest.raises(ShipRefused) as part:
            await live.ship(order, "TL0000000001", lines[:1])
        assert part.value.kind == "rejected"
    assert await live.ship(order, "TL0000000001", lines) == "accepted"  # naming every line: the whole order
    shipped = await live.mapped(order)
    assert shipped["status"] == "SHIPPED"
    assert [(s["tracking_no"], sorted(s["line_ids"])) for s in shipped["shipments"]] == [("TL0000000001", sorted(lines))]
    assert shipped["shipments"][0]["carrier"] in live.carrier
    assert "OrderShipped" in [e["event_type"] for e in derive_events(before, shipped, int(time.time() * 1000))]
    assert await live.ship(order, "TL0000000001") == "already"  # an earlier attempt landed
    assert await live.ship(order, "TL0000000001", lines) == "already"
    with pytest.raises(ShipRefused) as refused:
        await live.ship(order, "TL0000000003")
    assert refused.value.kind == "already_shipped" and "TL0000000001" in str(refused.value)
    assert [(u["tracking_no"], u["line_ids"]) for u in live.app[WORLD].uploads] == [("TL0000000001", lines)]


@pytest.mark.parametrize("live", SHIP_BACK, indirect=True)
async def test_what_the_platform_refuses_comes_back_as_its_kind(live):
    cancelled, refunded, unknown_line, unpaid = live.orders(4)
    world = live.app[WORLD]
    world.perform(cancelled, "cancel", int(time.time() * 1000))
    for line in refunded.lines if live.whole else refunded.lines[:1]:  # a whole order: every line refunded
        line.refund_status = "REFUNDED"
    unpaid.status, unpaid.paid_at = "PENDING_PAYMENT", None
    cases = [(cancelled, (), "cancelled"), (refunded, () if live.whole else (refunded.lines[0].line_id,), "refunded"),
             (unknown_line, ("1",), "unknown_lines"), (unpaid, (), "unpaid")]
    for order, lines, kind in cases:
        with pytest.raises(ShipRefused) as refused:
            await live.ship(order, "TL0000000009", lines)
        assert refused.value.kind == kind, (kind, str(refused.value))
    with pytest.raises(ShipRefused) as missing:
        await live.shipper.ship(ShipRequest("1", *live.carrier, "TL0000000009"))
    assert missing.value.kind == "not_found"
    assert world.uploads == []
