"""The SMS sender process: sms.requests -> decide -> claim -> gateway or platform channel -> sms.receipts.

Exactly once per key: every request is checked against the ledger (read back from sms.receipts at start), and a
message is claimed — a `sending` receipt acknowledged by the broker — before any provider is called. A repeated
request, a replayed topic or a restart after kill -9 finds the key taken; a claim without an outcome (the process
died during the call) is checked with the gateways (`QuerySendDetails`, `PullSmsSendStatusByPhoneNumber` by the
out id) once it is older than their timeout, and sent only if no gateway has it. A platform channel cannot be
asked, so such a message is recorded `failed` (`interrupted`) rather than risk a second text. A call whose
request left but got no answer (a timeout, a dropped connection, a 504) is the same case without a restart: it
is never tried again nor failed over, but checked the same way once the gateways' timeout has passed; only a
call that never left (no connection) goes to the next gateway or is retried.

The number is resolved here only (`contacts`), used for the provider call and the keyed hash, and dropped; a
message waiting for its window keeps no number and resolves it again when it leaves. The rules
(`rules.decide`: opt-out, consent, quiet hours, expiry, caps, budget) run here because they need that hash.
Per poll, the requests are decided together and their claims stored in one write; then each message's provider
call runs on its own (a slow provider holds up no other), up to `WINDOW` messages in flight before the sender reads
more; their outcomes are written together again (`Outbox`).

Several senders share the work: a consumer group over sms.requests (partitioned by the key, so a message always
belongs to one partition). Every sender tails all of sms.receipts and sms.optouts, so its ledger knows every
message, cap and budget whichever sender wrote them (caps of one number hit by two senders in the same
moment are checked against what each has read, tens of milliseconds behind). A partition that arrives is read
from its beginning, its requests held back until the tail has reached the end sms.receipts had at that moment:
the previous owner's claims are in the ledger before any of its keys is looked at. A partition that leaves takes
no new claim or provider call from then on; the move waits until the calls already at a provider have finished
and every claim and outcome is on the broker. A sender killed mid-call leaves claims without outcomes: the new
owner checks them with the gateways as a restart does.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.runtime.errors import ConnectorError
from connectors.runtime.records import connector_call
from connectors.sms.contacts import OrderContacts, open_contact
from connectors.sms.transport import Endpoints, TransportError
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import CatchUp, Publisher, consumer_config, consumer_from_start, usable
from schemas.sealing import Opener, SealError
from schemas.topics import Topics
from streams.anomaly_agent import GC_THRESHOLDS
from streams.sms.dispatch import Dispatcher
from streams.sms.identity import mask_phone, phone_hash, recipient_of, token_hash
from streams.sms.ledger import Ledger, evolve, receipt
from streams.sms.outbox import Outbox
from streams.sms.rules import Candidate, decide
from streams.sms.templates import SmsConfig

log = logging.getLogger(__name__)
RETRY_BASE_MS, RETRY_MAX_MS, GIVE_UP_MS = 1000, 60_000, 3_600_000
RESOLVE_RETRY_MS = 5000
SETTLE_SLACK_S = 3.0
WINDOW = 4096  # messages decided but not finished before the sender stops reading more
POLL_S = 0.02  # a poll returns when full or after this long: every message waits for it once
HANDOVER_S = 15.0  # how long a partition that leaves may wait for its messages' provider calls to end
GROUP = {"fetch.wait.max.ms": 20, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


class SenderConfigError(ValueError):
    """The sender cannot start (a one-line reason: a missing secret, no gateway section)."""


@dataclass
class SenderSettings:
    kafka_config: dict
    topics: Topics
    config: SmsConfig
    hash_key: bytes
    environ: Mapping[str, str]  # where the `*_env` secrets are read from
    opener: Opener
    shops_file: Path | None = None
    simulators: dict[str, str] = field(default_factory=dict)
    batch: int = 2000


@dataclass
class Pending:
    """A request waiting: for its window (no number kept), to be tried again after every provider failed, or
    (`reconcile`) a claim without an outcome (an earlier run's, or a call that got no answer) to be checked with
    the gateways first."""

    due: int
    request: dict
    attempts: int = 0
    reconcile: bool = False


def _secret(environ: Mapping[str, str], name: str | None, what: str) -> str | None:
    if not name:
        return None
    value = environ.get(name)
    if not value:
        raise SenderConfigError(f"{what}: the environment variable {name} is not set")
    return value


def _call_started(record: Mapping) -> int:
    """When the last provider call of a message started (the report of an in-doubt call has no sent time)."""
    attempts = record.get("attempts") or []
    return attempts[-1]["started_at"] if attempts else record["at"]


def _now() -> int:
    return int(time.time() * 1000)


class SenderService:
    def __init__(self, settings: SenderSettings):
        self.s, self.config, self.topics = settings, settings.config, settings.topics
        missing = [p for p in self.config.providers if p not in self.config.gateways]
        if missing:
            raise SenderConfigError(f"providers: no [gateways.{missing[0]}] section in the SMS configuration")
        self._gateway_secrets = {name: _secret(settings.environ, spec.secret_env, f"[gateways.{name}]")
                                 for name, spec in self.config.gateways.items()}
        self._channel_secrets = {
            name: {"secret": _secret(settings.environ, spec.secret_env, f"[channels.{name}]"),
                   "session": _secret(settings.environ, spec.session_env, f"[channels.{name}]")}
            for name, spec in self.config.channels.items()}
        self.ledger = Ledger()
        self.publisher = Publisher(settings.kafka_config)
        self.request_codec, self.receipt_codec = AvroCodec("SmsRequest"), AvroCodec("SmsReceipt")
        self.optout_codec = AvroCodec("SmsOptOut")
        self.waiting: dict[str, Pending] = {}
        self.in_flight: set[str] = set()
        self.partition_of: dict[str, int] = {}  # sms.requests partition of each message in flight or waiting
        self.owned: frozenset[int] = frozenset()
        self._catching_up: tuple[list, dict] | None = None  # partitions held back until the tail reaches marks
        self._tasks: set[asyncio.Task] = set()
        self._calls: list[tuple[str, bytes, bytes]] = []
        self.counts = {"requests": 0, "duplicates": 0, "sent": 0, "failed": 0, "held": 0, "reports": 0,
                       "reports_unmatched": 0, "opt_outs": 0}
        self.ready = False

    # -- start and the loop ------------------------------------------------------------------------------------
    def _tz(self, shop_id: str) -> str:
        return self.config.rules(shop_id).timezone

    def _note(self, record: dict) -> None:
        self.ledger.apply(record, self._tz(record["shop_id"]))

    def restore(self, timeout: float = 300.0) -> None:
        """The ledger from every receipt written so far, and the opt-outs: the tail (every partition of
        sms.receipts and sms.optouts from the first offset) read until caught up; it is read on from there."""
        self.tail = consumer_from_start(self.s.kafka_config, [self.topics.sms_receipts, self.topics.sms_optouts],
                                        f"{self.topics.prefix}tonglu-sms-sender-tail", **{"fetch.wait.max.ms": 20})
        marks = {(tp.topic, tp.partition): self.tail.get_watermark_offsets(tp, timeout=10)
                 for tp in self.tail.assignment()}
        progress, deadline = CatchUp(marks, 0.5, time.monotonic()), time.monotonic() + timeout
        while not progress.done(time.monotonic()):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"reading {self.topics.sms_receipts} back: not caught up within {timeout:.0f}s")
            messages = usable(self.tail.consume(10_000, 0.2))
            if messages:
                self._tailed(messages)
                progress.seen([(m.topic(), m.partition(), m.offset()) for m in messages], time.monotonic())
        log.info("短信发送 sender: %d messages known, %d numbers opted out, %d claimed without an outcome",
                 len(self.ledger.latest), len(self.ledger.optouts), len(self.ledger.unfinished()))

    def _tailed(self, messages) -> None:
        """Receipts and opt-outs read from the tail (this sender's own come back too; folding one in twice is
        harmless)."""
        for msg in messages:
            if msg.topic() == self.topics.sms_optouts:
                self._optouts([msg])
                continue
            try:
                self._note(self.receipt_codec.decode(msg.value()))
            except (DecodeError, TypeError) as exc:
                log.error("undecodable receipt skipped: %s", exc)

    # -- the partitions of sms.requests (runs in the consumer's thread, where its callbacks run) -----------------
    def _group_consumer(self) -> Consumer:
        consumer = Consumer(consumer_config(self.s.kafka_config, f"{self.topics.prefix}tonglu-sms-sender", **GROUP))
        consumer.subscribe([self.topics.sms_requests], on_assign=self._assigned, on_revoke=self._revoked,
                           on_lost=self._revoked)
        return consumer

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Read arriving partitions from the beginning (the ledger says which keys are taken), held back until
        the tail has every receipt written so far."""
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)
        consumer.pause(partitions)
        marks = {tp.partition: self.tail.get_watermark_offsets(tp, timeout=10)
                 for tp in self.tail.assignment() if tp.topic == self.topics.sms_receipts}
        self._catching_up = (partitions, marks)
        self.owned = frozenset(tp.partition for tp in partitions)
        log.info("短信发送 sender: partitions %s of %s are ours", sorted(self.owned), self.topics.sms_requests)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = {tp.partition for tp in partitions}
        self._catching_up = None
        try:
            asyncio.run_coroutine_threadsafe(self._let_go(parts), self._loop).result(HANDOVER_S + 10)
        except Exception as exc:  # noqa: BLE001 - the move goes on; the new owner checks unfinished claims
            log.warning("短信发送 handing over partitions %s: %s", sorted(parts), exc)

    def _resume_caught_up(self, consumer: Consumer) -> None:
        if self._catching_up is None:
            return
        partitions, marks = self._catching_up
        at = {tp.partition: tp.offset for tp in self.tail.position(
            [TopicPartition(self.topics.sms_receipts, p) for p in marks])}
        if all(high <= low or at.get(p, -1) >= high for p, (low, high) in marks.items()):
            consumer.resume(partitions)
            self._catching_up = None

    def _poll(self, consumer: Consumer, room: int) -> tuple[list, list]:
        """(requests, receipts and opt-outs of the tail) of one poll."""
        requests = usable(consumer.consume(room, POLL_S))
        tailed = usable(self.tail.consume(10_000, 0))
        self._resume_caught_up(consumer)
        return requests, tailed

    async def _let_go(self, parts: set[int]) -> None:
        """Partitions moving to another sender: no new claim or provider call for their messages from now on;
        those already at a provider finish, and every claim and outcome is on the broker, before the move."""
        self.owned = self.owned - parts
        for key in [k for k in self.waiting if self.partition_of.get(k) in parts]:
            del self.waiting[key]
            self.partition_of.pop(key, None)
        deadline = time.monotonic() + HANDOVER_S
        while any(self.partition_of.get(k) in parts for k in self.in_flight):
            if time.monotonic() > deadline:
                log.warning("短信发送 partitions %s leave with provider calls still open", sorted(parts))
                break
            await asyncio.sleep(0.01)
        if not self.outbox.closed:
            await self.outbox.flushed()

    def _owns(self, key: str) -> bool:
        partition = self.partition_of.get(key)
        return partition is None or partition in self.owned

    def _optouts(self, messages) -> None:
        for msg in messages:
            try:
                record = self.optout_codec.decode(msg.value())
            except (DecodeError, TypeError) as exc:
                log.error("undecodable opt-out skipped: %s", exc)
                continue
            self.ledger.opt_out(record["phone_hash"], record["opted_out"])

    async def run(self, stop: asyncio.Event) -> None:
        # the ledger is a large long-lived heap of acyclic dicts: rarer collections, and none of what was read back
        gc.set_threshold(*GC_THRESHOLDS)
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.restore)
        gc.freeze()
        consumer = await asyncio.to_thread(self._group_consumer)
        self.outbox = Outbox(self.publisher, self.topics.sms_receipts, self._note)
        self._room = asyncio.Event()
        self.http = Endpoints()
        async with aiohttp.ClientSession() as session:  # platform order look-ups only
            self.dispatch = Dispatcher(self.config, self.http, self._gateway_secrets, self._channel_secrets)
            self.contacts = OrderContacts(session, self.s.shops_file, self.s.simulators, self._record_call)
            writer = asyncio.create_task(self.outbox.run())
            flusher = asyncio.create_task(self._flush_calls(stop))
            self.ready = True
            try:
                last_prune = time.time()
                while not stop.is_set():
                    room = WINDOW - len(self.in_flight)
                    if room <= 0:  # the window is full: wait for messages to finish before reading more
                        self._room.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._room.wait(), 0.05)
                        await self.release_due()
                        continue
                    messages, tailed = await asyncio.to_thread(self._poll, consumer, min(self.s.batch, room))
                    self._tailed(tailed)
                    requests = []
                    for msg in messages:
                        try:
                            request = self.request_codec.decode(msg.value())
                        except (DecodeError, TypeError) as exc:
                            log.error("undecodable SMS request skipped: %s", exc)
                            continue
                        self.partition_of[request["key"]] = msg.partition()
                        requests.append(request)
                    await self.handle(requests)
                    await self.release_due()
                    if time.time() - last_prune > 600:
                        self.ledger.prune(_now())
                        last_prune = time.time()
            finally:
                self.ready = False
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=10)
                await asyncio.to_thread(consumer.close)  # hands the partitions over while the outbox still writes
                self.outbox.close()
                await writer
                await asyncio.to_thread(self.tail.close)
                await flusher
                await self.http.close()
                self.publisher.close()

    def _start(self, keys: list[str], work) -> None:
        """Run `work`, the task of messages `keys`, which are in flight until each is finished (`_finish`)."""
        self.in_flight.update(keys)
        job = asyncio.create_task(work)
        self._tasks.add(job)
        job.add_done_callback(lambda done: self._ended(done, keys))

    def _start_one(self, key: str, work) -> None:
        """`_start` for the task of one message, finished when the task ends."""
        async def one():
            try:
                await work
            finally:
                self._finish(key)

        self._start([key], one())

    def _ended(self, job: asyncio.Task, keys: list[str]) -> None:
        self._tasks.discard(job)
        if not job.cancelled() and job.exception() is not None:
            # a bug must not stop the sender; claims already stored stay for a restart to check
            log.error("短信 %s: processing failed", ", ".join(keys[:3]), exc_info=job.exception())
            for key in keys:
                self._finish(key)

    def _finish(self, key: str) -> None:
        self.in_flight.discard(key)
        if key not in self.waiting:
            self.partition_of.pop(key, None)
        if len(self.in_flight) < WINDOW and hasattr(self, "_room"):
            self._room.set()

    def _record_call(self, record: dict) -> None:
        self._calls.append((self.topics.connector_calls, f"{record['platform']}:{record['shop_id']}".encode(),
                            connector_call(record)))

    async def _flush_calls(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if self._calls:
                batch, self._calls = self._calls, []
                await self.publisher.publish_async(batch)

    # -- requests --------------------------------------------------------------------------------------------
    async def handle(self, requests: list[dict]) -> None:
        """Start one task for the requests whose key is free; restore waiting and unfinished ones; skip the rest."""
        fresh: dict[str, dict] = {}
        for request in requests:
            self.counts["requests"] += 1
            key, status = request["key"], self.ledger.status(request["key"])
            if key in self.in_flight or key in self.waiting or key in fresh:
                self.counts["duplicates"] += 1
            elif status is None:
                fresh[key] = request
            elif status == "queued":  # waiting for its window when the sender stopped
                self.waiting[key] = Pending(self.ledger.latest[key].get("release_at") or 0, request)
            elif status == "sending":  # claimed by an earlier run, no outcome written
                self._start_one(key, self._reconcile(request))
            else:
                self.counts["duplicates"] += 1
        if fresh:
            self._start(list(fresh), self._process(list(fresh.values())))

    def _recipient(self, request: dict, phone: str | None = None) -> tuple[str | None, str | None, str | None]:
        """(where to send: a phone or token, the recipient's keyed hash, masked number) — the number only in
        memory; `phone` is the order's number looked up. Raises SealError when a sealed number cannot be opened."""
        key = self.s.hash_key
        if request["channel"] == "platform":
            return request["token"], token_hash(request["platform"], request["token"], key), request["to_masked"]
        if request["channel"] != "gateway":
            return None, None, request["to_masked"]
        if request.get("contact") is not None:
            phone = open_contact(self.s.opener, request["contact"], request["shop_id"], request["member_id"])
        found = recipient_of(request["platform"], None, phone, request["to_masked"], key)
        if found.channel != "gateway":
            return None, None, request["to_masked"]
        return phone, found.phone_hash, found.to_masked

    @staticmethod
    def _looked_up(request: dict) -> bool:
        """Whether the number must be asked from the order's platform (a plain-phone order)."""
        return request["channel"] == "gateway" and request.get("contact") is None

    async def _resolve(self, request: dict) -> tuple[str | None, str | None, str | None]:
        """`_recipient` of one request, its number looked up first where needed. Raises LookupError/ConnectorError/
        SealError when it cannot be had now."""
        phone = await self.contacts.phone(request["order_id"]) if self._looked_up(request) else None
        return self._recipient(request, phone)

    async def _resolve_all(self, requests: list[dict]) -> list[tuple | None]:
        """`_recipient` of each request (lookups concurrently); None for one that cannot be had now (it waits)."""
        found: list[tuple | None] = [None] * len(requests)
        lookups = [i for i, r in enumerate(requests) if self._looked_up(r)]
        phones = dict(zip(lookups, await asyncio.gather(
            *(self.contacts.phone(requests[i]["order_id"]) for i in lookups), return_exceptions=True), strict=True))
        for i, request in enumerate(requests):
            try:
                phone = phones.get(i)
                if isinstance(phone, BaseException):
                    raise phone
                found[i] = self._recipient(request, phone)
            except (LookupError, ConnectorError, SealError) as exc:
                log.warning("短信 %s: 无法获取收件人 cannot resolve the recipient now (%s); retrying in %ds",
                            request["key"], exc, RESOLVE_RETRY_MS // 1000)
                self.waiting[request["key"]] = Pending(_now() + RESOLVE_RETRY_MS, request)
        return found

    async def _process(self, requests: list[dict]) -> None:
        """Decide messages and carry the decisions out: the held-back ones recorded and every claim stored, in one
        write, before any provider hears of them; then each message is sent on its own."""
        records, sends, now = [], [], _now()
        for request, found in zip(requests, await self._resolve_all(requests), strict=True):
            if found is None or not self._owns(request["key"]):  # waiting, or its partition left meanwhile
                continue
            to, recipient, masked = found
            rules = self.config.rules(request["shop_id"])
            candidate = Candidate(request["kind"], to is not None, request["created_at"], request["segments"],
                                  request.get("consent"))
            decision = decide(candidate, now, self.ledger.history(recipient, now), rules,
                              self.ledger.spent_today(request["shop_id"], now, rules.timezone))
            base = {"phone_hash": recipient, "to_masked": masked}
            if decision.action == "send":
                claim = receipt(request, "sending", now, **base)
                self.ledger.apply(claim, rules.timezone)  # counted at once: a later message of this batch sees it
                records.append(claim)
                sends.append((request, to, claim))
                continue
            self.counts["held"] += 1
            if decision.action == "queue":
                self.waiting[request["key"]] = Pending(decision.release_at, request)
                records.append(receipt(request, "queued", now, reason=decision.reason,
                                       release_at=decision.release_at, **base))
            else:
                status = "unreachable" if decision.action == "unreachable" else "suppressed"
                records.append(receipt(request, status, now, reason=decision.reason, **base))
        await self.outbox.write(records)  # every claim stored before any provider hears of it
        sending = {request["key"] for request, _, _ in sends}
        for request in requests:
            if request["key"] not in sending:
                self._finish(request["key"])
        await asyncio.gather(*(self._send(request, to, claim) for request, to, claim in sends))

    async def _send(self, request: dict, to: str, claim: dict, attempts: int = 0) -> None:
        """Call the providers and write the outcome; when every one failed for now, wait and try again."""
        try:
            await self._call(request, to, claim, attempts)
        finally:
            self._finish(request["key"])

    async def _call(self, request: dict, to: str, claim: dict, attempts: int) -> None:
        if not self._owns(request["key"]):  # its partition left: the new owner checks the claim with the gateways
            return
        result, provider, tried, out_id = await self.dispatch.send(request, to)
        now = _now()
        history = list(claim.get("attempts") or []) + tried
        if result.ok:
            self.counts["sent"] += 1
            await self.outbox.write([evolve(claim, "sent", now, provider=provider, code=result.code,
                                            provider_id=result.provider_id, attempts=history, sent_at=now,
                                            out_id=None if out_id == request["key"] else out_id)])
        elif result.in_doubt:  # the provider may be sending it: ask it first, as after a restart, never call again
            await self.outbox.write([evolve(claim, "sending", now, provider=provider, code=result.code,
                                            reason=f"in doubt: {result.error}", attempts=history)])
            self.waiting[request["key"]] = Pending(now + self._settle_ms(), request, attempts, reconcile=True)
            log.warning("短信 %s: %s 未应答，核对前不重发 no answer from %s; checked with it before anything is sent "
                        "again", request["key"], provider, provider)
        elif result.elsewhere and now - request["created_at"] < GIVE_UP_MS and self._owns(request["key"]):
            delay = min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempts)
            self.waiting[request["key"]] = Pending(now + delay, request, attempts + 1)
            log.warning("短信 %s: 所有通道暂不可用 every provider failed for now (%s); retrying in %.0fs",
                        request["key"], result.error, delay / 1000)
        else:
            self.counts["failed"] += 1
            await self.outbox.write([evolve(claim, "failed", now, provider=provider, code=result.code,
                                            reason=result.error, attempts=history)])

    async def _retry(self, pending: Pending) -> None:
        request = pending.request
        try:
            to, _, _ = await self._resolve(request)
        except (LookupError, ConnectorError, SealError):
            self.waiting[request["key"]] = Pending(_now() + RESOLVE_RETRY_MS, request, pending.attempts)
            return
        await self._send(request, to, self.ledger.latest[request["key"]], pending.attempts)

    async def release_due(self) -> None:
        """Messages whose window opened, or whose retry or check is due, go again."""
        now, again = _now(), []
        for key in [k for k, p in self.waiting.items() if p.due <= now]:
            pending = self.waiting.pop(key)
            if pending.reconcile:
                self._start_one(key, self._reconcile(pending.request))
            elif self.ledger.status(key) == "sending":
                self._start_one(key, self._retry(pending))
            else:
                again.append(pending.request)
        if again:
            self._start([r["key"] for r in again], self._process(again))

    # -- claimed before a restart, no outcome -------------------------------------------------------------------
    def _settle_ms(self) -> int:
        """How old a claim must be before the gateways are asked about it: their timeout and some slack."""
        timeouts = [spec.timeout_s for spec in self.config.gateways.values()] or [0.0]
        return int((max(timeouts) + SETTLE_SLACK_S) * 1000)

    async def _reconcile(self, request: dict) -> None:
        """A claim without an outcome: ask the gateways whether they took the out id; send only if none did."""
        key = request["key"]
        claim = self.ledger.latest[key]
        if claim["status"] != "sending" or not self._owns(key):  # its outcome came in meanwhile, or it moved
            return
        now, settle = _now(), self._settle_ms()
        if now - claim["at"] < settle:  # the provider may still be working on a call its client gave up on
            self.waiting[key] = Pending(claim["at"] + settle, request, reconcile=True)
            return
        if request["channel"] != "gateway":  # a platform channel cannot be asked: never risk a second text
            await self.outbox.write([evolve(claim, "failed", now, code="interrupted",
                                            reason=f"{claim.get('reason') or 'interrupted'}; not sent again")])
            return
        try:
            to, _, _ = await self._resolve(request)
            found = await self.dispatch.find(to, key, claim["at"], request["text"])
        except (LookupError, ConnectorError, SealError, aiohttp.ClientError, TimeoutError, OSError,
                TransportError) as exc:
            log.warning("短信 %s: 无法核对 cannot check the interrupted send now (%s); retrying", key, exc)
            self.waiting[key] = Pending(now + RESOLVE_RETRY_MS, request, reconcile=True)
            return
        if found is None:
            await self._send(request, to, claim)
            return
        name, hit = found
        log.info("短信 %s: 中断前已发出 found sent by %s before the interruption", key, name)
        await self.outbox.write([evolve(claim, "sent", _now(), provider=name, code=hit.code,
                                        provider_id=hit.provider_id, sent_at=claim["at"])])

    # -- reports and replies (called by the callback server) ---------------------------------------------------
    async def reports(self, reports) -> tuple[int, int]:
        """Record delivery reports that match a message we sent to that number: (matched, unmatched)."""
        records, unmatched, now = [], 0, _now()
        for report in reports:
            if report.provider in self.config.channels:  # a platform's: by our key, and its token where echoed
                recipient = (token_hash(report.provider, report.token, self.s.hash_key) if report.token else None)
                held = self.ledger.latest.get(report.out_id or "")
                if held is None or (held.get("channel"), held.get("platform")) != ("platform", report.provider) or (
                        recipient is not None and held.get("phone_hash") != recipient):
                    unmatched += 1
                    continue
            else:
                recipient = phone_hash(report.phone, self.s.hash_key)
                key = self.ledger.key_of(report.out_id, report.provider_id, recipient)
                held = self.ledger.latest.get(key) if key else None
                if held is None or held.get("phone_hash") != recipient:
                    unmatched += 1
                    continue
            if held.get("reported_at") is not None:
                continue  # a report pushed again
            status = "delivered" if report.delivered else "failed"
            records.append(evolve(held, status, now, code=report.code, reported_at=report.reported_at or now,
                                  reason=None if report.delivered else f"report {report.code}",
                                  sent_at=held.get("sent_at") or _call_started(held)))
        await self.outbox.write(records)
        self.counts["reports"] += len(records)
        self.counts["reports_unmatched"] += unmatched
        return len(records), unmatched

    async def opt_out(self, provider: str, phone: str, word: str) -> None:
        """A number refused marketing: suppressed from now on here, and for every later start (sms.optouts)."""
        hashed = phone_hash(phone, self.s.hash_key)
        self.ledger.opt_out(hashed)
        record = {"phone_hash": hashed, "opted_out": True, "provider": provider, "word": word, "at": _now()}
        await self.publisher.publish_async([(self.topics.sms_optouts, hashed.encode(),
                                             self.optout_codec.encode(record))])
        self.counts["opt_outs"] += 1
        log.info("短信退订 opt-out from %s (%s) by %s", mask_phone(phone), word, provider)

    def progress(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["held"]

    def stats(self) -> dict:
        return {**self.counts, "ready": self.ready, "waiting": len(self.waiting), "in_flight": len(self.in_flight),
                "partitions": sorted(self.owned),
                "health": self.dispatch.stats(_now()) if hasattr(self, "dispatch") else {}}
