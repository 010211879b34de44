"""ClickHouse read models: DDL, row builders, backends (chdb in-process or a server) and the batch sink."""

from projections.clickhouse.backends import Backend, ChdbBackend, ServerBackend, open_backend
from projections.clickhouse.ddl import TABLE_COLUMNS, create_schema
from projections.clickhouse.sink import ClickHouseSink, FlushError

__all__ = [
    "TABLE_COLUMNS",
    "Backend",
    "ChdbBackend",
    "ClickHouseSink",
    "FlushError",
    "ServerBackend",
    "create_schema",
    "open_backend",
]
