"""With a schema registry configured, records use the Confluent wire format and stay readable."""
import asyncio
import io
import json
import struct
import urllib.request

from aiohttp import web
from fastavro import schemaless_reader
from fastavro.schema import parse_schema

from connectors.schema_registry_sim import create_app
from infra.broker import free_port
from schemas.codec import AvroCodec
from schemas.schema_registry import SchemaRegistryClient
from streams.derive import derive_events
from tests.factories import BASE_MS, canonical_order


async def test_confluent_wire_format_round_trip_and_independent_reader():
    runner = web.AppRunner(create_app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        client = SchemaRegistryClient(url)
        order_codec = await asyncio.to_thread(AvroCodec, "Order", client)
        event_codec = await asyncio.to_thread(AvroCodec, "OrderEvent", client)
        order = canonical_order()
        event = derive_events(None, order, BASE_MS)[0]
        data = event_codec.encode_with_tail(event, order_codec.encode_body(order))
        assert data[:1] == b"\x00"
        (schema_id,) = struct.unpack(">I", data[1:5])
        assert await asyncio.to_thread(event_codec.decode, data) == event
        head, offset = event_codec.decode_head(data)
        assert head["event_type"] == "OrderCreated" and order_codec.decode_body(data, offset) == order

        # a consumer that knows only the registry
        def fetch():
            with urllib.request.urlopen(f"{url}/schemas/ids/{schema_id}") as resp:
                return json.loads(json.loads(resp.read())["schema"])
        writer = parse_schema(await asyncio.to_thread(fetch))
        decoded = schemaless_reader(io.BytesIO(data[5:]), writer, None)
        assert decoded["order"]["order_id"] == order["order_id"]
        # registering again gives the same id
        again = await asyncio.to_thread(AvroCodec, "OrderEvent", SchemaRegistryClient(url))
        assert again.header == event_codec.header
        # single-object records from before the registry still decode
        assert event_codec.decode(AvroCodec("OrderEvent").encode_with_tail(event, order_codec.encode_body(order))) \
            == event
    finally:
        await runner.cleanup()
