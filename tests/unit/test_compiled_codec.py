"""The schema-compiled codec writes exactly what fastavro writes and reads it back."""
import io
import random

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema

from connectors.platforms.shopify.mapping import map_payload as map_shopify
from connectors.platforms.shopify.render import order_json
from connectors.platforms.taobao.mapping import map_payload as map_taobao
from connectors.platforms.taobao.render import trade_dict
from connectors.simkit.world import World
from schemas import registry
from schemas.canonical import with_tracking_fields
from schemas.codec import AvroCodec, DecodeError, EventDecoder
from schemas.compiled import read_long, write_long
from streams.derive import derive_events


def _orders():
    import json

    cn, us = World(seed=3), World(seed=4, region="US", currency="USD")
    out = []
    for world, render, mapper in ((cn, lambda o: {"trade_fullinfo_get_response": {"trade": trade_dict(o)}}, map_taobao),
                                  (us, lambda o: {"order": order_json(o, "s.myshopify.com")}, map_shopify)):
        for order in world.create_orders("s", 150, 1_710_000_000_000, paid=False):
            for step in range(random.Random(order.external_id).randrange(5)):
                world.step(order, 1_710_000_000_000 + step * 60_000)
            out += mapper(json.dumps(render(order)).encode(), "json", "s")
    for order in out:  # as the normalizer holds them: the tracking fields of Order v4 present
        order["shipments"] = [with_tracking_fields(s) for s in order["shipments"]]
    return out


ORDERS = _orders()


LONGS = [0, 1, -1, 63, -63, 64, -64, -65, 8191, -8191, 8192, -8192, -8193, 2**20, -(2**20), 2**27, 2**27 - 1,
         -(2**27), -(2**27) - 1, 2**31, -(2**31), 2**41 - 1, 2**41, -(2**41), -(2**41) - 1, 1_710_000_000_000,
         1_710_000_000_001, 4_102_444_800_000, -1_710_000_000_000, 2**62, 2**63 - 1, -(2**63)]


@pytest.mark.parametrize("n", LONGS)
def test_varints_round_trip_and_match_fastavro(n):
    buf = io.BytesIO()
    schemaless_writer(buf, "long", n)
    for _ in range(2):  # the second time from the cache of recent big values
        assert write_long(n) == buf.getvalue()
        assert read_long(write_long(n), 0) == (n, len(buf.getvalue()))


def test_floats_are_not_longs_even_when_cached():
    write_long(1_710_000_000_000)
    with pytest.raises(TypeError):
        write_long(1_710_000_000_000.0)


@pytest.mark.parametrize("n", LONGS)
def test_long_fields_at_every_varint_size_are_byte_identical_to_fastavro(n):
    order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
    base = next(o for o in ORDERS if o["shipments"] and len(o["lines"]) > 1)
    neg = -n if n > -(2**63) else n
    order = dict(base, created_at=n, paid_total=n, items_total=neg, version=n,
                 lines=[dict(line, unit_price=n, total=neg) for line in base["lines"]],
                 shipments=[dict(s, shipped_at=n) for s in base["shipments"]])
    if -(2**31) <= n < 2**31:
        order["lines"] = [dict(line, quantity=n) for line in order["lines"]]
    buf = io.BytesIO()
    schemaless_writer(buf, order_codec._parsed, order)
    assert order_codec.encode_body(order) == buf.getvalue()
    event = dict(derive_events(None, dict(order), n)[0], occurred_at=n, recorded_at=neg, seq=n % 2**31)
    buf = io.BytesIO()
    schemaless_writer(buf, event_codec._parsed, event)
    assert event_codec.encode_with_tail(event, order_codec.encode_body(event["order"]))[10:] == buf.getvalue()


def test_fields_left_to_their_defaults_are_byte_identical_to_fastavro():
    codec = AvroCodec("Order")
    for order in ORDERS[:50]:
        lines = [{k: v for k, v in line.items() if k not in ("discount", "sku_id")} for line in order["lines"]]
        order = dict(order, buyer={}, receiver={"country": "CN"}, lines=lines,
                     shipments=[{"tracking_no": s["tracking_no"]} for s in order["shipments"]])
        del order["refunded_total"]
        buf = io.BytesIO()
        schemaless_writer(buf, codec._parsed, order)
        assert codec.encode_body(order) == buf.getvalue()


def test_orders_and_events_are_byte_identical_to_fastavro():
    order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
    for order in ORDERS:
        buf = io.BytesIO()
        schemaless_writer(buf, order_codec._parsed, order)
        assert order_codec.encode_body(order) == buf.getvalue()
        assert order_codec.decode(order_codec.encode(order)) == order
        for event in derive_events(None, order, 1_710_000_000_000, "rid", "poll"):
            data = event_codec.encode_with_tail(event, order_codec.encode_body(order))
            buf = io.BytesIO()
            schemaless_writer(buf, event_codec._parsed, event)
            assert data[10:] == buf.getvalue()
            assert schemaless_reader(io.BytesIO(data[10:]), event_codec._parsed, None) == event_codec.decode(data)


def test_invalid_records_are_value_errors():
    codec = AvroCodec("Order")
    broken = dict(ORDERS[0])
    del broken["status"]
    with pytest.raises(ValueError):
        codec.encode_body(broken)
    with pytest.raises(ValueError):
        codec.encode_body(dict(ORDERS[0], status="NOT_A_STATUS"))


def test_truncated_or_padded_bodies_are_decode_errors():
    codec = AvroCodec("Order")
    data = codec.encode(ORDERS[0])
    with pytest.raises(DecodeError):
        codec.decode(data[:-3])
    with pytest.raises(DecodeError):
        codec.decode(data + b"\x00")


def test_skipper_finds_the_end_of_every_record_and_of_the_event_head():
    order_codec, event_codec = AvroCodec("Order"), AvroCodec("OrderEvent")
    skip_order, skip_event, skip_head = order_codec.skipper(), event_codec.skipper(), event_codec.skipper(head=True)
    for order in ORDERS:
        body = order_codec.encode_body(order)
        assert skip_order(body, 0) == len(body)
        for event in derive_events(None, order, 1_710_000_000_000, "raw-1", "poll"):
            value = event_codec.encode_with_tail(event, body)
            start = len(event_codec.header)
            assert skip_event(value, start) == len(value)
            assert skip_head(value, start) == len(value) - len(body)


@pytest.mark.parametrize("cut", [1, 2, 5, 17])
def test_skipper_refuses_bodies_cut_short_or_padded(cut):
    order_codec = AvroCodec("Order")
    skip = order_codec.skipper()
    for order in ORDERS[:100]:
        body = order_codec.encode_body(order)
        with pytest.raises((IndexError, ValueError)):
            if skip(body[:-cut], 0) != len(body) - cut:
                raise ValueError("ends elsewhere")
        assert skip(body + b"\x00" * cut, 0) == len(body)  # the caller compares the end with the length


def test_skipper_refuses_an_out_of_range_enum_index():
    order_codec = AvroCodec("Order")
    skip = order_codec.skipper()
    body = order_codec.encode_body(ORDERS[0])
    head = len(write_long(len(ORDERS[0]["order_id"]))) + len(ORDERS[0]["order_id"].encode())
    for field in ("platform", "shop_id", "external_id"):
        head += len(write_long(len(ORDERS[0][field].encode()))) + len(ORDERS[0][field].encode())
    with pytest.raises(ValueError, match="enum"):  # status is the next field
        skip(body[:head] + write_long(99) + body[head + 1:], 0)


def _event_values():
    codec, held, values = AvroCodec("OrderEvent"), {}, []
    for order in ORDERS:
        events = derive_events(held.get(order["order_id"]), order, 1_710_000_000_000)
        if events:
            held[order["order_id"]] = order
            values += [codec.encode(e) for e in events]
    return values


def test_decode_firsts_gives_the_first_event_of_each_version_only():
    values = _event_values()
    reader = EventDecoder()
    snapshots: dict = {}
    every = [reader.decode(value, snapshots) for value in values]
    assert any(e["seq"] for e in every)  # versions with several events are in the sample
    assert reader.decode_firsts(values) == [e for e in every if e["seq"] == 0]


def test_decode_firsts_reads_events_of_an_older_schema_whole():
    v1 = parse_schema(registry.plain(registry.historical()["OrderEvent"][0]))
    order = next(o for o in ORDERS if o["status"] == "PAID")
    events = derive_events(None, order, 1_710_000_000_000)  # OrderCreated, OrderPaid: seq 0 and 1
    assert [e["seq"] for e in events] == [0, 1]
    values = []
    for event in events:
        buf = io.BytesIO()
        schemaless_writer(buf, v1, event)
        values.append(b"\xc3\x01" + registry.fingerprint_of(registry.historical()["OrderEvent"][0]) + buf.getvalue())
    (decoded,) = EventDecoder().decode_firsts(values)
    assert decoded["event_id"] == events[0]["event_id"] and decoded["order"]["order_id"] == order["order_id"]


@pytest.mark.parametrize("cut", [3, 12, 40, -5])
def test_decode_firsts_refuses_a_cut_event(cut):
    value = _event_values()[0]
    with pytest.raises(DecodeError):
        EventDecoder().decode_firsts([value[:cut]])


def test_partial_decoder_builds_only_the_kept_fields_and_checks_the_rest():
    codec = AvroCodec("Order")
    keep = ("order_id", "status", "paid_at", "shipments", "version")
    partial = codec.partial_decoder(keep)
    for order in ORDERS:
        body = codec.encode_body(order)
        decoded, end = partial(body, 0)
        assert decoded == {name: order[name] for name in keep} and end == len(body)
    body = codec.encode_body(ORDERS[0])
    with pytest.raises((IndexError, ValueError)):  # a skipped field cut short is still noticed
        partial(body[:-4], 0)


def test_decode_firsts_gives_light_snapshots_to_updates_that_change_none_of_the_given_fields():
    codec, values = AvroCodec("OrderEvent"), []
    for order in ORDERS[:100]:
        later = dict(order, updated_at=order["updated_at"] + 60_000, platform_status="TRADE_CLOSED")
        fixed = dict(later, updated_at=later["updated_at"] + 60_000, receiver=dict(later["receiver"], city="x"))
        for before, after in ((None, order), (order, later), (later, fixed)):
            values += [codec.encode(e) for e in derive_events(before, after, 1_710_000_000_000)]
    full = EventDecoder().decode_firsts(values)
    light_fields, unless = frozenset(("order_id", "status", "version")), frozenset(("lines", "receiver"))
    light = EventDecoder(light=(light_fields, unless)).decode_firsts(values)
    assert len(light) == len(full)
    partial = 0
    for got, want in zip(light, full, strict=True):
        changed = want["changed_fields"]
        if changed and unless.isdisjoint(changed):
            partial += 1
            assert set(got["order"]) == light_fields
            assert {k: v for k, v in got.items() if k not in ("order", "snapshot")} == {
                k: v for k, v in want.items() if k != "order"}
            assert got["snapshot"]() == want["order"]
        else:
            assert got == want
    assert 0 < partial < len(full)
