"""The anomaly feature of the projector on the real local broker with chdb: findings, holds, releases
and alert reports, through the HTTP API."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from projections.access import Role
from projections.api import create_api
from projections.api_auth import AuthConfig
from projections.clickhouse import ChdbBackend, create_schema
from projections.service import Projector
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from tests.integration.helpers import TopicReader
from tests.integration.projector_helpers import bearer, produce, running_projector, wait_for
from tests.samples import sample_alert_report, sample_anomaly, sample_event

pytestmark = pytest.mark.integration
HELD, FLAGGED, CLEAN = "taobao:shopA:2001", "jd:shopB:3001", "taobao:shopA:2002"


def produce_anomalies(bootstrap: str, topic: str, anomalies: list[dict]) -> None:
    codec = AvroCodec("Anomaly")
    produce(bootstrap, topic, [(a["order_id"].encode(), codec.encode(a)) for a in anomalies])


@pytest.fixture
async def running(kafka_bootstrap, topics, tmp_path):
    """The projector + API on chdb with the anomaly topics configured; yields the base URL."""
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls,
             "order_anomalies": topics.order_anomalies, "alerts": topics.alerts,
             "order_commands": topics.order_commands}
    store = TokenStore(tmp_path / "tokens.json")
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"),
                                 f"norm-{uuid.uuid4().hex[:6]}", store) as base:
        yield base, store


async def test_holds_findings_releases_and_alerts(running, kafka_bootstrap, topics):
    base, store = running
    operator_token, operator = store.create("王芳", Role.OPERATOR)
    events = [
        sample_event(*order_id.split(":"), version=v) for order_id in (HELD, FLAGGED, CLEAN) for v in (1, 2)
    ]
    codec = AvroCodec("OrderEvent")
    produce(
        kafka_bootstrap,
        topics.order_events,
        [(e["order_id"].encode(), v) for e, v in zip(events, codec.encode_many(events), strict=True)],
    )
    now = int(time.time() * 1000)
    hold = sample_anomaly(HELD, "amount_mismatch", action="hold", severity="critical", detected_at=now - 3000)
    phone = sample_anomaly(HELD, "invalid_phone", action="flag", detected_at=now - 2000)
    price = sample_anomaly(FLAGGED, "price_anomaly", action="flag", detected_at=now - 1000)
    produce_anomalies(kafka_bootstrap, topics.order_anomalies, [hold, phone, price])
    reports = [
        sample_alert_report("ops|amount_mismatch|a", ok=True, finished_at=now - 5000),
        sample_alert_report("ops|price_anomaly|b", ok=False, rule="price_anomaly", finished_at=now - 4000),
    ]
    alert_codec = AvroCodec("AlertReport")
    produce(kafka_bootstrap, topics.alerts, [(r["key"].encode(), alert_codec.encode(r)) for r in reports])

    async with aiohttp.ClientSession(headers=bearer(store, Role.VIEWER)) as http:

        async def get(path):
            async with http.get(base + path) as resp:
                return resp.status, await resp.json()

        async def release(order_id, body, token=operator_token):
            async with http.post(f"{base}/api/orders/{order_id}/release", json=body,
                                 headers={"Authorization": f"Bearer {token}"}) as resp:
                return resp.status, await resp.json()

        async def projected():
            _, s = await get("/api/stats")
            done = (
                s["total_orders"] == 3
                and s["open_anomalies"] == 3
                and sum(s["alerts_last_hour"].values()) == 2
            )
            return s if done else None

        stats = await wait_for(projected)
        assert stats["holds"] == 1
        assert stats["open_anomalies_by_rule"] == {
            "amount_mismatch": 1,
            "invalid_phone": 1,
            "price_anomaly": 1,
        }
        assert stats["alerts_last_hour"] == {"sent": 1, "failed": 1}

        status, order = await get(f"/api/orders/{HELD}")
        assert status == 200 and order["hold"] is True and order["version"] == 2
        assert order["hold_reasons"] == [
            {
                "rule": "amount_mismatch",
                "message_zh": hold["message_zh"],
                "message_en": hold["message_en"],
                "anomaly_id": hold["anomaly_id"],
                "detected_at": order["hold_reasons"][0]["detected_at"],
            }
        ]
        assert order["hold_reasons"][0]["detected_at"].endswith("Z")
        assert {a["rule"] for a in order["anomalies"]} == {"amount_mismatch", "invalid_phone"}
        status, flagged = await get(f"/api/orders/{FLAGGED}")
        assert flagged["hold"] is False and flagged["hold_reasons"] == []
        assert [a["rule"] for a in flagged["anomalies"]] == ["price_anomaly"]
        _, clean = await get(f"/api/orders/{CLEAN}")
        assert (clean["hold"], clean["anomalies"]) == (False, [])

        _, listed = await get(f"/api/anomalies?order_id={HELD}")
        assert [a["rule"] for a in listed["anomalies"]] == [
            "invalid_phone",
            "amount_mismatch",
        ]  # newest first
        item = listed["anomalies"][1]
        assert item["evidence"] == hold["evidence"] and item["state"] == "raised" and item["action"] == "hold"
        assert item["detected_at"].endswith("Z") and item["platform"] == "taobao" and item["event_id"] is None
        _, by_rule = await get("/api/anomalies?rule=price_anomaly")
        assert [a["order_id"] for a in by_rule["anomalies"]] == [FLAGGED]
        _, since = await get(f"/api/anomalies?since={now - 2500}")
        assert {a["rule"] for a in since["anomalies"]} == {"invalid_phone", "price_anomaly"}
        _, future = await get("/api/anomalies?since=2999-01-01T00:00:00Z")
        assert future["count"] == 0
        _, one = await get("/api/anomalies?limit=1")
        assert [a["rule"] for a in one["anomalies"]] == ["price_anomaly"]
        assert (await get("/api/anomalies?state=open"))[0] == 400
        assert (await get("/api/anomalies?since=yesterday"))[0] == 400

        _, held_orders = await get("/api/orders?hold=true")
        assert [o["order_id"] for o in held_orders["orders"]] == [HELD]
        _, free_orders = await get("/api/orders?hold=false")
        assert {o["order_id"] for o in free_orders["orders"]} == {FLAGGED, CLEAN}

        _, alerts = await get("/api/alerts")
        assert [a["key"] for a in alerts["alerts"]] == ["ops|price_anomaly|b", "ops|amount_mismatch|a"]
        failed, sent = alerts["alerts"]
        assert failed["ok"] is False and failed["channel"] is None and failed["attempt_count"] == 1
        assert sent["ok"] is True and sent["channel"] == "wecom" and sent["finished_at"].endswith("Z")
        assert [a["channel"] for a in sent["attempts"]] == ["dingtalk", "wecom"]
        _, by_rule = await get("/api/alerts?rule=amount_mismatch&limit=5")
        assert [a["key"] for a in by_rule["alerts"]] == ["ops|amount_mismatch|a"]

        # Releasing: only an operator (or admin), only an order with an open hold; the command goes to the
        # detector via Kafka, naming the token's holder — a body naming someone else is refused.
        viewer_token, _ = store.create("viewer-only", Role.VIEWER)
        assert (await release(HELD, {}, token=viewer_token))[0] == 403
        assert (await release(FLAGGED, {}))[0] == 409
        assert (await release(CLEAN, {}))[0] == 409
        assert (await release("taobao:shopA:nope", {}))[0] == 404
        status, refused = await release(HELD, {"by": "attacker"})
        assert status == 400 and '"by"' in refused["error"]
        assert (await release(HELD, {"reason": 5}))[0] == 400
        status, accepted = await release(HELD, {"reason": "客户已补款 / customer paid the difference"})
        assert status == 202 and accepted["accepted"] is True and len(accepted["command_id"]) == 32

        commands = await asyncio.to_thread(TopicReader(kafka_bootstrap, topics.order_commands, "OrderCommand").until, 1)
        assert len(commands) == 1
        key, command = commands[0]
        assert key == HELD.encode()
        assert command["command_id"] == accepted["command_id"] and command["command"] == "release"
        assert command["order_id"] == HELD and command["issued_by"] == f"王芳#{operator.id}"
        assert command["reason"] == "客户已补款 / customer paid the difference"
        assert abs(command["issued_at"] - time.time() * 1000) < 60_000

        # The detector answers with the resolving record; the hold goes away once it is projected.
        resolved = {
            **hold,
            "state": "resolved",
            "detected_at": now + 1000,
            "evidence": {"released_by": "王芳"},
        }
        produce_anomalies(kafka_bootstrap, topics.order_anomalies, [resolved])

        async def released():
            _, o = await get(f"/api/orders/{HELD}")
            return o if not o["hold"] else None

        order = await wait_for(released)
        assert order["hold_reasons"] == [] and [a["rule"] for a in order["anomalies"]] == ["invalid_phone"]
        _, latest = await get(f"/api/anomalies?order_id={HELD}&rule=amount_mismatch")
        assert [(a["state"], a["evidence"]) for a in latest["anomalies"]] == [
            ("resolved", {"released_by": "王芳"})
        ]
        _, history = await get(f"/api/anomalies?order_id={HELD}&rule=amount_mismatch&history=true")
        assert [a["state"] for a in history["anomalies"]] == ["resolved", "raised"]
        assert (await release(HELD, {}))[0] == 409
        _, stats = await get("/api/stats")
        assert stats["holds"] == 0 and stats["open_anomalies_by_rule"] == {
            "invalid_phone": 1,
            "price_anomaly": 1,
        }

        # A replay of the old raised record does not reopen the hold.
        produce_anomalies(kafka_bootstrap, topics.order_anomalies, [hold])

        async def replayed():
            _, s = await get("/api/stats")
            return s if s["consumed_by_topic"].get(topics.order_anomalies) == 5 else None

        await wait_for(replayed)
        _, order = await get(f"/api/orders/{HELD}")
        assert order["hold"] is False

        async with http.get(base + "/") as resp:
            page = await resp.text()
        assert resp.status == 200 and "异常" in page and "/api/anomalies" in page and "/api/alerts" in page


async def test_anomaly_feature_off_keeps_the_old_api(kafka_bootstrap, topics, tmp_path):
    """Without the new topic keys the projector runs as before; release answers 503."""
    backend = ChdbBackend(str(tmp_path / "chdb"))
    try:
        create_schema(backend)
        projector = Projector(
            kafka_config={"bootstrap.servers": kafka_bootstrap},
            topics={
                "raw_orders": topics.raw_orders,
                "raw_orders_dlq": topics.raw_orders_dlq,
                "order_events": topics.order_events,
                "connector_calls": topics.connector_calls,
            },
            normalizer_group="n",
            backend=backend,
        )
        assert projector.commands is None and len(projector._kinds) == 3
        store = TokenStore(tmp_path / "tokens.json")
        token, _ = store.create("ops", Role.OPERATOR)
        client = TestClient(TestServer(create_api(projector, AuthConfig(store))),
                            headers={"Authorization": f"Bearer {token}"})
        await client.start_server()
        try:
            resp = await client.post("/api/orders/x:y:z/release", json={})
            assert resp.status == 503
            resp = await client.get("/api/anomalies")
            assert resp.status == 200 and (await resp.json()) == {"anomalies": [], "count": 0}
        finally:
            await client.close()
    finally:
        backend.close()
