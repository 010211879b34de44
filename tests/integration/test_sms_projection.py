"""SMS messages in ClickHouse and the API, member care from an imported file, and a scan that no plain phone
reaches a topic, a table, an API answer or a worker's log — with the simulated providers as positive control."""
import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from infra.sms_local import HASH_KEY_ENV, member_importer
from projections.access import Role
from projections.clickhouse import ChdbBackend
from projections.tokens import TokenStore
from schemas.kafka import read_to_end
from schemas.sealing import KEYS_ENV
from tests.integration.projector_helpers import bearer, running_projector, wait_for
from tests.integration.sms_helpers import HASH_KEY, RAW_KEYS, SmsHub

pytestmark = pytest.mark.integration
API_FIELDS = ["key", "order_id", "shop_id", "trigger", "template", "kind", "channel", "provider", "status", "reason",
              "to_masked", "segments", "created_at", "sent_at"]


def _members_file(path, today: str) -> str:
    path.write_text("member_id,shop_id,phone,platform,token,name,birthday,points,consent\n"
                    f"m1,club,13912345678,,,王小明,1990-{today},120,1\n"
                    f"m2,club,13987654321,,,李雷,1991-01-01,80,1\n"
                    "m3,club,1391234,,,,,,1\n", encoding="utf-8")
    return str(path)


def _import(hub: SmsHub, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", "sms", "members", path], env=hub.env,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_messages_are_projected_served_masked_and_no_plain_phone_leaks(kafka_bootstrap, topics, tmp_path):
    hub = await SmsHub(kafka_bootstrap, topics, tmp_path).start(TONGLU_SMS_MARKETING_HOURS="00:00-23:59")
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls,
             "sms_receipts": topics.sms_receipts}
    store = TokenStore(tmp_path / "tokens.json")
    now = int(time.time() * 1000)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%m-%d")
    answers: dict[str, bytes] = {}
    loop = asyncio.get_running_loop()
    try:
        async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), f"n-{uuid.uuid4().hex[:6]}",
                                     store, expect_healthy=False) as base:
            hub.run("notifier")
            hub.run("sender")
            shopify = hub.shopify_orders("sp-scan", 4, now)
            taobao = hub.taobao_orders("tb-scan", 2, now)
            hub.publish_events(shopify + taobao, now)
            imported = await loop.run_in_executor(None, _import, hub, _members_file(tmp_path / "m.csv", today))
            assert imported.returncode == 1 and "line 4: phone is not a mobile number" in imported.stderr
            assert "imported 2 members" in imported.stdout
            again = (tmp_path / "m.csv").read_text().replace(",120,1", ",300,1")
            (tmp_path / "m2.csv").write_text("\n".join(again.splitlines()[:2]) + "\n", encoding="utf-8")
            assert (await loop.run_in_executor(None, _import, hub, str(tmp_path / "m2.csv"))).returncode == 0
            await hub.wait_messages(4 + 2, provider="aliyun")  # 4 buyers, m1's birthday and points

            async with aiohttp.ClientSession(headers=bearer(store, Role.VIEWER)) as http:

                async def get(path):
                    async with http.get(base + path) as resp:
                        body = await resp.read()
                        assert resp.status == 200, body
                        answers[path] = body
                        return json.loads(body)

                async def projected():
                    listed = (await get("/api/sms?shop=sp-scan&status=delivered"))["messages"]
                    return len(listed) == 4 and listed

                delivered = await wait_for(projected, 60)
                assert all(list(m) == API_FIELDS for m in delivered)
                one = delivered[0]
                assert (one["trigger"], one["template"], one["kind"], one["channel"], one["provider"]) == (
                    "OrderPaid", "order_confirmed", "service", "gateway", "aliyun")
                assert "****" in one["to_masked"] and one["created_at"].endswith("Z") and one["sent_at"]
                assert (await get(f"/api/sms?order_id={one['order_id']}"))["messages"] == [one]
                out_ids = {m["out_id"] for m in await hub.messages(provider="aliyun")}
                assert one["key"] in out_ids  # the key is the out id the provider received

                async def platform_delivered():
                    listed = (await get("/api/sms?shop=tb-scan"))["messages"]
                    return len(listed) == 2 and all(m["status"] == "delivered" for m in listed) and listed

                assert {m["provider"] for m in await wait_for(platform_delivered, 60)} == {"taobao"}

                async def member_care():
                    listed = (await get("/api/sms?shop=club"))["messages"]
                    return len(listed) == 2 and listed

                care = await wait_for(member_care, 60)
                assert sorted(m["trigger"] for m in care) == ["Birthday", "PointsChanged"]
                assert all(m["order_id"] is None for m in care)
                stats = await get("/api/sms/stats")
                rows = {(r["shop_id"], r["template"]): r for r in stats["by_template"]}
                assert rows[("sp-scan", "order_confirmed")]["delivered"] == 4
                assert rows[("tb-scan", "order_confirmed")]["delivered"] == 2  # the platform's reports
                with pytest.raises(AssertionError):
                    await get("/api/sms?status=sending")  # not an API status
    finally:
        codes = await hub.close()
    assert set(codes.values()) == {0}

    # positive control: the providers did receive the plain numbers
    received = [m["to"] for m in hub.state.messages if m["provider"] in ("aliyun", "tencent")]
    phones = set(received) | {"13912345678", "13987654321"}
    assert len(received) == 6 and {"13912345678"} <= set(received)
    forms = {form for p in phones for form in (p, p.lstrip("+"), p[-10:])}
    sources: dict[str, bytes] = {f"API {path}": body for path, body in answers.items()}
    kafka = {"bootstrap.servers": kafka_bootstrap}
    for batch in await asyncio.to_thread(lambda: list(read_to_end(kafka, [s.name for s in topics.specs()],
                                                                  idle=1.0, group="scan"))):
        for msg in batch:
            sources.setdefault(f"topic {msg.topic()}", b"")
            sources[f"topic {msg.topic()}"] += (msg.key() or b"") + b"\n" + (msg.value() or b"") + b"\n"
    assert sources[f"topic {topics.sms_receipts}"] and sources[f"topic {topics.sms_members}"]
    backend = ChdbBackend(str(tmp_path / "chdb"))
    try:
        for table in [r["name"] for r in backend.query("SELECT name FROM system.tables WHERE database = 'tonglu'")]:
            rows = backend.query(f"SELECT * FROM tonglu.`{table}`")
            sources[f"table {table}"] = json.dumps(rows, ensure_ascii=False, default=str).encode()
        assert len({r["key"] for r in json.loads(sources["table sms_messages"])}) == 8
    finally:
        backend.close()
    for log in tmp_path.glob("*.log"):
        sources[f"log {log.name}"] = log.read_bytes()
    leaks = {where: sorted(f for f in forms if f.encode() in blob) for where, blob in sources.items()}
    assert not {where: found for where, found in leaks.items() if found}, "plain phone numbers leaked"


async def test_members_import_over_the_api_refuses_bad_rows_by_number(kafka_bootstrap, topics, tmp_path, monkeypatch):
    """POST /api/sms/members: the CLI's import behind an operator route; CSV errors name the line, JSON the row."""
    monkeypatch.setenv(KEYS_ENV, RAW_KEYS)
    monkeypatch.setenv(HASH_KEY_ENV, HASH_KEY)
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    store = TokenStore(tmp_path / "tokens.json")
    kafka = {"bootstrap.servers": kafka_bootstrap}
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), f"n-{uuid.uuid4().hex[:6]}", store,
                                 expect_healthy=False,
                                 member_import=member_importer(kafka, topics.sms_members, tmp_path)) as base:
        csv_text = ("member_id,shop_id,phone,name,birthday,points,consent\n"
                    "m1,club,13912345678,王小明,1990-05-01,120,1\n"
                    "m2,club,1391234,,,,1\n"
                    "m3,club,13987654321,李雷,01-01,80,no\n")
        rows = {"members": [{"member_id": "m4", "shop_id": "club", "platform": "taobao", "token": "oaid-m4",
                             "points": 10, "consent": True},
                            {"member_id": "m5", "phone": "13911112222"},
                            {"member_id": "m6", "shop_id": "club", "phone": "13911113333", "birthday": "13-40"}]}
        async with aiohttp.ClientSession(headers=bearer(store, Role.OPERATOR)) as http:
            async with http.post(f"{base}/api/sms/members", data=csv_text.encode(),
                                 headers={"Content-Type": "text/csv"}) as resp:
                assert resp.status == 422
                answer = await resp.json()
            assert answer["imported"] == 2 and len(answer["refused"]) == 1
            assert answer["refused"][0].startswith("line 3: phone")
            async with http.post(f"{base}/api/sms/members", json=rows) as resp:
                assert resp.status == 422
                answer = await resp.json()
            assert answer["imported"] == 1 and [r.split(":")[0] for r in answer["refused"]] == ["row 2", "row 3"]
            async with http.post(f"{base}/api/sms/members", json=rows["members"][:1]) as resp:
                assert (resp.status, await resp.json()) == (200, {"imported": 1, "refused": []})
            async with http.post(f"{base}/api/sms/members", data=b"m1,club", headers={
                    "Content-Type": "application/xml"}) as resp:
                assert resp.status == 400
            async with http.get(f"{base}/api/openapi.json") as resp:
                assert "post" in (await resp.json())["paths"]["/api/sms/members"]
        async with aiohttp.ClientSession(headers=bearer(store, Role.VIEWER)) as http, http.post(
                f"{base}/api/sms/members", data=csv_text.encode(), headers={"Content-Type": "text/csv"}) as resp:
            assert resp.status == 403
    records = [msg for batch in await asyncio.to_thread(lambda: list(read_to_end(kafka, [topics.sms_members])))
               for msg in batch]
    assert sorted(m.key() for m in records) == [b"club:m1", b"club:m3", b"club:m4", b"club:m4"]
    assert not any(b"13912345678" in m.value() or b"13987654321" in m.value() for m in records)  # sealed, hashed
