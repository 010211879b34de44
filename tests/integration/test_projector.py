"""The projector on the real local broker with chdb, through its HTTP API."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest
from confluent_kafka import Consumer, TopicPartition

from projections.access import Role
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from tests.integration.projector_helpers import bearer, produce, running_projector, wait_for
from tests.samples import sample_call, sample_dead_letter, sample_event

pytestmark = pytest.mark.integration
N_ORDERS = 40
RAW_RECORDS = 12


def order_events() -> list[dict]:
    return [
        sample_event("jd" if i % 2 else "taobao", "shopA", str(1000 + i), v)
        for i in range(N_ORDERS)
        for v in (1, 2, 3)
    ]


@pytest.fixture
async def running(kafka_bootstrap, topics, tmp_path):
    """The projector + API on chdb, with a fresh group; yields (base_url, normalizer_group)."""
    normalizer = f"norm-{uuid.uuid4().hex[:6]}"
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    store = TokenStore(tmp_path / "tokens.json")
    async with running_projector(kafka_bootstrap, names, str(tmp_path / "chdb"), normalizer, store) as base:
        yield base, normalizer, store


async def test_projector_end_to_end(running, kafka_bootstrap, topics):
    base, normalizer, store = running
    events = order_events()
    codec = AvroCodec("OrderEvent")
    encoded = [(e["order_id"].encode(), v) for e, v in zip(events, codec.encode_many(events), strict=True)]
    # junk, and a record with the current schema's header whose body is cut short
    broken = (b"cut", encoded[0][1][:-9])
    produce(kafka_bootstrap, topics.order_events, [*encoded, (b"junk", b"not avro at all"), broken])
    now_ms = int(time.time() * 1000)
    calls = [
        sample_call(f"c{i}", ok=i != 3, latency_ms=100.0 + i, started_at=now_ms - i * 1000) for i in range(5)
    ]
    produce(
        kafka_bootstrap,
        topics.connector_calls,
        [(b"taobao:shop1", v) for v in AvroCodec("ConnectorCall").encode_many(calls)],
    )
    dead = sample_dead_letter(offset=3, topic=topics.raw_orders)
    produce(kafka_bootstrap, topics.raw_orders_dlq, [(b"k", AvroCodec("DeadLetter").encode(dead))])
    produce(kafka_bootstrap, topics.raw_orders, [(f"k{i}".encode(), b"raw body") for i in range(RAW_RECORDS)])

    async with aiohttp.ClientSession(headers=bearer(store, Role.VIEWER)) as http:

        async def get(path):
            async with http.get(base + path) as resp:
                return resp.status, await resp.json()

        async def stats_ready():
            _, s = await get("/api/stats")
            done = (
                s["total_events"] == len(events)
                and s["dlq_count"] == 1
                and s["raw_records"] == RAW_RECORDS
                and s["lag_total"] == RAW_RECORDS
                and s["undecodable"] == 2
                and s["connector_calls"]
            )
            return s if done else None

        stats = await wait_for(stats_ready)
        assert stats["total_orders"] == N_ORDERS and stats["orders_by_platform"] == {"jd": 20, "taobao": 20}
        assert stats["orders_by_status"] == {"SHIPPED": N_ORDERS}
        call = stats["connector_calls"][0]
        assert call["calls"] == 5 and call["success_rate"] == pytest.approx(0.8)

        status, order = await get("/api/orders/taobao:shopA:1000")
        assert status == 200 and order["version"] == 3 and order["status"] == "SHIPPED"
        assert order["created_at"].endswith("Z") and order["receiver"]["phone_masked"] == "138****5678"
        status, missing = await get("/api/orders/taobao:shopA:nope")
        assert status == 404 and "error" in missing
        status, listed = await get("/api/orders?platform=jd&limit=5")
        assert status == 200 and listed["count"] == 5 and {o["platform"] for o in listed["orders"]} == {"jd"}

        # The normalizer catches up: lag is counted end - committed.
        committer = Consumer(
            {"bootstrap.servers": kafka_bootstrap, "group.id": normalizer, "enable.auto.commit": False}
        )
        ends = {int(p): v["end"] for p, v in stats["lag"].items()}
        committer.commit(
            offsets=[TopicPartition(topics.raw_orders, p, end) for p, end in ends.items()], asynchronous=False
        )
        committer.close()

        async def caught_up():
            _, s = await get("/api/stats")
            return s["lag_total"] == 0

        await wait_for(caught_up)

        # At-least-once replay of the whole log changes no stored count.
        produce(kafka_bootstrap, topics.order_events, encoded)

        async def replayed():
            _, s = await get("/api/stats")
            return s if s["events_consumed"] == 2 * len(events) else None

        again = await wait_for(replayed)
        assert (again["total_events"], again["total_orders"]) == (len(events), N_ORDERS)

        async with http.get(base + "/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200 and "tonglu_projector_records_consumed_total" in text
        assert 'tonglu_orders{platform="jd",status="SHIPPED"} 20.0' in text
        async with http.get(base + "/") as resp:
            page = await resp.text()
        assert resp.status == 200 and "通路 Tonglu · 订单中心" in page and "/api/stats" in page


async def test_sql_endpoint_is_read_only(running):
    base, _, store = running
    async with aiohttp.ClientSession(headers=bearer(store, Role.ADMIN)) as http:

        async def sql(text):
            async with http.post(base + "/api/sql", json={"sql": text}) as resp:
                return resp.status, await resp.json()

        status, body = await sql("SELECT count() AS n, 'x' AS s FROM tonglu.orders")
        assert status == 200 and body == {"columns": ["n", "s"], "rows": [[0, "x"]]}
        status, body = await sql("-- dashboard\nselect 1 as one;")
        assert status == 200 and body["rows"] == [[1]]
        for bad in (
            "DROP TABLE tonglu.orders",
            "INSERT INTO tonglu.orders (order_id) VALUES ('x')",
            "SELECT 1; DROP TABLE tonglu.orders",
            "SELECT * FROM file('/etc/passwd')",
            "ALTER TABLE tonglu.orders DELETE WHERE 1",
            "SELECT * FROM no_such_table",
        ):
            status, body = await sql(bad)
            assert status == 400 and body["error"], bad
        async with http.post(base + "/api/sql", data=b"not json") as resp:
            assert resp.status == 400
        status, body = await sql("SELECT count() AS n FROM tonglu.orders")
        assert status == 200


def test_a_pause_writes_a_small_batch_a_larger_one_gathers_on(kafka_bootstrap, topics, tmp_path):
    """A trickle is written as soon as the stream pauses (a few orders show at once); a batch of at
    least `quiet_batch` messages keeps gathering across the pause: records a fetch round apart -> one
    flush."""
    from projections.clickhouse import ChdbBackend, create_schema
    from projections.service import Projector

    backend = ChdbBackend(str(tmp_path / "chdb"))
    create_schema(backend)
    names = {"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
             "order_events": topics.order_events, "connector_calls": topics.connector_calls}
    projector = Projector(kafka_config={"bootstrap.servers": kafka_bootstrap}, topics=names,
                          normalizer_group=f"norm-{uuid.uuid4().hex[:6]}", backend=backend,
                          group_id=f"proj-{uuid.uuid4().hex[:6]}", gather_seconds=4.0, quiet_batch=2)
    codec = AvroCodec("OrderEvent")

    def send(*external_ids: str) -> None:  # one produce call: same key, same partition, one fetch
        events = [sample_event("taobao", "shopG", "1", int(x)) for x in external_ids]
        produce(kafka_bootstrap, topics.order_events,
                [(e["order_id"].encode(), codec.encode(e)) for e in events])

    def wait_events(n: int) -> None:
        deadline = time.monotonic() + 45
        while projector.counters()["total_events"] < n:
            assert time.monotonic() < deadline, f"only {projector.counters()['total_events']} of {n} events"
            time.sleep(0.1)

    projector.start()
    try:
        send("1")  # the consumer is assigned and at the live end once this one is written
        wait_events(1)
        commits = projector.commits
        send("2")
        time.sleep(1.2)  # longer than a fetch round (the broker holds a fetch up to 0.5 s)
        send("3")
        wait_events(3)
        assert projector.commits == commits + 2  # one record each: written when the stream paused
        commits = projector.commits
        send("4", "5")
        time.sleep(1.2)
        send("6")
        wait_events(6)
        assert projector.commits == commits + 1  # two records gathered on across the pause
        rows = backend.query("SELECT count() AS n FROM tonglu.order_events FINAL WHERE shop_id = 'shopG'")
        assert rows[0]["n"] == 6
    finally:
        projector.stop()
        backend.close()
