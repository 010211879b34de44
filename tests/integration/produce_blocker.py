"""A real broker whose produce requests can be swallowed: a TCP proxy in front of its own Tansu.

The broker advertises the proxy's address, so every client (Faust's consumer, confluent-kafka's producer)
talks through it. The proxy reads the Kafka request framing and, while `blocking` is set, drops Produce
requests (api key 0) unanswered — as a broker that has stopped accepting writes would — while fetches,
group membership and offset commits go on. No component of ours is replaced.
"""
from __future__ import annotations

import asyncio
import struct
import subprocess
import threading

from infra.broker import free_port, tansu_binary, wait_for_broker

PRODUCE = 0


class ProduceBlocker:
    def __init__(self):
        self.blocking = False
        self.dropped = 0  # produce requests swallowed so far
        self.port, self._broker_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._broker: subprocess.Popen | None = None

    def start(self) -> ProduceBlocker:
        self._broker = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{self._broker_port}",
             "--advertised-listener-url", f"tcp://{self.bootstrap}", "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        wait_for_broker(self.bootstrap, proc=self._broker)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        if self._broker is not None:
            self._broker.terminate()
            self._broker.wait(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _close(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # every failure ends the connection quietly: a traceback logged from this thread would race the
        # test's own thread (Python 3.11's traceback module parses source with `ast`, which is not thread-safe)
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self._broker_port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(self._requests(client_r, broker_w), self._pipe(broker_r, client_w))
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            client_w.close()
            broker_w.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readexactly(4)
            frame = await reader.readexactly(struct.unpack(">i", head)[0])
            if self.blocking and struct.unpack(">h", frame[:2])[0] == PRODUCE:
                self.dropped += 1
                continue
            writer.write(head + frame)
            await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
