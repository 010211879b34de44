"""/healthz from real heartbeats over the broker: a stage whose heartbeats stop is down (503), and
comes back when a process of it beats again; a projector whose consumer thread died is down too."""
from __future__ import annotations

import uuid

import aiohttp
import pytest

from infra.heartbeat import HeartbeatSender
from projections.health import STAGES, HealthMonitor
from projections.tokens import TokenStore
from tests.integration.projector_helpers import running_projector, wait_for

pytestmark = pytest.mark.integration
BEAT, STALE = 0.3, 2.0


async def _health(http: aiohttp.ClientSession, base: str) -> tuple[int, dict]:
    async with http.get(f"{base}/healthz") as resp:
        return resp.status, await resp.json()


async def test_healthz_follows_the_heartbeats_of_every_stage(kafka_bootstrap, topics, tmp_path):
    kafka = {"bootstrap.servers": kafka_bootstrap}
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    projectors = []

    def projector_heartbeat(projector):
        projectors.append(projector)
        return HeartbeatSender(kafka, topics.heartbeats, "projector", BEAT, alive=projector.alive,
                               progress=lambda: projector.counters()["total_events"])

    senders = {stage: HeartbeatSender(kafka, topics.heartbeats, stage, BEAT).start()
               for stage in STAGES if stage != "projector"}
    try:
        async with running_projector(
                kafka_bootstrap, names, str(tmp_path / "chdb"), f"norm-{uuid.uuid4().hex[:6]}",
                TokenStore(tmp_path / "tokens.json"), expect_healthy=False, health=HealthMonitor(kafka, topics.heartbeats, stale_after=STALE),
                heartbeat=projector_heartbeat) as base, aiohttp.ClientSession() as http:

            async def status_is(code: int, ok: dict[str, bool] | None = None):
                status, body = await _health(http, base)
                stages = {name: stage["ok"] for name, stage in body["stages"].items()}
                if status == code and all(stages[name] == up for name, up in (ok or {}).items()):
                    return body
                return None

            body = await wait_for(lambda: status_is(200), 30)
            assert body["status"] == "ok" and body["stages"]["broker"]["ok"]
            assert body["stages"]["projector"]["instances"][0]["progress"] == 0

            senders.pop("detector").stop()  # the detector's process "dies"
            body = await wait_for(lambda: status_is(503, {"detector": False, "normalizer": True}), 15)
            assert body["status"] == "degraded" and "no heartbeat for" in body["stages"]["detector"]["reason"]
            async with http.get(f"{base}/api/stats") as resp:
                stats = await resp.json()
            assert stats["status"] == "degraded" and stats["stages"]["detector"]["ok"] is False

            senders["detector"] = HeartbeatSender(kafka, topics.heartbeats, "detector", BEAT).start()  # restarted
            await wait_for(lambda: status_is(200), 15)

            projectors[0].stop()  # the consumer thread ends while the process and its API live on
            body = await wait_for(lambda: status_is(503, {"projector": False, "detector": True}), 15)
            assert body["stages"]["projector"]["reason"].startswith("消费线程已停止")
    finally:
        for sender in senders.values():
            sender.stop()
