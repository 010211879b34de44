"""How the sender reaches the providers: keep-alive HTTP/1.1 connections (`connectors.runtime.http1`), one client
per origin, each request on a connection with nothing in flight where there is one.

Not pipelined (one request per connection at a time): a provider's slow answer must not hold up the messages
behind it, and the real gateways are not known to answer pipelined requests. aiohttp's client cost the sender
about a third of its CPU per message; this one a few percent.
"""
from __future__ import annotations

from connectors.runtime.base import RequestSpec
from connectors.runtime.caller import wire_bytes
from connectors.runtime.http1 import Http1Pool, TransportError

__all__ = ["Endpoints", "TransportError"]


class Endpoints:
    """The clients of one process: a pool per timeout, a client per origin. `post` raises TransportError when
    no answer came."""

    def __init__(self, connections: int = 64):
        self.connections = connections
        self._pools: dict[float, Http1Pool] = {}

    def _pool(self, timeout: float) -> Http1Pool:
        found = self._pools.get(timeout)
        if found is None:
            found = self._pools[timeout] = Http1Pool(self.connections, 1, timeout, connect_timeout=timeout)
        return found

    async def post(self, url: str, timeout: float, data: bytes | dict = b"",
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST `data` (bytes as they are, a dict as a form) and read the whole answer: (status, body)."""
        client, request = wire_bytes(self._pool(timeout), RequestSpec("POST", url, data=data, headers=headers or {}))
        # lane None: the idlest connection, so one slow answer holds up no message that could go elsewhere
        response = await client.send(request, None)
        return response.status, response.body

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
