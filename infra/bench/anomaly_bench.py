"""Anomaly figures for `make bench`: detection rate, raw record -> finding, and -> alert delivered.

Runs the detector, the alert router and the alert simulators as processes beside the pipeline,
feeds raw pages at a steady rate with one zero-amount order (a critical, holding finding) per
second among them, and times each defective order from the moment its page was published.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from connectors.platforms.taobao.render import page_body
from connectors.runtime.records import raw_record
from connectors.simkit.world import World
from infra.bench import detection, measure
from infra.broker import free_port
from infra.config import local_alert_secrets, write_local_routing
from schemas.codec import AvroCodec
from schemas.kafka import Publisher, consumer_from_now
from schemas.topics import shop_key


def detection_rate(events: int = 50_000) -> tuple[float, float]:
    """Events/s of `Detector.detect` alone, and of decoding the topic's bytes + detecting."""
    stream = detection.sim_events(events // 2)[:events]
    with detection.detector_gc():
        return detection.measure(stream), detection.measure_from_bytes(stream)


class AlertSide:
    """Detector + alert router + alert simulators for a running `suite.Pipeline`."""

    def __init__(self, bootstrap: str, pipe, workdir: Path):
        self.sim = f"http://127.0.0.1:{free_port()}"
        # every critical finding is its own message here, so each one's latency can be measured
        routing = write_local_routing(workdir / "routing.toml", self.sim, max_immediate_per_window=20)
        env = {**os.environ, **local_alert_secrets(), "TONGLU_KAFKA_BOOTSTRAP": bootstrap,
               "TONGLU_TOPIC_PREFIX": pipe.topics.prefix, "TONGLU_ALERT_ROUTING": str(routing),
               "TONGLU_ALERT_SIM_HTTP": self.sim, "TONGLU_ALERT_SMTP_PORT": str(free_port()),
               "TONGLU_ERP_SIM_HTTP": f"http://127.0.0.1:{free_port()}",
               "TONGLU_SIMULATORS": f"taobao=http://127.0.0.1:{free_port()}", "TONGLU_DEMO_RATE": "0",
               "TONGLU_TRACKING_SIM_HTTP": f"http://127.0.0.1:{free_port()}",
               "TONGLU_DATA_DIR": str(workdir / "alerts")}
        self.procs = {name: subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env,
                                             stdout=open(workdir / f"{name}.log", "wb"),  # noqa: SIM115
                                             stderr=subprocess.STDOUT)
                      for name in ("simulators", "detector", "alerter")}

    def delivered(self) -> list[dict]:
        try:
            with urllib.request.urlopen(f"{self.sim}/_sim/messages?service=dingtalk", timeout=5) as resp:
                return json.loads(resp.read())["messages"]
        except OSError:
            return []

    def stop(self) -> dict[str, float]:
        rss = {name: measure.peak_rss_mb(p.pid) for name, p in self.procs.items()}
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(20)
        return rss


def latencies(bootstrap: str, pipe, side: AlertSide, rate: float, seconds: float, seed: int) -> dict:
    """Publish `rate` orders/s for `seconds` with one zero-amount order per second; time the findings.

    Each phase needs its own `seed`: orders of an earlier phase would be platform re-sends (no new
    finding) and their alerts already in the simulator.
    """
    per_page = 100
    pages = _steady_pages(World(seed=seed), rate, seconds, per_page)  # made before the clock starts
    consumer = consumer_from_now({"bootstrap.servers": bootstrap}, [pipe.topics.order_anomalies], "bench-anom",
                                 **{"session.timeout.ms": 6000, "fetch.wait.max.ms": 20})
    codec = AvroCodec("Anomaly")
    publisher = Publisher({"bootstrap.servers": bootstrap}, **{"linger.ms": 0})
    sent: dict[str, float] = {}
    found: dict[str, float] = {}
    start = time.time()
    for n, (body, defect_id, _orders) in enumerate(pages):
        at = start + n * per_page / rate
        while (wait := at - time.time()) > 0:  # findings carry their own time: block, do not spin
            _collect(consumer, codec, found, wait)
        if defect_id:
            sent[defect_id] = time.time()
        publisher.send([(pipe.topics.raw_orders, shop_key("taobao", "bench-steady"),
                         raw_record("taobao", "bench-steady", body, source="poll"))])
    publisher.confirm()
    deadline = time.time() + 30
    while time.time() < deadline and len(set(sent) & set(found)) < len(sent):
        _collect(consumer, codec, found)
    deadline = time.time() + 15
    alerts: dict[str, float] = {}
    while time.time() < deadline and len(alerts) < len(sent):
        for message in side.delivered():
            if message["received_at"] / 1000 < start:
                continue
            for order_id in sent:
                if order_id in message["text"]:
                    alerts.setdefault(order_id, message["received_at"] / 1000)
        time.sleep(0.3)
    consumer.close()
    to_finding = [found[o] - sent[o] for o in sent if o in found]
    to_alert = [alerts[o] - sent[o] for o in sent if o in alerts]
    return {"orders": sum(n for _body, _defect, n in pages), "defective": len(sent), "found": len(to_finding),
            "alerted": len(to_alert),
            "finding_p50": measure.percentile(to_finding, 0.5) * 1000,
            "finding_p99": measure.percentile(to_finding, 0.99) * 1000,
            "alert_p50": measure.percentile(to_alert, 0.5) * 1000,
            "alert_p99": measure.percentile(to_alert, 0.99) * 1000}


def _steady_pages(world: World, rate: float, seconds: float, per_page: int) -> list[tuple[bytes, str | None, int]]:
    """(page body, zero-amount order id or None, orders in it) for `seconds` at `rate` orders/s; one page a
    second carries a zero-amount order."""
    now_ms = int(time.time() * 1000)
    pages_per_second = max(1, round(rate / per_page))
    out = []
    for n in range(int(rate * seconds / per_page)):
        orders = world.create_orders("bench-steady", per_page - 1, now_ms)
        defect_id = None
        if n % pages_per_second == 0:
            bad = world.create_orders("bench-steady", 1, now_ms, defect="zero_amount")
            orders += bad
            defect_id = f"taobao:bench-steady:{bad[0].external_id}"
        out.append((page_body(orders), defect_id, len(orders)))
    return out


def _collect(consumer, codec, found: dict, wait: float = 0.005) -> None:
    for msg in consumer.consume(500, wait):
        if msg.error() is None:
            anomaly = codec.decode(msg.value())
            if anomaly["state"] == "raised":  # the detector's clock when it raised the finding
                found.setdefault(anomaly["order_id"], anomaly["detected_at"] / 1000)
