"""Alert channels against the local simulators over real HTTP / SMTP on loopback."""
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from connectors.alerts.channels import DingTalkChannel, EmailChannel, FeishuChannel, SmsChannel, WeComChannel
from connectors.alerts.message import AlertMessage
from connectors.alerts.sim_store import (
    DINGTALK_DEMO_SECRET,
    FEISHU_DEMO_SECRET,
    SMS_DEMO_KEY_ID,
    SMS_DEMO_SECRET,
    SimStore,
)
from connectors.alerts.simulators import create_app
from connectors.alerts.smtp_sink import start_smtp_sink
from streams.alerting.delivery import deliver
from streams.alerting.policy import Outgoing

pytestmark = pytest.mark.integration

MESSAGE = AlertMessage(
    title="【通路告警】警告：订单金额为 0 ×2",
    text_markdown="### 【通路告警】警告：订单金额为 0 ×2\n过去 1 分钟 2 个订单金额为 0（zero_amount）\n"
                  "- [taobao:s1:1001](http://127.0.0.1:8080/api/orders/taobao:s1:1001)\n"
                  "2 orders with zero order amount (zero_amount) in the last 1 min.",
    text_plain="过去 1 分钟 2 个订单金额为 0（zero_amount）\nhttp://127.0.0.1:8080/api/orders/taobao:s1:1001",
    severity="warning", order_ids=("taobao:s1:1001", "taobao:s1:1002"), anomaly_ids=("a1", "a2"),
    summary="订单金额为 0 ×2")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sim:
    def __init__(self, base: str, session: aiohttp.ClientSession, smtp_port: int):
        self.base, self.session, self.smtp_port = base, session, smtp_port

    async def messages(self, service: str) -> list[dict]:
        async with self.session.get(f"{self.base}/_sim/messages", params={"service": service}) as resp:
            return (await resp.json())["messages"]

    async def post(self, path: str, body: dict) -> dict:
        async with self.session.post(self.base + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    def dingtalk(self, token="demo-dingtalk", secret=DINGTALK_DEMO_SECRET, **kw) -> DingTalkChannel:
        url = f"{self.base}/robot/send?access_token={token}"
        return DingTalkChannel(url, secret, session=self.session, **kw)

    def feishu(self, token="demo-feishu", secret=FEISHU_DEMO_SECRET, **kw) -> FeishuChannel:
        return FeishuChannel(f"{self.base}/open-apis/bot/v2/hook/{token}", secret, session=self.session, **kw)

    def wecom(self, key="demo-wecom") -> WeComChannel:
        return WeComChannel(f"{self.base}/cgi-bin/webhook/send?key={key}", session=self.session)

    def sms(self, secret=SMS_DEMO_SECRET, phones=("13800138000",)) -> SmsChannel:
        return SmsChannel(f"{self.base}/sms/", SMS_DEMO_KEY_ID, secret, "通路商城", "SMS_465123457",
                          list(phones),
                          session=self.session)

    def email(self) -> EmailChannel:
        return EmailChannel("127.0.0.1", self.smtp_port, "alerts@tonglu.local", ["ops@tonglu.local"])


@pytest.fixture
async def sim():
    smtp_port = _free_port()
    smtp = start_smtp_sink("127.0.0.1", smtp_port)
    runner = web.AppRunner(create_app(store=smtp.store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        yield Sim(f"http://127.0.0.1:{port}", session, smtp_port)
    await runner.cleanup()
    smtp.stop()


@pytest.mark.parametrize("service", ["dingtalk", "feishu", "feishu_text", "wecom", "sms", "email"])
async def test_every_channel_delivers_and_the_simulator_shows_it(sim, service):
    channel = {"dingtalk": sim.dingtalk, "feishu": sim.feishu, "feishu_text": lambda: sim.feishu(card=False),
               "wecom": sim.wecom, "sms": sim.sms, "email": sim.email}[service]()
    result = await channel.send(MESSAGE)
    assert result.ok, result
    [got] = await sim.messages(service.removesuffix("_text"))
    assert got["received_at"] >= int(time.time() * 1000) - 60_000
    if service == "sms":
        assert got["phones"] == ["138****8000"] and got["template_param"]["alert"] == "订单金额为 0 ×2"
        assert got["template_param"]["level"] == "警告" and "http" not in got["text"]
    else:
        assert "2 个订单金额为 0" in got["text"]
    if service in ("dingtalk", "feishu", "email"):
        assert got["title"] == MESSAGE.title


@pytest.mark.parametrize("service, code", [("dingtalk", "310000"), ("feishu", "19021"),
                                           ("sms", "SignatureDoesNotMatch")])
async def test_bad_signature_is_rejected_and_permanent(sim, service, code):
    channel = {"dingtalk": lambda: sim.dingtalk(secret="SECwrong"),
               "feishu": lambda: sim.feishu(secret="nope"),
               "sms": lambda: sim.sms(secret="wrongSecret")}[service]()
    result = await channel.send(MESSAGE)
    assert not result.ok and not result.retryable and result.code == code
    assert await sim.messages(service) == []


async def test_stale_timestamp_and_unknown_robot_are_permanent(sim):
    stale = sim.dingtalk(clock=lambda: time.time() - 7200)
    assert (await stale.send(MESSAGE)).code == "310000"
    assert (await sim.feishu(clock=lambda: time.time() - 7200).send(MESSAGE)).code == "19021"
    assert (await sim.dingtalk(token="nobody").send(MESSAGE)).code == "300001"
    unknown = await sim.wecom(key="nobody").send(MESSAGE)
    assert unknown.code == "93000" and not unknown.retryable


async def test_21st_dingtalk_message_in_a_minute_is_throttled(sim):
    await sim.post("/_sim/robots", {"service": "dingtalk", "robot": "busy", "secret": "SECbusy"})
    channel = sim.dingtalk(token="busy", secret="SECbusy")
    for _ in range(20):
        assert (await channel.send(MESSAGE)).ok
    throttled = await channel.send(MESSAGE)
    assert not throttled.ok and throttled.retryable and throttled.code == "130101" and throttled.retry_after
    assert len(await sim.messages("dingtalk")) == 20
    assert (await sim.dingtalk().send(MESSAGE)).ok  # the limit is per robot


async def test_wecom_and_feishu_limits(sim):
    wecom = sim.wecom()
    results = [await wecom.send(MESSAGE) for _ in range(21)]
    assert all(r.ok for r in results[:20]) and results[20].code == "45009" and results[20].retryable
    feishu = sim.feishu()
    results = [await feishu.send(MESSAGE) for _ in range(6)]  # 5/s per bot
    assert all(r.ok for r in results[:5]) and results[5].code == "11232" and results[5].retryable


async def test_wecom_markdown_is_cut_to_4096_bytes(sim):
    big = AlertMessage("t", "告" * 3000, "告" * 3000)
    assert (await sim.wecom().send(big)).ok
    [got] = await sim.messages("wecom")
    assert len(got["text"].encode("utf-8")) <= 4096
    too_long = {"msgtype": "text", "text": {"content": "x" * 2049}}
    raw = await sim.post("/cgi-bin/webhook/send?key=demo-wecom", too_long)
    assert raw["errcode"] == 40058


async def test_sms_per_number_flow_control(sim):
    assert (await sim.sms().send(MESSAGE)).ok
    limited = await sim.sms().send(MESSAGE)
    assert limited.code == "isv.BUSINESS_LIMIT_CONTROL" and limited.retryable
    bad = await sim.sms(phones=("12345",)).send(MESSAGE)
    assert bad.code == "isv.MOBILE_NUMBER_ILLEGAL" and not bad.retryable


async def test_deliver_fails_over_from_down_dingtalk_to_feishu(sim):
    await sim.post("/_sim/faults", {"service": "dingtalk", "kind": "down", "count": 10})
    channels = {"dingtalk": sim.dingtalk(), "feishu": sim.feishu()}
    outgoing = Outgoing("r|zero_amount|k", ("dingtalk", "feishu"), MESSAGE, "r", "zero_amount")
    report = await deliver(outgoing, channels, attempts=3, backoff=0.01)
    assert report.ok and report.channel == "feishu"
    assert [(a.channel, a.ok, a.retryable) for a in report.attempts] == [
        ("dingtalk", False, True)] * 3 + [("feishu", True, False)]
    assert report.attempts[0].code == "http_503" and report.anomaly_ids == ["a1", "a2"]
    assert await sim.messages("dingtalk") == [] and len(await sim.messages("feishu")) == 1


async def test_deliver_retries_the_primary_after_a_5xx(sim):
    await sim.post("/_sim/faults", {"service": "wecom", "kind": "error_5xx", "count": 1})
    outgoing = Outgoing("k", ("wecom", "email"), MESSAGE)
    report = await deliver(outgoing, {"wecom": sim.wecom(), "email": sim.email()}, attempts=3, backoff=0.01)
    assert report.ok and report.channel == "wecom" and [a.ok for a in report.attempts] == [False, True]


async def test_deliver_reports_total_failure_without_raising(sim):
    outgoing = Outgoing("k", ("dingtalk", "missing"), MESSAGE)
    report = await deliver(outgoing, {"dingtalk": sim.dingtalk(secret="bad")}, attempts=3, backoff=0.01)
    assert not report.ok and report.channel is None
    assert [(a.channel, a.code) for a in report.attempts] == [
        ("dingtalk", "310000"), ("missing", "unknown_channel")]
    assert report.to_dict()["attempts"][0]["channel"] == "dingtalk"


async def test_email_arrives_in_the_smtp_sink(sim):
    result = await sim.email().send(MESSAGE)
    assert result.ok
    [mail] = await sim.messages("email")
    assert mail["title"] == MESSAGE.title and mail["robot"] == "ops@tonglu.local"
    assert "过去 1 分钟 2 个订单金额为 0" in mail["text"] and mail["sender"] == "alerts@tonglu.local"
    await sim.post("/_sim/faults", {"service": "email", "kind": "down", "count": 1})
    down = await sim.email().send(MESSAGE)
    assert not down.ok and down.retryable and down.code == "smtp_421"


FIXTURES = Path(__file__).parents[2] / "connectors" / "alerts" / "samples"  # copies of real-shaped payloads


async def test_simulator_accepts_the_recorded_real_requests():
    """The fixtures' requests (signed at 1717000000 / 2024-05-29T02:15:00Z) pass the simulators' checks."""
    store = SimStore(clock=lambda: 1717000000.5)  # the chat fixtures were signed at 1717000000
    runner = web.AppRunner(create_app(store=store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    alerts = FIXTURES / "alerts"
    try:
        async with aiohttp.ClientSession() as session:
            for http_file, path_prefix in [("dingtalk_text_request.http", "https://oapi.dingtalk.com"),
                                           ("wecom_text_request.http", "https://qyapi.weixin.qq.com")]:
                lines = (alerts / http_file).read_text(encoding="utf-8").splitlines()
                url = base + lines[0].split(" ", 1)[1].removeprefix(path_prefix)
                async with session.post(URL(url, encoded=True), data=lines[3].encode(),
                                        headers={"Content-Type": "application/json"}) as resp:
                    assert (await resp.json())["errcode"] == 0, http_file
            for name in ["feishu_text_request.json", "feishu_interactive_request.json"]:
                body = json.loads((alerts / name).read_text(encoding="utf-8"))
                hook = f"{base}/open-apis/bot/v2/hook/3f2c1b0a-demo-4e5d-9c8b-7a6f5e4d3c2b"
                async with session.post(hook, json=body) as resp:
                    assert await resp.json() == json.loads((alerts / "feishu_response_ok.json").read_text())
            store.clock = lambda: datetime(2024, 5, 29, 2, 15, 30, tzinfo=UTC).timestamp()
            sms_request = (FIXTURES / "sms/aliyun_sendsms_request.txt").read_text(encoding="utf-8")
            form = next(line for line in sms_request.splitlines()
                        if line.startswith("Signature="))
            async with session.post(f"{base}/sms/", data=form.encode(),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
                answer = await resp.json()
                assert answer["Code"] == "OK" and answer["BizId"], answer
            async with session.post(f"{base}/sms/", data=form.encode(),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
                assert (await resp.json())["Code"] == "SignatureNonceUsed"
        services = [m["service"] for m in store.messages()]
        assert services == ["dingtalk", "wecom", "feishu", "feishu", "sms"]
        assert store.messages("feishu")[1]["title"] == "订单同步告警"
    finally:
        await runner.cleanup()
