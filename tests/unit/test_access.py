"""Roles, the route table's rules, bearer parsing, client addresses and the audit body summary."""

from __future__ import annotations

import ipaddress

import orjson
import pytest

from projections import access
from projections.access import ROUTES, Role, RouteRule
from projections.audit import audit_row, summarize_body
from projections.clickhouse.ddl import TABLE_COLUMNS


def test_roles_are_ordered_and_parsed():
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse(" Operator ") is Role.OPERATOR and Role.ADMIN.label == "admin"
    for bad in ("root", "", None):
        with pytest.raises(ValueError, match="unknown role"):
            Role.parse(bad)


def test_route_table_gives_the_issue_s_permissions():
    def role(method, path):
        return ROUTES[(method, path)].role

    assert role("GET", "/healthz") is role("GET", "/metrics") is access.OPEN
    assert role("GET", "/api/orders/{order_id}") is Role.VIEWER and role("GET", "/api/stats") is Role.VIEWER
    assert role("POST", "/api/orders/{order_id}/release") is Role.OPERATOR
    assert role("POST", "/api/orders/{order_id}/shipments") is Role.OPERATOR
    assert role("POST", "/api/sql") is Role.ADMIN
    assert {role(m, "/api/tokens") for m in ("GET", "POST")} == {Role.ADMIN}
    assert role("DELETE", "/api/tokens/{token_id}") is Role.ADMIN
    assert access.rule_for("HEAD", "/api/stats") is ROUTES[("GET", "/api/stats")]
    assert access.rule_for("PUT", "/api/stats") is None
    assert access.audited("POST", ROUTES[("POST", "/api/orders/{order_id}/release")])
    assert access.audited("POST", ROUTES[("POST", "/api/sql")])
    assert not access.audited("GET", ROUTES[("GET", "/api/orders")])


@pytest.mark.parametrize("header, token", [(None, None), ("Bearer tl_abc", "tl_abc"), ("bearer  tl_abc ", "tl_abc")])
def test_bearer_header(header, token):
    assert access.bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "tl_abc",
                                    "Bearer " + "x" * 201, "Bearer 令牌"])
def test_malformed_bearer_header(header):
    with pytest.raises(ValueError, match="Authorization"):
        access.bearer_token(header)


def test_denials_carry_the_bearer_challenge_and_both_languages():
    none_sent = access.unauthenticated("需要令牌", "send a token", None)
    assert none_sent.status == 401 and none_sent.challenge == 'Bearer realm="tonglu"'
    bad = access.unauthenticated("令牌无效", "unknown token")
    assert bad.challenge.endswith('error="invalid_token"') and bad.body["error"].startswith("未认证")
    weak = access.forbidden(access.Principal("ab12", "li", Role.VIEWER), Role.OPERATOR)
    assert weak.status == 403 and 'insufficient_scope' in weak.challenge
    assert weak.body["error"].startswith("权限不足") and "forbidden" in weak.body["error"]
    assert (weak.body["required_role"], weak.body["role"]) == ("operator", "viewer")


def test_issued_by_names_the_token():
    assert access.Principal("ab12cd34", "王芳", Role.OPERATOR).issued_by == "王芳#ab12cd34"
    assert access.ANONYMOUS.issued_by == "anonymous"


def test_loopback_and_anonymous_viewing():
    assert all(access.is_loopback(a) for a in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"))
    assert not any(access.is_loopback(a) for a in ("10.0.0.1", "::ffff:10.0.0.1", "", None, "localhost"))
    assert access.anonymous_allowed(True, "127.0.0.1", forwarded=False)
    assert not access.anonymous_allowed(False, "127.0.0.1", forwarded=False)
    assert not access.anonymous_allowed(True, "192.168.1.5", forwarded=False)
    assert not access.anonymous_allowed(True, "127.0.0.1", forwarded=True)  # a local proxy relaying anyone


def test_client_address_believes_only_trusted_proxies():
    proxies = access.parse_networks("10.0.0.0/8, 127.0.0.1")
    assert proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))
    # untrusted peer: its header is ignored
    assert access.client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    # trusted peer: the right-most hop that is not a proxy; what the client put on the left is ignored
    assert access.client_address("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert access.client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert access.client_address("10.0.0.2", "1.2.3.4", ()) == "10.0.0.2"  # none configured
    with pytest.raises(ValueError, match="TONGLU_TRUSTED_PROXIES.*'nope'"):
        access.parse_networks("10.0.0.1, nope")


def test_audit_summary_keeps_only_declared_fields():
    release = ROUTES[("POST", "/api/orders/{order_id}/release")]
    reason = "买家张三 13812345678 说地址是朝阳区建国路88号"
    summary, sql = summarize_body(orjson.dumps({"reason": reason, "by": "mallory"}), release)
    assert sql is None
    assert orjson.loads(summary) == {"reason": f"<string, {len(reason)} chars>", "by": "<string, 7 chars>"}
    assert "13812345678" not in summary and "张三" not in summary

    tokens = ROUTES[("POST", "/api/tokens")]
    summary, _ = summarize_body(orjson.dumps({"name": "ops", "role": "viewer", "note": [1, 2]}), tokens)
    assert orjson.loads(summary) == {"name": "ops", "role": "viewer", "note": "<list, 2 items>"}

    text = "SELECT count() FROM tonglu.orders"
    summary, sql = summarize_body(orjson.dumps({"sql": text}), ROUTES[("POST", "/api/sql")])
    assert sql == text and orjson.loads(summary) == {"sql": f"<sql, {len(text)} chars>"}

    assert summarize_body(b"", release) == ("{}", None)
    assert orjson.loads(summarize_body(b"not json", release)[0]) == {"_body": "<not JSON, 8 bytes>"}
    assert orjson.loads(summarize_body(b'["x"]', RouteRule(Role.ADMIN))[0]) == {"_body": "<list, 1 items>"}


def test_audit_row_matches_the_table():
    who = access.Principal("ab12cd34", "ops", Role.OPERATOR)
    row = dict(zip(TABLE_COLUMNS["audit_log"], audit_row(
        principal=who, method="POST", path="/api/orders/x/release", route="/api/orders/{order_id}/release",
        summary="{}", sql=None, status=202, client="198.51.100.7", peer="10.0.0.2", started=1000.0,
        now=1000.25), strict=True))
    assert (row["token_id"], row["token_name"], row["role"]) == ("ab12cd34", "ops", "operator")
    assert row["at"] == 1_000_000 and row["duration_ms"] == 250.0 and row["status"] == 202
    assert len(row["audit_id"]) == 32
    refused = dict(zip(TABLE_COLUMNS["audit_log"], audit_row(
        principal=None, method="POST", path="/api/sql", route="/api/sql", summary="{}", sql="SELECT 1",
        status=401, client="", peer="", started=1.0), strict=True))
    assert (refused["token_id"], refused["role"], refused["sql"]) == ("", "none", "SELECT 1")


def test_settings_for_access(monkeypatch, tmp_path):
    from infra.config import Settings

    for name in ("TONGLU_ANONYMOUS_VIEWER", "TONGLU_TOKENS_FILE", "TONGLU_API_TOKEN", "TONGLU_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TONGLU_DATA_DIR", str(tmp_path))
    s = Settings.from_env()
    assert s.anonymous_viewer is False  # off unless the local stack turns it on
    assert s.tokens_path == tmp_path / "tokens.json" and s.api_token() is None
    (tmp_path / "admin.token").write_text("tl_local\n")
    assert s.api_token() == "tl_local"
    monkeypatch.setenv("TONGLU_API_TOKEN", "tl_given")
    monkeypatch.setenv("TONGLU_ANONYMOUS_VIEWER", "1")
    monkeypatch.setenv("TONGLU_TOKENS_FILE", str(tmp_path / "elsewhere.json"))
    s = Settings.from_env()
    assert s.api_token() == "tl_given" and s.anonymous_viewer is True
    assert s.tokens_path == tmp_path / "elsewhere.json"
    monkeypatch.setenv("TONGLU_ANONYMOUS_VIEWER", "0")
    assert Settings.from_env().anonymous_viewer is False
