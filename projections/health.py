"""Health per stage for /healthz and /api/stats: heartbeats read from Kafka, the broker asked directly.

`stage_health` is the pure verdict over what was seen; `HealthMonitor` is the thin edge that feeds it
(a consumer thread on tonglu.heartbeats, a metadata request to the broker).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.codec import AvroCodec, DecodeError

log = logging.getLogger(__name__)

STAGES = ("connectors", "normalizer", "projector", "detector", "alerter", "tracker", "erp", "shipper", "notifier", "sender")
_FORGET_AFTER = 3600.0  # instances silent this long are dropped from the report


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def stage_health(seen: dict[str, dict[str, dict]], now: float, stale_after: float, broker: dict,
                 local_failures: dict[str, str] | None = None, stages: tuple[str, ...] = STAGES) -> dict:
    """The health report: a stage is up when one of its instances beat within `stale_after` seconds.

    `seen` maps stage -> instance id -> {"received_at": epoch seconds, "host", "pid", "started_at",
    "progress"}; `broker` is {"ok": bool, ...}; `local_failures` marks stages down whatever their
    heartbeats say (stage -> reason), e.g. the projector whose consumer thread died in this process.
    """
    report: dict[str, dict] = {}
    for stage in stages:
        instances = seen.get(stage, {})
        live = [dict(info, instance_id=iid, seconds_ago=round(now - info["received_at"], 1))
                for iid, info in instances.items() if now - info["received_at"] <= stale_after]
        last = max((info["received_at"] for info in instances.values()), default=None)
        entry = {"ok": bool(live), "last_seen": _iso(last),
                 "seconds_ago": None if last is None else round(now - last, 1),
                 "instances": sorted(({k: v for k, v in i.items() if k != "received_at"} for i in live),
                                     key=lambda i: i["instance_id"])}
        if not live:
            entry["reason"] = ("从未收到心跳 no heartbeat yet" if last is None
                               else f"心跳中断 no heartbeat for {now - last:.0f}s")
        if local_failures and stage in local_failures:
            entry.update(ok=False, reason=local_failures[stage])
        report[stage] = entry
    report["broker"] = broker
    status = "ok" if all(entry["ok"] for entry in report.values()) else "degraded"
    return {"status": status, "stages": report}


def record_heartbeat(seen: dict[str, dict[str, dict]], heartbeat: dict, received_at: float) -> None:
    """Note one decoded `Heartbeat` in `seen` (what `stage_health` reads), forgetting long-silent instances."""
    seen.setdefault(heartbeat["stage"], {})[heartbeat["instance_id"]] = {
        "received_at": received_at, "host": heartbeat["host"], "pid": heartbeat["pid"],
        "started_at": _iso(heartbeat["started_at"] / 1000), "progress": heartbeat.get("progress")}
    for instances in seen.values():
        for iid in [i for i, info in instances.items() if received_at - info["received_at"] > _FORGET_AFTER]:
            del instances[iid]


class HealthMonitor:
    """Reads heartbeats from the latest offset on in a daemon thread; probes the broker on request."""

    def __init__(self, kafka_config: dict, topic: str, stale_after: float = 10.0, probe_timeout: float = 1.5):
        self.stale_after = stale_after
        self._topic, self._probe_timeout = topic, probe_timeout
        self._bootstrap = kafka_config.get("bootstrap.servers", "")
        self._consumer_config = {**kafka_config, "group.id": f"tonglu-health-{uuid.uuid4().hex[:8]}",
                                 "enable.auto.commit": False, "auto.offset.reset": "latest",
                                 "reconnect.backoff.max.ms": 1000}
        self._admin = AdminClient({**kafka_config, "reconnect.backoff.max.ms": 1000})
        self._codec = AvroCodec("Heartbeat")
        self._seen: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._broker: tuple[float, dict] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tonglu-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def report(self, local_failures: dict[str, str] | None = None) -> dict:
        """The current `stage_health` (blocks up to the probe timeout while the broker does not answer)."""
        broker = self.broker()
        with self._lock:
            seen = {stage: dict(instances) for stage, instances in self._seen.items()}
        return stage_health(seen, time.time(), self.stale_after, broker, local_failures)

    def broker(self) -> dict:
        """A metadata request with a short timeout; answers are reused for a second."""
        with self._probe_lock:
            if self._broker and time.monotonic() - self._broker[0] < 1.0:
                return self._broker[1]
            started = time.monotonic()
            try:
                self._admin.list_topics(self._topic, timeout=self._probe_timeout)
                result = {"ok": True, "bootstrap": self._bootstrap,
                          "latency_ms": round((time.monotonic() - started) * 1000, 1)}
            except KafkaException as exc:
                result = {"ok": False, "bootstrap": self._bootstrap,
                          "reason": f"消息代理无应答 broker not answering: {exc.args[0] if exc.args else exc}"}
            self._broker = (time.monotonic(), result)
            return result

    def _run(self) -> None:
        consumer = Consumer(self._consumer_config)
        try:
            # Assigned, not subscribed: no group to join, so heartbeats count from the first second on.
            while not self._stop.is_set():
                try:
                    partitions = consumer.list_topics(self._topic, timeout=5).topics[self._topic].partitions
                except KafkaException:  # the broker is not answering yet
                    partitions = None
                if partitions:
                    consumer.assign([TopicPartition(self._topic, p, OFFSET_END) for p in partitions])
                    break
                self._stop.wait(1.0)  # the topics are not created yet
            while not self._stop.is_set():
                for msg in consumer.consume(100, 0.5):
                    if msg.error() is not None:
                        continue
                    try:
                        heartbeat = self._codec.decode(msg.value())
                    except (DecodeError, TypeError) as exc:
                        log.warning("undecodable heartbeat ignored: %s", exc)
                        continue
                    with self._lock:
                        record_heartbeat(self._seen, heartbeat, time.time())
        except Exception:
            log.exception("health monitor thread crashed")
        finally:
            consumer.close()
