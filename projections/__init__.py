"""Read models of Tonglu: ClickHouse tables fed from the event log, the projector, the HTTP API."""
