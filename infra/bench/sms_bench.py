"""The SMS hub's figures (part of `make bench`, about a minute and a half):

1. the sender alone: a burst of requests, half to plain numbers (Aliyun) and half to Taobao buyers (the OAID
   channel), against the simulators over HTTP => messages/s;
2. trigger -> provider: order events at 2,000 orders/s through the notifier and the sender; the time from an
   event's publication to the simulated provider receiving its message, p50/p99;
3. failover: Aliyun down while messages flow => how soon Tencent takes them, and that every message was sent,
   once.

    python -m infra.bench.sms_bench [--quick]
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from connectors import platforms
from connectors.simkit.world import World
from connectors.sms.contacts import seal_contact
from infra.bench import measure
from infra.broker import ensure_topics, free_port, start_broker
from infra.sms_local import CALLBACK_TOKEN_ENV, HASH_KEY_ENV, demo_secrets
from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from schemas.sealing import KEYS_ENV, EnvKeyProvider, Sealer, new_key_spec
from schemas.topics import Topics
from streams.derive import derive_events
from streams.sms.compose import build_request
from streams.sms.identity import mask_phone, message_key
from streams.sms.templates import load_sms_config

TEMPLATE, BROADCAST = "order_confirmed", "repurchase"
_BATCHING = re.compile(r"(?m)^# max_batch = (\d+) .*$")


def with_gateway_batches(config_text: str) -> str:
    """The SMS configuration's text with the gateways' PhoneNumbers lists on (the shipped file keeps them off)."""
    return _BATCHING.sub(r"max_batch = \1", config_text)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _post(url: str, body: dict | None = None, method: str = "POST"):
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


class SmsStack:
    """A broker, the SMS simulators, the notifier and the sender, on free ports."""

    def __init__(self, workdir: Path):
        port = free_port()
        self.broker = start_broker(port)
        self.bootstrap = f"127.0.0.1:{port}"
        self.topics = Topics(prefix=f"smsbench{uuid.uuid4().hex[:6]}.")
        ensure_topics({"bootstrap.servers": self.bootstrap}, self.topics.specs(), 4)
        self.sim, self.callback = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        self.raw_keys = new_key_spec("bench")
        # the shipped file with the gateways' PhoneNumbers lists on (off by default: see its comment)
        config_path = workdir / "sms.toml"
        shipped = (Path(__file__).parents[1] / "sms.toml").read_text(encoding="utf-8")
        config_path.write_text(with_gateway_batches(shipped), encoding="utf-8")
        self.config = load_sms_config(config_path, {"TONGLU_SMS_SIM_HTTP": self.sim})
        env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": self.bootstrap, "TONGLU_TOPIC_PREFIX": self.topics.prefix,
               "TONGLU_SIMULATORS": "none", "TONGLU_ALERT_SIM_HTTP": f"http://127.0.0.1:{free_port()}",
               "TONGLU_ALERT_SMTP_PORT": str(free_port()), "TONGLU_SMS_SIM_HTTP": self.sim,
               "TONGLU_ERP_SIM_HTTP": f"http://127.0.0.1:{free_port()}",
               "TONGLU_TRACKING_SIM_HTTP": f"http://127.0.0.1:{free_port()}",
               "TONGLU_SMS_CALLBACK_HTTP": self.callback, HASH_KEY_ENV: uuid.uuid4().hex * 2,
               CALLBACK_TOKEN_ENV: uuid.uuid4().hex, KEYS_ENV: self.raw_keys, "TONGLU_DATA_DIR": str(workdir),
               "TONGLU_SMS_MARKETING_HOURS": "00:00-23:59", "TONGLU_SMS_CONFIG": str(config_path),
               "PYTHONUNBUFFERED": "1", **demo_secrets(self.config)}
        self.procs = {name: subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env,
                                             stdout=open(workdir / f"{name}.log", "wb"),  # noqa: SIM115
                                             stderr=subprocess.STDOUT)
                      for name in ("simulators", "sender", "notifier")}
        self.publisher = Publisher({"bootstrap.servers": self.bootstrap}, **{"linger.ms": 2})
        self.request_codec = AvroCodec("SmsRequest")

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                stats = _get(f"{self.callback}/sms/stats")  # ready, and its group gave it the partitions
                if stats.get("ready") and stats.get("partitions") and _get(f"{self.sim}/_sim/messages?out_id=-"):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError("the SMS sender and simulators did not come up")

    def sender(self) -> dict:
        return _get(f"{self.callback}/sms/stats")

    def wait_handled(self, count: int, timeout: float) -> float:
        """When the sender has sent or given up on `count` messages in all."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            stats = self.sender()
            if stats["sent"] + stats["failed"] >= count:
                return time.time()
            time.sleep(0.1)
        stats = self.sender()
        raise TimeoutError(f"the sender handled {stats['sent'] + stats['failed']} of {count} messages: {stats}")

    def stop(self) -> dict[str, float]:
        rss = measure.stop_processes(self.procs, timeout=20)
        self.broker.terminate()
        self.broker.wait(10)
        return rss


def requests(stack: SmsStack, count: int, start: int, gateway_share: float = 0.5,
             broadcast: bool = False) -> list[dict]:
    """SmsRequests of `count` buyers: plain numbers (sealed, as members' are) and Taobao buyers' OAIDs; each its
    own order's text, or (`broadcast`) one marketing text for everyone."""
    name = BROADCAST if broadcast else TEMPLATE
    template, now = stack.config.templates[name], int(time.time() * 1000)
    sealer = Sealer(EnvKeyProvider(stack.raw_keys))
    out = []
    for i in range(start, start + count):
        member, shop = f"b{i}", "bench-sms"
        gateway = (i * gateway_share) % 1 < gateway_share
        phone = f"139{i:08d}"
        variables = ({"shop_name": "通路好物", "item": "保温杯"} if broadcast else
                     {"shop_name": "通路好物", "order_no": f"TL{i:010d}", "amount": "99.00"})
        out.append(build_request(
            key=uuid.uuid4().hex, template_name=name, template=template, variables=variables,
            platform="member" if gateway else "taobao", shop_id=shop, trigger="OrderPaid", detail=None,
            channel="gateway" if gateway else "platform", occurred_at=now, now_ms=now, member_id=member,
            order_id=None if gateway else f"taobao:{shop}:{i}", token=None if gateway else f"oaid-{i:012d}",
            contact=seal_contact(sealer, phone, shop, member) if gateway else None,
            to_masked=mask_phone(phone), consent=True if broadcast else None))
    return out


def publish_requests(stack: SmsStack, batch: list[dict]) -> None:
    stack.publisher.publish([(stack.topics.sms_requests, r["key"].encode(), stack.request_codec.encode(r))
                             for r in batch])


def sender_throughput(stack: SmsStack, count: int, say, broadcast: bool = False, start: int = 0) -> float:
    batch = requests(stack, count, start, gateway_share=1.0 if broadcast else 0.5, broadcast=broadcast)
    before = stack.sender()
    t0 = time.time()
    publish_requests(stack, batch)
    done = stack.wait_handled(before["sent"] + before["failed"] + count, timeout=300)
    rate = count / (done - t0)
    stats = stack.sender()
    calls = stats["health"]["aliyun"]["requests"] - before["health"]["aliyun"]["requests"]
    what = (f"one marketing text to {count:,} numbers, batched in Aliyun's PhoneNumbers lists ({calls:,} requests)"
            if broadcast else f"{count:,} messages of their own text, half Aliyun ({calls:,} requests), half "
            "Taobao's OAID channel")
    say(f"sms sender              {what}, against the simulators over HTTP: all handled after {done - t0:.1f}s "
        f"=> {rate:,.0f} messages/s ({stats['failed'] - before['failed']} failed)")
    return rate


def order_events(count: int, first: int = 0) -> list[tuple[str, bytes]]:
    """(order id, encoded OrderPaid event) of `count` new paid Taobao orders, stamped now: a hundred simulated
    orders as the normalizer maps them, copied under new ids and OAIDs."""
    world, now = World(seed=21), int(time.time() * 1000)
    render = platforms.module("taobao", "render").page_body
    shapes = platforms.map_payload("taobao", render(world.create_orders("bench-trigger", 100, now)), "json",
                                   "bench-trigger")
    codec, order_codec, out = AvroCodec("OrderEvent"), AvroCodec("Order"), []
    for i in range(first, first + count):
        order = copy.deepcopy(shapes[i % len(shapes)])
        order.update(external_id=f"{9_000_000_000 + i}", order_id=f"taobao:bench-trigger:{9_000_000_000 + i}")
        order["receiver"]["secure_token"] = f"oaid-trigger-{i:010d}"
        for event in derive_events(None, order, now):
            if event["event_type"] == "OrderPaid":
                out.append((order["order_id"], codec.encode_with_tail(event, order_codec.encode_body(order))))
    return out


def warm_up(stack: SmsStack, timeout: float = 90.0) -> float:
    """One order through the notifier and the sender before the clock starts (the notifier's group join took
    10-20 s on a fresh broker here): seconds until its message reached Taobao's channel."""
    ((oid, value),) = order_events(1, first=50_000_000)
    key, start = message_key(oid, f"OrderPaid/{TEMPLATE}"), time.time()
    stack.publisher.publish([(stack.topics.order_events, oid.encode(), value)])
    while time.time() < start + timeout:
        if _get(f"{stack.sim}/_sim/messages?provider=taobao&out_id={key}")["messages"]:
            return time.time() - start
        time.sleep(0.2)
    raise TimeoutError(f"the warm-up order did not reach Taobao's channel within {timeout:.0f}s")


def trigger_latency(stack: SmsStack, rate: float, seconds: float, say) -> tuple[float, float]:
    warmed = warm_up(stack)
    events = order_events(int(rate * seconds))
    sent: dict[str, float] = {}
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    publisher = Publisher({"bootstrap.servers": stack.bootstrap}, **{"linger.ms": 0})
    start = time.time()
    for n in range(0, len(events), per_tick):
        while time.time() < start + (n / per_tick) * tick:
            time.sleep(0.001)
        chunk = events[n:n + per_tick]
        now = time.time()
        publisher.send([(stack.topics.order_events, oid.encode(), value) for oid, value in chunk])
        publisher.producer.poll(0)
        for oid, _ in chunk:
            sent[oid] = now
    publisher.confirm()
    elapsed = time.time() - start
    keys = {message_key(oid, f"OrderPaid/{TEMPLATE}"): oid for oid in sent}
    deadline, latencies = time.time() + 60, {}
    while time.time() < deadline and len(latencies) < len(keys):
        for message in _get(f"{stack.sim}/_sim/messages?provider=taobao")["messages"]:
            oid = keys.get(message["out_id"])
            if oid is not None:
                latencies[oid] = message["received_at"] / 1000 - sent[oid]
        time.sleep(1.0)
    values = list(latencies.values())
    p50, p99 = measure.percentile(values, 0.5) * 1000, measure.percentile(values, 0.99) * 1000
    say(f"sms trigger -> provider at {len(events) / elapsed:,.0f} orders/s for {elapsed:.0f}s ({len(values):,} of "
        f"{len(keys):,} messages at Taobao's channel): p50 {p50:.0f} ms, p99 {p99:.0f} ms (after a warm-up order, "
        f"through in {warmed:.1f}s)")
    return p50, p99


def failover(stack: SmsStack, count: int, rate: float, say) -> dict:
    """Aliyun down from the first message on: when Tencent took over, and whether each was sent once."""
    batch = requests(stack, count, 10_000_000, gateway_share=1.0)
    _post(f"{stack.sim}/_sim/faults", {"provider": "aliyun", "kind": "down", "count": 10_000_000})
    before = stack.sender()
    down_at = time.time()
    per_tick = max(1, int(rate / 10))
    for n in range(0, count, per_tick):
        while time.time() < down_at + n / rate:
            time.sleep(0.002)
        publish_requests(stack, batch[n:n + per_tick])
    stack.wait_handled(before["sent"] + before["failed"] + count, timeout=120)
    _post(f"{stack.sim}/_sim/faults", method="DELETE")
    keys = {r["key"] for r in batch}
    received = [m for m in _get(f"{stack.sim}/_sim/messages?provider=tencent")["messages"] if m["out_id"] in keys]
    at_aliyun = [m for m in _get(f"{stack.sim}/_sim/messages?provider=aliyun")["messages"] if m["out_id"] in keys]
    first = min(m["received_at"] for m in received) / 1000 - down_at if received else float("nan")
    figures = {"messages": count, "at_tencent": len(received), "unique": len({m["out_id"] for m in received}),
               "at_aliyun": len(at_aliyun), "first_s": first}
    say(f"sms failover            Aliyun down while {count:,} messages flow at {rate:,.0f}/s: Tencent took the first "
        f"{first:.2f}s after the outage began; {figures['at_tencent']:,} delivered to Tencent "
        f"({figures['unique']:,} distinct, {count - figures['unique']} lost, "
        f"{figures['at_tencent'] - figures['unique']} twice), {len(at_aliyun)} to Aliyun")
    return figures


def run_sms_bench(quick: bool = False, say=print) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="tonglu-sms-bench-"))
    stack = SmsStack(workdir)
    try:
        stack.wait_ready()
        single = sender_throughput(stack, 4_000 if quick else 10_000, say)
        rate = sender_throughput(stack, 10_000 if quick else 40_000, say, broadcast=True, start=1_000_000)
        p50, p99 = trigger_latency(stack, 2_000.0, 5 if quick else 10, say)
        moved = failover(stack, 1_000 if quick else 3_000, 500.0, say)
    finally:
        rss = stack.stop()
    say("sms peak RSS            " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    summary = (f"sms summary: sender {rate:,.0f} messages/s batched (target >= 2,000), {single:,.0f}/s one text each "
               f"· trigger -> provider p99 {p99:.0f} ms "
               f"at 2,000 orders/s (target < 1,000) · failover to Tencent after {moved['first_s']:.2f}s "
               f"(target < 5), {moved['messages'] - moved['unique']} lost")
    say(summary)
    return {"sender_rate": rate, "single_rate": single, "trigger_p50": p50, "trigger_p99": p99, "failover": moved}


if __name__ == "__main__":
    run_sms_bench(quick="--quick" in sys.argv)
