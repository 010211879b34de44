"""Changes before and after shipping, and parcel trouble, through the real normalizer and detector workers:
an address change or refund request of an unshipped order is its own event; an address change after
shipment and a parcel the carrier reports in trouble are findings; a carrier push for an order nobody
knows is a dead letter."""
import time

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from connectors.tracking.receiver import tracking_record
from schemas.topics import shop_key
from tests.integration.helpers import TopicReader, publish, start_worker, stop_worker, wait_for, worker_env
from tests.samples import carrier_push

SHOP = "changes-shop"


def _page(order) -> tuple[bytes, bytes]:
    return shop_key("taobao", SHOP), raw_record("taobao", SHOP, page_body([order]), source="poll")


def test_changes_and_parcel_trouble_become_events_and_findings(kafka_bootstrap, topics, tmp_path):
    now = int(time.time() * 1000)
    world = World(seed=31)
    unshipped, shipped, refunding = world.create_orders(SHOP, 3, now - 600_000)
    world._apply(shipped, "ship", now - 300_000)
    publish(kafka_bootstrap, [(topics.raw_orders, *_page(o)) for o in (unshipped, shipped, refunding)])
    env = worker_env(kafka_bootstrap, topics, TONGLU_DATA_DIR=tmp_path / "data")
    workers = [start_worker("normalizer", env, tmp_path / "normalizer.log"),
               start_worker("detector", env, tmp_path / "detector.log")]
    events = TopicReader(kafka_bootstrap, topics.order_events, "OrderEvent")
    findings = TopicReader(kafka_bootstrap, topics.order_anomalies, "Anomaly")
    dead = TopicReader(kafka_bootstrap, topics.raw_orders_dlq, "DeadLetter")

    def oid(order) -> str:
        return f"taobao:{SHOP}:{order.external_id}"

    def types_of(order) -> list[str]:
        events.poll(0.3)
        return [e["event_type"] for _, e in events.records if e["order_id"] == oid(order)]

    try:
        wait_for(lambda: all(types_of(o) for o in (unshipped, shipped, refunding)), 90, what="the first events")
        number = next(line.tracking_no for line in shipped.lines)
        # the platform changes the unshipped order's address and another's buyer asks for a refund
        unshipped.street, unshipped.updated_at = "文三路 90 号 3 幢 502 室", now
        world._apply(refunding, "request_refund", now)
        # the carrier has trouble with the shipped order's parcel; then the platform moves its address too
        trouble = tracking_record(oid(shipped), carrier_push(number, "exception"))
        shipped.street, shipped.updated_at = "莫干山路 18 号 1 幢 1201 室", now + 1000
        ghost = tracking_record(f"taobao:{SHOP}:999999", carrier_push("ZT000999"))
        publish(kafka_bootstrap, [(topics.raw_orders, *_page(unshipped)), (topics.raw_orders, *_page(refunding)),
                                  (topics.raw_orders, *trouble), (topics.raw_orders, *_page(shipped)),
                                  (topics.raw_orders, *ghost)])
        wait_for(lambda: "AddressChanged" in types_of(unshipped), 30, what="AddressChanged")
        wait_for(lambda: "RefundRequested" in types_of(refunding), 30, what="RefundRequested")
        wait_for(lambda: types_of(shipped)[-2:] == ["TrackingUpdated", "AddressChanged"], 30,
                 what="the shipped order's tracking step and address change")

        def rules(order) -> set[str]:
            findings.poll(0.3)
            return {a["rule"] for _, a in findings.records if a["order_id"] == oid(order) and a["state"] == "raised"}

        wait_for(lambda: {"parcel_exception", "changed_after_shipment"} <= rules(shipped), 30,
                 what="parcel_exception and changed_after_shipment")
        assert "changed_after_shipment" not in rules(unshipped)
        (_, letter), = dead.until(1, timeout=30)
        assert letter["stage"] == "derive" and "999999" in letter["error"] and "has not seen" in letter["error"]
        first, tracked = (next(e for _, e in events.records if e["event_type"] == kind)
                          for kind in ("OrderShipped", "TrackingUpdated"))
        assert tracked["order"]["shipments"][0]["tracking_state"] == "EXCEPTION"
        # the carrier's step is the order's next version; the platform's clock is left alone
        assert tracked["version"] == 2 and tracked["order"]["updated_at"] == first["order"]["updated_at"]
    finally:
        for proc in workers:
            stop_worker(proc)
        for reader in (events, findings, dead):
            reader.close()
