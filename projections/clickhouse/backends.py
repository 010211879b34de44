"""Two ways to reach ClickHouse behind one small interface: chdb in-process, or a server over HTTP."""

from __future__ import annotations

import re
import threading
from typing import Protocol
from urllib.parse import urlencode, urlparse

import orjson
import pyarrow as pa

from projections.clickhouse.ddl import check_identifier
from projections.sqlguard import SqlLimits

_JSON_OUTPUT = {"output_format_json_quote_64bit_integers": 0, "output_format_json_quote_denormals": 0}
_SETUP = tuple(f"SET {k} = {v}" for k, v in _JSON_OUTPUT.items())
# ClickHouse's own parser, handed the text as hex: nothing in it can end the string or add a statement.
_FORMAT = "SELECT formatQuerySingleLine(unhex('{hex}'))"
_ANALYST_TAG = "/* tonglu-analyst:{query_id} */ "


class Backend(Protocol):
    """What the sink, projector and API need from ClickHouse. Every method blocks: call it off the loop."""

    def command(self, sql: str) -> None: ...

    def insert(self, table: str, column_names: tuple[str, ...] | list[str], rows: list[tuple]) -> None: ...

    def insert_encoded(self, table: str, payload: bytes, fmt: str) -> None: ...

    def query(self, sql: str) -> list[dict]: ...

    def format_sql(self, sql: str) -> str: ...

    def explain_ast(self, canonical: str) -> str: ...

    def query_readonly(self, sql: str, database: str, query_id: str) -> tuple[list[str], list[list]]: ...

    def cancel_readonly(self, query_id: str) -> None: ...

    def close(self) -> None: ...


class ChdbBackend:
    """chdb in this process. The embedded server accepts ONE data path per process at a time, so
    open one backend, share it, and close it before opening another path."""

    def __init__(self, data_path: str, limits: SqlLimits | None = None):
        from chdb import session

        self.data_path = str(data_path)
        self.limits = limits or SqlLimits.from_env()
        self._lock = threading.Lock()
        self._session = session.Session(self.data_path)
        # Analysts' SQL never takes the writer's lock. chdb runs queries of different connections on
        # the same path concurrently (measured: with an analyst query spinning both cores, the writer's
        # queries took 17-95 ms and its inserts 17-256 ms). One connection parses (readonly=2: a
        # statement's SETTINGS only reach EXPLAIN, which runs nothing), one per database answers.
        self._parser = session.Session(f"{self.data_path}?readonly=2&max_execution_time=5")
        self._analysts: dict[str, list] = {}  # idle analyst connections by database
        self._analyst_lock = threading.Lock()
        self._types: dict[str, list] = {}
        for statement in _SETUP:
            self._session.query(statement)

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

    def format_sql(self, sql: str) -> str:
        """ClickHouse's canonical one-line text of one statement (raises on a syntax error or several)."""
        return self._parser.query(_FORMAT.format(hex=sql.encode().hex()), "TSVRaw").bytes().decode().rstrip("\n")

    def explain_ast(self, canonical: str) -> str:
        """EXPLAIN AST of a canonical statement (from `format_sql`): its indented syntax tree."""
        return self._parser.query(f"EXPLAIN AST {canonical}", "TSVRaw").bytes().decode()

    def query_readonly(self, sql: str, database: str, query_id: str) -> tuple[list[str], list[list]]:
        """Column names and rows of a vetted analyst query, on a connection opened with readonly=1 and
        the limits as startup settings (so no statement can change them), `database` as the default.

        A connection whose query failed is closed, not reused: chdb 4.4 hands the partial output of a
        query stopped by a limit to the next query on the same connection."""
        conn = self._take_analyst(database)
        try:
            text = conn.query(_ANALYST_TAG.format(query_id=query_id) + sql, "JSONCompact").bytes()
        except BaseException:
            conn.close()
            raise
        with self._analyst_lock:
            self._analysts.setdefault(database, []).append(conn)
        if not text.strip():
            return [], []
        doc = orjson.loads(text)
        return [m["name"] for m in doc["meta"]], doc["data"]

    def cancel_readonly(self, query_id: str) -> None:
        """Stop an analyst query (its client went away): KILL QUERY by the tag it was sent with."""
        tag = _ANALYST_TAG.format(query_id=check_query_id(query_id)).strip()
        with self._lock:
            self._session.query(f"KILL QUERY WHERE startsWith(query, '{tag}') ASYNC")

    def _take_analyst(self, database: str):
        from chdb import session

        with self._analyst_lock:
            idle = self._analysts.setdefault(database, [])
            if idle:
                return idle.pop()
        # Opened on first use: the startup `database` must exist by then.
        settings = {"readonly": 1, "database": check_identifier(database), **_JSON_OUTPUT, **self.limits.settings()}
        return session.Session(f"{self.data_path}?{urlencode(settings)}")

    def close(self) -> None:
        """Close every connection; afterwards another data path may be opened in this process."""
        with self._lock, self._analyst_lock:
            for idle in self._analysts.values():
                for conn in idle:
                    conn.close()
            self._parser.close()
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


def _server_client(url: str, database: str | None = None):
    import clickhouse_connect

    parts = urlparse(url)
    return clickhouse_connect.get_client(
        host=parts.hostname or "localhost",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=parts.username or "default",
        password=parts.password or "",
        secure=parts.scheme == "https",
        database=database or parts.path.strip("/") or "default",
    )


class ServerBackend:
    """A ClickHouse server through clickhouse-connect, from a URL like http://user:pass@host:8123/db.

    Analysts' SQL goes through clients of its own (never the writer's lock), as the user of
    `analyst_url` (a read-only user with grants on `tonglu` only, see infra/deploy/) when given."""

    def __init__(self, url: str, analyst_url: str | None = None, limits: SqlLimits | None = None):
        self._url, self._analyst_url = url, analyst_url or url
        self.limits = limits or SqlLimits.from_env()
        self._client = _server_client(url)
        self._lock = threading.Lock()  # the HTTP client's session is not safe for concurrent queries
        self._parser = _server_client(self._analyst_url)
        self._parser_lock = threading.Lock()
        self._analysts: dict[str, object] = {}
        self._analyst_lock = threading.Lock()

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

    def format_sql(self, sql: str) -> str:
        """ClickHouse's canonical one-line text of one statement (raises on a syntax error or several)."""
        with self._parser_lock:
            return str(self._parser.query(_FORMAT.format(hex=sql.encode().hex())).result_rows[0][0])

    def explain_ast(self, canonical: str) -> str:
        """EXPLAIN AST of a canonical statement (from `format_sql`): its indented syntax tree."""
        with self._parser_lock:
            result = self._parser.query(f"EXPLAIN AST {canonical}", settings={"readonly": 2})
        return "\n".join(str(row[0]) for row in result.result_rows)

    def query_readonly(self, sql: str, database: str, query_id: str) -> tuple[list[str], list[list]]:
        """Column names and rows of a vetted analyst query, read-only and under the limits; the server
        stops it when the HTTP connection closes."""
        settings = {"readonly": 2, "cancel_http_readonly_queries_on_client_close": 1, **self.limits.settings()}
        with self._analyst_lock:
            client = self._analysts.get(database)
            if client is None:
                client = self._analysts[database] = _server_client(self._analyst_url, check_identifier(database))
            result = client.query(sql, settings={**settings, "query_id": query_id})  # sent as the HTTP query_id
        return list(result.column_names), [list(r) for r in result.result_rows]

    def cancel_readonly(self, query_id: str) -> None:
        """Stop an analyst query (its client went away): KILL QUERY by its query_id."""
        with self._lock:
            self._client.command(f"KILL QUERY WHERE query_id = '{check_query_id(query_id)}' ASYNC")

    def close(self) -> None:
        """Close the HTTP clients."""
        for client in (self._client, self._parser, *self._analysts.values()):
            client.close()


def check_query_id(query_id: str) -> str:
    """`query_id` if it is a plain uuid (it is interpolated into KILL QUERY)."""
    if not re.fullmatch(r"[0-9a-f-]{1,64}", query_id):
        raise ValueError(f"not a query id: {query_id!r}")
    return query_id


def open_backend(url: str | None, data_path, analyst_url: str | None = None) -> Backend:
    """A ServerBackend when a ClickHouse URL is configured (analysts' SQL as the user of `analyst_url`
    when given), else chdb on `data_path`."""
    if url:
        return ServerBackend(url, analyst_url)
    return ChdbBackend(str(data_path))
