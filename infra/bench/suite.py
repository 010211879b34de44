"""The benchmark suite: one run on this machine, figures printed.

1. broker pass-through of the raw pages (produce + consume the same bytes);
2. the plain per-message Faust normalizer (baseline);
3. Tonglu end to end: raw pages in raw.orders -> normalizer -> order.events -> projector -> ClickHouse;
4. raw -> event latency p50/p99 at a steady half of the measured end-to-end rate;
5. the anomaly detector alone, and raw -> finding / alert latency with the whole stack at half that
   rate (with each process's CPU per order) and at 5,000 orders/s; then at 5,000 orders/s with the
   projector paused (as if it ran on other cores) and how long it takes to write that backlog after;
6. carrier push -> OrderDelivered on order.events while 2,000 orders/s flow (`tracking_bench`);
7. ship-back: shipment request -> accepted by the platform simulator at 500 and at 2,000 requests/s,
   with 2,000 new orders per second flowing through the stack beside it (`shipback.py`);
8. peak RSS of every process;
9. every registered platform: its mapping's CPU per order on its recorded list pages (vs Taobao's), and
   Tonglu end to end (as 3.) on a mixed workload of all of them, on a fresh pipeline, vs the Taobao-only
   figure — both done while the alert side waits out a fresh DingTalk minute, so they add no time;
10. the ERP deliverer: events/s to one endpoint, event -> ERP latency at 2,000 orders/s (`erp_bench`);
11. a short chaos run, and the SMS hub (`infra.bench.sms_bench`): the sender's messages/s against the simulators,
    trigger -> provider latency at 2,000 orders/s, and failover when Aliyun is down.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from connectors import platforms
from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from infra.bench import anomaly_bench, erp_bench, measure, platforms_bench, shipback, tracking_bench, workload
from infra.broker import ensure_topics, free_port, start_broker
from projections.access import Role
from projections.tokens import TokenStore
from schemas.kafka import Publisher, consumer_from_now, read_to_end
from schemas.topics import Topics, TopicSpec, shop_key


def _say(text: str) -> None:
    print(text, flush=True)


def _consume_all(bootstrap: str, topic: str, count: int, timeout: float = 120) -> tuple[int, float]:
    """How long reading `count` records of `topic` from its beginning takes."""
    seen, t0 = 0, time.time()
    for batch in read_to_end({"bootstrap.servers": bootstrap}, [topic], timeout=timeout, batch=5000,
                             group="bench", **{"fetch.max.bytes": 64 * 1024 * 1024}):
        seen += len(batch)
        if seen >= count:
            break
    return seen, time.time() - t0


def broker_passthrough(bootstrap: str, values: list[tuple[bytes, bytes, str]], orders: int) -> float:
    topic = f"bench.pass.{uuid.uuid4().hex[:6]}"
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topic)], 4)
    publisher = Publisher({"bootstrap.servers": bootstrap})
    t0 = time.time()
    publisher.publish([(topic, k, v) for k, v, _ in values])
    produce_s = time.time() - t0
    _, consume_s = _consume_all(bootstrap, topic, len(values))
    rate = orders / max(produce_s, consume_s)
    _say(f"broker pass-through     {len(values)} pages ({sum(len(v) for _, v, _ in values) / 1e6:.1f} MB): "
         f"produce {produce_s:.2f}s, consume {consume_s:.2f}s  => {rate:,.0f} orders/s")
    return rate


def faust_baseline(bootstrap: str, n: int) -> float:
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:6]}.")
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topics.raw_orders), TopicSpec(topics.order_events)], 4)
    Publisher({"bootstrap.servers": bootstrap}).publish(
        [(topics.raw_orders, k, v) for k, v in workload.single_order_records(n)])
    env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": bootstrap, "BENCH_IN": topics.raw_orders,
           "BENCH_OUT": topics.order_events, "BENCH_N": str(n)}
    proc = subprocess.run([sys.executable, "-m", "infra.bench.faust_baseline"], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr  # Faust may route prints through its logging
    line = next((ln[ln.index("BASELINE"):] for ln in output.splitlines() if "BASELINE" in ln), None)
    if line is None:
        _say(f"faust baseline          failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
        return float("nan")
    _, orders, events, seconds = line.split()
    rate = int(orders) / float(seconds)
    _say(f"faust baseline          per-message agent, {orders} orders / {events} events in {float(seconds):.1f}s"
         f"  => {rate:,.0f} orders/s ({int(events) / float(seconds):,.0f} events/s)")
    return rate


class Pipeline:
    """Normalizer + projector processes on fresh topics and a fresh chdb path."""

    def __init__(self, bootstrap: str, workdir: Path):
        self.bootstrap = bootstrap
        self.topics = Topics(prefix=f"bench{uuid.uuid4().hex[:6]}.")
        ensure_topics({"bootstrap.servers": bootstrap}, self.topics.specs(), 4)
        self.http = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "TONGLU_KAFKA_BOOTSTRAP": bootstrap, "TONGLU_TOPIC_PREFIX": self.topics.prefix,
               "TONGLU_HTTP": self.http, "TONGLU_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1",
               "TONGLU_TOKENS_FILE": str(workdir / "tokens.json")}
        self.token, _ = TokenStore(workdir / "tokens.json").create("bench", Role.ADMIN)
        self.procs = {name: subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env,
                                             stdout=open(workdir / f"{name}.log", "wb"),  # noqa: SIM115
                                             stderr=subprocess.STDOUT)
                      for name in ("projector", "normalizer")}

    def visible_orders(self) -> int:
        return measure.sql_count(self.http, "SELECT uniqExact(order_id) FROM tonglu.orders", self.token)

    def wait_visible(self, count: int, timeout: float) -> float:
        """When `count` orders are queryable; polls twice a second (each query competes with inserts)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.visible_orders() >= count:
                return time.time()
            time.sleep(0.5)
        raise TimeoutError(f"only {self.visible_orders()} of {count} orders visible in ClickHouse")

    @contextlib.contextmanager
    def paused(self, name: str):
        """The process `name` stopped (SIGSTOP) for the block: its input waits in Kafka, then it resumes."""
        os.kill(self.procs[name].pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.procs[name].pid, signal.SIGCONT)

    def stop(self) -> dict[str, float]:
        return measure.stop_processes(self.procs)


@dataclass(frozen=True)
class EndToEnd:
    rate: float  # orders/s until all are visible in ClickHouse
    cpu_us: float  # CPU per order of the broker, normalizer and projector together, in µs


def end_to_end(bootstrap: str, pipe: Pipeline, values, orders: int, broker_pid: int | None,
               what: str = "tonglu end to end") -> EndToEnd:
    """Publish the pages at once and time them until every order is visible; with the CPU per order the
    broker (when its pid is given) and the pipeline's processes used meanwhile (which, unlike the rate,
    the machine's other load barely moves)."""
    pids = {**({"broker": broker_pid} if broker_pid else {}), **{name: p.pid for name, p in pipe.procs.items()}}
    publisher = Publisher({"bootstrap.servers": bootstrap})
    base = max(pipe.visible_orders(), 0)
    cpu = {name: measure.cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.time()
    publisher.publish([(pipe.topics.raw_orders, k, v) for k, v, _ in values])
    published = time.time() - t0
    t1 = pipe.wait_visible(base + orders, timeout=600)
    cpu = {name: (measure.cpu_seconds(pid) - cpu[name]) / orders * 1e6 for name, pid in pids.items()}
    rate = orders / (t1 - t0)
    _say(f"{what:<23} {orders:,} orders in {len(values)} pages: published in {published:.2f}s, all "
         f"visible in ClickHouse after {t1 - t0:.2f}s  => {rate:,.0f} orders/s; CPU per order "
         + ", ".join(f"{name} {us:.0f} µs" for name, us in cpu.items()) + f" ({sum(cpu.values()):.0f} µs)")
    return EndToEnd(rate, sum(cpu.values()))


def every_platform(bootstrap: str, broker_pid: int | None, workdir: Path, orders: int,
                   taobao: EndToEnd) -> tuple[EndToEnd, str]:
    """Mapping cost per order of every registered platform (a table), then the end-to-end phase on a mixed
    workload of all of them, on a fresh normalizer and projector. Returns the mixed figures and a summary
    of both for the last line."""
    costs = platforms_bench.mapping_costs()
    _say("mapping cost per order  one core, each platform's recorded list pages mapped over and over (beside it, "
         "with its hand-made edge-case pages counted too):")
    for line in platforms_bench.mapping_table(costs):
        _say(line)
    worst = max(costs, key=lambda c: c.ratio or 0.0)
    slow = [c.platform for c in costs if c.too_slow]
    codes = platforms.codes()
    values = workload.encode_pages(platforms_bench.mixed_pages(orders))
    (workdir / "mixed").mkdir()
    pipe = Pipeline(bootstrap, workdir / "mixed")
    try:
        warm = workload.encode_pages(platforms_bench.mixed_pages(10 * len(codes), seed=5, shop_prefix="warm"))
        Publisher({"bootstrap.servers": bootstrap}).publish([(pipe.topics.raw_orders, k, v) for k, v, _ in warm])
        pipe.wait_visible(10 * len(codes), timeout=120)
        mixed = end_to_end(bootstrap, pipe, values, orders, broker_pid, f"mixed, {len(codes)} platforms")
    finally:
        pipe.stop()
    _say(f"mixed vs Taobao only    {mixed.rate:,.0f} vs {taobao.rate:,.0f} orders/s ({mixed.rate / taobao.rate:.0%}); "
         f"CPU per order {mixed.cpu_us:.0f} vs {taobao.cpu_us:.0f} µs ({mixed.cpu_us / taobao.cpu_us:.0%}) "
         f"(target: within 20 %; {', '.join(codes)})")
    summary = (f"a mixed workload of {len(codes)} platforms {mixed.rate:,.0f} orders/s end to end, "
               f"{mixed.rate / taobao.rate:.0%} of Taobao only, {mixed.cpu_us / taobao.cpu_us:.0%} of its CPU per "
               f"order (target: within 20 %) · mapping at most {worst.ratio:.2f}x Taobao's per order "
               f"({worst.platform} {worst.content_type}; target <= {platforms_bench.LIMIT}x"
               + (f"; above it: {', '.join(slow)})" if slow else ")"))
    return mixed, summary


def _meanwhile(seconds: float, work):
    """`work()` now, then sleep what is left of `seconds`; returns what `work` returned."""
    start = time.time()
    result = work()
    time.sleep(max(0.0, start + seconds - time.time()))
    return result


def latency(bootstrap: str, pipe: Pipeline, rate: float, seconds: float, quick: bool) -> tuple[float, float]:
    orders = int(rate * seconds)
    pages = workload.taobao_pages(orders, shops=8, seed=99)
    encoded = workload.encode_pages(pages)  # before the clock starts, as a connector would have them
    per_page = orders / max(len(pages), 1)
    interval = per_page / rate
    consumer = consumer_from_now({"bootstrap.servers": bootstrap}, [pipe.topics.order_events], "bench-lat",
                                 **{"session.timeout.ms": 6000, "fetch.wait.max.ms": 10})
    publisher = Publisher({"bootstrap.servers": bootstrap}, **{"linger.ms": 0})
    sent: dict[str, float] = {}
    latencies: list[float] = []
    start = time.time()
    for n, (key, value, record_id) in enumerate(encoded):
        while time.time() < start + n * interval:
            for msg in consumer.consume(1000, 0.001):
                _collect(msg, sent, latencies)
        sent[record_id] = time.time()
        publisher.send([(pipe.topics.raw_orders, key, value)])
    publisher.confirm()
    deadline = time.time() + 15
    while time.time() < deadline and len({r for r in sent if r in _seen}) < len(sent):
        for msg in consumer.consume(1000, 0.1):
            _collect(msg, sent, latencies)
    consumer.close()
    p50, p99 = measure.percentile(latencies, 0.5) * 1000, measure.percentile(latencies, 0.99) * 1000
    _say(f"raw -> event latency    at {rate:,.0f} orders/s for {seconds:.0f}s ({len(latencies):,} events): "
         f"p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    return p50, p99


_seen: set[str] = set()


def _collect(msg, sent, latencies) -> None:
    if msg.error():
        return
    record_id = measure.event_raw_record_id(msg.value())
    if record_id in sent:
        _seen.add(record_id)
        latencies.append(time.time() - sent[record_id])


SETTLE_SECONDS = 15  # after the burst, ClickHouse merges its parts: latency is measured at a steady load
ANOMALY_LOAD = 5_000.0  # orders/s flowing while findings and alerts are timed
# between anomaly phases: a fresh throttle window and DingTalk minute, so the phases do not share a budget
FRESH_BUDGET_SECONDS = 65


def run(quick: bool = False) -> int:
    orders = 20_000 if quick else 200_000
    baseline_n = 5_000 if quick else 20_000
    steady_s = 5 if quick else 15
    _say(f"Tonglu benchmark · {os.cpu_count()} cores · {orders:,} orders end to end\n")
    port = free_port()
    broker = start_broker(port)
    bootstrap = f"127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="tonglu-bench-"))
    try:
        pages = workload.taobao_pages(orders)
        values = workload.encode_pages(pages)
        passthrough = broker_passthrough(bootstrap, values, orders)
        baseline = faust_baseline(bootstrap, baseline_n)
        pipe = Pipeline(bootstrap, workdir)
        side, ship_rss = None, {}
        try:
            warm = workload.encode_pages(workload.taobao_pages(100, shops=1, seed=5))
            Publisher({"bootstrap.servers": bootstrap}).publish([(pipe.topics.raw_orders, k, v) for k, v, _ in warm])
            pipe.wait_visible(100, timeout=120)
            taobao = end_to_end(bootstrap, pipe, values, orders, broker.pid)
            rate = taobao.rate
            time.sleep(SETTLE_SECONDS)
            _, p99 = latency(bootstrap, pipe, rate / 2, steady_s, quick)
            detect_rate, decode_detect_rate = anomaly_bench.detection_rate(10_000 if quick else 50_000)
            _say(f"anomaly detection       pure detector on a simulated event stream  => {detect_rate:,.0f} events/s; "
                 f"with decoding the topic's Avro bytes => {decode_detect_rate:,.0f} events/s")
            side = anomaly_bench.AlertSide(bootstrap, pipe, workdir)
            _wait_caught_up(side, pipe)
            # the rate this stack sustains first, then the load (which may leave a backlog behind)
            meter = measure.CpuMeter({"broker": broker.pid, **{n: p.pid for n, p in pipe.procs.items()},
                                      **{n: p.pid for n, p in side.procs.items()}})
            sustained = anomaly_bench.latencies(bootstrap, pipe, side, rate / 2, steady_s, seed=42)
            cpu = meter.per_unit(sustained["orders"])
            _say_anomaly_latency(rate / 2, sustained)
            per_order = sum(cpu.values())
            _say(f"CPU per order           at {rate / 2:,.0f} orders/s, above idle: "
                 + ", ".join(f"{name} {sec * 1e6:.0f} µs" for name, sec in cpu.items())
                 + f" · whole stack {per_order * 1e6:.0f} µs => {os.cpu_count()} cores carry at most "
                 f"{os.cpu_count() / per_order:,.0f} orders/s")
            # the alert side waits for a fresh budget; the whole stack is idle meanwhile
            _, every = _meanwhile(FRESH_BUDGET_SECONDS,
                                  lambda: every_platform(bootstrap, broker.pid, workdir, orders, taobao))
            figures = anomaly_bench.latencies(bootstrap, pipe, side, ANOMALY_LOAD, steady_s, seed=43)
            _say_anomaly_latency(ANOMALY_LOAD, figures)
            time.sleep(FRESH_BUDGET_SECONDS)
            apart, catch_up = _projector_elsewhere(bootstrap, pipe, side, steady_s)
            tracking = tracking_bench.carrier_push_latency(bootstrap, pipe, workdir, seconds=steady_s)
            tracking_bench.say_figures(tracking, _say)
            ships, ship_rss = shipback.phase(bootstrap, workdir, min(steady_s, 10), pipe.topics.raw_orders)
            for ship in ships:
                _say(shipback.line(ship))
        finally:
            rss = pipe.stop()
            if side is not None:
                rss.update(side.stop())
            rss.update(ship_rss)
        _say("peak RSS                " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
        erp = erp_bench.run_phase(bootstrap, workdir, quick)
        _say("")
        _say(f"summary: {rate:,.0f} orders/s end to end (target >= 30,000) · {rate / baseline:.1f}x the plain Faust "
             f"baseline (target >= 7x) · broker pass-through {passthrough:,.0f} orders/s · p99 raw->event "
             f"{p99:.0f} ms at half load (target < 250 ms) · detection {detect_rate:,.0f} events/s (target >= "
             f"30,000; {decode_detect_rate:,.0f} with decoding) · at {ANOMALY_LOAD:,.0f} orders/s p99 raw->finding {figures['finding_p99']:.0f} ms (target < "
             f"1,000) and p99 raw->alert {figures['alert_p99']:.0f} ms (target < 2,000); at {rate / 2:,.0f} orders/s "
             f"{sustained['finding_p99']:.0f} ms and {sustained['alert_p99']:.0f} ms; at {ANOMALY_LOAD:,.0f} orders/s "
             f"with the projector off these cores {apart['finding_p99']:.0f} ms and {apart['alert_p99']:.0f} ms "
             f"(its backlog written {catch_up:.0f} s after it resumed) · carrier push -> OrderDelivered p99 "
             f"{tracking['p99']:.0f} ms at {tracking['load']:,.0f} orders/s (target < 1,000) · ship-back p99 "
             "request->accepted "
             + " and ".join(f"{s['p99']:,.0f} ms at {s['rate']:,.0f}/s ({s['throughput']:,.0f} uploads/s)"
                            for s in ships)
             + " (target < 1,000 at 2,000/s) · the whole stack needs "
             f"{per_order * 1e6:.0f} µs CPU per order ({os.cpu_count() / per_order:,.0f} orders/s on "
             f"{os.cpu_count()} cores) · {every}")
        _say(f"summary (ERP): the deliverer sends {erp['events_per_second']:,.0f} events/s to one endpoint (target >= "
             f"5,000) · event -> ERP p99 {erp['p99_ms']:.0f} ms at {erp_bench.LATENCY_RATE:,.0f} orders/s (target < "
             f"1,000)")
    finally:
        broker.terminate()
        broker.wait(10)
    _chaos_phase(quick)
    _sms_phase(quick)
    return 0


def _sms_phase(quick: bool) -> None:
    """The SMS hub on a broker of its own: the sender's rate, trigger -> provider latency, failover."""
    from infra.bench.sms_bench import run_sms_bench

    _say("")
    run_sms_bench(quick, say=_say)


def _chaos_phase(quick: bool) -> None:
    """`make chaos`, shorter: the whole local stack while workers and the broker are killed."""
    from infra.bench.chaos import run_chaos

    _say("")
    figures = run_chaos(orders=5_000 if quick else 20_000, rate=1_000.0, kill_every=10.0, say=_say)
    for line in figures.lines():
        _say(line)


def _projector_elsewhere(bootstrap: str, pipe: Pipeline, side, steady_s: float) -> tuple[dict, float]:
    """The 5,000 orders/s phase again with the projector paused, as when it and ClickHouse run on other
    cores (a ClickHouse server, its own worker): what the detection path alone does on this machine. Then how
    long the projector takes to write the phase's backlog once it resumes (no order may be missing)."""
    before = pipe.visible_orders()
    with pipe.paused("projector"):
        figures = anomaly_bench.latencies(bootstrap, pipe, side, ANOMALY_LOAD, steady_s, seed=44)
    resumed = time.time()
    catch_up = pipe.wait_visible(before + figures["orders"], timeout=300) - resumed
    _say_anomaly_latency(ANOMALY_LOAD, figures, "with the projector paused (off these cores)")
    _say(f"projector catch-up      {figures['orders']:,} orders held in Kafka while it was paused: all visible "
         f"in ClickHouse {catch_up:.1f}s after it resumed")
    return figures, catch_up


def _say_anomaly_latency(rate: float, figures: dict, how: str = "") -> None:
    _say(f"raw -> finding / alert  at {rate:,.0f} orders/s{' ' + how if how else ''}, {figures['defective']} "
         f"zero-amount orders: finding p50 {figures['finding_p50']:.0f} ms p99 {figures['finding_p99']:.0f} ms "
         f"({figures['found']} found); alert in the DingTalk simulator p50 {figures['alert_p50']:.0f} ms "
         f"p99 {figures['alert_p99']:.0f} ms ({figures['alerted']} delivered)")


def _wait_caught_up(side, pipe, timeout: float = 300) -> None:
    """The detector replays the whole event log when it starts: wait until it is at the live end. The probe's
    alert says its partition is done; the others may still be replaying, so also wait for the detector to
    go quiet (else the CPU meter would count replay as idle cost and the first phase would share it)."""
    probe = World(seed=7).create_orders("bench-probe", 1, int(time.time() * 1000), defect="zero_amount")
    Publisher({"bootstrap.servers": pipe.bootstrap}).publish([(pipe.topics.raw_orders, shop_key(
        "taobao", "bench-probe"), raw_record("taobao", "bench-probe", page_body(probe), source="poll"))])
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(probe[0].external_id in m["text"] for m in side.delivered()):
            if measure.wait_quiet(side.procs["detector"].pid, deadline):
                return
            break
        time.sleep(1)
    raise TimeoutError("the anomaly side did not catch up with the event log")
