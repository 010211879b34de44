"""Topic names, their keys and the partitioning rule: the contract in design.md, beside the Avro schemas.

A prefix gives tests and side-by-side deployments their own topics. Keys decide partitions with Kafka's
default partitioner (murmur2), so every component can tell which partition owns a key.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False
    retention_ms: int | None = None  # None: the cluster's default


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def _n(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def raw_orders(self) -> str:
        return self._n("raw.orders")

    @property
    def raw_orders_dlq(self) -> str:
        return self._n("raw.orders.dlq")

    @property
    def order_events(self) -> str:
        return self._n("order.events")

    @property
    def order_state(self) -> str:
        return self._n("order.state")

    @property
    def connector_calls(self) -> str:
        return self._n("connector.calls")

    @property
    def order_anomalies(self) -> str:
        return self._n("order.anomalies")

    @property
    def order_commands(self) -> str:
        return self._n("order.commands")

    @property
    def alerts(self) -> str:
        return self._n("alerts")

    @property
    def fulfillment_commands(self) -> str:
        """`ShipmentCommand`s (key order_id): shipments to upload to the platforms."""
        return self._n("fulfillment.commands")

    @property
    def fulfillment_results(self) -> str:
        """`ShipmentResult`s (key order_id): what the platforms answered to each upload."""
        return self._n("fulfillment.results")

    @property
    def logistics_updates(self) -> str:
        """Carrier tracking pushes as received, as `RawRecord`s of kind logistics (key tracking_no)."""
        return self._n("logistics.updates")

    @property
    def erp_dlq(self) -> str:
        """Order events an ERP endpoint refused after every retry, with the endpoint and the reason."""
        return self._n("erp.dlq")

    @property
    def sms_requests(self) -> str:
        """`SmsRequest`s (key: the idempotency key): messages triggers fired, to be sent once."""
        return self._n("sms.requests")

    @property
    def sms_receipts(self) -> str:
        """`SmsReceipt`s (key: the idempotency key): each message's state after a step (held back, claimed,
        sent, failed, delivered); the sender rebuilds what it already did from here."""
        return self._n("sms.receipts")

    @property
    def sms_members(self) -> str:
        """`SmsMember`s (key shop_id:member_id, compacted): the members table of member care."""
        return self._n("sms.members")

    @property
    def sms_optouts(self) -> str:
        """`SmsOptOut`s (key: the number's keyed hash, compacted): numbers that refused marketing."""
        return self._n("sms.optouts")

    @property
    def heartbeats(self) -> str:
        """`Heartbeat` records of every worker process (key stage:instance_id), read by the API's /healthz."""
        return self._n("tonglu.heartbeats")

    def specs(self) -> list[TopicSpec]:
        return [TopicSpec(self.raw_orders), TopicSpec(self.raw_orders_dlq), TopicSpec(self.order_events),
                TopicSpec(self.order_state, compacted=True), TopicSpec(self.connector_calls),
                TopicSpec(self.order_anomalies), TopicSpec(self.order_commands), TopicSpec(self.alerts),
                TopicSpec(self.fulfillment_commands), TopicSpec(self.fulfillment_results),
                TopicSpec(self.logistics_updates), TopicSpec(self.erp_dlq),
                TopicSpec(self.sms_requests), TopicSpec(self.sms_receipts),
                TopicSpec(self.sms_members, compacted=True), TopicSpec(self.sms_optouts, compacted=True),
                TopicSpec(self.heartbeats, retention_ms=3_600_000)]

def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash exactly as Kafka's Java client computes it (seed 0x9747b28c)."""
    length = len(data)
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    if tail:
        rest = data[length - tail:]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def shop_key(platform: str, shop_id: str) -> bytes:
    """The key of raw.orders and connector.calls. raw.orders is keyed by shop: every capture of one shop's orders lands on one partition, in order."""
    return f"{platform}:{shop_id}".encode()


def shop_key_of_order(order_id: str) -> bytes:
    platform, shop_id, _ = order_id.split(":", 2)
    return shop_key(platform, shop_id)
