"""The SMS hub end to end: order events -> notifier -> sms.requests -> sender -> simulated gateways and
platform channels over HTTP -> sms.receipts, delivery reports and replies pushed back; on the real broker."""
import asyncio
import time

from schemas.codec import AvroCodec
from tests.integration.helpers import TopicReader, publish
from tests.integration.sms_helpers import SmsHub, until_requests_seen


def _latest(reader: TopicReader) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for _, record in reader.records:
        latest[record["key"]] = record
    return latest


async def _until(reader: TopicReader, check, timeout: float = 60.0) -> dict[str, dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        await asyncio.get_running_loop().run_in_executor(None, reader.poll, 0.3)
        latest = _latest(reader)
        if check(latest):
            return latest
    raise AssertionError(f"receipts never reached the expected state: {sorted(r['status'] for r in _latest(reader).values())}")


async def test_orders_reach_buyers_through_the_right_channel_once(kafka_bootstrap, topics, tmp_path):
    hub = await SmsHub(kafka_bootstrap, topics, tmp_path).start()
    receipts = TopicReader(kafka_bootstrap, topics.sms_receipts, "SmsReceipt")
    now = int(time.time() * 1000)
    try:
        hub.run("notifier")
        hub.run("sender")
        taobao = hub.taobao_orders("tb-shop", 3, now)
        shopify = hub.shopify_orders("sp-shop", 3, now)
        hub.publish_events(taobao + shopify, now)
        platform = await hub.wait_messages(3, provider="taobao")
        assert sorted(m["to"] for m in platform) == sorted(o["receiver"]["secure_token"] for o in taobao)
        gateway = await hub.wait_messages(3, provider="aliyun")
        assert all(m["to"].startswith(("1", "+")) and m["text"].startswith("【通路好物】") for m in gateway)
        latest = await _until(receipts, lambda r: sum(x["status"] == "delivered" for x in r.values()) == 3
                              and sum(x["status"] == "sent" for x in r.values()) == 3)
        assert {r["provider"] for r in latest.values()} == {"taobao", "aliyun"}
        assert {m["out_id"] for m in platform + gateway} == set(latest)
    finally:
        receipts.close()
        codes = await hub.close()
    assert set(codes.values()) == {0}


async def test_replays_and_re_sent_updates_never_text_twice(kafka_bootstrap, topics, tmp_path):
    hub = await SmsHub(kafka_bootstrap, topics, tmp_path).start()
    now = int(time.time() * 1000)
    try:
        hub.run("notifier")
        hub.run("sender")
        orders = hub.taobao_orders("tb-replay", 4, now)
        events = hub.publish_events(orders, now)
        first = await hub.wait_messages(4, provider="taobao")
        # the platform re-sends its paid update (a new event id, a later version): same order and trigger
        again = [dict(e, event_id=e["event_id"] + "-resent", version=e["version"] + 1)
                 for e in events if e["event_type"] == "OrderPaid"]
        codec = AvroCodec("OrderEvent")
        publish_all = [(topics.order_events, e["order_id"].encode(), codec.encode(e)) for e in again]
        # and the whole log is replayed (a rebuild after a broker loss reads order.events from the start)
        publish_all += [(topics.order_events, e["order_id"].encode(), codec.encode(e)) for e in events]
        publish(kafka_bootstrap, publish_all)
        stats = await until_requests_seen(hub, 12)
        assert stats["duplicates"] == 8 and stats["sent"] == 4
        hub.stop("notifier")
        hub.stop("sender")  # a restart reads every request again: all taken
        hub.run("notifier", "2")
        hub.run("sender", "2")
        stats = await until_requests_seen(hub, 12)
        assert stats["duplicates"] == 12 and stats["sent"] == 0
        assert sorted(m["out_id"] for m in await hub.messages(provider="taobao")) == sorted(m["out_id"] for m in first)
    finally:
        codes = await hub.close()
    assert set(codes.values()) == {0}


async def test_a_sender_killed_mid_batch_never_sends_twice(kafka_bootstrap, topics, tmp_path):
    """Killed while the gateway was still answering (found there by the out id afterwards), and killed after
    claiming while every gateway was down (sent once after the restart)."""
    hub = await SmsHub(kafka_bootstrap, topics, tmp_path).start()
    receipts = TopicReader(kafka_bootstrap, topics.sms_receipts, "SmsReceipt")
    now = int(time.time() * 1000)
    try:
        hub.run("notifier")
        hub.run("sender")
        await hub.control("/_sim/faults", {"provider": "aliyun", "kind": "slow", "count": 5, "seconds": 1.5})
        hub.publish_events(hub.shopify_orders("sp-kill", 5, now), now)
        await _until(receipts, lambda r: sum(x["status"] == "sending" for x in r.values()) >= 3)
        hub.kill("sender")  # kill -9 with calls in flight at the gateway
        await hub.wait_messages(3, provider="aliyun")  # the gateway finished them anyway
        for provider in ("aliyun", "tencent"):
            await hub.control("/_sim/faults", {"provider": provider, "kind": "down", "count": 100000})
        hub.publish_events(hub.shopify_orders("sp-down", 3, now), now)
        hub.run("sender", "2")
        latest = await _until(receipts, lambda r: sum(x["status"] == "sending" for x in r.values()) >= 3
                              and any(x["order_id"].startswith("shopify:sp-down") for x in r.values()))
        await asyncio.sleep(1.0)
        hub.kill("sender")  # claimed, every gateway down: nothing sent yet
        await hub.control("/_sim/faults", method="DELETE")
        hub.run("sender", "3")
        latest = await _until(receipts, lambda r: len(r) == 8 and all(
            x["status"] in ("sent", "delivered") for x in r.values()), timeout=90)
        sent = await hub.messages()
        assert sorted(m["out_id"] for m in sent) == sorted(latest)  # every message exactly once
        assert (tmp_path / "sender3.log").read_text().count("found sent by") + \
            (tmp_path / "sender2.log").read_text().count("found sent by") >= 3
    finally:
        receipts.close()
        codes = await hub.close()
    assert set(codes.values()) == {0}
