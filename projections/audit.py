"""The audit log: one row per write or SQL query to the HTTP API, in ClickHouse `audit_log`.

A row says who (token id and name, role), what (method, path, route, a summary of the body that
keeps only fields known to hold no personal data, the SQL text), the outcome (HTTP status), when,
and from where (the peer, or the client a trusted proxy names).
"""

from __future__ import annotations

import logging
import time
import uuid

import orjson

from projections.access import Principal, RouteRule
from projections.clickhouse.ddl import TABLE_COLUMNS

log = logging.getLogger(__name__)
TABLE = "audit_log"
MAX_VALUE = 200  # an allowed field's value is cut to this many characters
MAX_SQL = 20_000


def _described(value) -> str:
    if isinstance(value, str):
        return f"<string, {len(value)} chars>"
    if isinstance(value, (list, dict)):
        return f"<{type(value).__name__}, {len(value)} items>"
    return f"<{type(value).__name__}>" if value is not None else "<null>"


def summarize_body(raw: bytes, rule: RouteRule) -> tuple[str, str | None]:
    """(summary as JSON text, SQL text or None) of a request body under `rule`.

    Only the values of `rule.audit_fields` (short scalars) are kept; every other field is reduced
    to its type and size, so free text a person typed (a release reason) never reaches the log.
    """
    if not raw:
        return "{}", None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return orjson.dumps({"_body": f"<not JSON, {len(raw)} bytes>"}).decode(), None
    if not isinstance(body, dict):
        return orjson.dumps({"_body": _described(body)}).decode(), None
    summary, sql = {}, None
    for key, value in body.items():
        key = str(key)[:64]
        if key == rule.sql_field and isinstance(value, str):
            sql = value[:MAX_SQL]
            summary[key] = f"<sql, {len(value)} chars>"
        elif key in rule.audit_fields and isinstance(value, (str, int, float, bool)):
            summary[key] = value[:MAX_VALUE] if isinstance(value, str) else value
        else:
            summary[key] = _described(value)
    return orjson.dumps(summary).decode(), sql


def audit_row(
    *,
    principal: Principal | None,
    method: str,
    path: str,
    route: str,
    summary: str,
    sql: str | None,
    status: int,
    client: str,
    peer: str,
    started: float,
    now: float | None = None,
) -> tuple:
    """One `audit_log` row in TABLE_COLUMNS order (`started`/`now`: time.time() seconds)."""
    now = time.time() if now is None else now
    who = principal
    values = {
        "audit_id": uuid.uuid4().hex,
        "at": int(started * 1000),
        "token_id": who.token_id if who else "",
        "token_name": who.name if who else "",
        "role": who.role.label if who else "none",
        "method": method,
        "path": path[:2000],
        "route": route,
        "summary": summary,
        "sql": sql,
        "status": status,
        "client": client,
        "peer": peer,
        "duration_ms": round((now - started) * 1000, 3),
    }
    return tuple(values[c] for c in TABLE_COLUMNS[TABLE])


class AuditLog:
    """Writes audit rows through the projector's ClickHouse backend (blocking: call off the loop)."""

    def __init__(self, backend, database: str):
        self.backend = backend
        self.table = f"{database}.{TABLE}"
        self.failures = 0

    def write(self, row: tuple) -> None:
        """Insert one row; a failure is logged and counted, never raised into the request."""
        try:
            self.backend.insert(self.table, TABLE_COLUMNS[TABLE], [row])
        except Exception:  # the answer was decided already; the gap must be visible in the log
            self.failures += 1
            log.exception("audit row not written: %s", row)
