"""The deliverer's HTTP/1.1 client against real aiohttp servers: pipelining, timeouts, closing servers."""
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
    assert (await client.send(client.prepare([], b"later"))).body == b"later"
    await client.close()


async def test_a_closed_port_is_a_transport_error():
    client = Http1Client(f"http://127.0.0.1:{free_port()}/x", connect_timeout=2)
    with pytest.raises(TransportError, match="cannot connect"):
        await client.send(client.prepare([], b"x"))
    await client.close()
