"""The ERP deliverer process: order.events -> every configured ERP endpoint (signed webhooks, Qimen XML).

Each endpoint has a consumer group of its own (`tonglu-erp.<name>`) and its own connections, so a slow
or dead endpoint holds back nothing but itself: other endpoints and the order path (which never waits
for it) go on. Per partition, a `PartitionLane` lets each order's next event go once the one before it
was delivered, so many orders travel at once (pipelined on the partition's keep-alive connection)
while each order's events arrive in version order. Offsets are committed only once everything before
them was delivered or dead-lettered; a crash repeats what was not committed, with the same event ids.

A failed attempt is retried after a jittered, capped backoff (`streams.erp.policy`); when an endpoint
that was failing answers again, the deliveries waiting out a backoff because of that outage go at once.
After the last attempt the event goes to erp.dlq with the reason (`tonglu erp replay` sends it again).

The consumer is polled without blocking from the event loop: librdkafka fetches in its own threads, and
rebalance callbacks then run on the loop, where the lanes live.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import Publisher, consumer_config, usable
from schemas.topics import Topics
from streams.erp.config import Endpoint
from streams.erp.lanes import Delivery, PartitionLane
from streams.erp.policy import Outcome, backoff_s, exhausted
from streams.erp.sender import Sender, dead_letter

log = logging.getLogger(__name__)

CONSUME_BATCH = 500  # records taken per turn of the loop: answers are read between two turns
MAX_BUFFERED = 4096  # records per partition read but not yet committed; reading pauses above it
COMMIT_EVERY_S = 0.5
DLQ_EVERY_S = 0.1
IDLE_SLEEP_S = 0.005
# A group join waits out the session timeout of members that left (Tansu: ~23 s at the 45 s default):
# a short one lets a restarted deliverer take its partitions back within seconds.
SESSION_TIMEOUT_MS = 6000
# How long the broker may hold a fetch that finds nothing new. Shorter is not faster: at 10 ms the idle
# fetches cost the local broker more CPU than the events themselves, and under contention that cost
# became the latency's tail (p99 0.5-5 s at 2,000 orders/s, against 44-74 ms at 40 ms, load 6).
FETCH_WAIT_MS = 40


def group_id(topics: Topics, endpoint: str) -> str:
    """The consumer group of one endpoint: its read position on order.events is its own."""
    return f"{topics.prefix}tonglu-erp.{endpoint}"


class EndpointDeliverer:
    """Delivers order.events to one endpoint (see the module)."""

    def __init__(self, endpoint: Endpoint, secret: str, kafka_config: dict, topics: Topics, publisher: Publisher,
                 max_buffered: int = MAX_BUFFERED):
        self.endpoint, self.topics, self.publisher = endpoint, topics, publisher
        self.sender = Sender(endpoint, secret)
        self.dlq_codec = AvroCodec("ErpDeadLetter")
        self.max_buffered = max_buffered
        self.consumer = Consumer(consumer_config(kafka_config, group_id(topics, endpoint.name), **{
            "auto.offset.reset": endpoint.start, "fetch.wait.max.ms": FETCH_WAIT_MS, "enable.partition.eof": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 1000,
            "queued.max.messages.kbytes": 16384}))
        self.lanes: dict[int, PartitionLane] = {}
        self.paused: set[int] = set()
        self.retrying: dict[Delivery, asyncio.TimerHandle] = {}
        # deliveries whose turn came, per partition, started as its connection has room (a partition's
        # requests share one connection: more in flight than it pipelines would only wait)
        self.ready: dict[int, collections.deque[Delivery]] = {}
        self.running: dict[int, int] = {}
        self.per_partition = 2 * endpoint.pipeline
        self.dlq_pending: list[tuple[Delivery, dict]] = []
        self.failing_since: float | None = None
        self.delivered = self.dead_lettered = self.skipped = 0

    # -- rebalances (called from consume, on the loop)
    def _assigned(self, consumer, partitions) -> None:
        for tp in partitions:
            self.lanes[tp.partition] = PartitionLane(tp.partition)
        log.info("ERP %s: partitions %s assigned", self.endpoint.name, sorted(tp.partition for tp in partitions))

    def _revoked(self, consumer, partitions) -> None:
        self._commit(sync=True)
        for tp in partitions:
            self.lanes.pop(tp.partition, None)
            self.paused.discard(tp.partition)
            self.ready.pop(tp.partition, None)
        for delivery in [d for d in self.retrying if d.partition not in self.lanes]:
            self.retrying.pop(delivery).cancel()

    # -- the loop
    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe([self.topics.order_events], on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)
        flusher = asyncio.create_task(self._flush_dead_letters(stop))
        last_commit = time.monotonic()
        try:
            while not stop.is_set():
                messages = usable(self.consumer.consume(CONSUME_BATCH, 0))
                if messages:
                    self._take(messages)
                    self._flow_control()
                    await asyncio.sleep(0)  # let the answers in before the next batch
                else:
                    await asyncio.sleep(IDLE_SLEEP_S)
                if time.monotonic() - last_commit >= COMMIT_EVERY_S:
                    self._commit()
                    self._flow_control()  # resumes partitions whose deliveries caught up
                    last_commit = time.monotonic()
        finally:
            flusher.cancel()
            for timer in self.retrying.values():
                timer.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._publish_dead_letters()
            self._commit(sync=True)
            self.consumer.close()
            await self.sender.close()

    def _take(self, messages) -> None:
        for msg in messages:
            lane = self.lanes.get(msg.partition())
            if lane is None:  # revoked meanwhile
                continue
            key = msg.key()
            delivery = Delivery(msg.partition(), msg.offset(), key.decode("utf-8", "replace") if key else "",
                                msg.value() or b"")
            try:
                self.sender.read(delivery)
            except (DecodeError, KeyError, TypeError, ValueError):
                delivery.event = None  # dead-lettered once its turn comes
            if delivery.event is not None and not self.endpoint.wants(delivery.event["event_type"]):
                lane.skip(delivery)
                self.skipped += 1
            elif lane.add(delivery):
                self._go(delivery)

    def _go(self, delivery: Delivery) -> None:
        """`delivery` may be sent: start it, or queue it behind its partition's requests in flight."""
        self.retrying.pop(delivery, None)
        self.ready.setdefault(delivery.partition, collections.deque()).append(delivery)
        self._start(delivery.partition)

    def _start(self, partition: int) -> None:
        queue = self.ready.get(partition)
        while queue and self.running.get(partition, 0) < self.per_partition:
            delivery = queue.popleft()
            try:
                if delivery.event is None:
                    raise DecodeError("the event's head")
                self.running[partition] = self.running.get(partition, 0) + 1
                self.sender.submit(delivery, functools.partial(self._answered, delivery))
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                if delivery.event is not None:
                    self.running[partition] -= 1
                self._give_up(delivery, Outcome(False, f"undecodable order event: {exc}"))

    def _answered(self, delivery: Delivery, outcome: Outcome) -> None:
        self.running[delivery.partition] -= 1
        self._settle(delivery, outcome)
        self._start(delivery.partition)

    def _settle(self, delivery: Delivery, outcome: Outcome) -> None:
        if self.lanes.get(delivery.partition) is not delivery.lane:
            return  # revoked while in flight: its partition's next owner sends it again
        if outcome.ok:
            self.delivered += 1
            self._recovered()
            self._finish(delivery)
            return
        delivery.failed_attempts += 1
        if outcome.status is None or outcome.status >= 500:
            self._failing(outcome)
        if exhausted(delivery.failed_attempts, self.endpoint.retry):
            self._give_up(delivery, outcome)
            return
        delay = backoff_s(delivery.failed_attempts, self.endpoint.retry, random.random(), outcome.retry_after_s)
        delivery.down = outcome.status is None or outcome.status >= 500
        self.retrying[delivery] = asyncio.get_running_loop().call_later(delay, self._go, delivery)

    def _failing(self, outcome: Outcome) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.warning("ERP %s 端点不可用 endpoint failing: %s — retrying with backoff", self.endpoint.name,
                        outcome.reason)

    def _recovered(self) -> None:
        """The endpoint answers again: what waits out a backoff because it was down goes now."""
        if self.failing_since is None:
            return
        waiting = [d for d in self.retrying if d.down]
        log.info("ERP %s 端点已恢复 endpoint answers again after %.0fs; sending %d waiting events now",
                 self.endpoint.name, time.monotonic() - self.failing_since, len(waiting))
        self.failing_since = None
        for delivery in waiting:
            self.retrying.pop(delivery).cancel()
            self._go(delivery)

    def _finish(self, delivery: Delivery) -> None:
        lane = delivery.lane
        if lane is None or self.lanes.get(delivery.partition) is not lane:
            return
        following = lane.finish(delivery)
        if following is not None:
            self._go(following)

    def _give_up(self, delivery: Delivery, outcome: Outcome) -> None:
        record = dead_letter(self.endpoint.name, delivery, outcome, self.topics.order_events,
                             int(time.time() * 1000))
        self.dlq_pending.append((delivery, record))
        log.warning("ERP %s 投递失败，转入死信 dead-lettered %s (%s v%s) after %d attempts: %s", self.endpoint.name,
                    record["event_id"] or f"offset {delivery.offset}", record["order_id"], record["version"],
                    delivery.failed_attempts, outcome.reason)

    async def _flush_dead_letters(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(DLQ_EVERY_S)
            await self._publish_dead_letters()

    async def _publish_dead_letters(self) -> None:
        """Dead letters are acknowledged by the broker before their events count as done (and committed)."""
        batch, self.dlq_pending = self.dlq_pending, []
        if not batch:
            return
        await self.publisher.publish_async([(self.topics.erp_dlq, record["order_id"].encode(),
                                             self.dlq_codec.encode(record)) for _, record in batch])
        self.dead_lettered += len(batch)
        for delivery, _ in batch:
            self._finish(delivery)

    def _commit(self, sync: bool = False) -> None:
        offsets = [TopicPartition(self.topics.order_events, p, off) for p, lane in self.lanes.items()
                   if (off := lane.committable()) is not None]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=not sync)
            except KafkaException as exc:  # e.g. mid-rebalance: the next commit carries it
                log.warning("ERP %s: commit failed: %s", self.endpoint.name, exc)

    def _flow_control(self) -> None:
        full = [p for p, lane in self.lanes.items() if len(lane) >= self.max_buffered and p not in self.paused]
        roomy = [p for p in self.paused if p in self.lanes and len(self.lanes[p]) < self.max_buffered // 2]
        topic = self.topics.order_events
        if full:
            self.consumer.pause([TopicPartition(topic, p) for p in full])
            self.paused.update(full)
        if roomy:
            self.consumer.resume([TopicPartition(topic, p) for p in roomy])
            self.paused.difference_update(roomy)

    def figures(self) -> dict:
        return {"delivered": self.delivered, "dead_lettered": self.dead_lettered, "skipped": self.skipped,
                "retrying": len(self.retrying), "buffered": sum(len(lane) for lane in self.lanes.values())}


class ErpService:
    """Every enabled endpoint of the routing, delivered side by side in one process."""

    def __init__(self, kafka_config: dict, topics: Topics, endpoints: list[Endpoint], secrets: dict[str, str]):
        self.publisher = Publisher(kafka_config)
        self.deliverers = [EndpointDeliverer(e, secrets[e.name], kafka_config, topics, self.publisher)
                           for e in endpoints]

    def delivered(self) -> int:
        return sum(d.delivered for d in self.deliverers)

    async def run(self, stop: asyncio.Event) -> None:
        reporter = asyncio.create_task(self._report(stop))
        try:
            await asyncio.gather(*(d.run(stop) for d in self.deliverers))
        finally:
            reporter.cancel()
            self.publisher.close()

    async def _report(self, stop: asyncio.Event, every: float = 10.0) -> None:
        last: dict[str, dict] = {}
        while not stop.is_set():
            await asyncio.sleep(every)
            for d in self.deliverers:
                figures = d.figures()
                if figures != last.get(d.endpoint.name):
                    log.info("ERP %s: 已投递 delivered %d · 重试中 retrying %d · 死信 dead-lettered %d · "
                             "待提交 uncommitted %d", d.endpoint.name, figures["delivered"], figures["retrying"],
                             figures["dead_lettered"], figures["buffered"])
                    last[d.endpoint.name] = figures
