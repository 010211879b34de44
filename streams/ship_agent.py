"""The ship-back worker: fulfillment.commands -> each platform's ship API -> fulfillment.results (+ findings).

A thin loop around the pure `streams.shipping` (ledger, outcomes) and each platform folder's `shipping.py`:

1. At start it reads fulfillment.results from the beginning into the ledger and resumes the shipments that
   were under way when it stopped (a kill -9 in the middle of a call included).
2. It consumes commands in batches. For each new one it publishes the PENDING result (or the FAILED result
   of a command that cannot go to any platform) and waits for the broker's acknowledgement before any call
   starts and before the batch is committed: from then on the ledger, not the command, carries the
   shipment. A command seen before is not uploaded again (see `Ledger.decide`).
3. Each shipment uploads in its own task: one at a time per order, every shop within its platform's
   rate limit (a token bucket per shop at the manifest's rate), over lean keep-alive HTTP/1.1 connections
   (`connectors.runtime.http1`). Each attempt's
   outcome is published: UPLOADED; RETRYING after a transient failure (again after 1, 2, 4 … 60 s);
   FAILED on a refusal or when the attempts are used up, with a `ship_upload_failed` finding on
   order.anomalies that the alert router delivers (and resolves once a later upload of the order works).

One worker owns every partition, like the detector: the ledger it reads back is the whole topic. Every
platform call is also a connector.calls record, like the connectors' own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import aiohttp
from confluent_kafka import Consumer, KafkaException

from connectors import platforms
from connectors.runtime.caller import HttpCaller
from connectors.runtime.errors import PermanentError, RateLimited, TransientError
from connectors.runtime.http1 import Http1Pool
from connectors.runtime.ratelimit import TokenBucket
from connectors.runtime.records import connector_call
from connectors.runtime.shipping import ShipRefused, ShipRequest
from connectors.runtime.shops import ShopDirectory
from schemas.canonical import MappingError
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import Publisher, consumer_config, read_to_end, usable
from schemas.shipments import ShipmentRequestError, checked_command, shipment_id
from schemas.topics import Topics
from streams.shipping.ledger import Ledger
from streams.shipping.outcomes import (
    MAX_ATTEMPTS,
    Job,
    Refusal,
    Target,
    finding,
    job_of,
    plan,
    refused,
    result,
    retry_delay,
)

log = logging.getLogger(__name__)
WIND_DOWN_S = 5.0  # on stop, running uploads get this long to finish; the rest resume at the next start
# Outcomes wait up to this long to go out together: fewer, larger produce batches (the local broker's
# cost grows with the number of batches it stores), for 50 ms more on a result no upload waits for.
FLUSH_EVERY_S = 0.05
COMMIT_EVERY_S = 1.0  # offsets: read-again commands cost a ledger lookup, a commit costs the broker a write


def _now() -> int:
    return int(time.time() * 1000)


def target_of(platform: str) -> Target | None:
    """What the registry says about ship-back to `platform` (a code or an alias), None when unknown."""
    try:
        folder = platforms.get(platform)
    except platforms.UnknownPlatform:
        return None
    m = folder.manifest
    return Target(folder.code, platforms.label(platform), m.capabilities.ship_back, dict(m.carriers))


class ShipService:
    def __init__(self, kafka_config: dict, topics: Topics, shops_file: Path | None = None,
                 simulators: dict[str, str] | None = None, concurrency: int = 512,
                 max_attempts: int = MAX_ATTEMPTS):
        self.kafka_config, self.topics = kafka_config, topics
        self.shops_file, self.simulators = shops_file, dict(simulators or {})
        self.concurrency, self.max_attempts = concurrency, max_attempts
        # Two producers: the PENDING records every upload waits for never wait their turn behind a large
        # batch of outcomes being flushed.
        self.publisher, self.pending_publisher = Publisher(kafka_config), Publisher(kafka_config, **{"linger.ms": 1})
        self.command_codec, self.result_codec = AvroCodec("ShipmentCommand"), AvroCodec("ShipmentResult")
        self.anomaly_codec = AvroCodec("Anomaly")
        self.ledger = Ledger()
        self.tasks: dict[str, asyncio.Task] = {}
        self.counts: Counter[str] = Counter()
        self._locks: dict[str, list] = {}  # order_id -> [lock, users]
        self._shippers: dict[tuple[str, str], object] = {}
        self._out: list[tuple[str, bytes, bytes]] = []
        self._wake = asyncio.Event()

    # -- the record ------------------------------------------------------------------------------------
    def restore(self, timeout: float = 300.0) -> int:
        """Fold fulfillment.results from its start into the ledger; returns how many records it read."""
        read = 0
        for batch in read_to_end(self.kafka_config, [self.topics.fulfillment_results], idle=0.5, timeout=timeout,
                                 group=f"{self.topics.prefix}tonglu-shipper-restore"):
            for msg in batch:
                try:
                    self.ledger.record(self.result_codec.decode(msg.value()))
                except DecodeError as exc:
                    log.error("undecodable shipment result skipped: %s", exc)
            read += len(batch)
        return read

    def _note(self, outcome: dict) -> list[tuple[str, bytes, bytes]]:
        """Record a result in the ledger; the messages that publish it (and its finding, if any)."""
        key = outcome["order_id"].encode()
        out = [(self.topics.fulfillment_results, key, self.result_codec.encode(outcome))]
        resolves = self.ledger.record(outcome)
        if outcome["order_id"].count(":") >= 2 and (outcome["status"] == "FAILED" or resolves):
            state = "raised" if outcome["status"] == "FAILED" else "resolved"
            out.append((self.topics.order_anomalies, key, self.anomaly_codec.encode(finding(outcome, state))))
        self.counts[outcome["status"]] += 1
        return out

    def _emit(self, outcome: dict) -> None:
        self._out += self._note(outcome)
        self._wake.set()

    def _record_call(self, record: dict) -> None:
        key = f"{record['platform']}:{record['shop_id']}".encode()
        self._out.append((self.topics.connector_calls, key, connector_call(record)))

    async def _flusher(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self._out:
            try:
                await asyncio.wait_for(self._wake.wait(), 0.2)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(FLUSH_EVERY_S)

    async def flush(self) -> None:
        """Publish what is waiting (results, findings, call records) and wait for the acknowledgement."""
        if self._out:
            batch, self._out = self._out, []
            await self.publisher.publish_async(batch)

    # -- commands --------------------------------------------------------------------------------------
    def take(self, values: list[bytes], now_ms: int) -> tuple[list[tuple[str, bytes, bytes]], list[Job]]:
        """What a batch of command values asks for: the messages to publish before anything is called (the
        PENDING and FAILED results, answers repeated), and the jobs to start after that."""
        out, jobs = [], []
        for value in values:
            try:
                raw = self.command_codec.decode(value)
            except DecodeError as exc:
                self.counts["undecodable"] += 1
                log.error("undecodable shipment command skipped: %s", exc)
                continue
            try:
                command = checked_command(raw)
            except ShipmentRequestError as exc:
                command = {**raw, "shipment_id": shipment_id(raw["order_id"], raw["tracking_no"])}
                if self.ledger.decide(command) == "new":
                    out += self._note(refused(command, f"invalid request: {exc}", now_ms))
                continue
            decision = self.ledger.decide(command)
            if decision not in ("new", "answer_again"):
                continue
            try:
                job = plan(command, target_of(command["order_id"].split(":", 1)[0]))
            except Refusal as exc:
                if decision == "new":
                    out += self._note(refused(command, str(exc), now_ms))
                continue
            if decision == "answer_again":
                out += self._note(result(job, "UPLOADED", now_ms, "uploaded before; asked again, not sent again"))
                continue
            out += self._note(result(job, "PENDING", now_ms))
            jobs.append(job)
        return out, jobs

    def _consumer(self) -> Consumer:
        # a worker restarted after kill -9 gets the partitions once its predecessor's session expired
        consumer = Consumer(consumer_config(self.kafka_config, f"{self.topics.prefix}tonglu-shipper",
                                            **{"fetch.wait.max.ms": 20, "session.timeout.ms": 6000}))
        consumer.subscribe([self.topics.fulfillment_commands])
        return consumer

    @staticmethod
    def _commit(consumer: Consumer) -> None:
        """Commit what was consumed: every command so far has its result on the broker already, so a commit
        that is late or lost only means commands read again, which the ledger recognises."""
        try:
            consumer.commit(asynchronous=True)
        except KafkaException as exc:  # e.g. a rebalance: the batch comes again and the ledger knows it
            log.warning("ship-back: commit failed (%s); the batch will be read again", exc)

    # -- uploads ---------------------------------------------------------------------------------------
    def start(self, job: Job) -> None:
        task = asyncio.create_task(self._upload(job))
        self.tasks[job.shipment_id] = task
        task.add_done_callback(lambda _t, sid=job.shipment_id: self.tasks.pop(sid, None))

    async def _upload(self, job: Job) -> None:
        entry = self._locks.setdefault(job.order_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                while True:
                    async with self.gate:
                        status, reason = await self._attempt(job)
                    if status == "RETRYING" and job.attempt >= self.max_attempts:
                        status, reason = "FAILED", f"gave up after {job.attempt} attempts: {reason}"
                    self._emit(result(job, status, _now(), reason))
                    if status != "RETRYING":
                        return
                    await asyncio.sleep(retry_delay(job.attempt))
                    job = replace(job, attempt=job.attempt + 1)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(job.order_id, None)

    async def _attempt(self, job: Job) -> tuple[str, str | None]:
        """One upload attempt: (UPLOADED | RETRYING | FAILED, the reason)."""
        folder = platforms.get(job.platform).code
        creds = await self.shops.get((job.platform, folder), job.shop_id)
        if creds is None:
            return "RETRYING", f"no credentials for shop {job.shop_id} of {platforms.label(job.platform)} yet"
        request = ShipRequest(job.external_id, job.carrier_code, job.carrier_name, job.tracking_no, job.line_ids)
        try:
            how = await self._shipper(creds).ship(request)
        except ShipRefused as exc:
            return "FAILED", f"{exc.kind}: {exc}"
        except (RateLimited, TransientError) as exc:
            return "RETRYING", str(exc)
        except PermanentError as exc:
            return "FAILED", str(exc)
        except MappingError as exc:
            return "FAILED", f"the platform's view of the order is unreadable: {exc}"
        except Exception as exc:  # a fault in a platform folder: said, retried, never the worker's end
            log.exception("ship-back of %s to %s failed unexpectedly", job.shipment_id, job.platform)
            return "RETRYING", f"{type(exc).__name__}: {exc}"
        return "UPLOADED", None if how == "accepted" else "the platform had it already (an earlier attempt landed)"

    def _shipper(self, creds):
        key = (creds.platform, creds.shop_id)
        if key not in self._shippers:
            rate, burst = platforms.rate_limit(creds.platform)
            caller = HttpCaller(self.pool, creds.platform, creds.shop_id, limiter=TokenBucket(rate, burst),
                                on_call=self._record_call, max_attempts=3, timeout=10.0)
            self._shippers[key] = platforms.module(creds.platform, "shipping").Shipper(creds, caller)
        return self._shippers[key]

    # -- the loop --------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        read = await asyncio.to_thread(self.restore)
        under_way = self.ledger.under_way()
        log.info("ship-back: %d results read back, %d shipments known, %d to resume", read, len(self.ledger.last),
                 len(under_way))
        consumer = await asyncio.to_thread(self._consumer)
        # the platform calls go over lean keep-alive connections (aiohttp's client cost ~7 times the CPU a
        # call); aiohttp's session serves the rare shop look-ups
        self.pool = Http1Pool(connections=64, pipeline=1, timeout=10.0)
        async with aiohttp.ClientSession() as session:
            self.gate = asyncio.Semaphore(self.concurrency)
            self.shops = ShopDirectory(session, self.shops_file, self.simulators)
            for last in under_way:
                target = target_of(last["order_id"].split(":", 1)[0])
                if target is not None and last["carrier_code"]:
                    self.start(job_of(last, target))
            flusher = asyncio.create_task(self._flusher(stop))
            reported = committed = time.monotonic()
            uncommitted = False
            try:
                while not stop.is_set():
                    messages = usable(await asyncio.to_thread(consumer.consume, 500, 0.05))
                    if messages:
                        out, jobs = self.take([m.value() for m in messages], _now())
                        await self.pending_publisher.publish_async(out)
                        for job in jobs:
                            self.start(job)
                        uncommitted = True
                    if uncommitted and time.monotonic() - committed >= COMMIT_EVERY_S:
                        self._commit(consumer)
                        committed, uncommitted = time.monotonic(), False
                    if time.monotonic() - reported >= 10 and self.counts:
                        reported = time.monotonic()
                        c = self.counts
                        log.info("ship-back: %d uploaded, %d failed, %d retries, %d under way", c["UPLOADED"],
                                 c["FAILED"], c["RETRYING"], len(self.tasks))
            finally:
                if uncommitted:
                    self._commit(consumer)
                await asyncio.to_thread(consumer.close)
                if self.tasks:
                    await asyncio.wait(list(self.tasks.values()), timeout=WIND_DOWN_S)
                for task in list(self.tasks.values()):
                    task.cancel()
                await asyncio.gather(*self.tasks.values(), return_exceptions=True)
                stop.set()
                self._wake.set()
                await flusher
                self.publisher.close()
                self.pending_publisher.close()
                await self.pool.close()
