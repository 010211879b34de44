"""POST /api/orders/{order_id}/shipments on the real API (chdb, broker): 202 with the shipment id and the
ShipmentCommand on fulfillment.commands; 404, 400 with the reason, 403; and `tonglu sim order`."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import aiohttp
import pytest

from connectors import platforms
from connectors.simkit.server import WORLD, ensure_shop
from projections.access import Role
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from schemas.shipments import shipment_id
from tests.integration.helpers import TopicReader, serve_app
from tests.integration.projector_helpers import bearer, produce, running_projector, wait_for
from tests.samples import sample_event

pytestmark = pytest.mark.integration
ORDER = "taobao:shopA:1001"


async def test_a_shipment_request_is_accepted_once_and_bad_ones_are_refused(kafka_bootstrap, topics, tmp_path):
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls,
             "fulfillment_commands": topics.fulfillment_commands}
    store = TokenStore(tmp_path / "tokens.json")
    commands = TopicReader(kafka_bootstrap, topics.fulfillment_commands, "ShipmentCommand")
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), f"norm-{uuid.uuid4().hex[:6]}",
                                 store) as base:
        event = sample_event("taobao", "shopA", "1001", 2)
        produce(kafka_bootstrap, topics.order_events, [(ORDER.encode(), AvroCodec("OrderEvent").encode(event))])
        operator, viewer = bearer(store, Role.OPERATOR, "ops-lead"), bearer(store, Role.VIEWER)
        url = f"{base}/api/orders/{ORDER}/shipments"
        async with aiohttp.ClientSession() as http:

            async def visible():
                async with http.get(f"{base}/api/orders/{ORDER}", headers=viewer) as resp:
                    return resp.status == 200

            await wait_for(visible)

            async def post(body, headers=operator, target=url, raw=None):
                async with http.post(target, headers=headers, json=body if raw is None else None, data=raw) as r:
                    return r.status, await r.json()

            request = {"carrier": "中通快递", "tracking_no": "ZT7700000001", "line_ids": ["1"]}
            want = {"shipment_id": shipment_id(ORDER, "ZT7700000001"), "status": "PENDING"}
            assert await post(request) == (202, want)
            assert await post(dict(request, line_ids=None)) == (202, want)  # same order + number: same shipment
            status, body = await post(request, target=f"{base}/api/orders/taobao:shopA:404/shipments")
            assert status == 404 and "unknown order" in body["error"]
            status, body = await post(None, raw=b"{not json")
            assert status == 400 and "JSON" in body["error"]
            status, body = await post({"carrier": "ZTO"})
            assert status == 400 and body["error"].startswith('"tracking_no" must be')
            status, body = await post(dict(request, by="someone else"))
            assert status == 400 and '"by"' in body["error"]
            status, body = await post(request, headers=viewer)
            assert status == 403

        got = await asyncio.get_running_loop().run_in_executor(None, commands.until, 2, 30)
        commands.close()
        first, second = (value for _, value in got)
        assert (first["order_id"], first["carrier"], first["tracking_no"], first["line_ids"]) == (
            ORDER, "中通快递", "ZT7700000001", ["1"])
        assert first["shipment_id"] == second["shipment_id"] == want["shipment_id"] and second["line_ids"] == []
        assert first["issued_by"].startswith("ops-lead#") and first["requested_at"] <= second["requested_at"]
        assert all(key == ORDER.encode() for key, _ in got)


def _tonglu(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_sim_order_acts_in_the_simulator_and_prints_the_platform_status(tmp_path):
    import os

    apps = {code: platforms.module(code, "simulator").create_app() for code in ("taobao", "shopify")}
    served = [await serve_app(app) for app in apps.values()]
    env = {**os.environ, "TONGLU_DATA_DIR": str(tmp_path),
           "TONGLU_SIMULATORS": ",".join(f"{code}={url}" for code, (_, url) in zip(apps, served, strict=True))}
    ensure_shop(apps["taobao"], "cli")
    ensure_shop(apps["shopify"], "cli")
    (tb,) = apps["taobao"][WORLD].create_orders("cli", 1, 1_717_000_000_000, paid=False)
    (sp,) = apps["shopify"][WORLD].create_orders("cli", 1, 1_717_000_000_000)
    loop = asyncio.get_running_loop()
    try:
        order_id = f"taobao:cli:{tb.external_id}"
        for act, status in (("change-address", "WAIT_BUYER_PAY"), ("pay", "WAIT_SELLER_SEND_GOODS"),
                            ("ship", "WAIT_BUYER_CONFIRM_GOODS"), ("deliver", "WAIT_BUYER_CONFIRM_GOODS")):
            run = await loop.run_in_executor(None, _tonglu, env, "sim", "order", order_id, "--do", act)
            assert run.returncode == 0 and run.stdout.strip() == status, (act, run.stdout, run.stderr)
            assert "平台状态 platform status" in run.stderr
        assert tb.status == "DELIVERED"
        refused = await loop.run_in_executor(None, _tonglu, env, "sim", "order", order_id, "--do", "cancel")
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.startswith("error: ") and "HTTP 409" in refused.stderr
        assert "cannot cancel an order in status DELIVERED" in refused.stderr

        run = await loop.run_in_executor(None, _tonglu, env, "sim", "order", f"shopify:cli:{sp.external_id}",
                                         "--do", "cancel")
        assert run.returncode == 0 and run.stdout.strip() == "refunded/unfulfilled/cancelled"
        for bad in (("taobao:cli:1", "pay"), (order_id, "explode"), ("taobao-ish", "pay")):
            run = await loop.run_in_executor(None, _tonglu, env, "sim", "order", bad[0], "--do", bad[1])
            assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    finally:
        for runner, _ in served:
            await runner.cleanup()
