"""The lean HTTP/1.1 client against real aiohttp servers: pipelining, timeouts, closing servers, and platform
calls through a pool of them."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from connectors.runtime.http1 import Http1Client, TransportError
from infra.broker import free_port
from tests.integration.helpers import serve_app

pytestmark = pytest.mark.integration


async def _echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    if request.query.get("sleep"):
        await asyncio.sleep(float(request.query["sleep"]))
    if request.query.get("chunked"):
        resp = web.StreamResponse(status=201)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"ab", b"cd", body):
            await resp.write(part)
        await resp.write_eof()
        return resp
    headers = {"Connection": "close"} if request.query.get("close") else {}
    return web.Response(body=body, status=int(request.query.get("status", "200")), headers=headers)


@pytest.fixture
async def server():
    app = web.Application()
    app.router.add_post("/echo", _echo)
    runner, url = await serve_app(app)
    yield url
    await runner.cleanup()


async def test_pipelined_answers_come_back_to_their_requests(server):
    client = Http1Client(f"{server}/echo", connections=2, pipeline=8)
    bodies = [f"request {n}".encode() for n in range(60)]
    answers = await asyncio.gather(*(client.send(client.prepare([], body), lane=n) for n, body in enumerate(bodies)))
    assert [a.body for a in answers] == bodies and {a.status for a in answers} == {200}
    await client.close()


async def test_statuses_chunked_bodies_and_a_server_closing_after_each_answer(server):
    client = Http1Client(f"{server}/echo", connections=1, pipeline=4)
    assert (await client.send(client.prepare([], b"x", query="status=503"))).status == 503
    chunked = await client.send(client.prepare([], b"ef", query="chunked=1"))
    assert (chunked.status, chunked.body) == (201, b"abcdef")
    closing = await asyncio.gather(*(client.send(client.prepare([], str(n).encode(), query="close=1"))
                                     for n in range(5)), return_exceptions=True)
    done = [a for a in closing if not isinstance(a, Exception)]
    assert done and all(isinstance(a, TransportError) for a in closing if isinstance(a, Exception))
    assert (await client.send(client.prepare([], b"again"))).body == b"again"  # a new connection
    await client.close()


async def test_no_answer_in_time_fails_what_was_in_flight(server):
    client = Http1Client(f"{server}/echo", connections=1, pipeline=4, timeout=0.3)
    slow = client.send(client.prepare([], b"slow", query="sleep=2"))
    behind = client.send(client.prepare([], b"behind"))
    results = await asyncio.gather(slow, behind, return_exceptions=True)
    assert all(isinstance(r, TransportError) and "no answer within 0.3s" in str(r) for r in results)
    assert all(r.sent for r in results)  # they left: the server may have handled them
    assert (await client.send(client.prepare([], b"later"))).body == b"later"
    await client.close()


async def test_a_closed_port_is_a_transport_error():
    client = Http1Client(f"http://127.0.0.1:{free_port()}/x", connect_timeout=2)
    with pytest.raises(TransportError, match="cannot connect") as raised:
        await client.send(client.prepare([], b"x"))
    assert not raised.value.sent  # it never left
    await client.close()


async def _form(request: web.Request) -> web.Response:
    form = await request.post()
    return web.json_response({"method": request.method, "path": request.path, "query": dict(request.query),
                              "form": dict(form), "type": request.content_type})


async def test_platform_calls_through_the_pool_arrive_as_aiohttp_would_send_them_and_failures_are_recorded():
    """HttpCaller over an Http1Pool: params join the query, a dict is a urlencoded form, a path is kept; a
    slow answer does not hold up a call to the idle connection beside it; no answer is a retried,
    recorded transient failure."""
    import orjson

    from connectors.runtime.base import RequestSpec
    from connectors.runtime.caller import HttpCaller
    from connectors.runtime.errors import TransientError
    from connectors.runtime.http1 import Http1Pool

    app = web.Application()
    app.router.add_route("*", "/api/{tail:.*}", _form)
    app.router.add_post("/echo", _echo)
    runner, url = await serve_app(app)
    pool, calls = Http1Pool(connections=4, timeout=5.0), []
    caller = HttpCaller(pool, "taobao", "s1", on_call=calls.append, max_attempts=2, base_backoff=0.01)
    try:
        answer = await caller.request("x", lambda: RequestSpec(
            "POST", f"{url}/api/router/rest?v=2", params={"a": "1 2"}, data={"tid": "7", "name": "中通 & co"}),
            lambda r: 1)
        got = orjson.loads(answer.body)
        assert got == {"method": "POST", "path": "/api/router/rest", "query": {"v": "2", "a": "1 2"},
                       "form": {"tid": "7", "name": "中通 & co"}, "type": "application/x-www-form-urlencoded"}
        got = orjson.loads((await caller.request("y", lambda: RequestSpec("GET", f"{url}/api/orders/9.json"),
                                                 lambda r: 1)).body)
        assert (got["method"], got["path"], got["form"]) == ("GET", "/api/orders/9.json", {})

        slow = asyncio.create_task(caller.request("s", lambda: RequestSpec("POST", f"{url}/echo?sleep=2",
                                                                           data=b"slow"), lambda r: 1))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        fast = await caller.request("f", lambda: RequestSpec("POST", f"{url}/echo", data=b"fast"), lambda r: 1)
        assert fast.body == b"fast" and asyncio.get_running_loop().time() - started < 1.0
        assert (await slow).body == b"slow"
        assert [c["endpoint"] for c in calls] == ["x", "y", "f", "s"] and all(c["ok"] for c in calls)

        dead = HttpCaller(pool, "taobao", "s1", on_call=calls.append, max_attempts=2, base_backoff=0.01)
        with pytest.raises(TransientError):
            await dead.request("d", lambda: RequestSpec("POST", f"http://127.0.0.1:{free_port()}/x", data=b""),
                               lambda r: 1)
        assert [(c["endpoint"], c["ok"], c["error_code"], c["attempt"]) for c in calls[4:]] == [
            ("d", False, "network", 1), ("d", False, "network", 2)]
    finally:
        await pool.close()
        await runner.cleanup()
