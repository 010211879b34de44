"""The batch sink: buffer rows, write them in one insert per table, tied to the offset commit.

Contract (as Quix Streams sinks): the caller commits its consumer offsets only after `flush()`
returned. A failed flush raises `FlushError` and keeps every row not yet written, so a retry writes
them again; rows already written are dropped from the buffer, which is safe because every table
collapses duplicates (ReplacingMergeTree on the row identity).
"""

from __future__ import annotations

import time

from projections.clickhouse import rows as build
from projections.clickhouse.avro_landing import EventLanding
from projections.clickhouse.ddl import DEFAULT_DATABASE, TABLE_COLUMNS, check_identifier
from schemas.codec import DecodeError, EventDecoder

_ORDER_VERSION = TABLE_COLUMNS["orders"].index("version")
KINDS = ("order_event", "connector_call", "dead_letter", "anomaly", "alert_report", "shipment_result", "sms_receipt")


class FlushError(RuntimeError):
    """A flush failed; the rows stay buffered and the offsets must not be committed."""


class ClickHouseSink:
    """Buffers rows per table and writes them on `flush()`."""

    def __init__(self, backend, database: str = DEFAULT_DATABASE):
        self.backend = backend
        self.database = check_identifier(database)
        self._buffers: dict[str, list[tuple]] = {t: [] for t in TABLE_COLUMNS if t != "orders"}
        # Latest state: within one batch only the highest version of each order needs writing, so
        # orders are kept as dicts (or ready rows) and turned into rows at flush.
        self._orders: dict[str, dict | tuple] = {}
        # OrderEvents of the current schema, kept as they came off the topic for ClickHouse to parse.
        self.landing = EventLanding(self.database)
        self._decoder = EventDecoder()
        self._encoded_events: list[tuple[bytes, str]] = []
        # ClickHouse's Avro reader does not notice a record cut short or padded (it reads on into the
        # next one), so every body's framing is checked here first; the events of one order version carry
        # the same snapshot bytes, which are checked once.
        self._skip_head = self._decoder.events.skipper(head=True)
        self._skip_order = self._decoder.orders.skipper()
        self._checked_tail = b""
        self.rejected: list[tuple[str, str]] = []  # (where, why) of encoded events that did not decode
        self.last_flush_seconds = 0.0

    def add_encoded_event(self, value: bytes, where: str = "") -> None:
        """Buffer an OrderEvent as read from the topic. Those of the current schema go to ClickHouse
        undecoded; any other is decoded here.

        `where` (e.g. topic[partition]@offset) names it in `rejected` if it turns out undecodable.
        """
        header = self._decoder.events.header
        if not isinstance(value, bytes) or value[:len(header)] != header:  # incl. tombstones
            self._add_decoded([(value, where)])
            return
        start = len(header)
        try:
            end = self._skip_head(value, start)
            tail = value[end:]
            if tail != self._checked_tail:
                if self._skip_order(value, end) != len(value):
                    raise ValueError("trailing bytes")
                self._checked_tail = tail
        except (IndexError, ValueError):
            self._add_decoded([(value, where)])  # names the exact fault, or takes it if it decodes after all
            return
        self._encoded_events.append((value, where))

    def add(self, table_or_kind: str, record) -> None:
        """Buffer one record: a decoded `order_event` / `connector_call` / `dead_letter` / `anomaly` /
        `alert_report` / `shipment_result` / `sms_receipt` dict, or a ready row tuple for a table name."""
        if table_or_kind == "order_event":
            self._buffers["order_events"].append(build.event_row(record))
            self._add_order(record["order"])
            self._buffers["tracking"] += build.tracking_rows(record)
        elif table_or_kind == "connector_call":
            self._buffers["connector_calls"].append(build.connector_call_row(record))
        elif table_or_kind == "dead_letter":
            self._buffers["dead_letters"].append(build.dead_letter_row(record))
        elif table_or_kind == "anomaly":
            for table, row in build.anomaly_rows(record).items():
                self._buffers[table].append(row)
        elif table_or_kind == "alert_report":
            self._buffers["alerts"].append(build.alert_row(record))
        elif table_or_kind == "shipment_result":
            self._buffers["shipments"].append(build.shipment_row(record))
        elif table_or_kind == "sms_receipt":
            self._buffers["sms_messages"].append(build.sms_message_row(record))
        elif table_or_kind == "orders":
            self._add_order(tuple(record))
        elif table_or_kind in self._buffers:
            self._buffers[table_or_kind].append(tuple(record))
        else:
            raise ValueError(f"unknown table or kind: {table_or_kind!r}")

    def _add_order(self, order: dict | tuple) -> None:
        key, version = (order[0], order[_ORDER_VERSION]) if isinstance(order, tuple) else (
            order["order_id"], order["version"])
        held = self._orders.get(key)
        if held is None or version >= (held[_ORDER_VERSION] if isinstance(held, tuple) else held["version"]):
            self._orders[key] = order

    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return sum(map(len, self._buffers.values())) + len(self._orders) + len(self._encoded_events)

    def flush(self) -> None:
        """Write every buffer, one insert per table. Raises FlushError and keeps unwritten rows."""
        started = time.perf_counter()
        if self._encoded_events:
            self._write_encoded_events()
        # Orders first: a reader that sees all events of a flush also sees the orders they produced.
        if self._orders:
            self._write("orders", [o if isinstance(o, tuple) else build.order_row(o) for o in self._orders.values()])
            self._orders = {}
        for table, buffer in self._buffers.items():
            if buffer:
                self._write(table, buffer)
                self._buffers[table] = []
        self.last_flush_seconds = time.perf_counter() - started

    def _write_encoded_events(self) -> None:
        """One Avro container into the landing table. If ClickHouse refuses it, the batch is decoded here
        instead: undecodable records go to `rejected`, the rest become rows, and a ClickHouse that is down
        then fails the row flush as usual (rows kept, FlushError)."""
        skip = len(self._decoder.events.header)
        try:
            self.backend.insert_encoded(
                self.landing.table, self.landing.container([v[skip:] for v, _ in self._encoded_events]), "Avro")
        except Exception:  # noqa: BLE001 - any refusal falls back to the decoding path
            self._add_decoded(self._encoded_events)
        self._encoded_events = []

    def _add_decoded(self, encoded: list[tuple[bytes, str]]) -> None:
        snapshots: dict = {}
        for value, where in encoded:
            try:
                self.add("order_event", self._decoder.decode(value, snapshots))
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                self.rejected.append((where, str(exc)))

    def take_rejected(self) -> list[tuple[str, str]]:
        """Encoded events found undecodable since the last call."""
        rejected, self.rejected = self.rejected, []
        return rejected

    def _write(self, table: str, rows: list[tuple]) -> None:
        try:
            self.backend.insert(f"{self.database}.{table}", TABLE_COLUMNS[table], rows)
        except Exception as exc:
            raise FlushError(
                f"insert into {self.database}.{table} of {len(rows)} rows failed: {exc}"
            ) from exc
