"""The Faust application: one app, thin agents; the work is done by pure modules beside them.

Faust carries consumption, group membership, rebalancing and offset commits. Records leave through a
batched confluent-kafka producer because Faust's per-message send is the bottleneck we measured
(see `tonglu bench`): the agent produces a whole batch, waits for every acknowledgement, and only
then lets Faust acknowledge the input; output the broker does not acknowledge ends the process instead.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from schemas.kafka import Publisher
from schemas.topics import Topics
from streams.normalize import Normalizer
from streams.ownership import Ownership

log = logging.getLogger(__name__)
# Faust asks the broker to hold a fetch up to 1.5 s; a broker that does not answer early when data
# arrives (Tansu) then adds up to 1.5 s of latency to every record. Ask for a short wait instead.
FETCH_MAX_WAIT_MS = int(os.environ.get("TONGLU_FETCH_MAX_WAIT_MS", "50"))
# How long a batch's output may take to be acknowledged before the worker gives up and exits (see
# confirm_or_exit); the publisher re-sends failed deliveries meanwhile.
CONFIRM_TIMEOUT_S = float(os.environ.get("TONGLU_CONFIRM_TIMEOUT_S", "60"))
EXIT_UNDELIVERED = 75  # EX_TEMPFAIL: try again later
_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _prompt_worker_consumer(self, transport):
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _prompt_worker_consumer


def create_app(*, kafka_config: dict, topics: Topics, datadir: str, app_id: str = "tonglu-normalizer",
               batch_pages: int = 16, within: float = 0.02, confirm_timeout: float = CONFIRM_TIMEOUT_S) -> faust.App:
    """A Faust app running the normalize agent against `kafka_config["bootstrap.servers"]`."""
    brokers = ";".join(f"kafka://{b}" for b in kafka_config["bootstrap.servers"].split(","))
    app = faust.App(
        f"{topics.prefix}{app_id}", broker=brokers, store="memory://", web_enabled=False, datadir=datadir,
        autodiscover=False, broker_session_timeout=6.0, broker_heartbeat_interval=1.0,
        broker_commit_every=1000, broker_commit_interval=1.0, consumer_auto_offset_reset="earliest",
        topic_allow_declare=False, stream_buffer_maxsize=batch_pages * 8,
    )
    # A batch's output leaves at `confirm` anyway; lingering until then makes one produce batch per
    # partition instead of one every few ms. Fewer, larger batches are cheaper on any broker, and on Tansu
    # they are essential: its fetch lists every batch a partition ever stored, so after a 200k-order burst
    # the broker's CPU doubled and raw->event p99 rose from 0.17 s to 0.3-1.8 s with 5 ms batches.
    publisher = Publisher(kafka_config, **{"linger.ms": 100})
    normalizer = Normalizer()
    ownership = Ownership(kafka_config, topics, normalizer.store)
    throughput = Throughput()
    raw_topic = app.topic(topics.raw_orders, key_serializer="raw", value_serializer="raw")

    @app.on_partitions_revoked.connect
    async def _forget(app_, revoked, **kwargs):
        ownership.revoke({tp.partition for tp in revoked if tp.topic == topics.raw_orders})

    @app.on_partitions_assigned.connect
    async def _warm(app_, assigned, **kwargs):
        await ownership.warm({tp.partition for tp in assigned if tp.topic == topics.raw_orders})

    @app.agent(raw_topic, name="normalize-raw-pages")
    async def normalize_raw_pages(stream):
        """raw.orders pages -> order.events + order.state (+ raw.orders.dlq)."""
        async for events in stream.take_events(batch_pages, within=within):
            records = [ownership.raw_in(event.message) for event in events]
            await ownership.warm({r.partition for r in records})
            states = []
            for record in records:  # each page's events leave as soon as they are ready ...
                out = normalizer.process([record])
                publisher.send([(topics.order_events, k, v) for k, v in out.events]
                               + [(topics.raw_orders_dlq, k, v) for k, v in out.dead])
                states += [(topics.order_state, k, v) for k, v in out.states]
                throughput.add(1, out)
            waited = time.monotonic()
            await confirm_or_exit(publisher, confirm_timeout)
            # order.state only once the events are in: a restart warms from it, so a state that landed
            # without its events would make the re-normalized page look like a repeat and lose them
            publisher.send(states)
            await confirm_or_exit(publisher, confirm_timeout)  # ... and only then may Faust acknowledge
            throughput.waited += time.monotonic() - waited

    @app.timer(interval=10.0)
    async def report_throughput():
        line = throughput.report()
        if line:
            log.info(line)

    app.normalizer, app.publisher = normalizer, publisher
    return app


async def confirm_or_exit(publisher: Publisher, timeout: float) -> None:
    """Wait until the broker acknowledged everything sent; if it does not within `timeout`, end the process.

    Faust's `take_events` acknowledges a batch in a `finally`, so raising here would acknowledge input whose
    output never landed. Exiting at once commits nothing: the supervisor restarts the worker, which
    normalizes the batch again from the last committed offset (event ids are deterministic, so a part that
    did land is only repeated, never changed).
    """
    try:
        await asyncio.wait_for(publisher.confirm_async(), timeout)
    except Exception as exc:  # noqa: BLE001 - undelivered for whatever reason: never let the batch be acked
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"{exc.__class__.__name__}: {exc}"
        log.critical("output not acknowledged by the broker within %.0fs (%s): exiting with code %d without "
                     "acknowledging the batch; it is normalized again after the restart",
                     timeout, reason, EXIT_UNDELIVERED)
        logging.shutdown()
        os._exit(EXIT_UNDELIVERED)


class Throughput:
    """What the normalizer did since the last report, for one readable log line every few seconds."""

    def __init__(self):
        self.pages = self.orders = self.events = self.dead = 0
        self.waited = 0.0  # seconds spent waiting for the broker's acknowledgements
        self.since = time.monotonic()

    def add(self, pages: int, out) -> None:
        self.pages += pages
        self.orders += out.orders
        self.events += len(out.events)
        self.dead += len(out.dead)

    def report(self) -> str | None:
        now = time.monotonic()
        seconds, self.since = now - self.since, now
        if not self.pages:
            return None
        line = (f"normalized {self.pages} pages, {self.orders} orders ({self.orders / seconds:.0f}/s) -> "
                f"{self.events} events, {self.dead} dead letters in the last {seconds:.0f}s "
                f"({self.waited:.1f}s waiting for acknowledgements)")
        self.pages = self.orders = self.events = self.dead = 0
        self.waited = 0.0
        return line
