"""The anomaly detector process: order.events (+ people's commands) -> order.anomalies.

A thin loop around the pure `Detector`: consume a batch, detect, publish the findings, tick the
time-driven rules once a second. It reads the whole event log from the beginning on every start
and so rebuilds its state (duplicate index, SKU statistics, deadlines) by replay; finding ids are
deterministic, so what it publishes again is absorbed downstream (the router dedups by anomaly_id,
ClickHouse replaces by id). Duplicates are judged across shops and platforms, so one detector owns
every partition.

It runs on a confluent-kafka consumer rather than a Faust agent: order.events carries one record per
event, and Faust's per-record cost (about 4,000-5,000 records/s measured by `tonglu bench` on this
machine class) is below what a busy shop's event stream needs; decoding and judging does ~24,000/s
on a stream of whole order lifecycles (its rules alone 60,000-78,000/s).
"""
from __future__ import annotations

import gc
import logging
import threading
import time

from confluent_kafka import Consumer

from schemas.codec import AvroCodec, DecodeError, EventDecoder
from schemas.kafka import Publisher, consumer_from_start, usable
from schemas.topics import Topics
from streams.anomalies.config import load_rules
from streams.anomalies.detector import LIGHT_READ, Detector

log = logging.getLogger(__name__)
# The detector builds a few dozen dicts per decoded order and keeps a large long-lived state; with
# CPython's default (a young collection every 700 allocations) the collector took about a third of
# its time (decode + detect from the topic's bytes: 11-12k -> 18-19k events/s, `tonglu bench`). Its
# records are acyclic and freed by reference counting, so rarer collections hold no extra memory.
GC_THRESHOLDS = (50_000, 20, 20)


def in_order_of_happening(events: list[dict]) -> list[dict]:
    """Events of several partitions in the order things happened (by occurred_at), each order's own events
    kept in their sequence: a carrier's step can carry a later time than the platform update after it."""
    latest: dict[str, int] = {}
    keyed = []
    for event in events:
        order_id = event["order_id"]
        at = latest[order_id] = max(event["occurred_at"], latest.get(order_id, event["occurred_at"]))
        keyed.append((at, event))
    keyed.sort(key=_first)
    return [event for _at, event in keyed]


def _first(pair: tuple) -> int:
    return pair[0]


class AnomalyService:
    def __init__(self, kafka_config: dict, topics: Topics, rules_path=None, tick_seconds: float = 1.0):
        self.kafka_config, self.topics = kafka_config, topics
        self.detector = Detector(load_rules(rules_path))  # a bad rule file stops the start here, with the reason
        self.publisher = Publisher(kafka_config)
        self.anomaly_codec, self.command_codec = AvroCodec("Anomaly"), AvroCodec("OrderCommand")
        self.reader = EventDecoder(light=LIGHT_READ)
        self.tick_ms = int(tick_seconds * 1000)
        self.events = self.findings = self.undecodable = 0

    def _consumer(self) -> Consumer:
        return consumer_from_start(self.kafka_config, [self.topics.order_events, self.topics.order_commands],
                                   f"{self.topics.prefix}tonglu-detector", **{"fetch.wait.max.ms": 50})

    def step(self, messages, now_ms: int) -> list[dict]:
        """Findings for one consumed batch of records (events and commands, in order)."""
        found: list[dict] = []
        events = [m.value() for m in messages if m.topic() == self.topics.order_events]
        try:
            decoded = self.reader.decode_firsts(events)  # a version is judged once, on its first event
        except DecodeError:
            decoded = []
            for value in events:  # find the bad one, keep the rest
                try:
                    decoded += self.reader.decode_firsts([value])
                except DecodeError as exc:
                    self._skip_undecodable(exc)
        # partitions interleave in a batch: judge in the order things happened
        for event in in_order_of_happening(decoded):
            try:
                found += self.detector.detect(event, now_ms)
            except DecodeError as exc:  # a snapshot decoded only when a rule needed it
                self._skip_undecodable(exc)
        for msg in messages:
            if msg.topic() == self.topics.order_commands:
                found += self._command(msg.value(), now_ms)
        self.events += len(events)
        return found

    def _skip_undecodable(self, exc: DecodeError) -> None:
        self.undecodable += 1
        log.error("undecodable order event skipped: %s", exc)

    def _command(self, value: bytes, now_ms: int) -> list[dict]:
        try:
            command = self.command_codec.decode(value)
        except DecodeError as exc:
            log.error("undecodable order command skipped: %s", exc)
            return []
        if command["command"] != "release":
            log.warning("unknown order command %r for %s", command["command"], command["order_id"])
            return []
        return self.detector.release(command["order_id"], now_ms, command["issued_by"])

    def publish(self, anomalies: list[dict]) -> None:
        if anomalies:
            self.findings += len(anomalies)
            self.publisher.publish([(self.topics.order_anomalies, a["order_id"].encode(), self.anomaly_codec.encode(a))
                                    for a in anomalies])

    def run(self, stop: threading.Event) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        consumer = self._consumer()
        last_tick = last_report = time.time()
        try:
            while not stop.is_set():
                messages = usable(consumer.consume(5000, 0.02))  # returns when full or after the timeout: keep it short
                now = time.time()
                found = self.step(messages, int(now * 1000)) if messages else []
                if (now - last_tick) * 1000 >= self.tick_ms:
                    found += self.detector.tick(int(now * 1000))
                    last_tick = now
                self.publish(found)
                if now - last_report >= 10 and self.events:
                    log.info("checked %d events, published %d findings", self.events, self.findings)
                    last_report = now
        finally:
            consumer.close()
            self.publisher.close()
