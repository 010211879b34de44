"""The SMS sender process: sms.requests -> decide -> claim -> gateway or platform channel -> sms.receipts.

Exactly once per key: every request is checked against the ledger (read back from sms.receipts at start), and a
message is claimed — a `sending` receipt acknowledged by the broker — before any provider is called. A repeated
request, a replayed topic or a restart after kill -9 finds the key taken; a claim without an outcome (the process
died during the call) is checked with the gateways (`QuerySendDetails`, `PullSmsSendStatusByPhoneNumber` by the
out id) and sent only if no gateway has it. A platform channel cannot be asked, so such a message is recorded
`failed` (`interrupted`) rather than risk a second text.

The number is resolved here only (`contacts`), used for the provider call and the keyed hash, and dropped; a
message waiting for its window keeps no number and resolves it again when it leaves. The rules
(`rules.decide`: opt-out, consent, quiet hours, expiry, caps, budget) run here because they need that hash.
The sender reads sms.requests from the beginning on every start without a consumer group (like the detector):
its state is its own receipts, so one sender owns every partition.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from connectors.runtime.errors import ConnectorError
from connectors.runtime.records import connector_call
from connectors.sms.channels import PlatformChannel
from connectors.sms.contacts import OrderContacts, open_contact
from connectors.sms.gateways import AliyunGateway, Outgoing, Result, TencentGateway
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import Publisher, consumer_from_start, read_to_end, usable
from schemas.sealing import Opener, SealError
from schemas.topics import Topics
from streams.sms.failover import Health, try_order
from streams.sms.identity import mask_phone, phone_hash, recipient_of, token_hash
from streams.sms.ledger import Ledger, evolve, receipt
from streams.sms.rules import Candidate, decide
from streams.sms.templates import SmsConfig

log = logging.getLogger(__name__)
RETRY_BASE_MS, RETRY_MAX_MS, GIVE_UP_MS = 1000, 60_000, 3_600_000
RESOLVE_RETRY_MS = 5000
SETTLE_SLACK_S = 3.0


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
    """A request waiting: for its window (no number kept), or to be tried again after every provider failed."""

    due: int
    request: dict
    attempts: int = 0
    reconcile: bool = False  # a claim of an earlier run, to be checked with the gateways first


def _secret(environ: Mapping[str, str], name: str | None, what: str) -> str | None:
    if not name:
        return None
    value = environ.get(name)
    if not value:
        raise SenderConfigError(f"{what}: the environment variable {name} is not set")
    return value


class SenderService:
    def __init__(self, settings: SenderSettings):
        self.s = settings
        self.config = settings.config
        self.topics = settings.topics
        self.ledger = Ledger()
        self.publisher = Publisher(settings.kafka_config)
        self.request_codec, self.receipt_codec = AvroCodec("SmsRequest"), AvroCodec("SmsReceipt")
        self.optout_codec = AvroCodec("SmsOptOut")
        self.health = {name: Health(spec.down_after, int(spec.down_for_s * 1000))
                       for name, spec in self.config.gateways.items()}
        self._gateway_secrets = {name: _secret(settings.environ, spec.secret_env, f"[gateways.{name}]")
                                 for name, spec in self.config.gateways.items()}
        missing = [p for p in self.config.providers if p not in self.config.gateways]
        if missing:
            raise SenderConfigError(f"providers: no [gateways.{missing[0]}] section in the SMS configuration")
        self._channel_secrets = {
            name: {"secret": _secret(settings.environ, spec.secret_env, f"[channels.{name}]"),
                   "session": _secret(settings.environ, spec.session_env, f"[channels.{name}]")}
            for name, spec in self.config.channels.items()}
        self.waiting: dict[str, Pending] = {}  # key -> waiting for its window or a retry
        self.in_flight: set[str] = set()
        self._calls: list[tuple[str, bytes, bytes]] = []
        self.counts = {"requests": 0, "duplicates": 0, "sent": 0, "failed": 0, "held": 0, "reports": 0,
                       "reports_unmatched": 0, "opt_outs": 0}
        self.ready = False

    # -- start -----------------------------------------------------------------------------------------------
    def _tz(self, shop_id: str) -> str:
        return self.config.rules(shop_id).timezone

    def restore(self) -> None:
        """The ledger from every receipt written so far, and the opt-outs."""
        group = f"{self.topics.prefix}tonglu-sms-sender"
        for batch in read_to_end(self.s.kafka_config, [self.topics.sms_receipts], group=group, timeout=300):
            for msg in batch:
                try:
                    record = self.receipt_codec.decode(msg.value())
                except (DecodeError, TypeError) as exc:
                    log.error("undecodable receipt skipped: %s", exc)
                    continue
                self.ledger.apply(record, self._tz(record["shop_id"]))
        for batch in read_to_end(self.s.kafka_config, [self.topics.sms_optouts], group=group, timeout=300):
            self._optouts(batch)
        log.info("短信发送 sender: %d messages known, %d numbers opted out, %d claimed without an outcome",
                 len(self.ledger.latest), len(self.ledger.optouts), len(self.ledger.unfinished()))

    def _optouts(self, messages) -> None:
        for msg in messages:
            try:
                record = self.optout_codec.decode(msg.value())
            except (DecodeError, TypeError) as exc:
                log.error("undecodable opt-out skipped: %s", exc)
                continue
            self.ledger.opt_out(record["phone_hash"], record["opted_out"])

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.restore)
        consumer = await asyncio.to_thread(
            consumer_from_start, self.s.kafka_config, [self.topics.sms_requests, self.topics.sms_optouts],
            f"{self.topics.prefix}tonglu-sms-sender", **{"fetch.wait.max.ms": 20})
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._open(session)
            self.ready = True
            flusher = asyncio.create_task(self._flush_calls(stop))
            try:
                last_prune = time.time()
                while not stop.is_set():
                    messages = usable(await asyncio.to_thread(consumer.consume, self.s.batch, 0.05))
                    requests = []
                    for msg in messages:
                        if msg.topic() == self.topics.sms_optouts:
                            self._optouts([msg])
                            continue
                        try:
                            requests.append(self.request_codec.decode(msg.value()))
                        except (DecodeError, TypeError) as exc:
                            log.error("undecodable SMS request skipped: %s", exc)
                    if requests:
                        await self.handle(requests)
                    await self.release_due()
                    if time.time() - last_prune > 600:
                        self.ledger.prune(int(time.time() * 1000))
                        last_prune = time.time()
            finally:
                self.ready = False
                await asyncio.to_thread(consumer.close)
                await flusher
                self.publisher.close()

    def _open(self, session: aiohttp.ClientSession) -> None:
        self.gateways = {}
        for name, spec in self.config.gateways.items():
            secret = self._gateway_secrets[name]
            if spec.type == "aliyun":
                self.gateways[name] = AliyunGateway(name, spec.url, spec.access_key_id, secret, session,
                                                    spec.timeout_s, spec.region or "cn-hangzhou")
            else:
                self.gateways[name] = TencentGateway(name, spec.url, spec.access_key_id, secret, spec.app_id or "",
                                                     session, spec.timeout_s, spec.region or "ap-guangzhou")
        self.channels = {name: PlatformChannel(name, spec, session, self._channel_secrets[name])
                         for name, spec in self.config.channels.items()}
        self.limits = {name: asyncio.Semaphore(spec.concurrency) for name, spec in
                       [*self.config.gateways.items(), *self.config.channels.items()]}
        self.contacts = OrderContacts(session, self.s.shops_file, self.s.simulators, self._record_call)

    def _record_call(self, record: dict) -> None:
        self._calls.append((self.topics.connector_calls, f"{record['platform']}:{record['shop_id']}".encode(),
                            connector_call(record)))

    async def _flush_calls(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            if self._calls:
                batch, self._calls = self._calls, []
                await self.publisher.publish_async(batch)

    # -- one batch of requests -------------------------------------------------------------------------------
    async def handle(self, requests: list[dict]) -> None:
        """Decide, claim and send a batch of requests (duplicates and taken keys skipped)."""
        fresh, reconcile, seen = [], [], set()
        for request in requests:
            self.counts["requests"] += 1
            key, status = request["key"], self.ledger.status(request["key"])
            if key in seen or key in self.in_flight:
                self.counts["duplicates"] += 1
            elif status is None and key not in self.waiting:
                fresh.append(request)
            elif status == "queued" and key not in self.waiting:
                release = self.ledger.latest[key].get("release_at") or 0
                self.waiting[key] = Pending(release, request)
            elif status == "sending" and key not in self.waiting:
                reconcile.append(request)
            else:
                self.counts["duplicates"] += 1
            seen.add(key)
        now = int(time.time() * 1000)
        plans = await asyncio.gather(*(self._plan(r, now) for r in fresh))
        await self._carry_out([p for p in plans if p is not None], now)
        for request in reconcile:
            await self._reconcile(request)

    async def _resolve(self, request: dict) -> tuple[str | None, str | None, str | None]:
        """(where to send: a phone or token, the recipient's keyed hash, masked number) — the number only in
        memory. Raises LookupError/ConnectorError when the platform cannot be asked now."""
        key = self.s.hash_key
        if request["channel"] == "platform":
            return request["token"], token_hash(request["platform"], request["token"], key), request["to_masked"]
        if request["channel"] != "gateway":
            return None, None, request["to_masked"]
        if request.get("contact") is not None:
            phone = open_contact(self.s.opener, request["contact"], request["shop_id"], request["member_id"])
        else:
            phone = await self.contacts.phone(request["order_id"])
        if not phone:
            return None, None, request["to_masked"]
        found = recipient_of(request["platform"], None, phone, request["to_masked"], key)
        if found.channel != "gateway":
            return None, None, request["to_masked"]
        return phone, found.phone_hash, found.to_masked

    async def _plan(self, request: dict, now: int) -> tuple | None:
        """(request, decision, to, recipient hash, masked): what to do with one request now."""
        try:
            to, recipient, masked = await self._resolve(request)
        except (LookupError, ConnectorError, SealError) as exc:
            log.warning("短信 %s: 无法获取收件人 cannot resolve the recipient now (%s); retrying in %ds",
                        request["key"], exc, RESOLVE_RETRY_MS // 1000)
            self.waiting[request["key"]] = Pending(now + RESOLVE_RETRY_MS, request)
            return None
        rules = self.config.rules(request["shop_id"])
        candidate = Candidate(request["kind"], to is not None, request["created_at"], request["segments"],
                              request.get("consent"))
        decision = decide(candidate, now, self.ledger.history(recipient, now), rules,
                          self.ledger.spent_today(request["shop_id"], now, rules.timezone))
        return request, decision, to, recipient, masked

    async def _carry_out(self, plans: list[tuple], now: int) -> None:
        """Claims and held-back outcomes first (acknowledged), then the provider calls, then their outcomes."""
        records, sends = [], []
        for request, decision, to, recipient, masked in plans:
            base = {"phone_hash": recipient, "to_masked": masked}
            if decision.action == "send":
                records.append(receipt(request, "sending", now, **base))
                sends.append((request, to, records[-1]))
            elif decision.action == "queue":
                records.append(receipt(request, "queued", now, reason=decision.reason,
                                       release_at=decision.release_at, **base))
                self.waiting[request["key"]] = Pending(decision.release_at, request)
            else:
                status = "unreachable" if decision.action == "unreachable" else "suppressed"
                records.append(receipt(request, status, now, reason=decision.reason, **base))
            if decision.action != "send":
                self.counts["held"] += 1
        await self._write(records)
        outcomes = await asyncio.gather(*(self._send(request, to, claim) for request, to, claim in sends))
        await self._write([o for o in outcomes if o is not None])

    async def _write(self, records: list[dict]) -> None:
        """Publish receipts and wait for the broker's acknowledgement, then note them in the ledger."""
        if not records:
            return
        await self.publisher.publish_async([(self.topics.sms_receipts, r["key"].encode(),
                                             self.receipt_codec.encode(r)) for r in records])
        for r in records:
            self.ledger.apply(r, self._tz(r["shop_id"]))

    # -- provider calls ----------------------------------------------------------------------------------------
    @staticmethod
    def _outgoing(request: dict, to: str, provider: str) -> Outgoing:
        return Outgoing(request["key"], to, request["sign"], request["codes"].get(provider, ""),
                        tuple((p["name"], p["value"]) for p in request["params"]), request["order_id"],
                        request["platform"], request["shop_id"])

    async def _send(self, request: dict, to: str, claim: dict, attempts: int = 0) -> dict | None:
        """The outcome receipt, or None when every provider failed for now (the message waits for a retry)."""
        key = request["key"]
        self.in_flight.add(key)
        try:
            tried: list[dict] = []
            if request["channel"] == "platform":
                result, provider = await self._via_channel(request, to, tried)
            else:
                result, provider = await self._via_gateways(request, to, tried)
        finally:
            self.in_flight.discard(key)
        now = int(time.time() * 1000)
        history = list(claim.get("attempts") or []) + tried
        if result.ok:
            self.counts["sent"] += 1
            return evolve(claim, "sent", now, provider=provider, code=result.code, provider_id=result.provider_id,
                          attempts=history, sent_at=now)
        if result.elsewhere and now - request["created_at"] < GIVE_UP_MS:
            delay = min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempts)
            self.waiting[key] = Pending(now + delay, request, attempts + 1)
            log.warning("短信 %s: 所有通道暂不可用 every provider failed for now (%s); retrying in %.0fs", key,
                        result.error, delay / 1000)
            return None
        self.counts["failed"] += 1
        return evolve(claim, "failed", now, provider=provider, code=result.code, reason=result.error,
                      attempts=history)

    async def _call(self, name: str, call) -> Result:
        async with self.limits[name]:
            return await call

    async def _via_gateways(self, request: dict, to: str, tried: list[dict]) -> tuple[Result, str | None]:
        result, last = Result(False, "no_gateway", "no gateway configured", elsewhere=True), None
        for name in try_order(self.config.providers, self.health, int(time.time() * 1000)):
            started = int(time.time() * 1000)
            (result,) = await self._call(name, self.gateways[name].send([self._outgoing(request, to, name)]))
            self.health[name].record(result.ok, result.unhealthy, int(time.time() * 1000))
            tried.append(self._attempt(name, result, started))
            last = name
            if result.ok or not result.elsewhere:
                return result, name
        return result, last

    async def _via_channel(self, request: dict, to: str, tried: list[dict]) -> tuple[Result, str | None]:
        platform = request["platform"]
        channel = self.channels.get(platform)
        if channel is None:
            return Result(False, "no_channel", f"no official channel configured for platform {platform}"), None
        started = int(time.time() * 1000)
        result = await self._call(platform, channel.send(self._outgoing(request, to, platform)))
        tried.append(self._attempt(platform, result, started))
        return result, platform

    @staticmethod
    def _attempt(provider: str, result: Result, started: int) -> dict:
        return {"provider": provider, "ok": result.ok, "code": result.code, "error": result.error,
                "started_at": started, "latency_ms": round(result.latency_ms, 3)}

    # -- waiting messages --------------------------------------------------------------------------------------
    async def release_due(self) -> None:
        """Messages whose window opened, or whose retry is due, go through the decision again."""
        now = int(time.time() * 1000)
        due = [k for k, p in self.waiting.items() if p.due <= now and k not in self.in_flight]
        if not due:
            return
        plans, retries, checks = [], [], []
        for key in due:
            pending = self.waiting.pop(key)
            if pending.reconcile:
                checks.append(pending.request)
            elif self.ledger.status(key) == "sending":
                retries.append(pending)
            else:
                plans.append(self._plan(pending.request, now))
        decided = [p for p in await asyncio.gather(*plans) if p is not None]
        await self._carry_out(decided, now)
        outcomes = []
        for pending in retries:
            try:
                to, _, _ = await self._resolve(pending.request)
            except (LookupError, ConnectorError, SealError):
                self.waiting[pending.request["key"]] = Pending(now + RESOLVE_RETRY_MS, pending.request,
                                                               pending.attempts)
                continue
            claim = self.ledger.latest[pending.request["key"]]
            outcomes.append(self._send(pending.request, to, claim, pending.attempts))
        await self._write([o for o in await asyncio.gather(*outcomes) if o is not None])
        for request in checks:
            await self._reconcile(request)

    # -- claimed before a restart, no outcome -------------------------------------------------------------------
    async def _reconcile(self, request: dict) -> None:
        """A claim without an outcome: ask the gateways whether they took the out id; send only if none did."""
        key = request["key"]
        claim = self.ledger.latest[key]
        now = int(time.time() * 1000)
        settle = self._settle_ms()
        if now - claim["at"] < settle:  # the provider may still be working on a call its client gave up on
            self.waiting[key] = Pending(claim["at"] + settle, request, reconcile=True)
            return
        if request["channel"] != "gateway":
            await self._write([evolve(claim, "failed", now, reason="interrupted",
                                      code="interrupted")])  # a platform channel cannot be asked: never twice
            return
        try:
            to, _, _ = await self._resolve(request)
            found = None
            for name in self.config.providers:
                hit = await self.gateways[name].find(to, key, claim["at"])
                if hit is not None:
                    found = (name, hit)
                    break
        except (LookupError, ConnectorError, SealError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("短信 %s: 无法核对 cannot check the interrupted send now (%s); retrying", key, exc)
            self.waiting[key] = Pending(now + RESOLVE_RETRY_MS, request, reconcile=True)
            return
        if found is not None:
            name, hit = found
            await self._write([evolve(claim, "sent", now, provider=name, code=hit.code, provider_id=hit.provider_id,
                                      sent_at=claim["at"])])
            log.info("短信 %s: 中断前已发出 found sent by %s before the interruption", key, name)
            return
        outcome = await self._send(request, to, claim)
        await self._write([outcome] if outcome is not None else [])

    def _settle_ms(self) -> int:
        """How old a claim must be before the gateways are asked about it: their timeout and some slack."""
        timeouts = [spec.timeout_s for spec in self.config.gateways.values()] or [0.0]
        return int((max(timeouts) + SETTLE_SLACK_S) * 1000)

    # -- reports and replies (called by the callback server) ---------------------------------------------------
    async def reports(self, reports) -> tuple[int, int]:
        """Record delivery reports that match a message we sent to that number: (matched, unmatched)."""
        records, unmatched, now = [], 0, int(time.time() * 1000)
        for report in reports:
            key = report.out_id if report.out_id in self.ledger.latest else self.ledger.by_provider_id.get(
                report.provider_id or "")
            held = self.ledger.latest.get(key) if key else None
            if held is None or held.get("phone_hash") != phone_hash(report.phone, self.s.hash_key):
                unmatched += 1
                continue
            if held.get("reported_at") is not None:
                continue  # a report pushed again
            status = "delivered" if report.delivered else "failed"
            records.append(evolve(held, status, now, code=report.code, reported_at=report.reported_at or now,
                                  reason=None if report.delivered else f"report {report.code}"))
        await self._write(records)
        self.counts["reports"] += len(records)
        self.counts["reports_unmatched"] += unmatched
        return len(records), unmatched

    async def opt_out(self, provider: str, phone: str, word: str) -> None:
        """A number refused marketing: suppressed from now on here, and for every later start (sms.optouts)."""
        hashed = phone_hash(phone, self.s.hash_key)
        self.ledger.opt_out(hashed)
        record = {"phone_hash": hashed, "opted_out": True, "provider": provider, "word": word,
                  "at": int(time.time() * 1000)}
        await self.publisher.publish_async([(self.topics.sms_optouts, hashed.encode(), self.optout_codec.encode(record))])
        self.counts["opt_outs"] += 1
        log.info("短信退订 opt-out from %s (%s) by %s", mask_phone(phone), word, provider)

    def progress(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["held"]

    def stats(self) -> dict:
        return {**self.counts, "waiting": len(self.waiting),
                "health": {n: {"up": h.up(int(time.time() * 1000)), "sent": h.sent, "failed": h.failed}
                           for n, h in self.health.items()}}
