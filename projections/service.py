"""The projector: order.events, connector.calls, raw.orders.dlq and (when configured) order.anomalies,
alerts and fulfillment.results -> ClickHouse, plus the HTTP API (which also publishes order.commands).

One consumer thread runs consume (a batch gathered while messages keep coming, for up to 1 s) ->
decode -> sink.add -> flush -> commit. Offsets are committed only after a successful flush; a failed
flush is retried with backoff and never committed, so a crash replays the batch, which every table
absorbs (ReplacingMergeTree on the row identity).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

from projections.clickhouse.ddl import DEFAULT_DATABASE, create_schema
from projections.clickhouse.sink import ClickHouseSink, FlushError
from projections.commands import CommandPublisher
from projections.health import HealthMonitor
from projections.lag import LagTracker
from projections.metrics import ProjectorMetrics
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import consumer_config, usable

log = logging.getLogger(__name__)
SESSION_TIMEOUT_MS = 6000
_RATE_WINDOW_SECONDS = 10.0


class Projector:
    """Feeds the ClickHouse read models from Kafka in a dedicated thread and keeps live counters."""

    def __init__(
        self,
        *,
        kafka_config: dict,
        topics: dict[str, str],
        normalizer_group: str,
        backend,
        group_id: str = "tonglu-projector",
        database: str = DEFAULT_DATABASE,
        batch_size: int = 20_000,
        gather_seconds: float = 1.0,
        quiet_batch: int = 1000,
    ):
        self.backend = backend
        self.database = database
        self.metrics = ProjectorMetrics()
        self.sink = ClickHouseSink(backend, database)
        self._batch_size = batch_size
        self._gather_seconds = gather_seconds
        # Below this many messages a batch is written once the stream pauses, so a few orders are visible
        # at once; under load (where a poll comes back empty now and then too) it grows to the full window.
        self._quiet_batch = quiet_batch
        self._events_topic = topics["order_events"]
        self._kinds = {
            topics["order_events"]: ("order_event", None),  # handed to the sink encoded (see avro_landing)
            topics["connector_calls"]: ("connector_call", AvroCodec("ConnectorCall")),
            topics["raw_orders_dlq"]: ("dead_letter", AvroCodec("DeadLetter")),
        }
        # The anomaly feature is on for each topic that is configured (old callers pass none of them).
        if topics.get("order_anomalies"):
            self._kinds[topics["order_anomalies"]] = ("anomaly", AvroCodec("Anomaly"))
        if topics.get("alerts"):
            self._kinds[topics["alerts"]] = ("alert_report", AvroCodec("AlertReport"))
        if topics.get("fulfillment_results"):  # ship-back outcomes, for the timeline and the loop's figures
            self._kinds[topics["fulfillment_results"]] = ("shipment_result", AvroCodec("ShipmentResult"))
        if topics.get("sms_receipts"):
            self._kinds[topics["sms_receipts"]] = ("sms_receipt", AvroCodec("SmsReceipt"))
        self.commands = (
            CommandPublisher(kafka_config, topics["order_commands"]) if topics.get("order_commands") else None
        )
        self.shipments = (
            CommandPublisher(kafka_config, topics["fulfillment_commands"], "ShipmentCommand")
            if topics.get("fulfillment_commands") else None
        )
        self._consumer_config = consumer_config(kafka_config, group_id, **{"session.timeout.ms": SESSION_TIMEOUT_MS})
        self.lag = LagTracker(kafka_config, topics["raw_orders"], normalizer_group, SESSION_TIMEOUT_MS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tonglu-projector", daemon=True)
        self._lock = threading.Lock()
        self._totals: collections.Counter[str] = collections.Counter()
        self._undecodable = 0
        self._recent: collections.deque[tuple[float, int]] = collections.deque()
        self.commits = 0

    def start(self) -> None:
        """Start the consumer and lag-counting threads."""
        self._thread.start()
        self.lag.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask both threads to stop and wait for them (the consumer leaves its group cleanly)."""
        self._stop.set()
        self._thread.join(timeout)
        self.lag.stop(timeout)
        for publisher in (self.commands, self.shipments):
            if publisher is not None:
                publisher.close()

    def alive(self) -> bool:
        """Whether the consumer thread is running."""
        return self._thread.is_alive()

    def counters(self) -> dict:
        """Totals per topic, undecodable records, events/s over the last 10 s and total events."""
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0][0] < now - _RATE_WINDOW_SECONDS:
                self._recent.popleft()
            recent = sum(n for _, n in self._recent)
            totals = dict(self._totals)
            undecodable = self._undecodable
        return {
            "events_per_second": recent / _RATE_WINDOW_SECONDS,
            "total_events": totals.get(self._events_topic, 0),
            "totals_by_topic": totals,
            "undecodable": undecodable,
            "commits": self.commits,
        }

    def _run(self) -> None:
        consumer = Consumer(self._consumer_config)
        consumer.subscribe(list(self._kinds))
        try:
            while not self._stop.is_set():
                messages = self._gather(consumer)
                if not messages:
                    continue
                taken = self._add(messages)
                if not self._flush_with_retry():
                    return  # stopping with an unwritten batch: leave it uncommitted for the next run
                for where, why in self.sink.take_rejected():  # order events found undecodable in the sink
                    self._reject(where, why)
                    taken[self._events_topic] -= 1
                try:
                    consumer.commit(asynchronous=False)
                    self.commits += 1
                except KafkaException as exc:  # e.g. partitions revoked meanwhile; the replay is harmless
                    log.warning("offset commit failed, batch will be replayed: %s", exc)
                self._count(taken)  # after the commit: whoever sees the count sees the batch settled
        except Exception:
            log.exception("projector consumer thread crashed")
        finally:
            consumer.close()

    def _gather(self, consumer: Consumer) -> list:
        """Up to `batch_size` messages, gathered for at most `gather_seconds` after the first one; a
        batch of fewer than `quiet_batch` messages is written as soon as a 50 ms poll finds nothing more.

        Every insert costs ClickHouse new parts in two tables and their merges: at a steady few
        thousand orders/s, inserting whatever each 50 ms poll returned cost the projector about twice
        the CPU per order it needs in a burst, taking it from the normalizer on a small machine. Per
        event, ClickHouse's own work falls with the batch: ~61 µs at 2,500 events, ~54 at 5,000, ~41
        at 10,000 or more (Avro parse + both views), so a steady load is gathered for up to 1 s.
        """
        messages = consumer.consume(num_messages=self._batch_size, timeout=0.05)
        if not messages:
            return messages
        deadline = time.monotonic() + self._gather_seconds
        while len(messages) < self._batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = consumer.consume(num_messages=self._batch_size - len(messages), timeout=min(left, 0.05))
            if not more and len(messages) < self._quiet_batch:  # a quiet stream is written at once
                break
            messages += more
        return messages

    def _add(self, messages) -> collections.Counter[str]:
        taken: collections.Counter[str] = collections.Counter()
        for msg in usable(messages):
            topic = msg.topic()
            kind, codec = self._kinds[topic]
            where = f"{topic}[{msg.partition()}]@{msg.offset()}"
            if kind == "order_event":
                self.sink.add_encoded_event(msg.value(), where)
                taken[topic] += 1
                continue
            try:
                record = codec.decode(msg.value())
            except (DecodeError, TypeError) as exc:
                self._reject(where, str(exc))
                continue
            try:
                self.sink.add(kind, record)
            except (KeyError, TypeError, ValueError) as exc:  # decodes but violates the contract
                log.error("unprojectable record at %s: %s", where, exc)
                continue
            taken[topic] += 1
        return taken

    def _reject(self, where: str, why: str) -> None:
        log.error("undecodable record at %s: %s", where, why)
        self.metrics.undecodable.labels(where.partition("[")[0]).inc()  # where = topic[partition]@offset
        with self._lock:
            self._undecodable += 1

    def _flush_with_retry(self) -> bool:
        delay = 0.2
        while True:
            try:
                self.sink.flush()
                self.metrics.flush_seconds.observe(self.sink.last_flush_seconds)
                return True
            except FlushError as exc:
                self.metrics.flush_failures.inc()
                log.error("flush failed, retrying in %.1fs without committing: %s", delay, exc)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)

    def _count(self, taken: collections.Counter[str]) -> None:
        with self._lock:
            self._totals.update(taken)
            self._recent.append((time.monotonic(), taken.get(self._events_topic, 0)))
        for topic, n in taken.items():
            self.metrics.consumed.labels(topic).inc(n)


async def run_projector(
    *,
    kafka_config: dict,
    topics: dict[str, str],
    normalizer_group: str,
    backend,
    http_host: str,
    http_port: int,
    group_id: str = "tonglu-projector",
    stop: asyncio.Event,
    auth,
    database: str = DEFAULT_DATABASE,
    health: HealthMonitor | None = None,
    heartbeat: Callable[[Projector], object] | None = None,
    platforms: list[dict] = (),
    member_import: Callable[[str | list], tuple[int, list[str]]] | None = None,
) -> None:
    """Create the schema, run the projector threads and the HTTP API (guarded by `auth`, an
    `api_auth.AuthConfig`) until `stop` is set.

    `health` feeds /healthz (every stage's heartbeats, the broker); `heartbeat(projector)` makes this
    process's own heartbeat sender (anything with start() and stop()).

    `platforms`: the platform catalogue (code, names, capabilities) the API shows, given by whoever
    runs the projector (the platform registry lives with the connectors).

    `member_import(csv text or JSON rows)` -> (imported, refused): the SMS members import behind
    `POST /api/sms/members`, given by whoever runs the projector (it seals and hashes with the SMS keys)."""
    from aiohttp import web

    from projections.api import create_api

    await asyncio.to_thread(create_schema, backend, database)
    projector = Projector(
        kafka_config=kafka_config,
        topics=topics,
        normalizer_group=normalizer_group,
        backend=backend,
        group_id=group_id,
        database=database,
    )
    projector.member_import = member_import
    projector.start()
    helpers = [h for h in (health, heartbeat(projector) if heartbeat else None) if h is not None]
    for helper in helpers:
        helper.start()
    runner = web.AppRunner(create_api(projector, auth, health, platforms), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, http_host, http_port).start()
        log.info("projector API on http://%s:%d", http_host, http_port)
        await stop.wait()
    finally:
        await runner.cleanup()
        await asyncio.to_thread(projector.stop)
        for helper in helpers:
            await asyncio.to_thread(helper.stop)
