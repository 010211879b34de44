"""OrderEvents straight into ClickHouse: the Avro bodies as one container, parsed by ClickHouse itself.

Decoding every event in Python and building rows cost more than half of the projector's time. Avro
binary needs no re-encoding to become an Object Container File: a header naming the writer schema,
then one block holding the bodies as they came off the topic. ClickHouse parses it into a `Null`
landing table whose materialized views fill `order_events` and `orders` — the same rows the Python
row builders make (tests compare both paths).

The landing table is named after the writer schema's fingerprint, so a new schema version gets its
own landing table and views next to the old ones, and an insert never meets a half-replaced view.
"""

from __future__ import annotations

import json

from projections.clickhouse.ddl import DEFAULT_DATABASE, check_identifier
from schemas import registry
from schemas.compiled import write_long

_SYNC = b"TongluOCF\x00sync\x00\x00"  # any 16 bytes; ClickHouse only checks they repeat after the block
_SCALARS = {"string": "String", "bytes": "String", "long": "Int64", "int": "Int32", "boolean": "Bool",
            "double": "Float64", "float": "Float32"}


def clickhouse_type(schema, named: dict | None = None) -> str:
    """The ClickHouse column type ClickHouse's Avro reader fills from an Avro (plain) type; `named`
    collects named types as they are defined, for later references by name."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return _SCALARS[schema] if schema in _SCALARS else clickhouse_type(named[schema], named)
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) != 1 or len(schema) != 2:
            raise ValueError(f"only [null, T] unions are supported: {schema}")
        inner = clickhouse_type(branches[0], named)
        return inner if inner.startswith(("Array(", "Tuple(", "Map(")) else f"Nullable({inner})"
    kind = schema["type"]
    if kind in ("record", "enum"):
        named[schema["name"]] = named[f"{schema.get('namespace', 'tonglu')}.{schema['name']}"] = schema
    if kind == "record":
        fields = ", ".join(f"{f['name']} {clickhouse_type(f['type'], named)}" for f in schema["fields"])
        return f"Tuple({fields})"
    if kind == "enum":
        return "Enum8(" + ", ".join(f"'{s}' = {i}" for i, s in enumerate(schema["symbols"])) + ")"
    if kind == "array":
        return f"Array({clickhouse_type(schema['items'], named)})"
    if kind == "map":
        return f"Map(String, {clickhouse_type(schema['values'], named)})"
    return clickhouse_type(kind, named)


class EventLanding:
    """The landing table of the current OrderEvent schema, its views, and the container builder."""

    def __init__(self, database: str = DEFAULT_DATABASE):
        self.database = check_identifier(database)
        schema = registry.current("OrderEvent")
        self._plain = registry.plain(schema)
        self._schema_json = json.dumps(self._plain, ensure_ascii=False).encode()
        suffix = registry.fingerprint_of(schema).hex()[:12]
        self.table = f"{self.database}.order_events_in_{suffix}"
        self._views = (f"{self.database}.order_events_mv_{suffix}", f"{self.database}.orders_mv_{suffix}",
                       f"{self.database}.tracking_mv_{suffix}")
        self._header = self._container_header()

    def statements(self) -> list[str]:
        """Idempotent DDL: the Null landing table first, then the views that read from it."""
        db = self.database
        named: dict = {}
        columns = ", ".join(f"`{f['name']}` {clickhouse_type(f['type'], named)}" for f in self._plain["fields"])
        events_view, orders_view, tracking_view = self._views
        event_columns = (
            "event_id, event_type, order_id, order.platform AS platform, order.shop_id AS shop_id, version, seq, "
            "fromUnixTimestamp64Milli(occurred_at, 'UTC') AS occurred_at, "
            "fromUnixTimestamp64Milli(recorded_at, 'UTC') AS recorded_at, "
            "toString(order.status) AS status, toString(order.refund_status) AS refund_status, "
            "order.paid_total AS paid_total, order.currency AS currency, changed_fields"
        )
        times = ", ".join(f"fromUnixTimestamp64Milli(order.{t}, 'UTC') AS {t}"
                          for t in ("created_at", "paid_at", "updated_at", "shipped_at", "delivered_at"))
        order_columns = (
            "order.order_id AS order_id, order.platform AS platform, order.shop_id AS shop_id, "
            "order.external_id AS external_id, toString(order.status) AS status, "
            "toString(order.refund_status) AS refund_status, order.platform_status AS platform_status, "
            f"{times}, order.currency AS currency, order.items_total AS items_total, "
            "order.shipping_fee AS shipping_fee, order.discount_total AS discount_total, "
            "order.tax_total AS tax_total, order.paid_total AS paid_total, order.refunded_total AS refunded_total, "
            "least(length(order.lines), 65535) AS line_count, order.receiver.province AS province, "
            "order.receiver.city AS city, order.version AS version, toJSONString(order) AS order_json"
        )
        # the parcel of a TrackingUpdated is the shipment whose latest step is the event's time (rows.tracking_rows)
        tracking_columns = (
            "order.order_id AS order_id, order.platform AS platform, order.shop_id AS shop_id, "
            "ifNull(s.tracking_no, '') AS tracking_no, s.carrier AS carrier, assumeNotNull(s.tracking_state) AS "
            "tracking_state, s.tracking_status AS tracking_status, s.tracking_step AS step, "
            "fromUnixTimestamp64Milli(assumeNotNull(s.tracking_at), 'UTC') AS step_at, "
            "fromUnixTimestamp64Milli(s.delivered_at, 'UTC') AS delivered_at, event_id, version"
        )
        # order_json keeps numbers as numbers whatever the inserting session says (servers quote Int64 by default)
        json_settings = "output_format_json_quote_64bit_integers = 0, output_format_json_quote_denormals = 0"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} ({columns}) ENGINE = Null",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {events_view} TO {db}.order_events AS SELECT {event_columns} "
            + f"FROM {self.table}",
            # Every event of one order version carries the same snapshot: the first (seq 0) is enough.
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {orders_view} TO {db}.orders AS SELECT {order_columns} "
            + f"FROM {self.table} WHERE seq = 0 SETTINGS {json_settings}",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {tracking_view} TO {db}.tracking AS SELECT {tracking_columns} "
            + f"FROM {self.table} ARRAY JOIN order.shipments AS s WHERE event_type = 'TrackingUpdated' "
            + "AND s.tracking_at = occurred_at AND s.tracking_state IS NOT NULL",
        ]

    def container(self, bodies: list[bytes]) -> bytes:
        """An Avro Object Container File of one block holding `bodies` (Avro binary, no headers)."""
        data = b"".join(bodies)
        return b"".join((self._header, write_long(len(bodies)), write_long(len(data)), data, _SYNC))

    def _container_header(self) -> bytes:
        meta = ((b"avro.schema", self._schema_json), (b"avro.codec", b"null"))
        parts = [b"Obj\x01", write_long(len(meta))]
        for key, value in meta:
            parts += [write_long(len(key)), key, write_long(len(value)), value]
        parts += [b"\x00", _SYNC]
        return b"".join(parts)
