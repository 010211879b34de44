"""Analysts' SQL through the real HTTP API on chdb: hostile statements refused with their reason,
analysts' queries answered, a runaway query stopped by its limit while the API keeps answering."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import aiohttp
import pytest

from projections.access import Role
from projections.clickhouse.ddl import ANALYST_TABLES
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from tests.integration.projector_helpers import bearer, produce, running_projector, wait_for
from tests.samples import sample_event

pytestmark = pytest.mark.integration
RUNAWAY_S = float(os.environ.get("TONGLU_TEST_RUNAWAY_S", "6"))  # the analyst timeout in these tests
SPIN = "SELECT count() FROM numbers(1e13) WHERE sipHash64(number) % 7 = 3"  # runs for minutes unbounded

# (statement, what the one-line reason must name)
HOSTILE = [
    ("SELECT * FROM `file`('/etc/passwd', 'LineAsString')", "table function not allowed: file"),
    ('SELECT * FROM "file"(\'/etc/passwd\', \'LineAsString\')', "table function not allowed: file"),
    ("SELECT * FROM FILE('/etc/passwd', 'LineAsString')", "table function not allowed: FILE"),
    ("SELECT * FROM `url`('http://127.0.0.1:8080/healthz', 'LineAsString')", "table function not allowed: url"),
    ('SELECT * FROM "system"."settings"', "system tables are not allowed: system.settings"),
    ("SELECT * FROM `system`.`settings`", "system tables are not allowed: system.settings"),
    ("SELECT * FROM SYSTEM.settings", "system tables are not allowed: SYSTEM.settings"),
    ("SELECT * FROM merge('system', '.*')", "table function not allowed: merge"),
    ("SELECT * FROM merge(system, '^set')", "table function not allowed: merge"),
    ("SELECT * FROM information_schema.tables", "system tables are not allowed: information_schema.tables"),
    ("SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "system tables are not allowed: INFORMATION_SCHEMA.COLUMNS"),
    ("SELECT * FROM /* hide */ `file` -- x\n('/etc/passwd', 'LineAsString')", "table function not allowed: file"),
    ("SELECT * FROM fi/**/le('/etc/passwd')", "syntax error"),
    ("# comment\nSELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "table function not allowed: url"),
    ("SELECT * FROM \\u0066ile('/etc/passwd')", "syntax error"),
    ("SELECT * FROM ｆｉｌｅ('/etc/passwd')", "syntax error"),  # full-width letters
    ("SELECT * FROM ѕystem.settings", "syntax error"),  # Cyrillic ѕ
    ("SELECT * FROM `tonglu.orders`", "quoted identifiers may hold only letters"),
    ("SELECT `a\n TableIdentifier tonglu.orders` FROM tonglu.orders", "quoted identifiers may hold only letters"),
    ("SELECT 1 SETTINGS max_execution_time = 100000", "SETTINGS clause is not allowed"),
    ("SELECT count() FROM tonglu.orders SETTINGS readonly = 0", "SETTINGS clause is not allowed"),
    ("SELECT 1 UNION ALL SELECT 2 SETTINGS max_result_rows = 0", "SETTINGS clause is not allowed"),
    ("SELECT 1 FORMAT TabSeparated", "clause not allowed: FORMAT"),
    ("SELECT 1 INTO OUTFILE '/tmp/tonglu-pwned'", "INTO OUTFILE is not allowed"),
    ("SELECT 1 INTO OUTFILE '/tmp/tonglu-pwned' FORMAT CSV", "INTO OUTFILE is not allowed"),
    ("SELECT 1; SELECT * FROM file('/etc/passwd')", "only a single statement"),
    ("SELECT 1; DROP TABLE tonglu.orders", "only a single statement"),
    ("DROP TABLE tonglu.orders", "only SELECT, WITH, SHOW TABLES"),
    ("INSERT INTO tonglu.orders (order_id) VALUES ('x')", "only SELECT, WITH, SHOW TABLES"),
    ("ALTER TABLE tonglu.orders DELETE WHERE 1", "only SELECT, WITH, SHOW TABLES"),
    ("SET readonly = 0", "only SELECT, WITH, SHOW TABLES"),
    ("KILL QUERY WHERE 1", "only SELECT, WITH, SHOW TABLES"),
    ("EXPLAIN SELECT * FROM file('/etc/passwd')", "only SELECT, WITH, SHOW TABLES"),
    ("SHOW DATABASES", "only SHOW TABLES"),
    ("SHOW TABLES FROM system", "only SHOW TABLES"),
    ("SHOW PROCESSLIST", "only SELECT, WITH, SHOW TABLES"),
    ("SHOW CREATE TABLE system.settings", "system tables are not allowed: system.settings"),
    ("DESCRIBE file('/etc/passwd', 'LineAsString')", "table function not allowed: file"),
    ("DESCRIBE TABLE system.users", "system tables are not allowed: system.users"),
    ("SELECT file('/etc/passwd')", "function not allowed: file"),
    ("SELECT dictGet('regions', 'name', toUInt64(1))", "function not allowed: dictGet"),
    ("SELECT DICTGETSTRING('regions', 'name', toUInt64(1))", "function not allowed: DICTGETSTRING"),
    ("SELECT joinGet('tonglu.j', 'v', 1)", "function not allowed: joinGet"),
    ("SELECT hasColumnInTable('system', 'users', 'name')", "function not allowed: hasColumnInTable"),
    ("SELECT getSetting('max_execution_time')", "function not allowed: getSetting"),
    ("SELECT * FROM view(SELECT * FROM system.users)", "table function not allowed: view"),
    ("SELECT * FROM remote('127.0.0.1', system.users)", "table function not allowed: remote"),
    ("SELECT * FROM remoteSecure('127.0.0.1', system.users)", "table function not allowed: remoteSecure"),
    ("SELECT * FROM cluster('default', system.users)", "table function not allowed: cluster"),
    ("SELECT * FROM s3('http://127.0.0.1:1/b/k.csv')", "table function not allowed: s3"),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", "table function not allowed: executable"),
    ("SELECT * FROM input('x String')", "table function not allowed: input"),
    ("SELECT * FROM jdbc('jdbc:mysql://h/db', 't')", "table function not allowed: jdbc"),
    ("SELECT * FROM mysql('h:3306', 'db', 't', 'u', 'p')", "table function not allowed: mysql"),
    ("SELECT * FROM postgresql('h:5432', 'db', 't', 'u', 'p')", "table function not allowed: postgresql"),
    ("SELECT * FROM generateRandom('a String')", "table function not allowed: generateRandom"),
    ("SELECT * FROM loop(tonglu.orders)", "table function not allowed: loop"),
    ("SELECT * FROM tonglu.orders AS o JOIN file('/etc/passwd', 'LineAsString') AS f ON 1",
     "table function not allowed: file"),
    ("SELECT * FROM tonglu.orders o LEFT JOIN system.users u ON o.order_id = u.name",
     "system tables are not allowed: system.users"),
    ("WITH leak AS (SELECT * FROM system.users) SELECT * FROM leak", "system tables are not allowed: system.users"),
    ("WITH (SELECT name FROM system.users LIMIT 1) AS u SELECT u", "system tables are not allowed: system.users"),
    ("SELECT (SELECT count() FROM system.processes)", "system tables are not allowed: system.processes"),
    ("SELECT order_id FROM tonglu.orders WHERE order_id IN (SELECT name FROM system.users)",
     "system tables are not allowed: system.users"),
    ("SELECT order_id FROM tonglu.orders WHERE order_id IN system.users", "system tables are not allowed"),
    ("SELECT order_id FROM tonglu.orders WHERE order_id GLOBAL NOT IN file('/etc/passwd', 'LineAsString')",
     "table function not allowed: file"),
    ("SELECT arrayJoin((SELECT groupArray(name) FROM system.users))", "system tables are not allowed"),
    ("SELECT arrayMap(x -> (SELECT name FROM system.users LIMIT 1), [1])", "system tables are not allowed"),
    ("SELECT * FROM (SELECT * FROM (SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')))",
     "table function not allowed: url"),
    ("SELECT * FROM numbers((SELECT count() FROM system.users))", "system tables are not allowed"),
    ("SELECT * FROM tonglu.order_events_in_0123", "table not allowed"),
    ("SELECT * FROM other_db.orders", "table not allowed"),
    ("SELECT * FROM (EXPLAIN SELECT * FROM file('/etc/passwd'))", "table function not allowed: viewExplain"),
    ("", "empty statement"),
]
LEGIT = [
    ("SELECT platform, count() FROM tonglu.orders FINAL GROUP BY platform", 2),  # the README's
    ("select platform, count() AS n from orders final group by platform order by platform", 2),
    ("-- dashboard\nSELECT 1 AS one;", 1),
    (("WITH recent AS (SELECT * FROM tonglu.orders FINAL) SELECT r.platform, count() FROM recent AS r "
     "JOIN tonglu.order_events AS e ON r.order_id = e.order_id GROUP BY r.platform"), 2),
    (("SELECT order_id, paid_total, row_number() OVER (PARTITION BY platform ORDER BY order_id) AS rn "
     "FROM tonglu.orders FINAL ORDER BY order_id LIMIT 5"), 5),
    ("SELECT * FROM tonglu.daily_orders_by_platform ORDER BY platform", 2),
    ("SELECT platform, status, orders FROM status_funnel ORDER BY platform", 2),
    ("SELECT today() - number AS day FROM numbers(7)", 7),
    ("SELECT order_id FROM tonglu.orders WHERE order_id IN (SELECT order_id FROM tonglu.order_events) LIMIT 3", 3),
    ("SELECT count() AS `订单数` FROM tonglu.orders FINAL WHERE status IN ('SHIPPED', 'PAID')", 1),
    ("SHOW TABLES", len(ANALYST_TABLES)),
    ("SHOW TABLES LIKE 'order%'", 2),
    ("DESCRIBE TABLE tonglu.orders", 24),
    ("SHOW CREATE TABLE tonglu.status_funnel", 1),
]


@pytest.fixture
async def api(kafka_bootstrap, topics, tmp_path, monkeypatch):
    """The projector + API on chdb with 6 orders of two platforms; yields (base URL, chdb data path)."""
    monkeypatch.setenv("TONGLU_SQL_TIMEOUT", str(RUNAWAY_S))
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    data_path = str(tmp_path / "chdb")
    store = TokenStore(tmp_path / "tokens.json")
    async with running_projector(kafka_bootstrap, names, data_path, f"norm-{uuid.uuid4().hex[:6]}",
                                 store) as base:
        events = [sample_event(p, "shopA", str(1000 + i), v) for p in ("taobao", "jd") for i in range(3)
                  for v in (1, 2)]
        _produce_events(kafka_bootstrap, topics.order_events, events)
        async with aiohttp.ClientSession(headers=bearer(store, Role.VIEWER)) as http:

            async def projected():
                async with http.get(base + "/api/orders?limit=10") as resp:
                    return (await resp.json())["count"] == 6

            await wait_for(projected)
        yield base, data_path, bearer(store, Role.ADMIN)


def _produce_events(bootstrap: str, topic: str, events: list[dict]) -> None:
    encoded = AvroCodec("OrderEvent").encode_many(events)
    produce(bootstrap, topic, [(e["order_id"].encode(), v) for e, v in zip(events, encoded, strict=True)])


async def _sql(http, base, text):
    async with http.post(base + "/api/sql", json={"sql": text}) as resp:
        return resp.status, await resp.json()


async def test_hostile_statements_are_refused_with_their_reason_and_analysts_answered(api):
    base, _, admin = api
    assert len(HOSTILE) >= 40
    async with aiohttp.ClientSession(headers=admin) as http:
        wrong = []
        for text, reason in HOSTILE:
            status, body = await _sql(http, base, text)
            error = body.get("error", "")
            # one line, Chinese first, naming what was refused
            if status != 400 or reason not in error or "\n" in error or error.isascii():
                wrong.append((text, status, body))
        for text, rows in LEGIT:
            status, body = await _sql(http, base, text)
            if status != 200 or len(body["rows"]) != rows:
                wrong.append((text, status, body))
        assert not wrong, "\n".join(map(repr, wrong))
        status, body = await _sql(http, base, "SELECT platform, count() AS n FROM tonglu.orders FINAL "
                                              "GROUP BY platform ORDER BY platform")
        assert body == {"columns": ["platform", "n"], "rows": [["jd", 3], ["taobao", 3]]}
        status, body = await _sql(http, base, "SELECT number FROM numbers(1e9)")  # more rows than the limit
        assert status == 400 and "结果超过上限" in body["error"], body
        async with http.post(base + "/api/sql", data=b"not json") as resp:
            assert resp.status == 400 and "JSON" in (await resp.json())["error"]
    assert not os.path.exists("/tmp/tonglu-pwned")


async def test_a_runaway_query_stops_at_its_limit_while_orders_and_inserts_go_on(api, kafka_bootstrap, topics):
    base, _, admin = api
    async with aiohttp.ClientSession(headers=admin) as http:
        started = time.monotonic()
        runaway = asyncio.create_task(_sql(http, base, SPIN))
        await asyncio.sleep(0.5)
        latencies = []
        new = sample_event("taobao", "shopB", "9001", 1)
        _produce_events(kafka_bootstrap, topics.order_events, [new])
        inserted_after = None
        while not runaway.done():
            t0 = time.monotonic()
            async with http.get(base + "/api/orders?limit=50") as resp:
                assert resp.status == 200
            latencies.append(time.monotonic() - t0)
            if inserted_after is None:
                async with http.get(base + f"/api/orders/{new['order_id']}") as resp:
                    if resp.status == 200:
                        inserted_after = time.monotonic() - started
            await asyncio.sleep(0.1)
        status, body = await runaway
        elapsed = time.monotonic() - started
    latencies.sort()
    print(f"\nrunaway stopped after {elapsed:.2f} s (limit {RUNAWAY_S} s): {body.get('error')}"
          f"\n/api/orders while it ran: {len(latencies)} calls, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms,"
          f" max {latencies[-1] * 1000:.0f} ms; an order produced meanwhile was projected at {inserted_after} s")
    assert status == 400 and "查询超时" in body["error"] and "TIMEOUT_EXCEEDED" in body["error"], body
    assert RUNAWAY_S - 0.5 < elapsed < RUNAWAY_S + 5
    assert inserted_after is not None and inserted_after < elapsed  # the projector's insert did not wait
    assert latencies[-1] < 2.0  # generous on two shared cores; typically tens of ms


async def test_a_query_whose_client_leaves_is_killed(api):
    from chdb import session

    base, data_path, admin = api
    probe = session.Session(data_path)  # a connection of its own on the same path, to watch the queries

    def analyst_queries() -> int:
        text = probe.query("SELECT count() FROM system.processes WHERE query LIKE '/* tonglu-analyst:%'",
                           "TSVRaw").bytes()
        return int(text)

    try:
        async with aiohttp.ClientSession(headers=admin, timeout=aiohttp.ClientTimeout(total=1.5)) as http:
            waiting = asyncio.create_task(_sql(http, base, SPIN))
            await asyncio.sleep(0.8)
            assert analyst_queries() == 1  # positive control: while its client waits, the query runs
            with pytest.raises(asyncio.TimeoutError):
                await waiting
        left = time.monotonic()
        while analyst_queries() and time.monotonic() - left < 10:
            await asyncio.sleep(0.1)
        gone_after = time.monotonic() - left
        print(f"\nthe analyst query was gone {gone_after:.2f} s after its client left (limit {RUNAWAY_S} s)")
        assert analyst_queries() == 0 and gone_after < RUNAWAY_S - 2
    finally:
        probe.close()
