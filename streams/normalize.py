"""Raw platform pages -> canonical orders -> domain events, for a batch of raw.orders records.

Pure apart from the order store it updates; the Faust agent around it only moves bytes.
Nothing is dropped: a record that cannot be decoded or mapped becomes a dead letter with its reason.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from connectors import platforms
from schemas.canonical import MappingError
from schemas.codec import AvroCodec, DecodeError
from schemas.sealing import open_body
from streams.derive import derive_events
from streams.state import OrderStore


@dataclass
class RawIn:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class Output:
    events: list[tuple[bytes, bytes]] = field(default_factory=list)  # (order_id, OrderEvent) for order.events
    states: list[tuple[bytes, bytes]] = field(default_factory=list)  # (order_id, Order) for order.state
    dead: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # for raw.orders.dlq
    orders: int = 0
    unchanged: int = 0


def _updated_at(order: dict) -> int:
    return order.get("updated_at") or 0


class Normalizer:
    def __init__(self, store: OrderStore | None = None):
        self.raw_codec = AvroCodec("RawRecord")
        self.order_codec = AvroCodec("Order")
        self.event_codec = AvroCodec("OrderEvent")
        self.dlq_codec = AvroCodec("DeadLetter")
        self.store = store or OrderStore(self.order_codec)

    def process(self, records: list[RawIn], now_ms: int | None = None) -> Output:
        out = Output()
        now_ms = now_ms or int(time.time() * 1000)
        for rec in records:
            raw = None
            try:
                raw = self.raw_codec.decode(rec.value)
                body = open_body(raw)  # sealed bodies open only here; a SealError is a DecodeError
                orders = platforms.map_payload(raw["platform"], body, raw["content_type"], raw["shop_id"])
            except DecodeError as exc:
                self._dead(out, rec, "decode", str(exc), None, now_ms)
                continue
            except (MappingError, platforms.UnknownPlatform) as exc:
                self._dead(out, rec, "map", str(exc), raw, now_ms)
                continue
            except Exception as exc:  # noqa: BLE001 - a mapping bug must not stall the worker; keep the record
                self._dead(out, rec, "map", f"{exc.__class__.__name__}: {exc}", raw, now_ms)
                continue
            if len(orders) > 1:  # list APIs answer newest first; derive in the order things happened
                orders.sort(key=_updated_at)
            for order in orders:
                self._apply(order, raw, now_ms, out)
        return out

    def _apply(self, order: dict, raw: dict, now_ms: int, out: Output) -> None:
        out.orders += 1
        oid = order["order_id"]
        previous = self.store.get(oid)
        events = derive_events(previous, order, now_ms, raw["record_id"], raw["source"])
        if not events:
            out.unchanged += 1
            return
        body = self.order_codec.encode_body(order)
        key = oid.encode()
        state_value = self.order_codec.header + body
        self.store.put_encoded(oid, state_value)
        out.states.append((key, state_value))
        for event in events:
            out.events.append((key, self.event_codec.encode_with_tail(event, body)))

    def _dead(self, out: Output, rec: RawIn, stage: str, error: str, raw: dict | None, now_ms: int) -> None:
        error = error.replace("\n", " ")[:2000]
        out.dead.append((rec.key, self.dlq_codec.encode({
            "stage": stage, "error": error, "failed_at": now_ms, "topic": rec.topic, "partition": rec.partition,
            "offset": rec.offset, "key": rec.key, "value": rec.value,
            "platform": raw and raw.get("platform"), "shop_id": raw and raw.get("shop_id"),
            "external_id": raw and raw.get("external_id"),
        })))
