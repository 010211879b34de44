"""Alert routing policy: routes, throttling + aggregation, critical, dedup, quiet hours, no plaintext PII."""
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from streams.alerting.config import RoutingConfig, RoutingError, load_routing
from streams.alerting.policy import AlertRouter

BJ = timezone(timedelta(hours=8))
T0 = int(datetime(2024, 5, 29, 10, 0, tzinfo=BJ).timestamp() * 1000)  # 10:00 Beijing, outside quiet hours
MIN = 60_000
API = "http://api.test"
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ROOT = Path(__file__).resolve().parents[2]


def config(**overrides) -> RoutingConfig:
    data = {
        "api_base": API,
        "routes": [
            {"name": "vip", "match": {"shop": ["vip-shop"]}, "channels": ["wecom"]},
            {"name": "jd-critical", "match": {"platform": ["jd"], "severity": ["critical"]},
             "channels": ["feishu", "sms"], "quiet_hours": False},
            {"name": "critical", "match": {"severity": ["critical"]}, "channels": ["dingtalk", "feishu"],
             "quiet_hours": False},
            {"name": "default", "channels": ["dingtalk", "email"]},
        ],
        **overrides,
    }
    return RoutingConfig.model_validate(data)


def anomaly(n: int, rule="zero_amount", severity="warning", platform="taobao", shop="s1", **extra) -> dict:
    return {"anomaly_id": f"a-{rule}-{n}", "order_id": f"{platform}:{shop}:28417366501{n:05d}",
            "event_id": None,
            "platform": platform, "shop_id": shop, "rule": rule, "severity": severity, "action": "flag",
            "state": "raised", "message_zh": "订单金额为 0", "message_en": "zero amount",
            "evidence": {"paid_total": "0", "currency": "CNY"}, "detected_at": T0, "order_version": 1,
            **extra}


def test_routes_by_severity_platform_and_shop():
    cfg = config()
    assert cfg.route_for(anomaly(1, shop="vip-shop", severity="critical")).name == "vip"
    assert cfg.route_for(anomaly(1, platform="jd", severity="critical")).name == "jd-critical"
    assert cfg.route_for(anomaly(1, platform="jd", severity="warning")).name == "default"
    assert cfg.route_for(anomaly(1, severity="critical")).name == "critical"
    router = AlertRouter(cfg)
    router.offer(anomaly(1, platform="jd", severity="critical"), T0)
    router.offer(anomaly(2, shop="vip-shop"), T0)
    out = router.due(T0)
    assert [(o.route, o.channels) for o in out] == [("jd-critical", ("feishu", "sms"))]
    assert [(o.route, o.channels) for o in router.due(T0 + MIN)] == [("vip", ("wecom",))]


def test_37_zero_amount_in_a_minute_is_one_message():
    router = AlertRouter(config())
    for n in range(37):
        router.offer(anomaly(n), T0 + n * 1500)
    assert router.due(T0 + 30_000) == []
    assert router.next_due_ms() == T0 + MIN
    [out] = router.due(T0 + MIN)
    text = out.message.text_markdown
    assert "过去 1 分钟 37 个订单金额为 0（zero_amount）" in text
    assert text.index("过去") < text.index("37 orders")  # Chinese first, then English
    assert text.count(f"]({API}/api/orders/") == 5 and out.message.text_plain.count("/api/orders/") == 5
    assert "另有 32 个订单未列出" in text
    assert len(out.message.anomaly_ids) == 37 and out.kind == "batch"
    assert out.channels == ("dingtalk", "email")
    assert router.due(T0 + 2 * MIN) == []
    router.offer(anomaly(99), T0 + 2 * MIN)
    [later] = router.due(T0 + 3 * MIN)
    assert later.message.anomaly_ids == ("a-zero_amount-99",) and later.key != out.key


def test_one_message_per_rule_and_budget_per_route():
    router = AlertRouter(config(max_messages_per_window=2))
    for n, rule in enumerate(["zero_amount", "zero_amount", "price_anomaly", "ship_overdue"]):
        router.offer(anomaly(n, rule=rule), T0)
    first = router.due(T0 + MIN)
    assert [(o.rule, len(o.message.anomaly_ids)) for o in first] == [("zero_amount", 2), ("price_anomaly", 1)]
    router.offer(anomaly(10, rule="price_anomaly"), T0 + MIN + 1)  # a new window opens for that rule
    assert router.due(T0 + MIN + 10) == []  # ship_overdue is ripe but the route's budget is spent
    second = router.due(T0 + 2 * MIN + 1)
    assert sorted(o.rule for o in second) == ["price_anomaly", "ship_overdue"]
    held = next(o for o in second if o.rule == "ship_overdue")
    assert "过去 2 分钟 1 个订单超时未发货（ship_overdue）" in held.message.text_markdown


def test_critical_is_immediate_and_deduped():
    router = AlertRouter(config())
    crit = anomaly(1, severity="critical", action="hold")
    router.offer(crit, T0)
    router.offer(crit, T0 + 1)
    [out] = router.due(T0)
    assert out.kind == "immediate" and out.channels == ("dingtalk", "feishu")
    assert "严重" in out.message.title and "已暂停履约" in out.message.text_markdown
    assert f"{API}/api/orders/{crit['order_id']}" in out.message.text_markdown
    router.offer(crit, T0 + 5)
    assert router.due(T0 + 2 * MIN) == []


def test_critical_storm_is_capped_then_aggregated():
    router = AlertRouter(config(max_immediate_per_window=3))
    for n in range(10):
        router.offer(anomaly(n, severity="critical"), T0 + n)
    now = router.due(T0 + 10)
    assert [o.kind for o in now] == ["immediate"] * 3
    [batch] = router.due(T0 + MIN + 10)
    assert len(batch.message.anomaly_ids) == 7 and "严重" in batch.message.title


def test_dedup_survives_restart_via_export_and_restore():
    router = AlertRouter(config())
    for n in range(3):
        router.offer(anomaly(n), T0)
    router.offer(anomaly(0), T0 + 1)  # duplicate while pending
    assert router.pending_ids() == {"a-zero_amount-0", "a-zero_amount-1", "a-zero_amount-2"}
    [out] = router.due(T0 + MIN)
    assert len(out.message.anomaly_ids) == 3 and router.pending_ids() == set()
    saved = router.export_seen()
    assert set(saved) == set(out.message.anomaly_ids)

    restarted = AlertRouter(config())
    restarted.restore_seen(saved)
    for n in range(3):
        restarted.offer(anomaly(n), T0 + 2 * MIN)
    assert restarted.due(T0 + 5 * MIN) == []

    from_reports = AlertRouter(config())  # rebuilt from delivery reports: plain ids
    from_reports.restore_seen(list(out.message.anomaly_ids), now_ms=T0 + 2 * MIN)
    from_reports.offer(anomaly(1), T0 + 2 * MIN)
    from_reports.offer(anomaly(7), T0 + 2 * MIN)
    [again] = from_reports.due(T0 + 3 * MIN)
    assert again.message.anomaly_ids == ("a-zero_amount-7",)


def test_dedup_memory_is_bounded_by_age_and_size():
    router = AlertRouter(config(dedup_ttl_hours=1, dedup_max_ids=2))
    router.restore_seen({"old": T0 - 2 * 3_600_000, "x": T0, "y": T0, "z": T0}, now_ms=T0)
    assert set(router.export_seen()) == {"y", "z"}
    router.offer(anomaly(1, anomaly_id="old"), T0)
    assert len(router.due(T0 + MIN)) == 1


def test_quiet_hours_hold_non_critical_and_send_one_digest():
    night = int(datetime(2024, 5, 29, 23, 0, tzinfo=BJ).timestamp() * 1000)
    morning = int(datetime(2024, 5, 30, 8, 0, tzinfo=BJ).timestamp() * 1000)
    router = AlertRouter(config())
    for n in range(12):
        router.offer(anomaly(n, rule="zero_amount" if n % 3 else "ship_overdue"), night + n * MIN)
    router.offer(anomaly(50, severity="critical"), night + 30 * MIN)
    assert [o.kind for o in router.due(night + 30 * MIN)] == ["immediate"]
    assert router.due(night + 5 * 60 * MIN) == []
    assert router.next_due_ms() == morning
    [digest] = router.due(morning)
    assert digest.kind == "digest" and len(digest.message.anomaly_ids) == 12
    assert "静默时段（22:00–08:00）内共 12 条非紧急告警" in digest.message.text_markdown
    assert "订单金额为 0（zero_amount）：8 个" in digest.message.text_markdown
    assert router.due(morning + MIN) == []


def test_quiet_hours_window_math():
    quiet = config().quiet_hours
    at = lambda h, m=0: int(datetime(2024, 5, 29, h, m, tzinfo=BJ).timestamp() * 1000)
    assert quiet.contains(at(22)) and quiet.contains(at(3)) and not quiet.contains(at(8))
    assert not quiet.contains(at(21, 59))
    assert quiet.next_end(at(23)) == int(datetime(2024, 5, 30, 8, 0, tzinfo=BJ).timestamp() * 1000)
    assert quiet.next_end(at(3)) == at(8)


def test_resolved_never_pages():
    router = AlertRouter(config())
    router.offer(anomaly(1), T0)
    router.offer({**anomaly(1), "state": "resolved"}, T0 + 1000)
    router.offer({**anomaly(2), "state": "resolved"}, T0 + 2000)
    assert router.due(T0 + 2 * MIN) == []
    router.offer(anomaly(3), T0 + 2 * MIN)
    router.offer({**anomaly(4, anomaly_id="r-4"), "state": "resolved"}, T0 + 2 * MIN)
    [out] = router.due(T0 + 3 * MIN)
    assert out.message.anomaly_ids == ("a-zero_amount-3",) and "同期已恢复 1 个" in out.message.text_markdown


def test_no_plaintext_personal_data():
    dirty = {"receiver_phone": "13812345678", "buyer_name": "张三",
             "address": "浙江省杭州市西湖区文三路 1 号",
             "paid_total": "0", "expected_total": "请联系 13912345678 或 a.b@example.com", "sku_id": "SKU-9"}
    router = AlertRouter(config())
    for n in range(6):
        router.offer(anomaly(n, rule="invalid_phone", evidence=dirty,
                             message_zh="手机号 13812345678 无效，收货人张三"), T0)
    router.offer(anomaly(9, severity="critical", evidence=dirty, message_zh="张三 13812345678"), T0)
    out = router.due(T0 + MIN)
    assert len(out) == 2
    for o in out:
        for text in (o.message.title, o.message.text_markdown, o.message.text_plain, o.message.summary):
            assert not PHONE.search(text), text
            assert "张三" not in text and "文三路" not in text and "example.com" not in text
        assert "paid_total=0" in o.message.text_markdown
    assert "139****5678" in out[0].message.text_markdown + out[1].message.text_markdown


def test_default_routing_file_loads():
    cfg = load_routing(ROOT / "infra/alert_routing.toml")
    assert cfg.routes[0].match.severity == ["critical"] and cfg.quiet_hours.timezone == "Asia/Shanghai"
    assert cfg.channels["dingtalk-ops"].options({"TONGLU_DINGTALK_SECRET": "s"})["secret"] == "s"
    with pytest.raises(RoutingError, match="TONGLU_DINGTALK_SECRET"):
        cfg.channels["dingtalk-ops"].options({})


@pytest.mark.parametrize("content, expected", [
    (None, "file not found"),
    ("routes = [", "not valid TOML"),
    ('[[routes]]\nname = "x"\nchannels = []\n', "routes.0.channels: List should have at least 1 item"),
    ('[quiet_hours]\nstart = "25:00"\n[[routes]]\nname = "x"\nchannels = ["a"]\n', "quiet_hours.start"),
    ('[channels.a]\ntype = "dingtalk"\n[[routes]]\nname = "x"\nchannels = ["b"]\n', "undefined channels"),
])
def test_load_routing_errors_are_one_line(tmp_path, content, expected):
    path = tmp_path / "routing.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RoutingError) as info:
        load_routing(path)
    assert expected in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


class FakeChannel:
    def __init__(self, name, *results):
        self.name, self.results, self.sent = name, list(results), []

    async def send(self, message):
        self.sent.append(message)
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


async def test_deliver_honours_retry_after_and_fails_over_on_long_throttles():
    from connectors.alerts.channels import SendResult
    from streams.alerting.delivery import deliver

    router = AlertRouter(config())
    router.offer(anomaly(1, severity="critical"), T0)
    [outgoing] = router.due(T0)
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    flaky = FakeChannel("dingtalk", SendResult.retry("busy", "11232", 2.0), RuntimeError("boom"),
                        SendResult.success())
    report = await deliver(outgoing, {"dingtalk": flaky}, attempts=3, backoff=0.01, sleep=sleep)
    assert report.ok and report.channel == "dingtalk" and slept[0] >= 2.0 and len(slept) == 2
    assert report.attempts[1].code == "exception" and report.attempts[1].retryable

    slept.clear()
    throttled = FakeChannel("dingtalk", SendResult.retry("too fast", "130101", 600.0))
    backup = FakeChannel("feishu", SendResult.success())
    report = await deliver(outgoing, {"dingtalk": throttled, "feishu": backup}, sleep=sleep)
    assert report.channel == "feishu" and slept == [] and len(report.attempts) == 2

    both_bad = {"dingtalk": FakeChannel("d", SendResult.permanent("bad sign", "310000")),
                "feishu": FakeChannel("f", SendResult.permanent("bad sign", "19021"))}
    failed = await deliver(outgoing, both_bad, sleep=sleep)
    assert not failed.ok and [a.code for a in failed.attempts] == ["310000", "19021"]
    router.reschedule(outgoing, T0 + 5000)
    assert router.due(T0 + 4000) == [] and router.due(T0 + 5000) == [outgoing]


def test_channels_build_from_the_default_routing_file():
    from connectors.alerts.channels import make_channel

    cfg = load_routing(ROOT / "infra/alert_routing.toml")
    env = {"TONGLU_DINGTALK_SECRET": "d", "TONGLU_FEISHU_SECRET": "f", "TONGLU_SMS_SECRET": "s"}
    built = {name: make_channel(name, spec.type, spec.options(env)) for name, spec in cfg.channels.items()}
    assert {name: ch.kind for name, ch in built.items()} == {
        "dingtalk-ops": "dingtalk", "feishu-ops": "feishu", "wecom-ops": "wecom", "email-ops": "email",
        "sms-oncall": "sms"}
    assert all(ch.name == name for name, ch in built.items())
