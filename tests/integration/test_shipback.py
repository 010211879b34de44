"""The shipper worker on the real broker against the Taobao and Shopify simulators over HTTP: uploads once,
fails refusals at once with a finding, retries transient errors, and survives kill -9 without uploading
anything twice."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import pytest
from aiohttp import web

from connectors import platforms
from connectors.simkit.server import FAULTS, WORLD, ensure_shop
from schemas.codec import AvroCodec
from schemas.shipments import shipment_command, shipment_id
from schemas.topics import partition_for
from tests.integration.helpers import TopicReader, publish, serve_app, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)
COMMAND = AvroCodec("ShipmentCommand")


class Simulated:
    """The Taobao and Shopify simulators of one test, served in its event loop."""

    def __init__(self):
        self.apps, self.runners, self.urls = {}, [], {}

    async def start(self, *platform_codes, middleware=None):
        for code in platform_codes:
            app = platforms.module(code, "simulator").create_app()
            if middleware is not None:
                app.middlewares.append(middleware)
            runner, url = await serve_app(app)
            self.apps[code], self.urls[code] = app, url
            self.runners.append(runner)
        return self

    def orders(self, code: str, shop: str, count: int, lines: int = 1):
        ensure_shop(self.apps[code], shop)
        made = []
        while len(made) < count:
            made += [o for o in self.apps[code][WORLD].create_orders(shop, count, NOW) if len(o.lines) >= lines]
        return made[:count]

    def uploads(self, code: str) -> list[dict]:
        return list(self.apps[code][WORLD].uploads)

    def env_value(self) -> str:
        return ",".join(f"{code}={url}" for code, url in self.urls.items())

    async def stop(self):
        for runner in self.runners:
            await runner.cleanup()


def _command(code: str, order, carrier: str, tracking: str, lines=(), at: int | None = None) -> dict:
    order_id = f"{code}:{order.shop_id}:{order.external_id}"
    request = {"carrier": carrier, "tracking_no": tracking, "line_ids": list(lines)}
    return shipment_command(order_id, request, "erp-test", at or int(time.time() * 1000))


def _publish(bootstrap: str, topics, commands: list[dict]) -> None:
    publish(bootstrap, [(topics.fulfillment_commands, c["order_id"].encode(), COMMAND.encode(c)) for c in commands])


def _final(results: TopicReader) -> dict[str, dict]:
    last = {}
    for _, r in results.records:
        if r["status"] in ("UPLOADED", "FAILED"):
            last[r["shipment_id"]] = r
    return last


async def _until(loop, reader: TopicReader, check, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        await loop.run_in_executor(None, reader.poll, 0.3)
        if check():
            return
    raise AssertionError(f"not reached within {timeout}s; read {len(reader.records)} records")


async def test_shipments_upload_once_refusals_fail_with_a_finding_and_transient_errors_retry(
        kafka_bootstrap, topics, tmp_path):
    sims = await Simulated().start("taobao", "shopify")
    tb = sims.orders("taobao", "tb-shop", 4, lines=2)
    sp = sims.orders("shopify", "sp-shop", 2)
    sims.apps["taobao"][WORLD].perform(tb[2], "cancel", NOW)
    split = tb[1].lines
    commands = [
        _command("taobao", tb[0], "中通快递", "ZT7700000001"),
        _command("taobao", tb[1], "ZTO", "ZT7700000002", [split[0].line_id]),
        _command("taobao", tb[1], "顺丰", "SF1402938475610", [x.line_id for x in split[1:]]),
        _command("taobao", tb[2], "ZTO", "ZT7700000003"),        # cancelled on the platform
        _command("taobao", tb[3], "Pony Express", "PX7700000004"),  # no such carrier
        _command("shopify", sp[0], "UPS", "1Z999AA10123456784"),
        _command("shopify", sp[1], "ZTO", "ZT7700000005"),         # canonical code -> "ZTO Express"
    ]
    sims.apps["shopify"][FAULTS].add("error_5xx", 6)  # a first attempt (3 calls) fails: retried later
    env = worker_env(kafka_bootstrap, topics, TONGLU_SIMULATORS=sims.env_value(), TONGLU_DATA_DIR=tmp_path)
    _publish(kafka_bootstrap, topics, commands + [dict(commands[0], requested_at=commands[0]["requested_at"] + 1)])
    worker = start_worker("shipper", env, tmp_path / "shipper.log")
    results = TopicReader(kafka_bootstrap, topics.fulfillment_results, "ShipmentResult")
    findings = TopicReader(kafka_bootstrap, topics.order_anomalies, "Anomaly")
    calls = TopicReader(kafka_bootstrap, topics.connector_calls, "ConnectorCall")
    loop = asyncio.get_running_loop()
    try:
        await _until(loop, results, lambda: len(_final(results)) == len(commands))
        final = _final(results)
        status = {c["tracking_no"]: final[c["shipment_id"]]["status"] for c in commands}
        assert status == {"ZT7700000001": "UPLOADED", "ZT7700000002": "UPLOADED", "SF1402938475610": "UPLOADED",
                          "ZT7700000003": "FAILED", "PX7700000004": "FAILED", "1Z999AA10123456784": "UPLOADED",
                          "ZT7700000005": "UPLOADED"}
        reason = {c["tracking_no"]: final[c["shipment_id"]]["reason"] for c in commands}
        assert reason["ZT7700000003"].startswith("cancelled: taobao 15 isv.logistics-offline-service-error:B04")
        assert reason["PX7700000004"].startswith("unknown_carrier: 淘宝/天猫 Taobao/Tmall has no carrier")
        carrier = {c["tracking_no"]: final[c["shipment_id"]]["carrier_code"] for c in commands}
        assert (carrier["ZT7700000001"], carrier["SF1402938475610"], carrier["ZT7700000005"]) == (
            "ZTO", "SF", "ZTO Express")

        # what the platforms accepted: each shipment once, the duplicate command uploaded nothing
        assert sorted(u["tracking_no"] for u in sims.uploads("taobao")) == [
            "SF1402938475610", "ZT7700000001", "ZT7700000002"]
        assert sorted(u["tracking_no"] for u in sims.uploads("shopify")) == ["1Z999AA10123456784", "ZT7700000005"]
        assert tb[1].status == "SHIPPED" and tb[0].lines[0].carrier_name == "中通快递"
        # a PENDING record before every call, RETRYING where Shopify failed
        by_id = {}
        for _, r in results.records:
            by_id.setdefault(r["shipment_id"], []).append(r["status"])
        assert all(by_id[c["shipment_id"]][0] == "PENDING" for c in commands if c["tracking_no"] != "PX7700000004")
        assert by_id[commands[4]["shipment_id"]] == ["FAILED"]  # refused before any call
        assert any("RETRYING" in by_id[c["shipment_id"]] for c in commands[5:])

        await _until(loop, findings, lambda: len(findings.records) >= 2, 30)
        raised = {a["order_id"]: a for _, a in findings.records}
        assert set(raised) == {commands[3]["order_id"], commands[4]["order_id"]}
        assert all(a["rule"] == "ship_upload_failed" and a["state"] == "raised" for a in raised.values())
        await _until(loop, calls, lambda: any(c["endpoint"] == "fulfillments.json" for _, c in calls.records), 30)
        endpoints = {c["endpoint"] for _, c in calls.records}
        assert {"taobao.logistics.offline.send", "fulfillments.json"} <= endpoints

        # asked again later for an uploaded shipment: the outcome again, no upload
        _publish(kafka_bootstrap, topics, [dict(commands[0], requested_at=int(time.time() * 1000))])
        seen = len([1 for _, r in results.records if r["shipment_id"] == commands[0]["shipment_id"]])
        await _until(loop, results, lambda: len(
            [1 for _, r in results.records if r["shipment_id"] == commands[0]["shipment_id"]]) > seen, 30)
        assert len(sims.uploads("taobao")) == 3
        assert stop_worker(worker) == 0
    finally:
        if worker.poll() is None:
            stop_worker(worker)
        for reader in (results, findings, calls):
            reader.close()
        await sims.stop()


async def test_kill_9_mid_stream_uploads_nothing_twice(kafka_bootstrap, topics, tmp_path):
    """Answers are held back after the platform accepted (as a slow network would): the worker is killed
    while uploads have landed unanswered, restarted, and given every command again."""

    calls: list[tuple[float, str]] = []  # (when, waybill number) of every ship call the platform received

    @web.middleware
    async def answer_late(request, handler):
        form = await request.post() if request.method == "POST" else {}
        response = await handler(request)
        if form.get("method") == "taobao.logistics.offline.send":
            calls.append((time.time(), form["out_sid"]))
            await asyncio.sleep(1.5)
        return response

    sims = await Simulated().start("taobao", middleware=answer_late)
    orders = [o for shop in ("k1", "k2", "k3") for o in sims.orders("taobao", shop, 20)]
    commands = [_command("taobao", o, "ZTO", f"ZT88{n:08d}") for n, o in enumerate(orders)]
    env = worker_env(kafka_bootstrap, topics, TONGLU_SIMULATORS=sims.env_value(), TONGLU_DATA_DIR=tmp_path)
    results = TopicReader(kafka_bootstrap, topics.fulfillment_results, "ShipmentResult")
    loop = asyncio.get_running_loop()
    worker = start_worker("shipper", env, tmp_path / "shipper.log")
    try:
        _publish(kafka_bootstrap, topics, commands)
        deadline = time.time() + 60
        while len(sims.uploads("taobao")) < 10 and time.time() < deadline:
            await asyncio.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        landed = len(sims.uploads("taobao"))
        await loop.run_in_executor(None, results.poll, 1.0)
        answered = {r["shipment_id"] for _, r in results.records if r["status"] == "UPLOADED"}
        # the positive control: killed mid-stream, with uploads on the platform the worker never heard of
        assert 10 <= landed and len(answered) < landed, (landed, len(answered))

        _publish(kafka_bootstrap, topics, commands)  # the ERP, unsure, sends everything again
        restarted = time.time()
        worker = start_worker("shipper", env, tmp_path / "shipper2.log")
        await _until(loop, results, lambda: len(_final(results)) == len(commands), 90)
        final = _final(results)
        assert {r["status"] for r in final.values()} == {"UPLOADED"}
        assert any(r["reason"] and "earlier attempt landed" in r["reason"] for r in final.values())
        assert {shipment_id(c["order_id"], c["tracking_no"]) for c in commands} == set(final)

        # a barrier: one new shipment per partition; once they are done, everything before them was consumed
        fresh = {}
        for order in sims.orders("taobao", "k4", 40):
            fresh.setdefault(partition_for(f"taobao:k4:{order.external_id}".encode(), 4), order)
        assert len(fresh) == 4
        barrier = [_command("taobao", o, "ZTO", f"ZT99{n:08d}") for n, o in enumerate(fresh.values())]
        _publish(kafka_bootstrap, topics, barrier)
        await _until(loop, results, lambda: len(_final(results)) == len(commands) + len(barrier), 60)
        started = Counter(r["shipment_id"] for _, r in results.records if r["status"] == "PENDING")
        assert {started[c["shipment_id"]] for c in commands} == {1}  # the repeated commands started nothing
        assert stop_worker(worker) == 0  # what is still running finishes
        # after the restart the platform was asked again only about shipments whose outcome was unknown
        ours = {c["tracking_no"] for c in commands}
        again = [t for at, t in calls if at >= restarted and t in ours]
        assert sorted(again) == sorted(c["tracking_no"] for c in commands if c["shipment_id"] not in answered)
        uploaded = [u["tracking_no"] for u in sims.uploads("taobao")]
        assert len(uploaded) == len(set(uploaded)) == len(commands) + len(barrier)  # every shipment once
    finally:
        if worker.poll() is None:
            stop_worker(worker)
        results.close()
        await sims.stop()


async def test_a_failed_upload_is_alerted_through_the_router(kafka_bootstrap, topics, tmp_path):
    from infra.config import local_alert_secrets
    from tests.integration.test_anomaly_pipeline import _alert_simulators, _messages

    runner, base, routing = await _alert_simulators(tmp_path)
    text = routing.read_text(encoding="utf-8")  # any time of day, a short aggregation window
    routing.write_text(text.replace("[quiet_hours]\nenabled = true", "[quiet_hours]\nenabled = false")
                       .replace("\nthrottle_seconds = 60\n", "\nthrottle_seconds = 2\n"), encoding="utf-8")
    sims = await Simulated().start("taobao")
    (order,) = sims.orders("taobao", "alerts", 1)
    env = worker_env(kafka_bootstrap, topics, TONGLU_SIMULATORS=sims.env_value(), TONGLU_DATA_DIR=tmp_path,
                     TONGLU_ALERT_ROUTING=routing, **local_alert_secrets())
    workers = [start_worker(name, env, tmp_path / f"{name}.log") for name in ("shipper", "alerter")]
    loop = asyncio.get_running_loop()
    try:
        sims.apps["taobao"][WORLD].perform(order, "cancel", NOW)
        _publish(kafka_bootstrap, topics, [_command("taobao", order, "ZTO", "ZT5500000001")])
        deadline, sent = time.time() + 60, []
        while time.time() < deadline and not sent:
            sent = [m for m in await loop.run_in_executor(None, _messages, base) if "发货回传失败" in m["text"]]
            await asyncio.sleep(0.5)
        assert len(sent) == 1 and f"taobao:alerts:{order.external_id}" in sent[0]["text"]
        assert "ship_upload_failed" in sent[0]["text"]
    finally:
        for worker in workers:
            stop_worker(worker)
        await sims.stop()
        await runner.cleanup()
