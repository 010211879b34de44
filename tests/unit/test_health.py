"""The health verdict over heartbeats: which stage is up, when the report is degraded."""
from infra.heartbeat import heartbeat_record
from projections.health import STAGES, record_heartbeat, stage_health

BROKER_UP = {"ok": True, "bootstrap": "127.0.0.1:9092"}


def _seen_all(at: float) -> dict:
    seen: dict = {}
    for i, stage in enumerate(STAGES):
        record_heartbeat(seen, heartbeat_record(stage, "host-a", 100 + i, 1_700_000_000_000, 1_700_000_001_000), at)
    return seen


def test_every_stage_beating_recently_is_ok():
    report = stage_health(_seen_all(at=1000.0), now=1009.0, stale_after=10.0, broker=BROKER_UP)
    assert report["status"] == "ok"
    assert set(report["stages"]) == {*STAGES, "broker"}
    normalizer = report["stages"]["normalizer"]
    assert normalizer["ok"] and normalizer["seconds_ago"] == 9.0
    assert [i["pid"] for i in normalizer["instances"]] == [101]


def test_a_stage_silent_longer_than_the_window_is_down():
    seen = _seen_all(at=1000.0)
    for stage in STAGES:
        if stage != "detector":
            record_heartbeat(seen, heartbeat_record(stage, "host-a", 1, 1, 1), 1011.0)
    report = stage_health(seen, now=1011.0, stale_after=10.0, broker=BROKER_UP)
    assert report["status"] == "degraded"
    detector = report["stages"]["detector"]
    assert not detector["ok"] and detector["instances"] == [] and "11s" in detector["reason"]
    assert all(report["stages"][s]["ok"] for s in STAGES if s != "detector")


def test_one_live_instance_keeps_its_stage_up():
    seen = _seen_all(at=1000.0)
    record_heartbeat(seen, heartbeat_record("normalizer", "host-b", 7, 2, 2), 1015.0)
    report = stage_health(seen, now=1015.0, stale_after=10.0, broker=BROKER_UP)
    assert report["stages"]["normalizer"]["ok"]
    assert [i["host"] for i in report["stages"]["normalizer"]["instances"]] == ["host-b"]


def test_a_stage_never_seen_is_down():
    report = stage_health({}, now=5.0, stale_after=10.0, broker=BROKER_UP)
    assert report["status"] == "degraded"
    assert report["stages"]["alerter"] == {"ok": False, "last_seen": None, "seconds_ago": None, "instances": [],
                                           "reason": "从未收到心跳 no heartbeat yet"}


def test_the_broker_down_degrades_the_report():
    report = stage_health(_seen_all(at=1000.0), now=1001.0, stale_after=10.0, broker={"ok": False})
    assert report["status"] == "degraded" and all(report["stages"][s]["ok"] for s in STAGES)


def test_a_local_failure_overrides_fresh_heartbeats():
    report = stage_health(_seen_all(at=1000.0), now=1001.0, stale_after=10.0, broker=BROKER_UP,
                          local_failures={"projector": "消费线程已停止 consumer thread stopped"})
    assert report["status"] == "degraded"
    assert report["stages"]["projector"]["ok"] is False
    assert report["stages"]["projector"]["reason"].startswith("消费线程已停止")


def test_instances_silent_for_an_hour_are_forgotten():
    seen = _seen_all(at=1000.0)
    record_heartbeat(seen, heartbeat_record("normalizer", "host-b", 7, 2, 2), 1000.0 + 3601)
    assert [i["host"] for i in seen["normalizer"].values()] == ["host-b"]
    assert seen["detector"] == {}
