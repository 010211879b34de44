"""The Anomaly contract: the compiled codec (with its map support) writes exactly what fastavro writes."""
import io
import random

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema

from schemas import registry
from schemas.codec import AvroCodec, decode_any
from schemas.compiled import compile_decoder, compile_encoder


def _anomaly(**overrides):
    record = {"anomaly_id": "0" * 32, "order_id": "taobao:shop1:1001", "event_id": "e" * 32, "platform": "taobao",
              "shop_id": "shop1", "rule": "amount_mismatch", "severity": "warning", "action": "hold",
              "state": "raised", "message_zh": "金额不一致：应付 157.80，实付 150.00",
              "message_en": "amounts do not add up", "evidence": {"expected": "15780", "paid_total": "15000"},
              "detected_at": 1_710_727_092_000, "order_version": 3}
    record.update(overrides)
    return record


def _fastavro(schema, record) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, record)
    return buf.getvalue()


@pytest.mark.parametrize("record", [
    _anomaly(),
    _anomaly(event_id=None, evidence={}, state="resolved", severity="critical"),
    _anomaly(evidence={"省": "浙江省", "other_order_id": "shopify:s:9" * 20, "x" * 300: "y" * 5000}),
])
def test_anomaly_round_trip_is_byte_identical_to_fastavro(record):
    codec = AvroCodec("Anomaly")
    assert codec._encode is not None, "the compiled codec must handle the Anomaly schema"
    assert codec.encode_body(record) == _fastavro(codec._parsed, record)
    assert codec.decode(codec.encode(record)) == record
    assert decode_any(codec.encode(record)) == ("Anomaly", record)


def test_random_maps_of_various_sizes():
    schema = parse_schema({"type": "record", "name": "M", "fields": [
        {"name": "m", "type": {"type": "map", "values": "long"}},
        {"name": "n", "type": ["null", {"type": "map", "values": {"type": "array", "items": "string"}}]}]})
    encode, decode = compile_encoder(schema), compile_decoder(schema)
    rng = random.Random(5)
    for _ in range(200):
        record = {"m": {f"k{i}": rng.randrange(-2**40, 2**40) for i in range(rng.randrange(0, 80))},
                  "n": rng.choice([None, {}, {"a": ["x", "中"], "b": []}])}
        data = encode(record)
        assert data == _fastavro(schema, record)
        assert decode(data) == (record, len(data))
        assert schemaless_reader(io.BytesIO(data), schema, None) == record


def test_map_blocks_with_byte_sizes_are_read():
    """Writers may use negative block counts followed by the block's byte size."""
    schema = parse_schema({"type": "map", "values": "string"})
    decode = compile_decoder(schema)
    # block of -1 entries, byte size 4, "a" -> "b", end
    assert decode(b"\x01\x08\x02a\x02b\x00") == ({"a": "b"}, 7)


def test_schema_has_the_documented_fields_and_enums():
    schema = registry.current("Anomaly")
    names = [f["name"] for f in schema["fields"]]
    assert names == ["anomaly_id", "order_id", "event_id", "platform", "shop_id", "rule", "severity", "action",
                     "state", "message_zh", "message_en", "evidence", "detected_at", "order_version"]
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["severity"]["symbols"] == ["info", "warning", "critical"]
    assert types["action"]["symbols"] == ["flag", "hold"]
    assert types["state"]["symbols"] == ["raised", "resolved"]
    assert types["evidence"] == {"type": "map", "values": "string"}
