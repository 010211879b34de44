"""The edge of analysts' SQL: vet it, run it apart from the API's own queries, stop it when the client leaves.

Analyst queries take threads of their own pool, so a few slow ones never hold the threads the
API's other handlers (and their ClickHouse queries) run on; the backend runs them on connections
of their own, never under the writer's lock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from projections.clickhouse.ddl import ANALYST_TABLES
from projections.sqlguard import UnsafeSQL, failure_reason, vet_sql

log = logging.getLogger(__name__)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyst-sql")
_DISCONNECT_POLL_S = 0.2


async def answer(request: web.Request, backend, database: str, sql: object) -> tuple[int, dict]:
    """(HTTP status, body) for one analyst statement: 200 with columns and rows, 400 with the reason."""
    loop = asyncio.get_running_loop()
    try:
        vetted = await loop.run_in_executor(_POOL, vet_sql, backend, sql, database, ANALYST_TABLES)
    except UnsafeSQL as exc:
        return 400, {"error": str(exc)}
    if vetted.sql is None:
        return 200, {"columns": list(vetted.columns), "rows": [list(r) for r in vetted.rows]}
    query_id = str(uuid.uuid4())
    running = loop.run_in_executor(_POOL, backend.query_readonly, vetted.sql, database, query_id)
    try:
        while not running.done():
            await asyncio.wait({running}, timeout=_DISCONNECT_POLL_S)
            if not running.done() and (request.transport is None or request.transport.is_closing()):
                raise ConnectionResetError
    except (ConnectionResetError, asyncio.CancelledError):
        log.info("analyst query %s stopped: its client went away", query_id)
        await asyncio.shield(loop.run_in_executor(None, backend.cancel_readonly, query_id))
        raise
    try:
        columns, rows = running.result()
    # Both clients raise plain exception types for syntax errors, limits and readonly refusals.
    except Exception as exc:  # noqa: BLE001 - the analyst's error, reported back as 400
        return 400, {"error": failure_reason(exc)}
    return 200, {"columns": columns, "rows": rows}
