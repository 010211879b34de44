"""The alert router process: order.anomalies -> chat robots, email, SMS -> alerts (delivery reports).

A thin loop around the pure `AlertRouter` (routing, throttling, aggregation, quiet hours, dedup) and
`deliver` (retries, failover). Pending alerts live on Kafka, not in memory: the router replays
order.anomalies from the beginning on every start and restores what it already sent from the
`alerts` topic, so a restart neither loses nor repeats an alert.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

import aiohttp

from connectors.alerts.channels import make_channel
from schemas.codec import AvroCodec, DecodeError
from schemas.kafka import Publisher, consumer_from_start, read_to_end, usable
from schemas.topics import Topics
from streams.alerting.config import load_routing
from streams.alerting.delivery import deliver
from streams.alerting.policy import AlertRouter

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_MS = int(os.environ.get("TONGLU_ALERT_RETRY_MS", "30000"))  # when every channel failed


def sent_anomaly_ids(kafka_config: dict, topics: Topics, idle: float = 1.0, timeout: float = 60.0) -> list[str]:
    """Every anomaly id that a delivered report on the alerts topic covers (read to its end)."""
    codec, ids = AvroCodec("AlertReport"), []
    for batch in read_to_end(kafka_config, [topics.alerts], idle=idle, timeout=timeout, batch=1000,
                             group=f"{topics.prefix}tonglu-alerter"):
        for msg in batch:
            try:
                report = codec.decode(msg.value())
            except DecodeError:
                continue
            if report["ok"]:
                ids += report["anomaly_ids"]
    return ids


class AlertService:
    def __init__(self, kafka_config: dict, topics: Topics, routing_path):
        self.kafka_config, self.topics = kafka_config, topics
        self.config = load_routing(routing_path)  # a bad routing file stops the start here, with the reason
        self.router = AlertRouter(self.config)
        self.publisher = Publisher(kafka_config)
        self.anomaly_codec, self.report_codec = AvroCodec("Anomaly"), AvroCodec("AlertReport")
        self.sent = self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        restored = await asyncio.to_thread(sent_anomaly_ids, self.kafka_config, self.topics)
        self.router.restore_seen(restored, now_ms=int(time.time() * 1000))
        log.info("alert router: %d anomalies already alerted before this start", len(restored))
        consumer = await asyncio.to_thread(consumer_from_start, self.kafka_config, [self.topics.order_anomalies],
                                           f"{self.topics.prefix}tonglu-alerter", **{"fetch.wait.max.ms": 50})
        async with aiohttp.ClientSession() as session:
            channels = {name: make_channel(name, spec.type, spec.options(), session)
                        for name, spec in self.config.channels.items()}
            try:
                while not stop.is_set():
                    messages = usable(await asyncio.to_thread(consumer.consume, 1000, 0.05))
                    now = int(time.time() * 1000)
                    for msg in messages:
                        try:
                            self.router.offer(self.anomaly_codec.decode(msg.value()), now)
                        except DecodeError as exc:
                            log.error("undecodable anomaly skipped: %s", exc)
                    for outgoing in self.router.due(now):
                        await self._send(outgoing, channels)
            finally:
                await asyncio.to_thread(consumer.close)
                self.publisher.close()

    async def _send(self, outgoing, channels) -> None:
        report = await deliver(outgoing, channels)
        record = report.to_dict()
        record["finished_at"] = record.get("finished_at") or int(time.time() * 1000)
        await self.publisher.publish_async([(self.topics.alerts, f"{report.route}|{report.rule}".encode(),
                                             self.report_codec.encode(record))])
        if report.ok:
            self.sent += 1
            log.info("alert %s sent via %s (%d anomalies)", report.title, report.channel, len(report.anomaly_ids))
        else:
            self.failed += 1
            log.warning("alert %s failed on every channel; retrying in %ds", report.title,
                        RETRY_FAILED_AFTER_MS // 1000)
            self.router.reschedule(outgoing, int(time.time() * 1000) + RETRY_FAILED_AFTER_MS)
