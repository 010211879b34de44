"""The SMS notifier process: order.events, parcel_stalled findings (and the members table) -> sms.requests.

A thin loop around the pure `compose.requests_for` and `members`: consume a batch of order events, compose the
messages their triggers fire, publish them, wait for the broker's acknowledgement, then commit the offsets (a
consumer group, so notifiers share the partitions). A crash before the commit publishes the batch's requests again
with the same keys, which the sender finds taken. A parcel that stalls raises `parcel_stalled` on order.anomalies;
its order's slim card (kept while the order is on its way, warmed from order.state at start) gives the delay
notice (`ParcelDelayed`) its recipient and parcel. Member care reads sms.members from the start (it is
compacted), fires a points notice when a member's points change and, once a minute, the birthday greetings.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

from schemas.codec import AvroCodec, DecodeError, EventDecoder
from schemas.kafka import Publisher, consumer_config, consumer_from_start, read_to_end, usable
from schemas.topics import Topics
from streams.sms.compose import delayed_event, parcel_card, requests_for
from streams.sms.members import birthday_requests, day_of, member_subject, points_requests
from streams.sms.templates import SmsConfig

log = logging.getLogger(__name__)
BIRTHDAY_EVERY_S = 60.0
# librdkafka heartbeats from its own thread, so a short session only drops a dead process; with the default 45 s
# the first join to a fresh group took 5-20 s on the local broker, against ~3 s with this one
GROUP = {"fetch.wait.max.ms": 20, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


class NotifierService:
    def __init__(self, kafka_config: dict, topics: Topics, config: SmsConfig, resolvable: Callable[[str], bool],
                 birthday_every_s: float = BIRTHDAY_EVERY_S):
        self.kafka_config, self.topics, self.config, self.resolvable = kafka_config, topics, config, resolvable
        self.publisher = Publisher(kafka_config)
        self.decoder = EventDecoder()
        self.request_codec, self.member_codec = AvroCodec("SmsRequest"), AvroCodec("SmsMember")
        self.anomaly_codec, self.order_codec = AvroCodec("Anomaly"), AvroCodec("Order")
        self.members: dict[str, dict] = {}
        self.cards: dict[str, dict] = {}  # order id -> what a delay notice needs, while the order is on its way
        self._greeted: set[tuple[str, object]] = set()  # (member, day) greeted by this process
        self.birthday_every_s = birthday_every_s
        self.events = self.requests = self.undecodable = 0
        self.running = False

    def _consumer(self) -> Consumer:
        consumer = Consumer(consumer_config(self.kafka_config, f"{self.topics.prefix}tonglu-sms-notifier", **GROUP))
        consumer.subscribe([self.topics.order_events, self.topics.order_anomalies])
        return consumer

    def warm(self) -> int:
        """Cards of the orders on their way, from order.state (the latest snapshot of every order)."""
        for batch in read_to_end(self.kafka_config, [self.topics.order_state], group="tonglu-sms-warm",
                                 timeout=600):
            for msg in batch:
                order_id = (msg.key() or b"").decode()
                card = None
                if msg.value() is not None:
                    try:
                        card = parcel_card(self.order_codec.decode(msg.value()))
                    except (DecodeError, TypeError, KeyError):
                        card = None
                self._note_card(order_id, card)
        return len(self.cards)

    def _note_card(self, order_id: str, card: dict | None) -> None:
        if card is None:
            self.cards.pop(order_id, None)
        else:
            self.cards[order_id] = card

    def delays(self, values: list[bytes], now_ms: int) -> list[dict]:
        """Delay notices of the parcel_stalled findings among a batch of order.anomalies values."""
        out = []
        for value in values:
            try:
                anomaly = self.anomaly_codec.decode(value)
            except (DecodeError, TypeError) as exc:
                log.error("undecodable finding skipped: %s", exc)
                continue
            card = self.cards.get(anomaly["order_id"])
            event = delayed_event(anomaly, card) if card is not None else None
            if event is not None:
                out += requests_for(event, self.config, now_ms, self.resolvable)
        return out

    def compose(self, values: list[bytes], now_ms: int) -> list[dict]:
        """The requests a batch of encoded order events fires (undecodable events skipped and counted)."""
        out, snapshots = [], {}
        for value in values:
            try:
                event = self.decoder.decode(value, snapshots)
            except (DecodeError, TypeError, KeyError) as exc:
                self.undecodable += 1
                log.error("undecodable order event skipped: %s", exc)
                continue
            out += requests_for(event, self.config, now_ms, self.resolvable)
            self._note_card(event["order_id"], parcel_card(event["order"]))
        self.events += len(values)
        return out

    def member_changed(self, value: bytes, now_ms: int) -> list[dict]:
        """The points notice a new version of a member fires, and the greeting of a member whose birthday is
        today (imported on the day), if any."""
        try:
            member = self.member_codec.decode(value)
        except (DecodeError, TypeError) as exc:
            log.error("undecodable member skipped: %s", exc)
            return []
        subject = member_subject(member)
        previous, self.members[subject] = self.members.get(subject), member
        return points_requests(previous, member, self.config, now_ms) + self._greet(subject, member, now_ms)

    def _greet(self, subject: str, member: dict, now_ms: int) -> list[dict]:
        day = day_of(now_ms, self.config.rules(member["shop_id"]).timezone)
        if (subject, day) in self._greeted:
            return []
        found = birthday_requests(member, self.config, now_ms)
        if found:
            self._greeted.add((subject, day))
        return found

    def birthdays(self, now_ms: int) -> list[dict]:
        """Greetings due today that this process has not fired yet (the sender keeps them once a year)."""
        return [r for subject, member in self.members.items() for r in self._greet(subject, member, now_ms)]

    def publish(self, requests: list[dict]) -> None:
        if requests:
            self.publisher.publish([(self.topics.sms_requests, r["key"].encode(), self.request_codec.encode(r))
                                    for r in requests])
            self.requests += len(requests)

    def run(self, stop: threading.Event) -> None:
        log.info("短信触发 %d orders on their way (for delay notices)", self.warm())
        events = self._consumer()
        members = consumer_from_start(self.kafka_config, [self.topics.sms_members],
                                      f"{self.topics.prefix}tonglu-sms-members")
        self.running = True
        last_birthday = last_report = 0.0
        try:
            while not stop.is_set():
                messages = usable(events.consume(2000, 0.02))
                now = time.time()
                found = self.compose([m.value() for m in messages if m.topic() == self.topics.order_events],
                                     int(now * 1000)) if messages else []
                found += self.delays([m.value() for m in messages if m.topic() == self.topics.order_anomalies],
                                     int(now * 1000))
                for msg in usable(members.consume(1000, 0)):
                    found += self.member_changed(msg.value(), int(now * 1000))
                if now - last_birthday >= self.birthday_every_s:
                    found += self.birthdays(int(now * 1000))
                    last_birthday = now
                self.publish(found)  # acknowledged by the broker before the events are committed
                if messages:
                    try:  # not waited for: the output is on the broker, and a lost commit only replays keys
                        events.commit(asynchronous=True)
                    except KafkaException as exc:  # partitions moved meanwhile: the replay is harmless
                        log.warning("offset commit failed, the batch will be composed again: %s", exc)
                if now - last_report >= 10 and self.requests:
                    log.info("短信触发 %d events read, %d messages requested", self.events, self.requests)
                    last_report = now
        finally:
            self.running = False
            events.close()
            members.close()
            self.publisher.close()
