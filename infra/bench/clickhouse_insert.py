"""Measure the chdb insert path alone (from the repo root): `python -m infra.bench.clickhouse_insert [events] [rounds]`."""

from __future__ import annotations

import gc
import sys
import tempfile
import time

from projections.clickhouse.backends import ChdbBackend
from projections.clickhouse.ddl import create_schema
from projections.clickhouse.sink import ClickHouseSink
from tests.samples import sample_event


def bench_chdb(events: int = 50_000, rounds: int = 5) -> dict:
    """Add+flush `events` distinct orders' events `rounds` times; returns the best and median rates."""
    backend = ChdbBackend(tempfile.mkdtemp(prefix="tonglu-bench-"))
    try:
        create_schema(backend)
        sink = ClickHouseSink(backend)
        batch = [sample_event("taobao", f"s{i % 7}", str(i), 1 + i % 4) for i in range(events)]
        gc.freeze()  # the sample batch is long-lived; keep the collector from rescanning it
        flush_rates, total_rates = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            for event in batch:
                sink.add("order_event", event)
            added = time.perf_counter()
            sink.flush()
            done = time.perf_counter()
            flush_rates.append(events / (done - added))
            total_rates.append(events / (done - started))
        flush_rates.sort()
        total_rates.sort()
        return {
            "events": events,
            "flush_best": flush_rates[-1],
            "flush_median": flush_rates[len(flush_rates) // 2],
            "add_and_flush_median": total_rates[len(total_rates) // 2],
        }
    finally:
        backend.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for name, value in bench_chdb(*args).items():
        print(
            f"{name:>22}: {value:,.0f}" + (" event rows/s (+ as many order rows)" if name != "events" else "")
        )
