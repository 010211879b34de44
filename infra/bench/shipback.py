"""Ship-back figures for `make bench`: shipment request -> accepted by the platform simulator, p50/p99.

The Taobao simulator and the shipper run as processes (`tonglu worker simulators|shipper`) on the suite's
broker. Paid orders wait in many shops (each shop stays within the platform's 10 calls/s); shipment
commands go onto fulfillment.commands at a steady rate, each stamped with its request time, as an ERP on
Kafka sends them. The simulator notes when it accepted each upload (`GET /_sim/shipments`); the
difference is the figure. While it runs, raw pages of as many new orders per second can flow through
the suite's pipeline beside it, so the figure is taken with orders flowing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from infra.bench import measure
from infra.broker import ensure_topics, free_port
from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from schemas.shipments import shipment_command
from schemas.topics import Topics, shop_key


def _call(url: str, body: dict | None = None, timeout: float = 30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


class ShipSide:
    """The Taobao simulator and the shipper on fresh topics."""

    def __init__(self, bootstrap: str, workdir: Path):
        self.bootstrap = bootstrap
        self.topics = Topics(prefix=f"benchship{uuid.uuid4().hex[:6]}.")
        ensure_topics({"bootstrap.servers": bootstrap}, self.topics.specs(), 4)
        self.sim = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": bootstrap, "TONGLU_TOPIC_PREFIX": self.topics.prefix,
               "TONGLU_SIMULATORS": f"taobao={self.sim}", "TONGLU_DEMO_RATE": "0", "PYTHONUNBUFFERED": "1",
               "TONGLU_ALERT_SIM_HTTP": f"http://127.0.0.1:{free_port()}", "TONGLU_ALERT_SMTP_PORT": str(free_port()),
               "TONGLU_DATA_DIR": str(workdir / "shipback")}
        self.procs = {name: subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env,
                                             stdout=open(workdir / f"{name}.log", "wb"),  # noqa: SIM115
                                             stderr=subprocess.STDOUT)
                      for name in ("simulators", "shipper")}

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                _call(f"{self.sim}/_sim/shops", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("the Taobao simulator did not start")

    def paid_orders(self, shops: int, per_shop: int) -> list[tuple[str, str]]:
        """(shop, external id) of paid orders waiting in `shops` shops, the shops taking turns (so a steady
        stream of shipments keeps every shop within its rate limit)."""
        made = [[(f"bench-ship-{n}", ext) for ext in _call(f"{self.sim}/_sim/orders", {
            "shop_id": f"bench-ship-{n}", "count": per_shop})["external_ids"]] for n in range(shops)]
        return [order for turn in zip(*made, strict=True) for order in turn]

    def accepted(self) -> dict[str, float]:
        """tracking number -> when the simulator accepted it (epoch seconds)."""
        return {u["tracking_no"]: u["accepted_at"] / 1000 for u in _call(f"{self.sim}/_sim/shipments")["uploads"]}

    def stop(self) -> dict[str, float]:
        rss = {f"shipback {name}": measure.peak_rss_mb(p.pid) for name, p in self.procs.items()}
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        return rss


def _feed_orders(bootstrap: str, raw_topic: str, rate: float, seconds: float, stop: threading.Event) -> None:
    """Raw pages of `rate` new orders/s into the pipeline for `seconds` (made before the clock starts)."""
    per_page = 100
    world, now_ms = World(seed=77), int(time.time() * 1000)
    pages = [page_body(world.create_orders("bench-flow", per_page, now_ms)) for _ in range(int(rate * seconds / per_page))]
    publisher = Publisher({"bootstrap.servers": bootstrap}, **{"linger.ms": 0})
    start = time.time()
    for n, body in enumerate(pages):
        if stop.is_set():
            break
        time.sleep(max(0.0, start + n * per_page / rate - time.time()))
        publisher.send([(raw_topic, shop_key("taobao", "bench-flow"), raw_record("taobao", "bench-flow", body,
                                                                                  source="poll"))])
    publisher.confirm()


def warm_up(side: ShipSide, orders: list[tuple[str, str]], timeout: float = 60) -> None:
    """One shipment per shop, until all are accepted: the shipper has joined its group, knows the shops and
    holds connections, as a worker that has been running does."""
    shops = {}
    for shop, ext in orders:
        shops.setdefault(shop, ext)
    codec = AvroCodec("ShipmentCommand")
    commands = [shipment_command(f"taobao:{shop}:{ext}", {"carrier": "ZTO", "tracking_no": f"BW{n:010d}",
                                                          "line_ids": []}, "bench", int(time.time() * 1000))
                for n, (shop, ext) in enumerate(shops.items())]
    Publisher({"bootstrap.servers": side.bootstrap}).publish(
        [(side.topics.fulfillment_commands, c["order_id"].encode(), codec.encode(c)) for c in commands])
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(side.accepted()) >= len(commands):
            return
        time.sleep(0.5)
    raise TimeoutError("the shipper did not warm up")


def latency(side: ShipSide, orders: list[tuple[str, str]], rate: float, seconds: float,
            flowing_topic: str | None = None, first: int = 0, flowing_rate: float = 0.0) -> dict:
    """Send `rate` shipment commands/s for `seconds` (at most one per order, none warm_up used), with
    `flowing_rate` new orders/s into `flowing_topic` beside them; p50/p99 of request -> accepted."""
    codec = AvroCodec("ShipmentCommand")
    publisher = Publisher({"bootstrap.servers": side.bootstrap}, **{"linger.ms": 0})
    count = min(len(orders), int(rate * seconds))
    stop, feeder = threading.Event(), None
    if flowing_topic:
        feeder = threading.Thread(target=_feed_orders, args=(side.bootstrap, flowing_topic, flowing_rate, seconds, stop),
                                  daemon=True)
        feeder.start()
    requested: dict[str, float] = {}
    cpu_before = {name: measure.cpu_seconds(proc.pid) for name, proc in side.procs.items()}
    tick, start = 0.01, time.time()
    sent = 0
    while sent < count:
        due = min(count, int((time.time() - start) * rate) + 1)
        batch = []
        for shop, ext in orders[sent:due]:
            tracking = f"BS{first + sent:010d}"
            now = time.time()
            command = shipment_command(f"taobao:{shop}:{ext}", {"carrier": "ZTO", "tracking_no": tracking,
                                                                 "line_ids": []}, "bench", int(now * 1000))
            requested[tracking] = command["requested_at"] / 1000
            batch.append((side.topics.fulfillment_commands, command["order_id"].encode(), codec.encode(command)))
            sent += 1
        publisher.send(batch)
        time.sleep(tick)
    publisher.confirm()
    sending = time.time() - start
    deadline, accepted = time.time() + 60, {}
    while time.time() < deadline and len(requested.keys() & accepted.keys()) < count:
        time.sleep(1.0)
        accepted = side.accepted()  # every upload so far (warm-up and earlier runs too)
    # CPU per upload, each process apart: on this machine the simulator shares the cores, in production the
    # platform's gateway is not ours (the simulator's figure includes the bench's polls of /_sim/shipments)
    cpu = {name: (measure.cpu_seconds(proc.pid) - cpu_before[name]) / max(1, count) * 1000
           for name, proc in side.procs.items()}
    stop.set()
    if feeder is not None:
        feeder.join(30)
    waits = [accepted[t] - at for t, at in requested.items() if t in accepted]  # warm-up ones are not requested
    done = max((accepted[t] for t in requested if t in accepted), default=float("nan")) - start
    return {"requested": count, "accepted": len(waits), "seconds": sending, "done": done,
            "flowing": flowing_rate if flowing_topic else 0.0,
            "throughput": len(waits) / done if waits else 0.0,
            "p50": measure.percentile(waits, 0.5) * 1000, "p99": measure.percentile(waits, 0.99) * 1000,
            "max": max(waits, default=float("nan")) * 1000, "shipper_cpu_ms": cpu["shipper"],
            "simulator_cpu_ms": cpu["simulators"]}


# a load two vCPUs carry beside the order flow, then the (last: a backlog it leaves spoils nothing)
SHIP_RATES = (500.0, 2_000.0)
SHOPS = 400  # 5 uploads/s each at 2,000/s: within Taobao's 10 calls/s per shop
FLOWING = 2_000.0  # new orders/s beside the shipments: the condition


def phase(bootstrap: str, workdir: Path, seconds: float = 10.0, flowing_topic: str | None = None,
          rates: tuple[float, ...] = SHIP_RATES, shops: int = SHOPS,
          flowing_rate: float = FLOWING) -> tuple[list[dict], dict[str, float]]:
    """The ship-back figures at each of `rates` requests/s (with `flowing_rate` new orders/s flowing into
    `flowing_topic`, if given), and the peak RSS of its processes."""
    side = ShipSide(bootstrap, workdir)
    runs = []
    try:
        side.wait_up()
        per_shop = sum(int(rate * seconds / shops) + 2 for rate in rates)
        orders = side.paid_orders(shops, per_shop)
        warm_up(side, orders[:shops])
        orders = orders[shops:]
        for rate in rates:
            count = int(rate * seconds)
            figures = latency(side, orders[:count], rate, seconds, flowing_topic, first=sum(
                r["requested"] for r in runs), flowing_rate=flowing_rate)
            figures["rate"] = rate
            runs.append(figures)
            orders = orders[count:]
    finally:
        rss = side.stop()
    return runs, rss


def line(figures: dict) -> str:
    """The phase's line of `make bench`."""
    beside = f", {figures['flowing']:,.0f} new orders/s flowing beside it" if figures["flowing"] else ""
    return (f"ship-back latency       {figures['requested']:,} shipment requests at {figures['rate']:,.0f}/s"
            f"{beside}: accepted by the platform simulator {figures['accepted']:,}, the last {figures['done']:.1f}s "
            f"after the first request ({figures['throughput']:,.0f} uploads/s); request -> accepted p50 "
            f"{figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms, max {figures['max']:.0f} ms; CPU per upload: "
            f"shipper {figures['shipper_cpu_ms']:.2f} ms, platform simulator {figures['simulator_cpu_ms']:.2f} ms")


def main(flowing: bool = False) -> None:
    """This phase alone on a fresh broker: `python -m infra.bench.shipback [--flowing]` (with `--flowing`
    a pipeline takes 2,000 new orders per second beside it, as in `make bench`)."""
    import tempfile

    from infra.bench.suite import Pipeline
    from infra.broker import start_broker

    port = free_port()
    broker = start_broker(port)
    bootstrap, workdir = f"127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="tonglu-bench-ship-"))
    pipe = Pipeline(bootstrap, workdir) if flowing else None
    try:
        if pipe is not None:
            pipe.wait_visible(0, timeout=120)
        runs, _rss = phase(bootstrap, workdir, flowing_topic=pipe.topics.raw_orders if pipe else None)
        for figures in runs:
            print(line(figures), flush=True)
    finally:
        if pipe is not None:
            pipe.stop()
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main(flowing="--flowing" in sys.argv)
