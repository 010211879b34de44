"""The schema-compiled codec writes exactly what fastavro writes and reads it back."""
import io
import random

import pytest
from fastavro import schemaless_reader, schemaless_writer

from connectors.platforms.shopify.mapping import map_payload as map_shopify
from connectors.platforms.shopify.render import order_json
from connectors.platforms.taobao.mapping import map_payload as map_taobao
from connectors.platforms.taobao.render import trade_dict
from connectors.simkit.world import World
from schemas.codec import AvroCodec, DecodeError
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
    return out


ORDERS = _orders()


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 8191, 8192, -8193, 2**31, -(2**31), 2**62, -(2**63)])
def test_varints_round_trip(n):
    assert read_long(write_long(n), 0) == (n, len(write_long(n)))


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
