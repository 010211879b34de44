"""Contract suite of the ClickHouse sink, run on every backend (chdb always; a server when configured)."""

from __future__ import annotations

import os

import pytest

from connectors.tracking.receiver import tracking_record
from infra.bench.workload import encode_pages, taobao_pages
from projections.clickhouse import ChdbBackend, ClickHouseSink, FlushError, ServerBackend, create_schema
from schemas.codec import AvroCodec
from streams.normalize import Normalizer, RawIn
from tests.samples import carrier_push, sample_call, sample_dead_letter, sample_event

DB = "tonglu_test"


class FailingOnce:
    """Wraps a backend; the first insert into `table` fails."""

    def __init__(self, inner, table: str):
        self.inner, self.table, self.failed = inner, table, False

    def insert(self, table, column_names, rows):
        if table.endswith(self.table) and not self.failed:
            self.failed = True
            raise ConnectionError("simulated ClickHouse outage")
        self.inner.insert(table, column_names, rows)


def count(backend, table: str) -> int:
    return int(backend.query(f"SELECT count() AS n FROM {DB}.{table} FINAL")[0]["n"])


class SinkContract:
    """Every backend must pass these. Subclasses provide the `backend` fixture (schema created)."""

    def test_inserts_every_kind(self, backend):
        sink = ClickHouseSink(backend, DB)
        for i in range(10):
            sink.add("order_event", sample_event(external_id=str(i)))
        sink.add("connector_call", sample_call("c1"))
        sink.add("dead_letter", sample_dead_letter())
        assert sink.pending() == 22
        sink.flush()
        assert sink.pending() == 0
        assert (count(backend, "order_events"), count(backend, "orders")) == (10, 10)
        assert (count(backend, "connector_calls"), count(backend, "dead_letters")) == (1, 1)

    def test_replay_is_idempotent(self, backend):
        events = [sample_event(external_id=str(i), version=v) for i in range(5) for v in (1, 2, 3)]
        for _ in range(2):
            sink = ClickHouseSink(backend, DB)
            for event in events:
                sink.add("order_event", event)
            sink.add("connector_call", sample_call("c1"))
            sink.add("dead_letter", sample_dead_letter())
            sink.flush()
        assert (count(backend, "order_events"), count(backend, "orders")) == (15, 5)
        assert (count(backend, "connector_calls"), count(backend, "dead_letters")) == (1, 1)

    def test_orders_keep_the_highest_version(self, backend):
        for version in (3, 1, 2):  # out of order, one flush each: separate parts
            sink = ClickHouseSink(backend, DB)
            sink.add("order_event", sample_event(external_id="42", version=version))
            sink.flush()
        rows = backend.query(
            f"SELECT version, status FROM {DB}.orders FINAL WHERE order_id = 'taobao:shop1:42'"
        )
        assert rows == [{"version": 3, "status": "SHIPPED"}]

    def test_failed_flush_keeps_the_batch(self, backend):
        sink = ClickHouseSink(FailingOnce(backend, "order_events"), DB)
        for i in range(3):
            sink.add("order_event", sample_event(external_id=str(i)))
        with pytest.raises(FlushError):
            sink.flush()
        assert sink.pending() > 0
        sink.flush()
        assert sink.pending() == 0
        assert (count(backend, "order_events"), count(backend, "orders")) == (3, 3)

    def test_times_round_trip(self, backend):
        event = sample_event(external_id="7", version=4)
        sink = ClickHouseSink(backend, DB)
        sink.add("order_event", event)
        sink.flush()
        row = backend.query(
            f"SELECT toUnixTimestamp64Milli(occurred_at) AS o, "
            f"toUnixTimestamp64Milli(delivered_at) AS d FROM {DB}.orders FINAL "
            f"INNER JOIN {DB}.order_events FINAL USING order_id"
        )[0]
        assert (row["o"], row["d"]) == (event["occurred_at"], event["order"]["delivered_at"])


def normalized_events(orders: int) -> list[bytes]:
    """OrderEvents as the normalizer writes them, from simulated Taobao pages (several lines per order,
    shipments, refunds, missing values)."""
    pages = encode_pages(taobao_pages(orders, shops=2, page_size=50))
    out = Normalizer().process([RawIn("raw.orders", 0, i, key, value) for i, (key, value, _) in enumerate(pages)])
    return [value for _, value in out.events]


def tracked_events(orders: int) -> list[bytes]:
    """normalized_events plus the carrier's news for every shipped order (trouble for some, signed for the
    others), applied by the same normalizer."""
    pages = encode_pages(taobao_pages(orders, shops=2, page_size=50))
    normalizer = Normalizer()
    out = normalizer.process([RawIn("raw.orders", 0, i, key, value) for i, (key, value, _) in enumerate(pages)])
    pushes = []
    for n, order_id in enumerate(sorted({key.decode() for key, _ in out.events})):
        order = normalizer.store.get(order_id)
        if order["shipments"]:
            turn = "exception" if n % 3 == 0 else "delivered"
            pushes.append(tracking_record(order_id, carrier_push(order["shipments"][0]["tracking_no"], turn)))
    assert pushes
    tracked = normalizer.process([RawIn("raw.orders", 1, i, key, value) for i, (key, value) in enumerate(pushes)])
    assert not tracked.dead
    return [value for _, value in out.events + tracked.events]


def table_dump(backend, db: str, table: str) -> list[dict]:
    return backend.query(f"SELECT * FROM {db}.{table} FINAL ORDER BY ALL")


class EncodedEventsContract:
    """Events handed over undecoded (ClickHouse parses the Avro) end as the rows the Python path makes."""

    @staticmethod
    def write_both_ways(backend, values: list[bytes]) -> None:
        """`values` decoded in Python into DB, and handed to ClickHouse undecoded into DB_encoded."""
        decoder = ClickHouseSink(backend, DB)
        codec = AvroCodec("OrderEvent")
        for value in values:
            decoder.add("order_event", codec.decode(value))
        decoder.flush()
        create_schema(backend, f"{DB}_encoded")
        encoded = ClickHouseSink(backend, f"{DB}_encoded")
        for value in values:
            encoded.add_encoded_event(value)
        encoded.flush()
        assert encoded.take_rejected() == []

    def test_same_rows_as_decoded_events(self, backend):
        values = normalized_events(300)
        self.write_both_ways(backend, values)
        for table in ("order_events", "orders"):
            rows = table_dump(backend, DB, table)
            assert len(rows) == (len(values) if table == "order_events" else 300)
            assert table_dump(backend, f"{DB}_encoded", table) == rows

    def test_tracking_rows_are_the_same_both_ways(self, backend):
        values = tracked_events(200)
        self.write_both_ways(backend, values)
        rows = table_dump(backend, DB, "tracking")
        steps = sum(AvroCodec("OrderEvent").decode(v)["event_type"] == "TrackingUpdated" for v in values)
        assert len(rows) == steps and {r["tracking_state"] for r in rows} == {"EXCEPTION", "DELIVERED"}
        for table in ("tracking", "orders", "order_events"):
            assert table_dump(backend, f"{DB}_encoded", table) == table_dump(backend, DB, table)

    def test_a_corrupt_event_is_rejected_and_the_rest_written(self, backend):
        values = normalized_events(20)
        broken = values[5][:-7]
        sink = ClickHouseSink(backend, DB)
        for i, value in enumerate([*values[:5], broken, *values[5:]]):
            sink.add_encoded_event(value, f"order.events[0]@{i}")
        sink.flush()
        rejected = sink.take_rejected()
        assert [where for where, _ in rejected] == ["order.events[0]@5"]
        assert "corrupt Order" in rejected[0][1]
        assert (count(backend, "order_events"), count(backend, "orders")) == (len(values), 20)


    def test_a_refused_container_is_written_through_the_decoding_path(self, backend):
        values = normalized_events(30)
        sink = ClickHouseSink(RefusingEncoded(backend), DB)
        for value in values:
            sink.add_encoded_event(value)
        sink.flush()
        assert sink.take_rejected() == []
        assert (count(backend, "order_events"), count(backend, "orders")) == (len(values), 30)


class RefusingEncoded:
    """Wraps a backend that refuses every pre-encoded insert (as ClickHouse refuses a body it cannot parse)."""

    def __init__(self, inner):
        self.inner = inner

    def insert(self, table, column_names, rows):
        self.inner.insert(table, column_names, rows)

    def insert_encoded(self, table, payload, fmt):
        raise RuntimeError("Cannot parse input")


class TestChdbSink(SinkContract, EncodedEventsContract):
    @pytest.fixture
    def backend(self, tmp_path):
        # chdb holds one data path per process at a time: each test opens its own and closes it.
        backend = ChdbBackend(str(tmp_path / "chdb"))
        create_schema(backend, DB)
        yield backend
        backend.close()


@pytest.mark.skipif(
    not os.environ.get("TONGLU_TEST_CLICKHOUSE_URL"), reason="TONGLU_TEST_CLICKHOUSE_URL not set"
)
class TestServerSink(SinkContract, EncodedEventsContract):
    @pytest.fixture
    def backend(self):
        backend = ServerBackend(os.environ["TONGLU_TEST_CLICKHOUSE_URL"])
        for db in (DB, f"{DB}_encoded"):
            backend.command(f"DROP DATABASE IF EXISTS {db}")
        create_schema(backend, DB)
        yield backend
        for db in (DB, f"{DB}_encoded"):
            backend.command(f"DROP DATABASE IF EXISTS {db}")
        backend.close()
