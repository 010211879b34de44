"""The SMS hub end to end: order events -> notifier -> sms.requests -> sender -> simulated gateways and
platform channels over HTTP -> sms.receipts, delivery reports and replies pushed back; on the real broker."""
import asyncio
import time

from tests.integration.helpers import TopicReader
from tests.integration.sms_helpers import SmsHub


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
