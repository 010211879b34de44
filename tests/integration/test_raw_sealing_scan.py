"""Buyers' plaintext appears nowhere: simulated shops run through connectors, normalizer and projector, then
every topic's bytes, the raw record archive on disk, every ClickHouse table, the API's answers and the processes' logs are scanned for the
simulators' buyers' phones, names, emails and streets."""
import asyncio
import json
import re
import subprocess
import sys

import aiohttp

from connectors import platforms
from connectors.runtime.archive import read_archive
from connectors.simkit.server import AUTOPILOT, WORLD, ensure_shop
from infra.broker import free_port
from projections.clickhouse import ChdbBackend
from projections.tokens import TokenStore
from schemas.codec import AvroCodec
from schemas.kafka import read_to_end
from schemas.sealing import EnvKeyProvider, Opener, new_key_spec, open_body
from tests.integration.helpers import serve_app, start_worker, stop_worker, worker_env
from tests.integration.helpers import wait_for as wait_for_sync
from tests.integration.projector_helpers import wait_for

SHOPS = {"taobao": "scan-tb", "shopify": "scan-sp"}
WORKERS = ("projector", "normalizer", "connectors")
_DIGIT_RUN = re.compile(rb"(?<![0-9])\+?([0-9]{11})(?![0-9])")


def _buyers(worlds) -> dict[str, set[bytes]]:
    """The plaintext of every simulated order's buyer by kind: phones (as 11-digit runs), names, emails, streets;
    texts also as JSON writes them with \\u escapes."""
    kinds: dict[str, set[bytes]] = {"phone": set(), "name": set(), "email": set(), "street": set()}
    for world in worlds:
        for order in list(world.orders.values()):
            kinds["phone"].add("".join(ch for ch in order.receiver_phone if ch.isdigit()).encode())
            for kind, value in (("name", order.receiver_name), ("email", order.buyer_nick), ("street", order.street)):
                if len(value) >= 2:
                    kinds[kind] |= {value.encode(), json.dumps(value)[1:-1].encode()}
    return kinds


def _found(blob: bytes, buyers: dict[str, set[bytes]]) -> dict[str, list[bytes]]:
    """The buyers' values in `blob`, by kind (kinds not found left out)."""
    found = {"phone": sorted({m.group(1) for m in _DIGIT_RUN.finditer(blob)} & buyers["phone"])}
    for kind in ("name", "email", "street"):
        found[kind] = sorted(t for t in buyers[kind] if t in blob)
    return {kind: values for kind, values in found.items() if values}


async def _get(http, url) -> bytes:
    async with http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()


async def test_no_buyer_plaintext_in_topics_tables_api_or_logs(kafka_bootstrap, topics, tmp_path):
    spec = new_key_spec("scan-k1")
    sims, runners = {}, []
    for platform, shop in SHOPS.items():
        app = platforms.module(platform, "simulator").create_app()
        ensure_shop(app, shop, demo=True)
        app[AUTOPILOT].update(orders_per_second=4.0, steps_per_second=6.0)
        runner, url = await serve_app(app)
        sims[platform] = (app, url)
        runners.append(runner)
    http_url = f"http://127.0.0.1:{free_port()}"
    token, _ = TokenStore(tmp_path / "tokens.json").create("scan", "viewer")
    env = worker_env(kafka_bootstrap, topics, TONGLU_RAW_KEYS=spec, TONGLU_DATA_DIR=tmp_path / "data",
                     TONGLU_TOKENS_FILE=tmp_path / "tokens.json", TONGLU_HTTP=http_url, TONGLU_WEBHOOK_HTTP=f"http://127.0.0.1:{free_port()}",
                     TONGLU_SIMULATORS=",".join(f"{p}={url}" for p, (_, url) in sims.items()),
                     TONGLU_PROJECTOR_NICE=0)
    logs = {name: tmp_path / f"{name}.log" for name in WORKERS}
    procs = [start_worker(name, env, logs[name]) for name in WORKERS]
    answers: dict[str, bytes] = {}
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:

            async def enough_orders():
                try:
                    counts = [json.loads(await _get(http, f"{http_url}/api/orders?platform={p}&limit=500"))["count"]
                              for p in SHOPS]
                except (aiohttp.ClientError, AssertionError):
                    return None
                return min(counts) >= 40 and counts

            await wait_for(enough_orders, timeout=180, interval=1.0)
            for platform in SHOPS:
                listed = await _get(http, f"{http_url}/api/orders?platform={platform}&limit=500")
                answers[f"/api/orders?platform={platform}"] = listed
                for order in json.loads(listed)["orders"][:20]:
                    path = f"/api/orders/{order['order_id']}"
                    answers[path] = await _get(http, f"{http_url}{path}")
            for path in ("/api/stats", "/api/anomalies", "/api/alerts", "/", "/metrics"):
                answers[path] = await _get(http, f"{http_url}{path}")
        for app, _ in sims.values():
            app[AUTOPILOT].update(orders_per_second=0.0, steps_per_second=0.0)
    finally:
        for proc in reversed(procs):
            stop_worker(proc)
        for runner in runners:
            await runner.cleanup()
    buyers = _buyers(app[WORLD] for app, _ in sims.values())

    kafka = {"bootstrap.servers": kafka_bootstrap}
    by_topic: dict[str, list] = {}
    for batch in await asyncio.to_thread(lambda: list(read_to_end(kafka, [s.name for s in topics.specs()],
                                                                  idle=1.0, group="scan"))):
        for msg in batch:
            by_topic.setdefault(msg.topic(), []).append((msg.key() or b"") + b"\n" + (msg.value() or b""))

    # positive control: the raw pages did carry the buyers' data — the key opens it
    codec, opener = AvroCodec("RawRecord"), Opener(EnvKeyProvider(spec))
    raws = [codec.decode(v.split(b"\n", 1)[1]) for v in by_topic[topics.raw_orders]]
    assert {raw["seal"]["key_id"] for raw in raws if raw["seal"]} <= {"scan-k1"}
    opened = b"\n".join(open_body(raw, opener) for raw in raws)
    plain = _found(opened, buyers)
    assert {kind: len(plain.get(kind, [])) >= (20 if kind == "phone" else 2) for kind in buyers} == dict.fromkeys(
        buyers, True), f"the shops' buyers did not reach raw.orders: {plain}"

    sources = {f"topic {name}": b"\n".join(values) for name, values in by_topic.items()}
    archived = list(read_archive(tmp_path / "data" / "archive"))
    assert len(archived) >= len(raws) // 2, "the connectors archived nothing"  # it holds what raw.orders holds
    sources["the raw record archive"] = b"\n".join(record.value for record in archived)
    backend = ChdbBackend(str(tmp_path / "data" / "chdb"))
    try:
        tables = [r["name"] for r in backend.query("SELECT name FROM system.tables WHERE database = 'tonglu'")]
        assert {"orders", "order_events", "connector_calls", "dead_letters"} <= set(tables)
        for table in tables:
            rows = backend.query(f"SELECT * FROM tonglu.`{table}`")
            sources[f"table {table}"] = json.dumps(rows, ensure_ascii=False, default=str).encode()
        assert len(json.loads(sources["table orders"])) >= 80
    finally:
        backend.close()
    sources.update({f"API {path}": body for path, body in answers.items()})
    sources.update({f"log {name}": path.read_bytes() for name, path in logs.items()})
    leaks = {where: {kind: values[:3] for kind, values in found.items()}
             for where, blob in sources.items() if (found := _found(blob, buyers))}
    assert not leaks, f"buyers' plaintext found: {leaks}"


def test_connectors_refuse_to_start_without_a_key_unless_plain_bodies_are_chosen(kafka_bootstrap, topics, tmp_path):
    base = {k: v for k, v in worker_env(kafka_bootstrap, topics, TONGLU_DATA_DIR=tmp_path, TONGLU_SIMULATORS="none",
                                        TONGLU_WEBHOOK_HTTP=f"http://127.0.0.1:{free_port()}").items()
            if not k.startswith("TONGLU_RAW_")}
    refused = subprocess.run([sys.executable, "-m", "infra.cli", "worker", "connectors"], env=base, check=False,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "no key to seal raw.orders bodies" in refused.stderr
    for extra, says in (({"TONGLU_RAW_KEYS": new_key_spec("k9")}, "sealed (k9)"),
                        ({"TONGLU_RAW_PLAINTEXT": "1"}, "stay in clear")):
        log = tmp_path / f"connectors-{says[:5]}.log"
        proc = start_worker("connectors", {**base, **extra}, log)
        try:
            wait_for_sync(lambda log=log, says=says: says in log.read_text(errors="replace"), timeout=60, what=says)
            assert proc.poll() is None
        finally:
            stop_worker(proc)
