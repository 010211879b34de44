"""The closed loop in the projector on the real broker with chdb: an order's timeline (events, tracking
steps, upload outcomes) and the loop's figures on /api/stats."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from connectors.tracking.receiver import tracking_record
from projections.access import Role
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from schemas.topics import shop_key
from streams.normalize import Normalizer, RawIn
from tests.integration.projector_helpers import bearer, produce, running_projector, wait_for
from tests.samples import carrier_push, sample_anomaly, sample_shipment_result

pytestmark = pytest.mark.integration
SHOP = "loop-shop"


def _events_of_three_orders():
    """Three shipped Taobao orders: A's parcel signed for, B's in trouble, C's never tracked."""
    world = World(seed=41)
    now = int(time.time() * 1000)
    orders = world.create_orders(SHOP, 3, now - 600_000)
    for order in orders:
        world._apply(order, "ship", now - 300_000)
    normalizer = Normalizer()
    records = [RawIn("raw.orders", 0, 0, shop_key("taobao", SHOP), raw_record("taobao", SHOP, page_body(orders),
                                                                              source="poll"))]
    ids = [f"taobao:{SHOP}:{o.external_id}" for o in orders]
    numbers = [next(line.tracking_no for line in o.lines) for o in orders]
    for offset, (order_id, number, turn) in enumerate(zip(ids[:2], numbers[:2], ("delivered", "exception")), 1):
        records.append(RawIn("raw.orders", 0, offset, *tracking_record(order_id, carrier_push(number, turn))))
    out = normalizer.process(records)
    assert not out.dead
    return ids, numbers, out.events


async def test_the_timeline_and_the_loop_figures(kafka_bootstrap, topics, tmp_path):
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls,
             "order_anomalies": topics.order_anomalies, "alerts": topics.alerts,
             "order_commands": topics.order_commands, "fulfillment_results": topics.fulfillment_results}
    store = TokenStore(tmp_path / "tokens.json")
    (a, b, c), (na, nb, nc), events = _events_of_three_orders()
    now = int(time.time() * 1000)
    results = [sample_shipment_result(a, "RETRYING", tracking_no=na, recorded_at=now - 5000, reason="isp.timeout"),
               sample_shipment_result(a, "UPLOADED", tracking_no=na, attempt=2, recorded_at=now - 4000),
               sample_shipment_result(b, "UPLOADED", tracking_no=nb, recorded_at=now - 3000),
               sample_shipment_result(c, "FAILED", tracking_no=nc, recorded_at=now - 2000,
                                      reason="isv.logistics-offline-service-error:B04 订单已退款")]
    codec = AvroCodec("ShipmentResult")
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), f"norm-{uuid.uuid4().hex[:6]}",
                                 store) as base:
        produce(kafka_bootstrap, topics.order_events, events)
        produce(kafka_bootstrap, topics.fulfillment_results, [(r["order_id"].encode(), codec.encode(r))
                                                              for r in results])
        anomalies = AvroCodec("Anomaly")
        produce(kafka_bootstrap, topics.order_anomalies, [
            (x["order_id"].encode(), anomalies.encode(x)) for x in (
                sample_anomaly(c, "ship_overdue", action="flag", detected_at=now),
                sample_anomaly(b, "parcel_stalled", action="flag", detected_at=now))])
        headers = bearer(store, Role.VIEWER)
        async with aiohttp.ClientSession(headers=headers) as http:

            async def loop():
                async with http.get(f"{base}/api/stats") as resp:
                    figures = (await resp.json())["loop"]
                return figures if figures["late"] == 2 and figures["shipments_failed"] == 1 else None

            figures = await wait_for(loop)
            assert figures == {"sent_to_erp": 0, "shipments_uploaded": 2, "shipments_failed": 1,
                               "parcels_in_transit": 1, "parcels_delivered": 1, "late_to_ship": 1,
                               "parcels_stalled": 1, "late": 2}
            async with http.get(f"{base}/api/orders/{a}") as resp:
                order = await resp.json()
        assert order["status"] == "DELIVERED" and order["version"] == 2 and "hold" in order  # fields kept
        timeline = order["timeline"]
        kinds = [(t["kind"], t.get("event_type") or t["status"]) for t in timeline]
        assert [k for k in kinds if k[0] == "event"] == [
            ("event", "OrderCreated"), ("event", "OrderPaid"), ("event", "OrderShipped"),
            ("event", "TrackingUpdated"), ("event", "OrderDelivered")]
        assert [k for k in kinds if k[0] == "shipment"] == [("shipment", "RETRYING"), ("shipment", "UPLOADED")]
        assert [t["at"] for t in timeline] == sorted(t["at"] for t in timeline)
        (step,) = [t for t in timeline if "tracking" in t]
        assert step["event_type"] == "TrackingUpdated" and step["tracking"]["tracking_no"] == na
        assert step["tracking"]["state"] == "DELIVERED" and step["tracking"]["status"] == "签收"
        retried = next(t for t in timeline if t["kind"] == "shipment")
        assert (retried["attempt"], retried["reason"], retried["tracking_no"]) == (1, "isp.timeout", na)
