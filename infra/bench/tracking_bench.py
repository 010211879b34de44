"""The carrier-push figure for `make bench`: a courier's 签收 push -> `OrderDelivered` on order.events.

Beside a running `suite.Pipeline` (normalizer + projector) it starts the connectors process as the
webhook receiver, seeds shipped orders, then, while new orders flow into raw.orders at the issue's
2,000 orders/s, posts one signed Kuaidi100 push per order (a delivered parcel) to `/webhooks/kuaidi100`
and times each from the moment its request left until its OrderDelivered was readable on order.events.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from connectors.tracking import kuaidi100
from connectors.tracking.parcels import Parcels
from connectors.tracking.receiver import PATH
from infra.bench import measure, workload
from infra.broker import free_port
from schemas.kafka import Publisher, consumer_from_now
from schemas.topics import shop_key

SECRET = "bench-tracking-secret"
SHOPS = 8


def event_head(value: bytes) -> tuple[str, str]:
    """(event_type, order_id) of an OrderEvent, read from its Avro head without decoding the rest."""
    pos = 10
    _, pos = measure.read_string(value, pos)  # event_id
    event_type, pos = measure.read_string(value, pos)
    return event_type, measure.read_string(value, pos)[0]


class Receiver:
    """The connectors process as the webhook receiver of the pipeline's topics (no shops to poll)."""

    def __init__(self, bootstrap: str, pipe, workdir: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": bootstrap, "TONGLU_TOPIC_PREFIX": pipe.topics.prefix,
               "TONGLU_WEBHOOK_HTTP": self.url, "TONGLU_SIMULATORS": "none", "TONGLU_RAW_PLAINTEXT": "1",
               "TONGLU_TRACKING_SECRET": SECRET, "TONGLU_DATA_DIR": str(workdir / "receiver"),
               "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "connectors"], env=env,
                                     stdout=open(workdir / "receiver.log", "wb"),  # noqa: SIM115
                                     stderr=subprocess.STDOUT)

    def stop(self) -> float:
        rss = measure.peak_rss_mb(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return rss


def shipped_orders(count: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str]]]:
    """Raw pages of `count` shipped Taobao orders, and (order_id, tracking_no) of each."""
    world, now = World(seed=61), int(time.time() * 1000) - 3_600_000
    pages, parcels = [], []
    for s in range(SHOPS):
        shop = f"bench-track-{s}"
        orders = world.create_orders(shop, count // SHOPS, now)
        for order in orders:
            world._apply(order, "ship", now + 60_000)  # whole, so one parcel signed for delivers the order
            parcels.append((f"taobao:{shop}:{order.external_id}", order.lines[0].tracking_no))
        for i in range(0, len(orders), 100):
            pages.append((shop_key("taobao", shop), raw_record("taobao", shop, page_body(orders[i:i + 100]),
                                                              source="poll")))
    return pages, parcels


def delivered_push(order_id: str, tracking_no: str) -> bytes:
    """The signed form body the carrier sends when the parcel of `order_id` is signed for."""
    parcels = Parcels("k")
    parcels.subscribe({"key": "k", "company": "zhongtong", "number": tracking_no,
                       "parameters": {"callbackurl": "http://bench/"}}, time.time(), None)
    push = parcels.advance(tracking_no, "delivered", time.time()).push()
    salt = kuaidi100.subscription_salt(SECRET, order_id, tracking_no)
    return urlencode(kuaidi100.push_form(push, salt)).encode()


async def _post_all(url: str, bodies: list[tuple[str, bytes]], rate: float, sent: dict[str, float],
                    failed: list) -> None:
    start = time.time()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def post(order_id: str, body: bytes) -> None:
            sent[order_id] = time.time()
            try:
                async with session.post(kuaidi100.callback_url(url + PATH, order_id), data=body, headers={
                        "Content-Type": "application/x-www-form-urlencoded"}) as resp:
                    if resp.status != 200:
                        failed.append(resp.status)
            except aiohttp.ClientError as exc:
                failed.append(str(exc))

        tasks = []
        for n, (order_id, body) in enumerate(bodies):
            await asyncio.sleep(max(0.0, start + n / rate - time.time()))
            tasks.append(asyncio.create_task(post(order_id, body)))
        await asyncio.gather(*tasks)


def _wait_for_receiver(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if measure.http_status(f"{url}{PATH}") is not None:
            return
        time.sleep(0.5)
    raise TimeoutError("the webhook receiver did not start")


def carrier_push_latency(bootstrap: str, pipe, workdir: Path, load: float = 2_000.0, seconds: float = 15.0,
                         pushes_per_second: float = 100.0) -> dict:
    """p50/p99 ms of carrier push -> OrderDelivered while `load` orders/s flow (see the module)."""
    receiver = Receiver(bootstrap, pipe, workdir)
    publisher = Publisher({"bootstrap.servers": bootstrap})
    try:
        count = int(pushes_per_second * seconds)
        pages, parcels = shipped_orders(count)
        consumer = consumer_from_now({"bootstrap.servers": bootstrap}, [pipe.topics.order_events], "bench-track",
                                     **{"session.timeout.ms": 6000, "fetch.wait.max.ms": 10})
        before = pipe.visible_orders()
        publisher.publish([(pipe.topics.raw_orders, k, v) for k, v in pages])
        pipe.wait_visible(before + len(parcels), timeout=120)  # every shipped order is known
        _wait_for_receiver(receiver.url)
        bodies = [(order_id, delivered_push(order_id, number)) for order_id, number in parcels]
        flow = workload.encode_pages(workload.taobao_pages(int(load * seconds), shops=8, seed=77))
        sent: dict[str, float] = {}  # order id or raw record id -> when it left
        failed: list = []
        pusher = threading.Thread(target=lambda: asyncio.run(_post_all(receiver.url, bodies, pushes_per_second,
                                                                       sent, failed)), daemon=True)
        latencies: dict[str, float] = {}
        flowing: dict[str, float] = {}  # raw record id of a flowing page -> its first event's latency
        interval = seconds / max(len(flow), 1)  # between pages, so that `load` orders/s flow
        start = time.time()
        pusher.start()
        for n, (key, value, record_id) in enumerate(flow):
            while time.time() < start + n * interval:
                _collect(consumer, sent, latencies, flowing, 0.001)
            sent[record_id] = time.time()
            publisher.send([(pipe.topics.raw_orders, key, value)])
        publisher.confirm()
        pusher.join(120)
        deadline = time.time() + 20
        while time.time() < deadline and len(latencies) < len(parcels) - len(failed):
            _collect(consumer, sent, latencies, flowing, 0.1)
        consumer.close()
    finally:
        rss = receiver.stop()
        publisher.close()
    values, pages = list(latencies.values()), list(flowing.values())
    return {"load": load, "pushes": len(parcels), "delivered": len(values), "failed": len(failed),
            "p50": measure.percentile(values, 0.5) * 1000, "p99": measure.percentile(values, 0.99) * 1000,
            "raw_p99": measure.percentile(pages, 0.99) * 1000, "receiver_rss": rss}


def _collect(consumer, sent: dict[str, float], latencies: dict[str, float], flowing: dict[str, float],
             timeout: float) -> None:
    for msg in consumer.consume(1000, timeout):
        if msg.error():
            continue
        value, now = msg.value(), time.time()
        event_type, order_id = event_head(value)
        if event_type == "OrderDelivered" and order_id in sent and order_id not in latencies:
            latencies[order_id] = now - sent[order_id]
        record_id = measure.event_raw_record_id(value)
        if record_id in sent and record_id not in flowing:
            flowing[record_id] = now - sent[record_id]


def say_figures(figures: dict, say) -> None:
    say(f"carrier push -> delivered at {figures['load']:,.0f} orders/s flowing, {figures['pushes']:,} signed 签收 "
        f"pushes to /webhooks/kuaidi100: OrderDelivered on order.events p50 {figures['p50']:.0f} ms p99 "
        f"{figures['p99']:.0f} ms ({figures['delivered']:,} delivered, {figures['failed']} pushes refused); the "
        f"flowing pages' raw -> event p99 meanwhile {figures['raw_p99']:.0f} ms")


def main(quick: bool = True) -> None:
    """This phase alone on a fresh broker and pipeline: `python -m infra.bench.tracking_bench`."""
    import tempfile

    from infra.bench.suite import Pipeline
    from infra.broker import start_broker

    port = free_port()
    broker = start_broker(port)
    bootstrap, workdir = f"127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="tonglu-bench-track-"))
    pipe = Pipeline(bootstrap, workdir)
    try:
        warm = workload.encode_pages(workload.taobao_pages(100, shops=1, seed=5))
        Publisher({"bootstrap.servers": bootstrap}).publish([(pipe.topics.raw_orders, k, v) for k, v, _ in warm])
        pipe.wait_visible(100, timeout=120)
        say_figures(carrier_push_latency(bootstrap, pipe, workdir, seconds=5 if quick else 15), print)
    finally:
        pipe.stop()
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main(quick="--full" not in sys.argv)
