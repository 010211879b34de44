"""Alert signing against the worked examples of erp_and_messaging.md §3/§4 and the alert/SMS fixtures."""
import json
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from connectors.alerts.message import truncate_utf8
from connectors.alerts.signing import (
    aliyun_canonical_query,
    aliyun_signature,
    aliyun_string_to_sign,
    dingtalk_sign,
    dingtalk_sign_b64,
    feishu_sign,
    percent,
)

FIXTURES = Path(__file__).parents[2] / "connectors" / "alerts" / "samples"  # copies of real-shaped payloads
DINGTALK_SECRET = "SECdemo1f2e3d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _fixture_lines(path: Path) -> list[str]:
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path.read_text(encoding="utf-8").splitlines()


def test_dingtalk_worked_example():
    assert dingtalk_sign_b64(DINGTALK_SECRET, 1717000000000) == "Xx4YxJqnGpqTUYiAvZrEdQzdmenvf9mZ6XntYsm41dY="
    assert dingtalk_sign(DINGTALK_SECRET, "1717000000000") == "Xx4YxJqnGpqTUYiAvZrEdQzdmenvf9mZ6XntYsm41dY%3D"


def test_dingtalk_fixture_url_carries_that_sign():
    url = _fixture_lines(FIXTURES / "alerts/dingtalk_text_request.http")[0].split(" ", 1)[1]
    query = urlsplit(url).query
    raw = dict(pair.split("=", 1) for pair in query.split("&"))
    assert raw["sign"] == dingtalk_sign(DINGTALK_SECRET, raw["timestamp"])
    assert unquote(raw["sign"]) == dingtalk_sign_b64(DINGTALK_SECRET, raw["timestamp"])


def test_feishu_worked_example():
    assert feishu_sign("fsDemoSecret8Kq2", 1717000000) == "NWzR9wq833xDk8EAMoVAhuXsUFEJfwdk1nGg9W9wTZU="


@pytest.mark.parametrize("name", ["feishu_text_request.json", "feishu_interactive_request.json"])
def test_feishu_fixture_bodies(name):
    path = FIXTURES / "alerts" / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    body = json.loads(path.read_text(encoding="utf-8"))
    assert body["sign"] == feishu_sign("fsDemoSecret8Kq2", body["timestamp"])


def _aliyun_fixture() -> tuple[dict, dict[str, str]]:
    lines = _fixture_lines(FIXTURES / "sms/aliyun_sendsms_request.txt")
    form = next(line for line in lines if line.startswith("Signature="))
    notes = {line[2:].split(" = ", 1)[0]: line[2:].split(" = ", 1)[1] for line in lines
             if line.startswith("# ") and " = " in line}
    return dict(parse_qsl(form, keep_blank_values=True)), notes


def test_aliyun_worked_example():
    params, notes = _aliyun_fixture()
    assert params["Signature"] == "L0VHbtekLS1IULBczrUdkXAjxew="
    assert aliyun_canonical_query(params) == notes["CanonicalizedQueryString"]
    assert aliyun_string_to_sign(params) == notes["StringToSign"]
    assert aliyun_signature(params, "demoAccessKeySecret") == "L0VHbtekLS1IULBczrUdkXAjxew="


def test_aliyun_signature_changes_with_any_param():
    params, _ = _aliyun_fixture()
    changed = {**params, "PhoneNumbers": "13900139000"}
    assert aliyun_signature(changed, "demoAccessKeySecret") != params["Signature"]
    assert aliyun_signature(params, "otherSecret") != params["Signature"]


def test_percent_is_rfc3986():
    assert percent("a b*c~d/é") == "a%20b%2Ac~d%2F%C3%A9"


def test_truncate_utf8_keeps_characters_whole():
    text = "告警" * 3000
    cut = truncate_utf8(text, 4096)
    assert len(cut.encode("utf-8")) <= 4096
    assert cut.endswith("…") and cut[:-1] == "告警" * (len(cut[:-1]) // 2) + "告" * (len(cut[:-1]) % 2)
    assert truncate_utf8("short", 4096) == "short"
