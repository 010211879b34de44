"""Raw platform pages -> canonical orders -> domain events, for a batch of raw.orders records.

Pure apart from the order store it updates; the Faust agent around it only moves bytes.
Nothing is dropped: any record that cannot become events — a null value, bytes that are not a RawRecord, an
unknown platform, a body the platform's mapping refuses (including a list page with no orders that does not
say it is empty), a mapped order Avro cannot hold — becomes exactly one dead letter with its stage and reason.
A page that is empty by the platform's own word (`total_results` 0, `{"orders": []}`) is not bad input:
it is counted in `Output.empty` and yields nothing.

A courier's tracking push (kind logistics, from a tracking service of `connectors.tracking`; the receiver
puts it on the order's shop key) is applied to the order it names by `streams.tracking`, so its events
take the order's next versions like any platform update; a push for an order this worker has not seen
is a dead letter (stage `derive`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from connectors import platforms
from connectors.tracking import SERVICES
from schemas.canonical import MappingError
from schemas.canonical import order_id as canonical_order_id
from schemas.codec import AvroCodec, DecodeError
from schemas.sealing import open_body
from streams.derive import derive_events
from streams.state import OrderStore
from streams.tracking import apply_tracking, carry_tracking


@dataclass
class RawIn:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone, which is bad input like any other


@dataclass
class Output:
    events: list[tuple[bytes, bytes]] = field(default_factory=list)  # (order_id, OrderEvent) for order.events
    states: list[tuple[bytes, bytes]] = field(default_factory=list)  # (order_id, Order) for order.state
    dead: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # for raw.orders.dlq
    pages: int = 0  # records mapped (every other record is one dead letter)
    empty: int = 0  # of those, pages with no order by the platform's own word (an empty list page)
    orders: int = 0
    unchanged: int = 0


class Dead(Exception):
    """A record that cannot become events, with the stage that refused it and a one-line reason."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage


def tracking_service(raw: dict):
    """The tracking service module of a courier's push (kind logistics, endpoint naming the service), else None."""
    return SERVICES.get(raw.get("endpoint")) if raw.get("kind") == "logistics" else None


def _updated_at(order: dict) -> int:
    return order.get("updated_at") or 0


def _one_line(text: str) -> str:
    # a reason may quote the bad input: keep it one line, short and valid UTF-8 whatever it held
    return " ".join(text.split())[:2000].encode("utf-8", "replace").decode("utf-8")


class Normalizer:
    def __init__(self, store: OrderStore | None = None):
        self.raw_codec = AvroCodec("RawRecord")
        self.order_codec = AvroCodec("Order")
        self.event_codec = AvroCodec("OrderEvent")
        self.dlq_codec = AvroCodec("DeadLetter")
        self.store = store or OrderStore(self.order_codec)

    def process(self, records: list[RawIn], now_ms: int | None = None) -> Output:
        """Every record becomes either its events (possibly none: a repeat, or an empty page) or exactly
        one dead letter; a record's output and its changes to the store are all or nothing."""
        out = Output()
        now_ms = now_ms or int(time.time() * 1000)
        for rec in records:
            raw = None
            try:
                raw = self._decode(rec)
                service = tracking_service(raw)
                if service is None:
                    orders = self._map(raw)
                    staged = self._derive(orders, raw, now_ms)
                else:
                    orders, staged = self._track(service, raw, now_ms)
            except Dead as exc:
                self._dead(out, rec, exc.stage, str(exc), raw, now_ms)
                continue
            out.pages += 1
            out.empty += not orders
            events, states, unchanged = staged
            for oid, value in states:
                self.store.put_encoded(oid.decode(), value)
            out.states += states
            out.events += events
            out.orders += len(orders)
            out.unchanged += unchanged
        return out

    def _decode(self, rec: RawIn) -> dict:
        if rec.value is None:
            raise Dead("decode", "null value (a tombstone), not a RawRecord")
        try:
            raw = self.raw_codec.decode(rec.value)
            raw["body"] = open_body(raw)  # sealed bodies open only here; a SealError is a DecodeError
            return raw
        except DecodeError as exc:
            raise Dead("decode", str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - whatever a corrupt body trips, it is not a RawRecord
            raise Dead("decode", f"corrupt RawRecord: {exc.__class__.__name__}: {exc}") from None

    @staticmethod
    def _map(raw: dict) -> list[dict]:
        try:
            orders = platforms.map_payload(raw["platform"], raw["body"], raw["content_type"], raw["shop_id"])
        except (MappingError, platforms.UnknownPlatform) as exc:
            raise Dead("map", str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a mapping bug must not stall the worker; keep the record
            raise Dead("map", f"mapping failed: {exc.__class__.__name__}: {exc}") from None
        if len(orders) > 1:  # list APIs answer newest first; derive in the order things happened
            orders.sort(key=_updated_at)
        return orders

    def _derive(self, orders: list[dict], raw: dict, now_ms: int):
        """(events, states, unchanged) for one page, the store untouched until the whole page succeeded."""
        events: list[tuple[bytes, bytes]] = []
        staged: dict[str, bytes] = {}  # order_id -> new state, for an order twice in one page
        unchanged = 0
        try:
            for order in orders:
                oid = order["order_id"]
                previous = (self.order_codec.decode(staged[oid]) if oid in staged else self.store.get(oid))
                derived = derive_events(previous, carry_tracking(previous, order), now_ms, raw["record_id"],
                                        raw["source"])
                if not derived:
                    unchanged += 1
                    continue
                body = self.order_codec.encode_body(order)
                staged[oid] = self.order_codec.header + body
                key = oid.encode()
                for event in derived:
                    events.append((key, self.event_codec.encode_with_tail(event, body)))
        except Exception as exc:  # noqa: BLE001 - e.g. a mapped value Avro cannot hold
            raise Dead("derive", f"{exc.__class__.__name__}: {exc}") from None
        return events, [(oid.encode(), value) for oid, value in staged.items()], unchanged

    def _track(self, service, raw: dict, now_ms: int):
        """([the order], (events, states, unchanged)) for a courier's tracking push about one order."""
        try:
            update = service.tracking_update(service.read_push(raw["body"])[0])
        except MappingError as exc:
            raise Dead("map", str(exc)) from None
        oid = canonical_order_id(raw["platform"], raw["shop_id"], raw["external_id"] or "")
        previous = self.store.get(oid)
        if previous is None:
            raise Dead("derive", f"tracking update of {update['tracking_no']} for order {oid}, which this "
                                 "normalizer has not seen")
        try:
            order, events = apply_tracking(previous, update, now_ms, raw["record_id"], raw["source"])
            if order is None:
                return [previous], ([], [], 1)
            body = self.order_codec.encode_body(order)
        except Exception as exc:  # noqa: BLE001 - e.g. a value Avro cannot hold
            raise Dead("derive", f"{exc.__class__.__name__}: {exc}") from None
        key = oid.encode()
        return [order], ([(key, self.event_codec.encode_with_tail(e, body)) for e in events],
                         [(key, self.order_codec.header + body)], 0)

    def _dead(self, out: Output, rec: RawIn, stage: str, error: str, raw: dict | None, now_ms: int) -> None:
        out.dead.append((rec.key, self.dlq_codec.encode({
            "stage": stage, "error": _one_line(error) or stage, "failed_at": now_ms, "topic": rec.topic,
            "partition": rec.partition, "offset": rec.offset, "key": rec.key,
            "value": b"" if rec.value is None else rec.value, "tombstone": rec.value is None,
            "platform": raw and raw.get("platform"), "shop_id": raw and raw.get("shop_id"),
            "external_id": raw and raw.get("external_id"),
        })))
