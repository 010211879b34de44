"""Detection throughput on a realistic simulated stream (part of `make bench`).

    python -m infra.bench.detection [EVENTS]

Builds order events the way the pipeline does (simulator world -> platform render -> mapping ->
derive_events), half Taobao (CN) and half Shopify (US), then times `Detector.detect` alone, and the
detector's whole work from the Avro bytes on the topic (decode + detect).
"""
from __future__ import annotations

import gc
import json
import random
import sys
import time
from contextlib import contextmanager

from connectors.platforms.shopify.mapping import map_payload as map_shopify
from connectors.platforms.shopify.render import order_json
from connectors.platforms.taobao.mapping import map_payload as map_taobao
from connectors.platforms.taobao.render import trade_dict
from connectors.simkit.world import World
from schemas.codec import AvroCodec, EventDecoder
from streams.anomalies.detector import LIGHT_READ, Detector
from streams.anomaly_agent import GC_THRESHOLDS
from streams.derive import derive_events

START_MS = 1_710_000_000_000
MINUTE = 60_000


def _taobao(order) -> bytes:
    return json.dumps({"trade_fullinfo_get_response": {"trade": trade_dict(order)}}).encode()


def _shopify(order) -> bytes:
    return json.dumps({"order": order_json(order, "s.myshopify.com")}).encode()


def sim_events(orders: int, seed: int = 11, max_steps: int = 5) -> list[dict]:
    """OrderEvents of `orders` simulated orders (half Taobao, half Shopify) in time order.

    Orders are created one minute apart; each then takes up to `max_steps` lifecycle steps
    (pay, ship, deliver, refund ...), each snapshot mapped and diffed like the normalizer does.
    """
    rng = random.Random(seed)
    platforms = ((World(seed=seed), _taobao, map_taobao, "tb-shop"),
                 (World(seed=seed + 1, region="US", currency="USD"), _shopify, map_shopify, "s.myshopify.com"))
    snapshots: list[tuple[int, int, dict]] = []
    for i in range(orders):
        world, render, mapper, shop = platforms[i % 2]
        created = START_MS + i * MINUTE
        (sim,) = world.create_orders(shop, 1, created, paid=False)
        times = [created] + [created + (step + 1) * rng.randrange(1, 30) * MINUTE
                             for step in range(rng.randrange(max_steps + 1))]
        for n, at in enumerate(times):
            if n:
                world.step(sim, at)
            for canonical in mapper(render(sim), "json", shop):
                snapshots.append((sim.updated_at, i, canonical))
    snapshots.sort(key=lambda s: (s[0], s[1]))
    held: dict[str, dict] = {}
    events = []
    for at, _i, order in snapshots:
        new = derive_events(held.get(order["order_id"]), order, at)
        if new:
            held[order["order_id"]] = order
            events += new
    return events


@contextmanager
def detector_gc():
    """The garbage-collector thresholds the detector process runs with, for the duration."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _best_rate(count: int, run, repeat: int) -> float:
    """Best `count`/s of `repeat` calls of `run(detector)`, each with a fresh Detector."""
    best = 0.0
    for _ in range(repeat):
        detector = Detector()
        gc.collect()
        start = time.perf_counter()
        run(detector)
        best = max(best, count / (time.perf_counter() - start))
    return best


def measure(events: list[dict], repeat: int = 3) -> float:
    """Best events/s of `Detector.detect` over `events` (with a tick per minute)."""
    def run(detector: Detector) -> None:
        next_tick = events[0]["recorded_at"]
        for event in events:
            now = event["recorded_at"]
            detector.detect(event, now)
            if now >= next_tick:
                detector.tick(now)
                next_tick = now + MINUTE

    return _best_rate(len(events), run, repeat)


def measure_from_bytes(events: list[dict], batch: int = 2000, repeat: int = 3) -> float:
    """Best events/s of the detector's whole work per consumed batch: decode the Avro values as they
    lie on order.events (the first event of each order version; the rest are skipped; updates that
    change no rule input with a partial snapshot), then detect."""
    codec, reader = AvroCodec("OrderEvent"), EventDecoder(light=LIGHT_READ)
    values = [codec.encode(event) for event in events]

    def run(detector: Detector) -> None:
        for i in range(0, len(values), batch):
            for event in reader.decode_firsts(values[i:i + batch]):
                detector.detect(event, event["recorded_at"])

    return _best_rate(len(values), run, repeat)


def main(argv: list[str]) -> None:
    wanted = int(argv[0]) if argv else 50_000
    orders, events = wanted // 3, []
    while len(events) < wanted:
        orders = orders * 5 // 4
        events = sim_events(orders)
    events = events[:wanted]
    with detector_gc():
        rate, with_decoding = measure(events), measure_from_bytes(events)
    findings = Detector()
    count = sum(len(findings.detect(e, e["recorded_at"])) for e in events)
    print(json.dumps({"events": len(events), "orders": orders, "events_per_s": round(rate),
                      "with_decoding_events_per_s": round(with_decoding), "anomaly_records": count}))


if __name__ == "__main__":
    main(sys.argv[1:])
