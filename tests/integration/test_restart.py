"""A restarted simulator and connectors process: the same shops and orders, resumed checkpoints,
and no new events for old orders."""
import json
import os
import signal
import time
import urllib.request

from connectors import platforms
from infra.broker import free_port
from schemas.codec import AvroCodec
from schemas.sealing import EnvKeyProvider, Opener, new_key_spec
from tests.integration.helpers import TopicReader, start_worker, stop_worker, wait_for, worker_env

RAW = AvroCodec("RawRecord")
KEYS = new_key_spec("restart")  # the connectors seal raw bodies; the test opens them as the normalizer does
OPENER = Opener(EnvKeyProvider(KEYS))


def _call(base: str, path: str, payload: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base}{path}", method="POST" if payload is not None else "GET",
                                     data=json.dumps(payload).encode() if payload is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def _up(base: str) -> bool:
    try:
        _call(base, "/_sim/shops")
        return True
    except OSError:
        return False


def _ids_in(raw_values) -> set[str]:
    ids = set()
    for value in raw_values:
        raw = RAW.decode(value)
        ids |= {o["order_id"] for o in platforms.map_payload(raw["platform"], OPENER.open(raw), raw["content_type"],
                                                               raw["shop_id"])}
    return ids


def _events_until(reader: TopicReader, done, timeout=90.0) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        reader.poll(0.5)
        if done([e for _, e in reader.records]):
            return [e for _, e in reader.records]
    raise AssertionError(f"events not complete within {timeout}s ({len(reader.records)} events)")


def test_a_restarted_simulator_and_connectors_see_the_same_world_and_emit_nothing_for_old_orders(
        kafka_bootstrap, topics, tmp_path):
    sim = f"http://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    env = worker_env(kafka_bootstrap, topics, TONGLU_DATA_DIR=data, TONGLU_SIMULATORS=f"taobao={sim}",
                     TONGLU_RAW_KEYS=KEYS, TONGLU_DEMO_RATE=0, TONGLU_ALERT_SIM_HTTP=f"http://127.0.0.1:{free_port()}",
                     TONGLU_ALERT_SMTP_PORT=free_port(), TONGLU_WEBHOOK_HTTP=f"http://127.0.0.1:{free_port()}",
                     TONGLU_TRACKING_SIM_HTTP=f"http://127.0.0.1:{free_port()}",
                     TONGLU_ERP_SIM_HTTP=f"http://127.0.0.1:{free_port()}",
                     TONGLU_SMS_SIM_HTTP=f"http://127.0.0.1:{free_port()}")
    workers = {name: start_worker(name, env, tmp_path / f"{name}1.log")
               for name in ("simulators", "connectors", "normalizer")}
    events = TopicReader(kafka_bootstrap, topics.order_events, "OrderEvent")
    raw = TopicReader(kafka_bootstrap, topics.raw_orders)
    try:
        wait_for(lambda: _up(sim), timeout=60, what="simulator up")
        old = {f"taobao:home:{e}" for e in _call(sim, "/_sim/orders", {"shop_id": "home", "count": 20})["external_ids"]}
        before = _events_until(events, lambda got: old <= {e["order_id"] for e in got if e["event_type"] == "OrderPaid"})
        versions = {}
        for event in before:
            versions[event["order_id"]] = max(versions.get(event["order_id"], 0), event["version"])

        # a crash of the connectors, a clean stop of the simulators; both come back on the same data dir
        os.killpg(workers["connectors"].pid, signal.SIGKILL)
        workers["connectors"].wait(10)
        assert stop_worker(workers["simulators"]) == 0
        assert (data / "simulators" / "taobao.json").exists()
        checkpoint = json.loads((data / "checkpoints.json").read_text())["taobao:home"]
        raw.poll(1)
        raw_before, events_before = len(raw.records), len(events.records)
        workers["simulators"] = start_worker("simulators", env, tmp_path / "simulators2.log")
        wait_for(lambda: _up(sim), timeout=60, what="simulator up again")
        assert [s["shop_id"] for s in _call(sim, "/_sim/shops")["shops"]] == ["home"]
        workers["connectors"] = start_worker("connectors", env, tmp_path / "connectors2.log")

        # the restarted connector polls from its checkpoint (minus the lookback, which re-reads the old orders)
        wait_for(lambda: raw.poll(0.5) or old <= _ids_in(v for _, v in raw.records[raw_before:]), timeout=60,
                 what="old orders polled again after the restart")
        assert json.loads((data / "checkpoints.json").read_text())["taobao:home"] >= checkpoint
        # positive control: orders created after that page flow through the same partition behind it
        new = {f"taobao:home:{e}" for e in _call(sim, "/_sim/orders", {"shop_id": "home", "count": 5})["external_ids"]}
        assert not new & old
        after = _events_until(events, lambda got: new <= {e["order_id"] for e in got[events_before:]
                                                           if e["event_type"] == "OrderPaid"})[events_before:]
        assert {e["order_id"] for e in after} == new, "events for old orders after the restart"

        # the world kept every old order: all 25 move on, and old orders continue their versions
        assert _call(sim, "/_sim/advance", {"shop_id": "home", "steps": 100})["transitions"] == 25
        moved = _events_until(events, lambda got: old <= {e["order_id"] for e in got[events_before + len(after):]})
        for event in moved[events_before + len(after):]:
            if event["order_id"] in old:
                assert event["version"] == versions[event["order_id"]] + 1, event
    finally:
        for proc in workers.values():
            stop_worker(proc)
        events.close()
        raw.close()
