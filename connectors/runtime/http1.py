"""A lean HTTP/1.1 client: keep-alive connections with pipelined requests, for the calls made thousands of
times a second (events to ERP endpoints, shipments to platforms, messages to SMS providers).

Why not aiohttp's client: it costs ~140 µs of CPU per request here, which alone caps a deliverer at a
few thousand events/s on a shared core; this one writes prepared bytes and parses answers with
llhttp (`httptools`) for ~20 µs. Requests on one connection are pipelined (sent without waiting for
the answers before them, answers matched in order) up to `pipeline` deep, and the requests of one turn
of the event loop leave in one write. The caller picks the connection (`lane`), so one partition's
requests share one connection and keep their order on the wire; whoever must not overtake another (two
events of one order) is simply not sent concurrently. Requests beyond the pipeline wait in order.

`submit` is callback-based (no task or future per request: the deliverer sends thousands a second);
`send` wraps it for callers that await.

Any transport trouble — refused connection, reset, a timeout, a parser error, the server closing — fails
every request in flight on that connection with `TransportError`; the connection is opened again for
the next request. A request the server had already handled may so be sent again: receivers dedup by
the event id (the ERP), or the caller settles it (a platform answering "shipped already"); a caller that
cannot (an SMS gateway) tells a request that never left (`TransportError.sent` False) from one in doubt.

`Http1Pool` keeps one client per origin (scheme, host, port) for callers whose URLs vary.
"""
from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class TransportError(Exception):
    """No HTTP answer: the connection failed, closed or timed out (the message says which). `sent`: the request
    was handed to an open connection, so the server may have received and handled it (in doubt); False when no
    connection could be opened (it never left)."""

    def __init__(self, reason: str, sent: bool = True):
        super().__init__(reason)
        self.sent = sent


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


Done = Callable[["Response | TransportError"], None]


class _Connection(asyncio.Protocol):
    def __init__(self, client: Http1Client, slot: int):
        self.client, self.slot = client, slot
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiting: collections.deque[tuple[Done, float]] = collections.deque()  # (callback, deadline)
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._out: list[bytes] = []  # requests of this turn of the loop, written together

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail("the server switched protocols")
        except httptools.HttpParserError as exc:
            self.fail(f"malformed HTTP answer: {exc}")

    def connection_lost(self, exc) -> None:
        self.fail(f"connection closed{f': {exc}' if exc else ''}")

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self._headers, self._body = {}, []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self.waiting:
            self.fail("an answer nobody asked for")
            return
        done, _ = self.waiting.popleft()
        keep_alive = self.parser.should_keep_alive()
        done(Response(self.parser.get_status_code(), self._headers, b"".join(self._body)))
        if not keep_alive:
            self.fail("the server closed the connection after its answer")
        else:
            self.client._pump(self.slot)

    # -- ours
    def fail(self, reason: str) -> None:
        """Fail everything in flight here and drop the connection (the next request opens a new one)."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        failed, self.waiting = self.waiting, collections.deque()
        for done, _ in failed:
            done(TransportError(reason))
        self.client._dropped(self)

    def send(self, data: bytes, done: Done, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.waiting.append((done, loop.time() + timeout))
        if self._watchdog is None:
            self._watchdog = loop.call_later(timeout, self._watch, timeout)
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if not self.closed:
            self.transport.write(data)

    def _watch(self, timeout: float) -> None:
        """One timer per connection: answers come in order, so only the oldest request can be overdue."""
        self._watchdog = None
        if not self.waiting or self.closed:
            return
        loop = asyncio.get_running_loop()
        left = self.waiting[0][1] - loop.time()
        if left <= 0:
            self.fail(f"no answer within {timeout:g}s")
        else:
            self._watchdog = loop.call_later(left, self._watch, timeout)


class Http1Client:
    """Requests to one base URL over `connections` keep-alive connections, each `pipeline` deep."""

    def __init__(self, url: str, connections: int = 4, pipeline: int = 16, timeout: float = 10.0,
                 connect_timeout: float = 5.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host, self.tls = parts.hostname, parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = parts.path or "/"
        self.query = parts.query
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.connections, self.pipeline = max(1, connections), max(1, pipeline)
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._conns: list[_Connection | None] = [None] * self.connections
        self._queued = [collections.deque() for _ in range(self.connections)]  # (request, done) waiting for room
        self._opening: list[asyncio.Task | None] = [None] * self.connections
        self._ssl = ssl_module.create_default_context() if self.tls else None

    def prepare(self, headers: list[tuple[str, str]], body: bytes, query: str | None = None,
                method: str = "POST", path: str | None = None) -> bytes:
        """The bytes of one request to this client's URL (`query` replaces the URL's query string, `path`
        its path)."""
        query = self.query if query is None else query
        path = path or self.path
        target = f"{path}?{query}" if query else path
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}",
                *(f"{name}: {value}" for name, value in headers)]
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body

    def submit(self, request: bytes, lane: int | None, done: Done) -> None:
        """Send prepared bytes on the connection of `lane` as soon as it has room (None: the connection with
        the least to do, opening another while there is none idle); `done` is called once, with the
        Response or a TransportError."""
        slot = self._idlest() if lane is None else lane % self.connections
        self._queued[slot].append((request, done))
        self._pump(slot)

    def _idlest(self) -> int:
        best, load, unopened = 0, None, None
        for slot, conn in enumerate(self._conns):
            if conn is None or conn.closed:
                if unopened is None and self._opening[slot] is None:
                    unopened = slot
                busy = len(self._queued[slot]) + (1 if self._opening[slot] is not None else 0)
            else:
                busy = len(conn.waiting) + len(self._queued[slot])
                if busy == 0:
                    return slot
            if load is None or busy < load:
                best, load = slot, busy
        return best if unopened is None else unopened

    async def send(self, request: bytes, lane: int | None = 0) -> Response:
        """`submit`, awaited: the answer, or TransportError raised."""
        future = asyncio.get_running_loop().create_future()
        self.submit(request, lane, lambda result: future.done() or future.set_result(result))
        result = await future
        if isinstance(result, TransportError):
            raise result
        return result

    def _pump(self, slot: int) -> None:
        queued = self._queued[slot]
        if not queued:
            return
        conn = self._conns[slot]
        if conn is None or conn.closed:
            if self._opening[slot] is None:
                self._opening[slot] = asyncio.ensure_future(self._open(slot))
            return
        while queued and len(conn.waiting) < self.pipeline:
            request, done = queued.popleft()
            conn.send(request, done, self.timeout)

    async def _open(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _Connection(self, slot), self.host, self.port, ssl=self._ssl,
                server_hostname=self.host if self.tls else None), self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            self._opening[slot] = None
            error = TransportError(f"cannot connect to {self.host}:{self.port}: {exc.__class__.__name__} {exc}",
                                   sent=False)
            failed, self._queued[slot] = self._queued[slot], collections.deque()
            for _, done in failed:
                done(error)
            return
        except BaseException:
            self._opening[slot] = None
            raise
        self._opening[slot] = None
        self._conns[slot] = conn
        self._pump(slot)

    def _dropped(self, conn: _Connection) -> None:
        if self._conns[conn.slot] is conn:
            self._conns[conn.slot] = None
        self._pump(conn.slot)

    async def close(self) -> None:
        for task in self._opening:
            if task is not None:
                task.cancel()
        for conn in self._conns:
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        self._conns = [None] * self.connections


class Http1Pool:
    """One `Http1Client` per origin, made on first use: for callers whose URLs vary (a platform's API
    paths, many simulators). Each origin gets `connections` keep-alive connections `pipeline` deep."""

    def __init__(self, connections: int = 64, pipeline: int = 1, timeout: float = 10.0,
                 connect_timeout: float = 5.0):
        self.connections, self.pipeline = connections, pipeline
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._clients: dict[tuple[str, str, int | None], Http1Client] = {}

    def client(self, url: str) -> Http1Client:
        """The client of `url`'s origin (ValueError for a URL that is not http(s))."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = Http1Client(f"{parts.scheme}://{parts.netloc}/", self.connections,
                                                      self.pipeline, self.timeout, self.connect_timeout)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
