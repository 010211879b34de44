"""The baseline: a plain per-message Faust normalizer (one order per record, one send per event).

Run as `python -m infra.bench.faust_baseline` with TONGLU_KAFKA_BOOTSTRAP, BENCH_IN, BENCH_OUT, BENCH_N;
prints `BASELINE <orders> <events> <seconds>` when BENCH_N orders are done.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import faust

from connectors import platforms
from schemas.codec import AvroCodec
from schemas.sealing import open_body
from streams.derive import derive_events

N = int(os.environ["BENCH_N"])
app = faust.App(f"bench-baseline-{os.environ['BENCH_IN']}", broker=f"kafka://{os.environ['TONGLU_KAFKA_BOOTSTRAP']}",
                store="memory://", web_enabled=False, datadir=tempfile.mkdtemp(prefix="tonglu-baseline-"), autodiscover=False, broker_session_timeout=6.0,
                consumer_auto_offset_reset="earliest", topic_allow_declare=False)
source = app.topic(os.environ["BENCH_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["BENCH_OUT"], key_serializer="raw", value_serializer="raw")
raw_codec, event_codec = AvroCodec("RawRecord"), AvroCodec("OrderEvent")
state = {"orders": 0, "events": 0, "t0": None}


@app.agent(source)
async def normalize_each(stream):
    async for value in stream:
        if state["t0"] is None:
            state["t0"] = time.time()
        raw = raw_codec.decode(value)
        for order in platforms.map_payload(raw["platform"], open_body(raw), raw["content_type"], raw["shop_id"]):
            for event in derive_events(None, order, int(time.time() * 1000)):
                await sink.send(key=order["order_id"].encode(), value=event_codec.encode(event))
                state["events"] += 1
            state["orders"] += 1
        if state["orders"] >= N:
            print(f"BASELINE {state['orders']} {state['events']} {time.time() - state['t0']:.3f}", flush=True)
            sys.stdout.flush()
            os._exit(0)


if __name__ == "__main__":
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
