"""The SMS hub end to end: order events -> notifier -> sms.requests -> sender -> simulated gateways and
platform channels over HTTP -> sms.receipts, delivery reports and replies pushed back; on the real broker."""
import asyncio
import copy
import time
import urllib.error
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from connectors.sms.channels import PlatformChannel
from connectors.sms.channels import channel_module as sms_channel_of
from connectors.sms.contacts import seal_contact
from connectors.sms.gateways import Outgoing
from connectors.sms.sim_state import SimState
from connectors.sms.simulator import create_app as sms_sim_app
from connectors.sms.simulator import push_due_reports, uplink_body
from connectors.sms.transport import Endpoints
from infra.bench.sms_bench import with_gateway_batches
from infra.broker import free_port
from infra.sms_local import approved_templates, demo_secrets, simulator_state
from schemas.codec import AvroCodec
from schemas.sealing import EnvKeyProvider, Opener, Sealer
from streams.sms.callbacks import create_app as sender_callbacks
from streams.sms.compose import build_request
from streams.sms.identity import message_key
from streams.sms.sender import SenderService, SenderSettings
from streams.sms.templates import load_sms_config
from tests.integration.helpers import TopicReader, publish, serve_app
from tests.integration.sms_helpers import (
    CONFIG_PATH,
    HASH_KEY,
    RAW_KEYS,
    TOKEN,
    http_json,
    hub_running,
    sender_stats,
    until_requests_seen,
)
from tests.samples import sample_anomaly


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
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path) as (hub, receipts):
        taobao = hub.taobao_orders("tb-shop", 3, now)
        shopify = hub.shopify_orders("sp-shop", 3, now)
        hub.publish_events(taobao + shopify, now)
        platform = await hub.wait_messages(3, provider="taobao")
        assert sorted(m["to"] for m in platform) == sorted(o["receiver"]["secure_token"] for o in taobao)
        gateway = await hub.wait_messages(3, provider="aliyun")
        assert all(m["to"].startswith(("1", "+")) and m["text"].startswith("【通路好物】") for m in gateway)
        # both the gateway's and the platform channel's reports come back (Taobao's with our key in `extend`)
        latest = await _until(receipts, lambda r: sum(x["status"] == "delivered" for x in r.values()) == 6)
        assert {r["provider"] for r in latest.values()} == {"taobao", "aliyun"}
        assert {m["out_id"] for m in platform + gateway} == set(latest)
        assert {r["code"] for r in latest.values() if r["provider"] == "taobao"} == {"DELIVERED"}

        # pushes are verified: the callback URL's secret, then a message we sent to that very number
        forged = [{"phone_number": "13900000000", "success": False, "err_code": "MK:0001",
                   "out_id": gateway[0]["out_id"], "report_time": "2026-01-01 00:00:00"}]
        with pytest.raises(urllib.error.HTTPError, match="401"):
            await asyncio.get_running_loop().run_in_executor(None, lambda: http_json(
                f"{hub.callback}/sms/aliyun/report/not-the-token", forged))
        ack = await asyncio.get_running_loop().run_in_executor(None, lambda: http_json(
            f"{hub.callback}/sms/aliyun/report/{TOKEN}", forged))
        assert ack == {"code": 0, "msg": "成功"}
        elsewhere = [{"extend": platform[0]["out_id"], "token": "not-the-buyers-oaid", "status": "FAILED"},
                     {"extend": "0" * 32, "status": "FAILED"},  # no message of ours
                     {"extend": gateway[1]["out_id"], "status": "FAILED"}]  # ours, but not sent through taobao
        ack = await asyncio.get_running_loop().run_in_executor(None, lambda: http_json(
            f"{hub.callback}/sms/taobao/report/{TOKEN}", elsewhere))
        assert ack == {"code": 0, "msg": "ok"}
        stats = await sender_stats(hub)
        assert (stats["reports"], stats["reports_unmatched"]) == (6, 4)
        await asyncio.get_running_loop().run_in_executor(None, receipts.poll, 1.0)
        assert _latest(receipts)[gateway[0]["out_id"]]["status"] == "delivered"

        # a parcel stalls: the finding on order.anomalies gives its buyer one delay notice
        paid = {o["order_id"]: copy.deepcopy(o) for o in taobao}
        shipped = [dict(copy.deepcopy(o), status="SHIPPED", updated_at=o["updated_at"] + 60_000, shipments=[
            {"carrier": "中通快递", "tracking_no": f"ZT{i}", "shipped_at": now, "line_ids": []}])
            for i, o in enumerate(taobao)]
        hub.publish_events(shipped, now + 60_000, previous=paid)
        await hub.wait_messages(6, provider="taobao")  # order_confirmed and shipped
        stalled = sample_anomaly(shipped[1]["order_id"], "parcel_stalled", action="flag", detected_at=now + 1,
                                 evidence={"tracking_no": "ZT1", "hours_since_movement": "50"})
        publish(kafka_bootstrap, [(topics.order_anomalies, stalled["order_id"].encode(),
                                   AvroCodec("Anomaly").encode(stalled))] * 2)  # pushed twice: one notice
        (notice,) = [m for m in await hub.wait_messages(7, provider="taobao") if "延误" in m["text"]]
        assert notice["to"] == shipped[1]["receiver"]["secure_token"] and "中通快递 ZT1" in notice["text"]


async def test_replays_and_re_sent_updates_never_text_twice(kafka_bootstrap, topics, tmp_path):
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path) as (hub, _):
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


async def test_a_sender_killed_mid_batch_never_sends_twice(kafka_bootstrap, topics, tmp_path):
    """Killed while the gateway was still answering (found there by the out id afterwards), and killed after
    claiming while every gateway was down (sent once after the restart). No delivery report comes meanwhile, so
    only the check with the gateways can find what the killed sender had sent."""
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path, receipt_delay_s=600) as (hub, receipts):
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


async def test_a_call_that_got_no_answer_is_checked_and_never_sent_again(kafka_bootstrap, topics, tmp_path):
    """The gateway and the platform channel answer after the sender's timeout, having taken the messages all the
    same. No message is failed over or retried: the gateway's are found there by their out id, and the platform's
    (a channel that cannot be asked) are recorded failed rather than risk a second text."""
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path, receipt_delay_s=600) as (hub, receipts):
        await hub.control("/_sim/faults", {"provider": "aliyun", "kind": "slow", "count": 3, "seconds": 2.6})
        await hub.control("/_sim/faults", {"provider": "taobao", "kind": "slow", "count": 1, "seconds": 2.6})
        hub.publish_events(hub.shopify_orders("sp-slow", 3, now) + hub.taobao_orders("tb-slow", 2, now), now)
        latest = await _until(receipts, lambda r: len(r) == 5 and all(
            x["status"] in ("sent", "failed") for x in r.values()), timeout=90)
        await asyncio.sleep(3.0)  # time for any second call to arrive
        sent = await hub.messages()
        assert sorted(m["out_id"] for m in sent) == sorted(latest)  # every message received exactly once
        assert {m["provider"] for m in sent} == {"aliyun", "taobao"}  # none failed over to the second gateway
        gateway = [r for r in latest.values() if r["channel"] == "gateway"]
        assert [(r["status"], r["provider"]) for r in gateway] == [("sent", "aliyun")] * 3
        assert all(r["reason"].startswith("in doubt: TransportError: no answer within 2s") for r in gateway)
        assert (tmp_path / "sender.log").read_text().count("found sent by aliyun") == 3
        platform = [r for r in latest.values() if r["channel"] == "platform"]
        doubted = [r for r in platform if r["status"] == "failed"]
        assert doubted and all(r["code"] == "interrupted" and r["reason"].endswith("not sent again") for r in doubted)
        assert all(r["status"] == "sent" for r in platform if r not in doubted)


async def test_a_report_settles_a_call_in_doubt_before_the_check(kafka_bootstrap, topics, tmp_path):
    """The gateway answers late but reports the delivery within a second: the report settles the message (sent
    when its call started), and no check or second call follows."""
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path, receipt_delay_s=0.5) as (hub, receipts):
        await hub.control("/_sim/faults", {"provider": "aliyun", "kind": "slow", "count": 2, "seconds": 2.6})
        hub.publish_events(hub.shopify_orders("sp-late", 2, now), now)
        latest = await _until(receipts, lambda r: len(r) == 2 and all(
            x["status"] == "delivered" for x in r.values()), timeout=60)
        await asyncio.sleep(8.0)  # past the gateways' timeout and the slack: when a check would have run
        assert sorted(m["out_id"] for m in await hub.messages()) == sorted(latest)
        for record in latest.values():
            assert record["provider"] == "aliyun" and record["attempts"][-1]["started_at"] == record["sent_at"]
        assert "found sent by" not in (tmp_path / "sender.log").read_text()


async def test_pushes_wait_while_the_sender_is_not_running(kafka_bootstrap, topics):
    """A sender still reading its ledger back (or stopping) answers the providers' pushes 503 with Retry-After and
    records nothing; the simulated gateway pushes the report again after that many seconds, as a provider would."""
    config = load_sms_config(CONFIG_PATH, {})
    service = SenderService(SenderSettings(
        kafka_config={"bootstrap.servers": kafka_bootstrap}, topics=topics, config=config,
        hash_key=HASH_KEY.encode(), environ=demo_secrets(config), opener=Opener(None)))
    runner, base = await serve_app(sender_callbacks(service, TOKEN))
    clock = [time.time()]
    state = SimState(approved_templates(config), {"aliyun": {"report": f"{base}/sms/aliyun/report/{TOKEN}"}},
                     receipt_delay_s=0.5, clock=lambda: clock[0])
    try:
        state.record("aliyun", "13800138000", "【通路好物】", "SMS_480001",
                     {"shop_name": "通路好物", "order_no": "1", "amount": "9.90"}, "0" * 32, "1^0", report=True)
        clock[0] += 1.0
        async with aiohttp.ClientSession() as session:
            assert await push_due_reports(state, session) == 0
            assert state.push_failures == 1 and [due for due, *_ in state.pending_reports] == [clock[0] + 5]
            reply = {"provider": "aliyun", "phone": "13800138000", "text": "TD"}
            async with session.post(f"{base}/sms/aliyun/uplink/{TOKEN}", json=uplink_body(
                    "aliyun", reply["phone"], reply["text"], clock[0])) as answer:
                assert (answer.status, answer.headers["Retry-After"]) == (503, "5")
        assert (service.counts["reports"], service.counts["opt_outs"]) == (0, 0)
    finally:
        await runner.cleanup()


async def _stats_of(url: str) -> dict:
    try:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: http_json(f"{url}/sms/stats"))
    except OSError:
        return {}


async def test_two_senders_share_the_partitions_and_one_killed_loses_nothing_and_sends_nothing_twice(
        kafka_bootstrap, topics, tmp_path):
    """Sender a alone, then b joins while a works (the partitions move), then a is killed with calls open at a slow
    gateway: b takes every partition, checks a's unfinished claims with the gateways, and every message reaches the
    gateway exactly once."""
    config, now = load_sms_config(CONFIG_PATH, {}), int(time.time() * 1000)
    sealer, codec = Sealer(EnvKeyProvider(RAW_KEYS)), AvroCodec("SmsRequest")
    requests = [build_request(
        key=message_key(f"member:club:m{i}", "PointsChanged:1/points_changed"), template_name="points_changed",
        template=config.templates["points_changed"],
        variables={"points": "+10", "points_balance": str(100 + i)},
        platform="member", shop_id="club", trigger="PointsChanged", detail="1", channel="gateway",
        occurred_at=now, now_ms=now, member_id=f"m{i}", contact=seal_contact(sealer, f"1391111{i:04d}", "club",
                                                                              f"m{i}"),
        to_masked=f"139****{i:04d}", consent=True, providers=config.providers) for i in range(60)]
    b_callback = f"http://127.0.0.1:{free_port()}"

    def publish_part(part):
        publish(kafka_bootstrap, [(topics.sms_requests, r["key"].encode(), codec.encode(r)) for r in part])

    async with hub_running(kafka_bootstrap, topics, tmp_path, workers=("sender",), receipt_delay_s=600) as (
            hub, receipts):
        publish_part(requests[:20])
        await hub.wait_messages(20, provider="aliyun")
        await hub.control("/_sim/faults", {"provider": "aliyun", "kind": "slow", "count": 40, "seconds": 1.0})
        publish_part(requests[20:40])
        hub.run("sender", "-b", key="sender-b", TONGLU_SMS_CALLBACK_HTTP=b_callback)
        deadline = time.time() + 60
        while time.time() < deadline:  # the group shares the four partitions out
            a, b = await _stats_of(hub.callback), await _stats_of(b_callback)
            if a.get("partitions") and b.get("partitions"):
                break
            await asyncio.sleep(0.3)
        assert sorted(a["partitions"] + b["partitions"]) == [0, 1, 2, 3], (a, b)
        publish_part(requests[40:])
        await _until(receipts, lambda r: sum(x["status"] == "sending" for x in r.values()) >= 2)
        hub.kill("sender")  # kill -9 of a, its calls at the slow gateway still open
        latest = await _until(receipts, lambda r: len(r) == 60 and all(
            x["status"] == "sent" for x in r.values()), timeout=120)
        assert (await _stats_of(b_callback))["partitions"] == [0, 1, 2, 3]
        sent = await hub.messages(provider="aliyun") + await hub.messages(provider="tencent")
        assert sorted(m["out_id"] for m in sent) == sorted(latest) == sorted(r["key"] for r in requests)


def _delivered(order: dict, at: int) -> dict:
    later = copy.deepcopy(order)
    later.update(status="DELIVERED", updated_at=order["updated_at"] + 60_000, delivered_at=at, shipped_at=at,
                 shipments=[{"carrier": "顺丰速运", "tracking_no": "SF1000", "shipped_at": at, "line_ids": []}])
    return later


async def test_opt_out_quiet_hours_failover_and_delivery_reports(kafka_bootstrap, topics, tmp_path):
    hour = datetime.now(ZoneInfo("Asia/Shanghai")).hour
    window = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # marketing may not leave now
    optouts = TopicReader(kafka_bootstrap, topics.sms_optouts, "SmsOptOut")
    now = int(time.time() * 1000)
    async with hub_running(kafka_bootstrap, topics, tmp_path, TONGLU_SMS_MARKETING_HOURS=window) as (hub, receipts):
        orders = hub.shopify_orders("sp-rules", 3, now)
        held = {o["order_id"]: copy.deepcopy(o) for o in orders}
        hub.publish_events(orders, now)
        paid = await hub.wait_messages(3, provider="aliyun")
        refuser = paid[0]["to"]
        reply = await hub.control("/_sim/uplink", {"provider": "aliyun", "phone": refuser, "text": " td。"})
        assert reply["ok"] is True
        await asyncio.get_running_loop().run_in_executor(None, optouts.until, 1, 30)
        assert refuser not in str(optouts.records)  # only the keyed hash travels

        await hub.control("/_sim/faults", {"provider": "aliyun", "kind": "down", "count": 100})
        await hub.control("/_sim/faults", {"provider": "tencent", "kind": "receipt_failed", "count": 1})
        delivered = [_delivered(o, now + 120_000) for o in orders]
        hub.publish_events(delivered, now + 120_000, previous=held)
        latest = await _until(receipts, lambda r: sum(x["provider"] == "tencent" and x["status"] in (
            "delivered", "failed") for x in r.values()) == 6 and sum(x["template"] == "repurchase" for x in
                                                                     r.values()) == 3)
        service = [r for r in latest.values() if r["template"] in ("shipped", "delivered_care")]
        assert len(service) == 6 and {r["provider"] for r in service} == {"tencent"}  # Aliyun down: failed over
        assert any(r["attempts"][0]["provider"] == "aliyun" and not r["attempts"][0]["ok"] for r in service)
        assert sorted(r["status"] for r in service) == ["delivered"] * 5 + ["failed"]
        assert [r["code"] for r in service if r["status"] == "failed"] == ["MK:0001"]
        marketing = {r["to_masked"]: r for r in latest.values() if r["template"] == "repurchase"}
        refuser_hash = latest[paid[0]["out_id"]]["phone_hash"]
        refused = next(r for r in marketing.values() if r["phone_hash"] == refuser_hash)
        assert (refused["status"], refused["reason"]) == ("suppressed", "opt_out")  # at once, never queued
        waiting = [r for r in marketing.values() if r is not refused]
        assert [(r["status"], r["reason"]) for r in waiting] == [("queued", "quiet_hours")] * 2
        assert len(await hub.messages(provider="tencent")) == 6
    optouts.close()


async def test_platform_channels_take_the_token_as_it_came(tmp_path):
    """Taobao's OAID channel (TOP, md5-signed) and the generic channel of another platform, over HTTP."""
    config = load_sms_config(CONFIG_PATH, {})
    state = simulator_state(config, "http://127.0.0.1:1", None)
    runner, base = await serve_app(sms_sim_app(state))
    try:
        http = Endpoints()
        try:
            def channel(platform, secret=None, session_token=None):
                spec = config.channels[platform]
                spec = spec.model_copy(update={name: getattr(spec, name).replace("http://127.0.0.1:8086", base)
                                               for name in ("url", "batch_url") if getattr(spec, name)})
                return PlatformChannel(platform, spec, http, {"secret": secret, "session": session_token})

            message = Outgoing("k-taobao", "1ZqX8mLp0vQ3rT7uW2yA5bC9dE4fG6hJ8kN1sV3xZ5aB7cD9eF", "【通路好物】",
                               "SMS_480002", (("order_no", "3950112233445566771"), ("carrier", "中通快递"),
                                              ("tracking_no", "78912345678901")), "taobao:tb:3950112233445566771")
            taobao = sms_channel_of("taobao")
            ok = await channel("taobao", taobao.DEMO_SECRET, taobao.DEMO_SESSION).send(message)
            assert ok.ok and ok.provider_id.startswith("3950112233445566771^")
            forged = await channel("taobao", "not-the-secret", taobao.DEMO_SESSION).send(message)
            assert (forged.ok, forged.code, forged.elsewhere) == (False, "25", False)
            douyin = Outgoing("k-douyin", '{"phone":"#cipher#"}', "【通路好物】", "DY_480002", message.params,
                              "douyin:dy:4001")
            assert (await channel("douyin").send(douyin)).ok
            unknown = await channel("douyin").send(Outgoing("k2", "#c#", "【通路好物】", "DY_999", (), "douyin:dy:1"))
            assert (unknown.ok, unknown.code) == (False, "template_not_approved")
            listed = [Outgoing(f"k-list-{i}", f"oaid-{i}", "【通路好物】", "SMS_480002", message.params,
                               f"taobao:tb:{i}") for i in range(3)]
            results = await channel("taobao", taobao.DEMO_SECRET, taobao.DEMO_SESSION).send_many(listed)
            assert [r.ok for r in results] == [True] * 3
        finally:
            await http.close()
        received = {m["provider"]: m for m in state.listed()}
        assert received["douyin"]["text"] == "【通路好物】您的订单3950112233445566771已由中通快递发出，运单号78912345678901，请留意查收。"
        assert [(m["to"], m["out_id"]) for m in state.listed(provider="taobao")] == [
            (message.to, "k-taobao")] + [(f"oaid-{i}", f"k-list-{i}") for i in range(3)]  # each keeps its key
    finally:
        await runner.cleanup()


async def test_one_text_to_many_numbers_goes_in_one_request_and_every_report_finds_its_message(
        kafka_bootstrap, topics, tmp_path):
    config, now = load_sms_config(CONFIG_PATH, {}), int(time.time() * 1000)
    sealer = Sealer(EnvKeyProvider(RAW_KEYS))
    requests = [build_request(
        key=message_key(f"member:club:m{i}", "Campaign:1/repurchase"), template_name="repurchase",
        template=config.templates["repurchase"], variables={"shop_name": "通路好物", "item": "保温杯"},
        platform="member", shop_id="club", trigger="Campaign", detail="1", channel="gateway", occurred_at=now,
        now_ms=now, member_id=f"m{i}", contact=seal_contact(sealer, f"1390000{i:04d}", "club", f"m{i}"),
        to_masked=f"139****{i:04d}", consent=True, providers=config.providers) for i in range(5)]
    codec = AvroCodec("SmsRequest")
    batching = tmp_path / "sms.toml"  # the gateways' PhoneNumbers lists on
    batching.write_text(with_gateway_batches(CONFIG_PATH.read_text(encoding="utf-8")), encoding="utf-8")
    async with hub_running(kafka_bootstrap, topics, tmp_path, workers=("sender",), TONGLU_SMS_CONFIG=batching,
                           TONGLU_SMS_MARKETING_HOURS="00:00-23:59") as (hub, receipts):
        publish(kafka_bootstrap, [(topics.sms_requests, r["key"].encode(), codec.encode(r)) for r in requests])
        sent = await hub.wait_messages(5, provider="aliyun")
        (out_id,) = {m["out_id"] for m in sent}
        assert out_id.startswith("b") and len(out_id) == 32 and out_id not in {r["key"] for r in requests}
        latest = await _until(receipts, lambda r: sum(x["status"] == "delivered" for x in r.values()) == 5)
        assert {r["out_id"] for r in latest.values()} == {out_id}
        assert (await sender_stats(hub))["health"]["aliyun"]["requests"] == 1
