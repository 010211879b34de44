"""The Avro contracts: codec round trips, the pydantic mirror, and compatibility with old readers."""
import io
import typing

import pytest
from fastavro import schemaless_reader
from fastavro.schema import load_schema, parse_schema
from fastavro.validation import validate

from schemas import registry
from schemas.codec import AvroCodec, DecodeError, decode_any
from schemas.model import Order
from streams.derive import derive_events
from tests.factories import BASE_MS, canonical_order

AVRO_PRIMITIVES = {"string": str, "long": int, "int": int, "boolean": bool, "double": float, "bytes": bytes}


def test_single_object_header_is_the_crc64_fingerprint_of_the_avsc():
    codec = AvroCodec("Order")
    data = codec.encode(canonical_order())
    assert data[:2] == b"\xc3\x01"
    independent = load_schema(str(registry.schema_path("Order")))
    assert data[2:10] == registry.fingerprint_of(independent)


def test_independent_reader_with_only_avsc_files_decodes_events():
    """A consumer that knows nothing of our code: fastavro + the .avsc files."""
    order = canonical_order()
    events = derive_events(None, order, BASE_MS)
    body = AvroCodec("Order").encode_body(order)
    data = AvroCodec("OrderEvent").encode_with_tail(events[1], body)
    schemas_by_fp = {}
    for path in registry.SCHEMA_DIR.glob("*.avsc"):
        schema = load_schema(str(path))
        schemas_by_fp[registry.fingerprint_of(schema)] = schema
    decoded = schemaless_reader(io.BytesIO(data[10:]), schemas_by_fp[data[2:10]], None)
    assert decoded["event_type"] == "OrderPaid"
    assert decoded["order"]["order_id"] == order["order_id"]
    assert decoded["order"]["lines"][1]["title"] == "浴巾"
    assert decoded["occurred_at"].year == 2024  # logical type seen by an independent reader


def test_encode_with_tail_equals_plain_encoding():
    order = canonical_order()
    event = derive_events(None, order, BASE_MS)[0]
    codec = AvroCodec("OrderEvent")
    assert codec.encode_with_tail(event, AvroCodec("Order").encode_body(order)) == codec.encode(event)


def test_round_trip_every_schema():
    order = canonical_order()
    assert AvroCodec("Order").decode(AvroCodec("Order").encode(order)) == order
    call = {"call_id": "c", "platform": "taobao", "shop_id": "s", "endpoint": "x", "started_at": 1, "latency_ms": 1.5,
            "http_status": 200, "ok": True, "error_code": None, "records": 3, "attempt": 1}
    assert decode_any(AvroCodec("ConnectorCall").encode(call)) == ("ConnectorCall", call)


def test_garbage_is_a_decode_error():
    codec = AvroCodec("RawRecord")
    with pytest.raises(DecodeError):
        codec.decode(b"{\"not\": \"avro\"}")
    with pytest.raises(DecodeError):
        codec.decode(b"\xc3\x01" + b"\x00" * 8 + b"xx")
    with pytest.raises(DecodeError):
        codec.decode(codec.header + b"\xff")


def test_old_reader_reads_new_records():
    """A consumer still on Order v1 (before refunded_total) reads records written with the current schema."""
    v1 = registry.historical()["Order"][0]
    data = AvroCodec("Order").encode(canonical_order(refunded_total=500))
    old = schemaless_reader(io.BytesIO(data[10:]), parse_schema(registry.plain(registry.current("Order"))),
                            parse_schema(registry.plain(v1)))
    assert "refunded_total" not in old and old["paid_total"] == 15780


def test_new_reader_reads_old_records():
    v1 = parse_schema(registry.plain(registry.historical()["Order"][0]))
    from fastavro import schemaless_writer
    buf = io.BytesIO()
    old = canonical_order()
    del old["refunded_total"]
    schemaless_writer(buf, v1, old)
    data = b"\xc3\x01" + registry.fingerprint_of(registry.historical()["Order"][0]) + buf.getvalue()
    assert AvroCodec("Order").decode(data)["refunded_total"] == 0


def _avro_fields(record_schema: dict) -> dict:
    return {f["name"]: f for f in record_schema["fields"]}


def _check_model(model, record_schema: dict):
    fields = _avro_fields(record_schema)
    assert set(model.model_fields) == set(fields), model.__name__
    for name, info in model.model_fields.items():
        avro_type = fields[name]["type"]
        optional = isinstance(avro_type, list) and "null" in avro_type
        args = typing.get_args(info.annotation)
        assert optional == (type(None) in args), f"{model.__name__}.{name} optionality"
        core = next(t for t in avro_type if t != "null") if isinstance(avro_type, list) else avro_type
        if isinstance(core, dict) and core.get("type") == "record":
            _check_model(info.annotation, core)
        elif isinstance(core, dict) and core.get("type") == "array" and isinstance(core["items"], dict) \
                and core["items"].get("type") == "record":
            _check_model(typing.get_args(info.annotation)[0], core["items"])
        elif isinstance(core, dict) and core.get("type") == "enum":
            assert set(typing.get_args(info.annotation)) == set(core["symbols"]), name
        elif isinstance(core, str) and core in AVRO_PRIMITIVES:
            assert AVRO_PRIMITIVES[core] in (args or (info.annotation,)), f"{model.__name__}.{name} type"


def test_pydantic_model_matches_avro_contract():
    _check_model(Order, registry.current("Order"))


def test_factory_orders_validate_against_both():
    order = canonical_order()
    assert Order.model_validate(order).model_dump() == order
    assert validate(order, parse_schema(registry.current("Order")), raise_errors=False)
    assert AvroCodec("Order").decode(AvroCodec("Order").encode(order)) == order
    event = derive_events(None, order, BASE_MS)[0]
    assert validate(event, parse_schema(registry.current("OrderEvent")), raise_errors=False)
    broken = dict(order, paid_total="157.80")  # a string where the contract says long
    assert not validate(broken, parse_schema(registry.current("Order")), raise_errors=False)
