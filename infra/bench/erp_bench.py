"""ERP figures for `make bench`: the deliverer's sustained events/s to one endpoint, and event -> ERP latency
while 2,000 orders/s flow.

The deliverer (`tonglu worker erp`) and the endpoint (`infra.bench.erp_receiver`, which checks every
signature and counts repeats and events out of order) run as processes of their own; the order events are
published straight onto order.events, as the normalizer would write them. `python -m infra.bench.erp_bench
[--quick]` runs the phase alone on a broker of its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from connectors.erp.simulator import DEMO_SECRET
from infra.bench import measure
from infra.broker import ensure_topics, free_port, start_broker
from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from schemas.topics import Topics

LATENCY_RATE = 2_000.0  # orders/s, the load; each new paid order is two events (created, paid)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} does not answer")


STATUSES = ("PAID", "PAID", "SHIPPED", "DELIVERED", "COMPLETED")
TYPES = ("OrderPaid", "AddressChanged", "OrderShipped", "OrderDelivered", "OrderCompleted")


def sample_event(shop_id: str, external_id: str, version: int) -> dict:
    """An OrderEvent producing `version` of a masked two-line order (a typical body: ~1.5 kB of JSON)."""
    now = int(time.time() * 1000)
    order_id = f"taobao:{shop_id}:{external_id}"
    kind = TYPES[min(version, len(TYPES)) - 1]
    line = {"sku_id": "5012345678901", "merchant_sku": "TL-MUG-350-WHT", "title": "同路陶瓷马克杯 350ml",
            "quantity": 2, "unit_price": 3990, "total": 7380, "discount": 600, "refund_status": "NONE"}
    order = {"order_id": order_id, "platform": "taobao", "shop_id": shop_id, "external_id": external_id,
             "status": STATUSES[min(version, len(STATUSES)) - 1], "refund_status": "NONE",
             "platform_status": "WAIT_SELLER_SEND_GOODS", "created_at": now - 60_000, "paid_at": now - 30_000,
             "updated_at": now, "shipped_at": None, "delivered_at": None, "currency": "CNY", "items_total": 15780,
             "shipping_fee": 0, "discount_total": 1200, "tax_total": 0, "paid_total": 14580,
             "buyer": {"id": "AAGvBxk2AAE3fEnKPdxwRr4w", "nick_masked": "t***", "message": "请尽快发货"},
             "receiver": {"name_masked": "张**", "phone_masked": "138****1111", "country": "CN",
                          "province": "浙江省", "city": "杭州市", "district": "西湖区",
                          "address_masked": "文新**********", "postal_code": "310012", "secure_token": None,
                          "phone_valid": True, "address_vague": False},
             "lines": [{"line_id": f"{external_id}1", **line}, {"line_id": f"{external_id}2", **line}],
             "shipments": [], "version": version, "refunded_total": 0}
    return {"event_id": f"{order_id}|{version}|{kind}", "event_type": kind, "order_id": order_id,
            "version": version, "seq": 0, "occurred_at": now, "recorded_at": now, "changed_fields": ["status"],
            "raw_record_id": None, "source": "poll", "order": order}


def order_events(orders: int, versions: int, tag: str) -> list[tuple[str, bytes, str]]:
    """(order_id, encoded OrderEvent, event_id): each order's versions 1..n, interleaved across orders."""
    codec, out = AvroCodec("OrderEvent"), []
    for version in range(1, versions + 1):
        for n in range(orders):
            event = sample_event(shop_id=f"bench-{tag}", external_id=str(n), version=version)
            out.append((event["order_id"], codec.encode(event), event["event_id"]))
    return out


def paid_order_events(orders: int, tag: str) -> list[list[tuple[str, bytes, str]]]:
    """Per new paid order, its two events of version 1 (OrderCreated, OrderPaid) as the normalizer writes them."""
    codec, out = AvroCodec("OrderEvent"), []
    for n in range(orders):
        event = sample_event(shop_id=f"bench-{tag}", external_id=str(n), version=2)
        pair = []
        for seq, kind in enumerate(("OrderCreated", "OrderPaid")):
            event = {**event, "event_id": f"{event['order_id']}|{kind}", "event_type": kind, "version": 1, "seq": seq}
            pair.append((event["order_id"], codec.encode(event), event["event_id"]))
        out.append(pair)
    return out


class ErpSide:
    """An endpoint process (`python -m <endpoint> --port P`: the receiver, or the ERP simulator) and a
    deliverer sending to it, on fresh topics."""

    def __init__(self, bootstrap: str, workdir: Path, endpoint: str = "infra.bench.erp_receiver"):
        self.topics = Topics(prefix=f"bench{uuid.uuid4().hex[:6]}.")
        ensure_topics({"bootstrap.servers": bootstrap}, self.topics.specs(), 4)
        self.sim = f"http://127.0.0.1:{free_port()}"
        routing = workdir / "erp-bench.toml"
        routing.write_text(f'[[endpoints]]\nname = "bench"\nurl = "{self.sim}/hooks/tonglu"\n'
                           'secret_env = "TONGLU_ERP_SECRET"\n', encoding="utf-8")
        env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": bootstrap, "TONGLU_TOPIC_PREFIX": self.topics.prefix,
               "TONGLU_ERP_ROUTING": str(routing), "TONGLU_ERP_SECRET": DEMO_SECRET, "TONGLU_ERP_SIM_KEEP": "1000",
               "PYTHONUNBUFFERED": "1"}
        port = self.sim.rsplit(":", 1)[1]
        self.procs = {"endpoint": subprocess.Popen([sys.executable, "-m", endpoint, "--port", port],
                                                  env=env, stdout=open(workdir / "endpoint.log", "wb"),  # noqa: SIM115
                                                  stderr=subprocess.STDOUT)}
        _wait_http(f"{self.sim}/_sim/stats")
        self.procs["erp"] = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "erp"], env=env,
                                             stdout=open(workdir / "erp.log", "wb"),  # noqa: SIM115
                                             stderr=subprocess.STDOUT)

    def stats(self) -> dict:
        return _get(f"{self.sim}/_sim/stats")

    def wait_received(self, count: int, timeout: float) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.stats()["received"] >= count:
                return time.time()
            time.sleep(0.05)
        raise TimeoutError(f"only {self.stats()['received']} of {count} events reached the ERP simulator")

    def stop(self) -> dict[str, float]:
        return measure.stop_processes(self.procs)


def throughput(bootstrap: str, side: ErpSide, orders: int, versions: int = 5) -> float:
    """Events/s to one endpoint draining a backlog on order.events, counted from when the backlog is all
    published (the publishing competes for the cores before); and each process's CPU per event."""
    before = side.stats()["received"]
    events = order_events(orders, versions, "tp")
    Publisher({"bootstrap.servers": bootstrap}).publish([(side.topics.order_events, k.encode(), v)
                                                         for k, v, _ in events])
    cpu = {name: measure.cpu_seconds(p.pid) for name, p in side.procs.items()}
    start_count, t0 = side.stats()["received"], time.time()
    t1 = side.wait_received(before + len(events), timeout=600)
    done = before + len(events) - start_count
    rate = done / (t1 - t0)
    per_event = {name: (measure.cpu_seconds(p.pid) - cpu[name]) / done * 1e6 for name, p in side.procs.items()}
    stats = side.stats()
    _say(f"ERP deliverer           {len(events):,} events of {orders:,} orders to one endpoint (signed JSON "
         f"webhooks, each signature checked): {rate:,.0f} events/s (target >= 5,000) over the last {done:,}; "
         f"CPU per event: deliverer {per_event['erp']:.0f} µs, endpoint {per_event['endpoint']:.0f} µs; out of "
         f"order {stats['out_of_order']}, repeats {stats['repeats']}, refused {stats['rejected']}")
    return rate


def latency(bootstrap: str, side: ErpSide, rate: float, seconds: float) -> tuple[float, float, int]:
    """event -> ERP endpoint p50/p99 (ms) while `rate` new paid orders/s land on order.events."""
    orders = paid_order_events(int(rate * seconds), f"lat{int(time.time())}")
    publisher = Publisher({"bootstrap.servers": bootstrap}, **{"linger.ms": 2})
    sent: dict[str, float] = {}
    tick, start = 0.01, time.time()
    per_tick = rate * tick
    for step in range(int(seconds / tick)):
        due = start + step * tick
        while time.time() < due:
            time.sleep(max(0.0, due - time.time()))
        batch = orders[int(step * per_tick):int((step + 1) * per_tick)]
        now = time.time()
        for pair in batch:
            for _, _, event_id in pair:
                sent[event_id] = now
        publisher.send([(side.topics.order_events, k.encode(), v) for pair in batch for k, v, _ in pair])
    publisher.confirm()
    deadline = time.time() + 30
    arrivals = {}
    while time.time() < deadline:
        arrivals = {a[0]: a[3] for a in _get(f"{side.sim}/_sim/arrivals")["arrivals"] if a[0] in sent}
        if len(arrivals) >= len(sent):
            break
        time.sleep(0.5)
    samples = sorted((sent[e], arrivals[e] / 1000 - sent[e]) for e in sent if e in arrivals)
    lat = [seconds for _, seconds in samples]
    latency.samples = samples  # (sent at, latency) for a closer look
    p50, p99 = measure.percentile(lat, 0.5) * 1000, measure.percentile(lat, 0.99) * 1000
    missing = len(sent) - len(arrivals)
    _say(f"event -> ERP latency    at {rate:,.0f} orders/s ({len(sent):,} events in {seconds:.0f}s) to one endpoint: "
         f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (target < 1,000){f'; {missing} not arrived' if missing else ''}")
    return p50, p99, missing


def _say(text: str) -> None:
    print(text, flush=True)


def run_phase(bootstrap: str, workdir: Path, quick: bool = False) -> dict:
    """The ERP phase on a running broker: the deliverer's events/s to one endpoint, then event -> ERP latency
    while 2,000 orders/s flow; its figures. The endpoint is `erp_receiver` (see there why not the simulator)."""
    side = ErpSide(bootstrap, workdir, "infra.bench.erp_receiver")
    try:
        warm = order_events(100, 1, "warm")
        Publisher({"bootstrap.servers": bootstrap}).publish([(side.topics.order_events, k.encode(), v)
                                                             for k, v, _ in warm])
        side.wait_received(len(warm), timeout=120)  # the deliverer joined its group and delivers
        rate = throughput(bootstrap, side, 4_000 if quick else 20_000)
        p50, p99, missing = latency(bootstrap, side, LATENCY_RATE, 5 if quick else 15)
    finally:
        rss = side.stop()
    _say("ERP peak RSS            " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    return {"events_per_second": rate, "p50_ms": p50, "p99_ms": p99, "missing": missing}


def main() -> None:
    quick = "--quick" in sys.argv
    port = free_port()
    broker = start_broker(port)
    try:
        run_phase(f"127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="tonglu-erp-bench-")), quick)
    finally:
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
