"""Two ways to reach ClickHouse behind one small interface: chdb in-process, or a server over HTTP."""

from __future__ import annotations

import re
import threading
from typing import Protocol
from urllib.parse import urlparse

import orjson
import pyarrow as pa

_SETUP = ("SET output_format_json_quote_64bit_integers = 0", "SET output_format_json_quote_denormals = 0")


class Backend(Protocol):
    """What the sink, projector and API need from ClickHouse. Every method blocks: call it off the loop."""

    def command(self, sql: str) -> None: ...

    def insert(self, table: str, column_names: tuple[str, ...] | list[str], rows: list[tuple]) -> None: ...

    def insert_encoded(self, table: str, payload: bytes, fmt: str) -> None: ...

    def query(self, sql: str) -> list[dict]: ...

    def query_readonly(self, sql: str) -> tuple[list[str], list[list]]: ...

    def close(self) -> None: ...


class ChdbBackend:
    """chdb in this process. The embedded server accepts ONE data path per process at a time, so
    open one backend, share it, and close it before opening another path."""

    def __init__(self, data_path: str):
        from chdb import session

        self.data_path = str(data_path)
        self._lock = threading.Lock()
        self._session = session.Session(self.data_path)
        # A second connection in read-only mode on the same path serves analysts' SQL.
        self._readonly = session.Session(f"{self.data_path}?mode=ro")
        self._types: dict[str, list] = {}
        for statement in _SETUP:
            self._session.query(statement)
            self._readonly.query(statement)

    def command(self, sql: str) -> None:
        """Run a statement whose result is not needed (DDL, OPTIMIZE, ...)."""
        with self._lock:
            self._session.query(sql)

    def insert(self, table: str, column_names, rows: list[tuple]) -> None:
        """Insert rows (tuples in `column_names` order; timestamps as epoch-ms ints) in one statement.

        Measured fastest path: the columns as one Arrow IPC stream (pyarrow, a chdb dependency) pushed
        into `send_insert`; no text escaping or parsing, and epoch-ms ints are Arrow timestamps as they are.
        JSONCompactColumns via orjson was 1.5-2x slower, mostly parsing the large `order_json` strings.
        """
        if not rows:
            return
        types = self._arrow_types(table, column_names)
        arrays = [pa.array(col, type=t) for col, t in zip(zip(*rows, strict=True), types, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, names=list(column_names))
        stream = pa.BufferOutputStream()
        with pa.ipc.new_stream(stream, batch.schema) as writer:
            writer.write_batch(batch)
        payload = memoryview(stream.getvalue())
        names = ", ".join(f"`{c}`" for c in column_names)
        with self._lock:
            self._send(f"INSERT INTO {table} ({names})", "ArrowStream", payload)

    def insert_encoded(self, table: str, payload: bytes, fmt: str) -> None:
        """Insert data already encoded in a ClickHouse input format (e.g. an Avro container)."""
        with self._lock:
            self._send(f"INSERT INTO {table}", fmt, memoryview(payload))

    def _send(self, statement: str, fmt: str, payload: memoryview) -> None:
        inserter = self._session._conn.send_insert(statement, fmt)
        try:
            inserter.append(payload)
            inserter.finish()
        except BaseException:
            inserter.cancel()
            raise

    def query(self, sql: str) -> list[dict]:
        """Rows of a query as dicts (64-bit ints as numbers, DateTime64 as 'YYYY-MM-DD hh:mm:ss.sss')."""
        with self._lock:
            text = self._session.query(sql, "JSONEachRow").bytes()
        return [orjson.loads(line) for line in text.splitlines() if line]

    def query_readonly(self, sql: str) -> tuple[list[str], list[list]]:
        """Column names and rows of an untrusted query, run on the read-only connection."""
        with self._lock:
            text = self._readonly.query(sql, "JSONCompact").bytes()
        if not text.strip():
            return [], []
        doc = orjson.loads(text)
        return [m["name"] for m in doc["meta"]], doc["data"]

    def close(self) -> None:
        """Close both connections; afterwards another data path may be opened in this process."""
        with self._lock:
            self._readonly.close()
            self._session.close()

    def _arrow_types(self, table: str, column_names) -> list:
        key = f"{table}|{','.join(column_names)}"
        types = self._types.get(key)
        if types is None:
            with self._lock:
                text = self._session.query(f"DESCRIBE TABLE {table}", "JSONEachRow").bytes()
            described = {r["name"]: r["type"] for r in map(orjson.loads, text.splitlines()) if r}
            types = [arrow_type(described[c]) for c in column_names]
            self._types[key] = types
        return types


def arrow_type(ch_type: str):
    """The Arrow type to send for a ClickHouse column type (wrappers stripped; ClickHouse casts ints)."""
    inner = ch_type
    while inner.startswith(("LowCardinality(", "Nullable(")):
        inner = inner[inner.index("(") + 1 : -1]
    if inner.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if inner.startswith("Array("):
        return pa.list_(arrow_type(inner[6:-1]))
    if inner.startswith("Map("):
        key, value = _split_top_level(inner[4:-1])
        return pa.map_(arrow_type(key), arrow_type(value))
    if inner.startswith("Float"):
        return pa.float64()
    if inner == "UInt64":
        return pa.uint64()
    if re.fullmatch(r"U?Int\d+", inner):
        return pa.int64()
    return pa.string()


def _split_top_level(args: str) -> tuple[str, str]:
    """'K, V' of a two-argument type, splitting at the comma outside any parentheses."""
    depth = 0
    for i, ch in enumerate(args):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            return args[:i].strip(), args[i + 1 :].strip()
    raise ValueError(f"not a two-argument type: {args!r}")


class ServerBackend:
    """A ClickHouse server through clickhouse-connect, from a URL like http://user:pass@host:8123/db."""

    def __init__(self, url: str):
        import clickhouse_connect

        parts = urlparse(url)
        self._client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if parts.scheme == "https" else 8123),
            username=parts.username or "default",
            password=parts.password or "",
            secure=parts.scheme == "https",
            database=parts.path.strip("/") or "default",
        )
        self._lock = threading.Lock()  # the HTTP client's session is not safe for concurrent queries

    def command(self, sql: str) -> None:
        """Run a statement whose result is not needed."""
        with self._lock:
            self._client.command(sql)

    def insert(self, table: str, column_names, rows: list[tuple]) -> None:
        """Insert rows column-oriented (epoch-ms ints are written as raw DateTime64(3) ticks)."""
        if not rows:
            return
        columns = [list(c) for c in zip(*rows, strict=True)]
        database, _, name = table.rpartition(".")
        with self._lock:
            self._client.insert(
                name,
                columns,
                column_names=list(column_names),
                database=database or None,
                column_oriented=True,
            )

    def insert_encoded(self, table: str, payload: bytes, fmt: str) -> None:
        """Insert data already encoded in a ClickHouse input format (e.g. an Avro container)."""
        with self._lock:
            self._client.raw_insert(table, insert_block=payload, fmt=fmt)

    def query(self, sql: str) -> list[dict]:
        """Rows of a query as dicts."""
        with self._lock:
            result = self._client.query(sql)
        return list(result.named_results())

    def query_readonly(self, sql: str) -> tuple[list[str], list[list]]:
        """Column names and rows of an untrusted query, with the server's readonly setting."""
        with self._lock:
            result = self._client.query(sql, settings={"readonly": 2})
        return list(result.column_names), [list(r) for r in result.result_rows]

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def open_backend(url: str | None, data_path) -> Backend:
    """A ServerBackend when a ClickHouse URL is configured, else chdb on `data_path`."""
    if url:
        return ServerBackend(url)
    return ChdbBackend(str(data_path))
