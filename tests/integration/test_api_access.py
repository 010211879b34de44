"""Roles on the real HTTP API (aiohttp server, chdb): every registered route against every kind of
caller, the audit rows, revocation from another process, anonymous loopback viewing, the CLI."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from projections.access import OPEN, PLANNED, ROUTES, Role, parse_networks
from projections.api import create_api
from projections.api_auth import AuthConfig
from projections.clickhouse import ChdbBackend, create_schema
from projections.service import Projector
from projections.tokens import TokenStore, ensure_local_admin

pytestmark = pytest.mark.integration
ORDER = "taobao:shopA:nope"
BODIES = {
    "/api/sql": {"sql": "SELECT 1 AS one"},
    "/api/orders/{order_id}/release": {"reason": "买家来电 13812345678 / buyer called"},
    "/api/tokens": {"name": "made", "role": "viewer"},
}


@pytest.fixture
def world(kafka_bootstrap, topics, tmp_path):
    """A projector (not consuming) on chdb with its command topic, a tokens file with one token per role
    and a revoked one; yields (projector, store, tokens)."""
    backend = ChdbBackend(str(tmp_path / "chdb"))
    create_schema(backend)
    projector = Projector(kafka_config={"bootstrap.servers": kafka_bootstrap}, normalizer_group="n", backend=backend,
                          topics={"raw_orders": topics.raw_orders, "raw_orders_dlq": topics.raw_orders_dlq,
                                  "order_events": topics.order_events, "connector_calls": topics.connector_calls,
                                  "order_anomalies": topics.order_anomalies, "alerts": topics.alerts,
                                  "order_commands": topics.order_commands})
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {role.label: store.create(role.label, role)[0] for role in Role}
    tokens["revoked"] = store.create("gone", Role.ADMIN)[0]
    store.revoke("gone")
    yield projector, store, tokens
    projector.commands.close()
    backend.close()


async def serve(projector, store, *, anonymous=False, trusted="", host="127.0.0.1"):
    server = TestServer(create_api(projector, AuthConfig(store, anonymous, parse_networks(trusted))), host=host)
    await server.start_server()
    return server


def caller_headers(tokens: dict) -> dict[str, dict]:
    return {
        "anonymous": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "revoked": {"Authorization": f"Bearer {tokens['revoked']}"},
        **{role.label: {"Authorization": f"Bearer {tokens[role.label]}"} for role in Role},
    }


def expected(rule_role, caller: str) -> str:
    if rule_role is OPEN:
        return "served"
    if caller in ("anonymous", "malformed", "revoked"):
        return "401"
    return "403" if Role.parse(caller) < rule_role else "served"


def registered(app) -> set[tuple[str, str]]:
    return {(r.method, r.resource.canonical) for r in app.router.routes()}


async def test_every_route_against_every_caller_and_the_audit_rows(world):
    projector, store, tokens = world
    server = await serve(projector, store)
    routes = registered(server.app)
    # one table, complete: a new route without a rule fails here (HEAD is aiohttp's twin of each GET)
    assert {(m, p) for m, p in routes if m != "HEAD"} == set(ROUTES) - PLANNED
    assert {p for m, p in routes if m == "HEAD"} == {p for m, p in ROUTES if m == "GET"}

    audited, outcomes = [], {}
    async with aiohttp.ClientSession() as http:
        for method, template in sorted(routes):
            rule = ROUTES[("GET" if method == "HEAD" else method, template)]
            url = str(server.make_url(template.format(order_id=ORDER, token_id="nosuch")))
            for caller, headers in caller_headers(tokens).items():
                body = dict(BODIES.get(template, {}))
                if template == "/api/tokens" and method == "POST":
                    body["name"] = f"made-by-{caller}"
                async with http.request(method, url, headers=headers, json=body if method == "POST" else None) as r:
                    status, text = r.status, await r.text()
                    challenge = r.headers.get("WWW-Authenticate", "")
                want = expected(rule.role, caller)
                outcomes[(method, template, caller)] = status
                if want == "served":
                    assert status not in (401, 403), (method, template, caller, status, text)
                else:
                    assert status == int(want), (method, template, caller, status, text)
                    assert challenge.startswith('Bearer realm="tonglu"')
                    if method != "HEAD":
                        error = orjson.loads(text)["error"]
                        assert error.startswith("未认证" if want == "401" else "权限不足") and " / " in error
                if method not in ("GET", "HEAD"):
                    audited.append((method, template, caller, status))

        # the matrix's writes and SQL, as an admin reads them back through SQL
        async with http.post(server.make_url("/api/sql"), headers=caller_headers(tokens)["admin"], json={
                "sql": "SELECT method, route, token_name, role, status, sql, summary, client, peer "
                       "FROM tonglu.audit_log ORDER BY at"}) as r:
            assert r.status == 200
            rows = [dict(zip((await r.json())["columns"], row, strict=True)) for row in (await r.json())["rows"]]
    await server.close()

    assert len(rows) == len(audited)  # every write and SQL call, refused ones included
    names = {"anonymous": "", "malformed": "", "revoked": "", "viewer": "viewer", "operator": "operator",
             "admin": "admin"}
    assert sorted((r["method"], r["route"], r["token_name"], r["status"]) for r in rows) == sorted(
        (m, t, names[c], s) for m, t, c, s in audited)
    sql_rows = [r for r in rows if r["route"] == "/api/sql"]
    assert all(r["sql"] == "SELECT 1 AS one" for r in sql_rows)
    assert {(r["role"], r["status"]) for r in sql_rows} == {("none", 401), ("viewer", 403), ("operator", 403),
                                                           ("admin", 200)}
    releases = [r for r in rows if r["route"] == "/api/orders/{order_id}/release"]
    assert {(r["token_name"], r["status"]) for r in releases if r["token_name"]} == {
        ("viewer", 403), ("operator", 404), ("admin", 404)}
    assert not any("13812345678" in r["summary"] or "买家" in r["summary"] for r in releases)
    assert all(r["client"] == r["peer"] == "127.0.0.1" for r in rows)
    assert outcomes[("POST", "/api/tokens", "admin")] == 201
    assert [r.name for r in store.records() if r.name.startswith("made-by-")] == ["made-by-admin"]


async def test_revocation_from_another_process_holds_at_the_next_request(world, tmp_path):
    projector, store, tokens = world
    server = await serve(projector, store)
    url, headers = server.make_url("/api/orders"), {"Authorization": f"Bearer {tokens['operator']}"}
    env = {**os.environ, "TONGLU_TOKENS_FILE": str(store.path), "PYTHONPATH": os.getcwd()}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as r:
            assert r.status == 200
        cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "infra.cli", "token", "revoke", "operator",
                                                   env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await cli.communicate()
        assert cli.returncode == 0 and b"revoked" in out
        done = time.monotonic()
        async with http.get(url, headers=headers) as r:
            assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert time.monotonic() - done < 1.0
        # and a token created by the CLI works at once
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "infra.cli", "token", "create", "--role", "viewer", "--name", "new",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await cli.communicate()
        async with http.get(url, headers={"Authorization": f"Bearer {out.decode().strip()}"}) as r:
            assert r.status == 200
    await server.close()


async def test_anonymous_viewer_only_from_loopback_and_only_reading(world):
    projector, store, _ = world
    on = await serve(projector, store, anonymous=True)
    off = await serve(projector, store, anonymous=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(on.make_url("/api/stats")) as r:
            assert r.status == 200
        async with http.get(off.make_url("/api/stats")) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="tonglu"'
        async with http.get(on.make_url("/api/stats"), headers={"X-Forwarded-For": "203.0.113.5"}) as r:
            assert r.status == 401  # relayed by a proxy: could be anyone
        async with http.get(on.make_url("/api/stats"), headers={"Authorization": "Bearer tl_wrong"}) as r:
            assert r.status == 401  # a bad token is never downgraded to anonymous
        for path, body in ((f"/api/orders/{ORDER}/release", {}), ("/api/sql", {"sql": "SELECT 1"})):
            async with http.post(on.make_url(path), json=body) as r:  # every write needs a token
                assert r.status == 401 and (await r.json())["error"].startswith("未认证：此操作需要令牌")
        async with http.get(on.make_url("/")) as r:
            assert r.status == 200 and "/api/stats" in await r.text()
    await on.close()
    await off.close()


def _outward_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the outward interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_anonymous_viewer_refused_from_another_address(world):
    address = _outward_address()
    if address is None:
        pytest.skip("no non-loopback interface on this machine")
    projector, store, _ = world
    server = await serve(projector, store, anonymous=True, host=address)
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/api/stats")) as r:
        assert r.status == 401
    await server.close()


async def test_trusted_proxy_names_the_client_in_the_audit_row(world):
    projector, store, tokens = world
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    trusting = await serve(projector, store, trusted="127.0.0.1")
    plain = await serve(projector, store)
    async with aiohttp.ClientSession() as http:
        for server in (trusting, plain):
            async with http.post(server.make_url("/api/sql"), json={"sql": "SELECT 2"},
                                 headers={**admin, "X-Forwarded-For": "6.6.6.6, 198.51.100.7"}) as r:
                assert r.status == 200
        async with http.post(plain.make_url("/api/sql"), headers=admin, json={
                "sql": "SELECT client, peer FROM tonglu.audit_log WHERE sql = 'SELECT 2' ORDER BY at"}) as r:
            rows = (await r.json())["rows"]
    assert sorted(rows) == sorted([["198.51.100.7", "127.0.0.1"], ["127.0.0.1", "127.0.0.1"]])
    await trusting.close()
    await plain.close()


async def test_token_cli_and_api_management(world, tmp_path):
    projector, store, tokens = world
    server = await serve(projector, store)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("TONGLU_API_TOKEN", "TONGLU_TOKENS_FILE")}
    env.update({"TONGLU_DATA_DIR": str(data), "TONGLU_TOKENS_FILE": str(store.path),
                "TONGLU_HTTP": str(server.make_url("")).rstrip("/"), "PYTHONPATH": os.getcwd()})

    async def cli(*args, **extra):
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "infra.cli", *args, env={**env, **extra},
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await cli("token", "create", "--role", "operator", "--name", "李雷")
    token = out.strip()
    assert code == 0 and out == token + "\n" and token.startswith("tl_") and "created token" in err
    assert store.principal(token).role is Role.OPERATOR
    code, out, _ = await cli("token", "list")
    assert code == 0 and "李雷\toperator" in out and token not in out and f"…{token[-4:]}" in out
    assert "gone" not in out and "gone" in (await cli("token", "list", "--all"))[1]
    code, _, err = await cli("token", "create", "--role", "root", "--name", "x")
    assert code == 2 and "unknown role" in err

    # `tonglu sql` sends the local admin token by itself; TONGLU_API_TOKEN overrides it
    code, _, err = await cli("sql", "SELECT 1")
    assert code == 2 and "HTTP 401" in err
    ensure_local_admin(store, data / "admin.token")
    code, out, err = await cli("sql", "SELECT 41 + 1 AS answer")
    assert code == 0 and out.splitlines() == ["answer", "42"], err
    code, _, err = await cli("sql", "SELECT 1", TONGLU_API_TOKEN=tokens["viewer"])
    assert code == 2 and "HTTP 403" in err and "权限不足" in err

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tokens['admin']}"}) as http:
        async with http.post(server.make_url("/api/tokens"), json={"name": "韩梅梅", "role": "viewer"}) as r:
            made = await r.json()
            assert r.status == 201 and made["token"].startswith("tl_") and made["role"] == "viewer"
        async with http.post(server.make_url("/api/tokens"), json={"name": "韩梅梅", "role": "viewer"}) as r:
            assert r.status == 400 and "exists" in (await r.json())["error"]
        async with http.post(server.make_url("/api/tokens"), json={"name": "x", "role": "root"}) as r:
            assert r.status == 400
        async with http.get(server.make_url("/api/tokens")) as r:
            listed = (await r.json())["tokens"]
            assert "韩梅梅" in {t["name"] for t in listed} and not any("hash" in t or "token" in t for t in listed)
        async with http.get(server.make_url("/api/orders"), headers={"Authorization": f"Bearer {made['token']}"}) as r:
            assert r.status == 200
        async with http.delete(server.make_url(f"/api/tokens/{made['id']}")) as r:
            assert r.status == 200 and (await r.json())["active"] is False
        async with http.get(server.make_url("/api/orders"), headers={"Authorization": f"Bearer {made['token']}"}) as r:
            assert r.status == 401
        async with http.delete(server.make_url(f"/api/tokens/{made['id']}")) as r:
            assert r.status == 404
    await server.close()
