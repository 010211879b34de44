"""A minimal ERP endpoint for the deliverer's throughput figure: `python -m infra.bench.erp_receiver --port P`.

It does what the ERP simulator does with each webhook that matters for the figure — checks the signature
(401 when it does not match), reads the event id, order and version, counts repeats and events out of
order (`connectors.erp.simulator.Tally`) — on a bare asyncio protocol with llhttp, keep-alive and
pipelining, answering everything that arrived in one read with one write. The aiohttp simulator spends
~140 µs of CPU per request on its own; on two shared cores that would be measured instead of the deliverer.
`GET /_sim/stats` and `GET /_sim/arrivals` answer as the simulator's do.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time

import httptools
import orjson

from connectors.erp.signing import verify_webhook
from connectors.erp.simulator import DEMO_SECRET, Tally

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
_REFUSED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"


def _answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


class _Receiver(asyncio.Protocol):
    def __init__(self, tally: Tally, secret: str):
        self.tally, self.secret = tally, secret
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self._out: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()
            return
        if self._out:
            self.transport.write(b"".join(self._out))
            self._out = []

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"GET":
            self._out.append(self._control())
            return
        raw = b"".join(self._body)
        if verify_webhook(self.secret, self._headers.get(b"x-tonglu-timestamp"),
                          self._headers.get(b"x-tonglu-signature"), raw, time.time()) is not None:
            self.tally.counts["rejected"] += 1
            self._out.append(_REFUSED)
            return
        body = orjson.loads(raw)
        self.tally.accepted(body.get("event_id"), body.get("order_id"), body.get("version"), int(time.time() * 1000))
        self._out.append(_OK)

    def _control(self) -> bytes:
        if self._url.startswith(b"/_sim/arrivals"):
            return _answer(orjson.dumps({"arrivals": list(self.tally.arrivals)}))
        return _answer(orjson.dumps(self.tally.public()))


async def serve(host: str, port: int, secret: str) -> None:
    tally = Tally()
    server = await asyncio.get_running_loop().create_server(lambda: _Receiver(tally, secret), host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, os.environ.get("TONGLU_ERP_SECRET") or DEMO_SECRET))


if __name__ == "__main__":
    main()
