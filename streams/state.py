"""The normalizer's memory of every order it owns: latest snapshot as Avro bytes (compact), per order.

It is a cache of the compacted `order.state` topic, which the normalizer writes with every accepted
change; after a restart or rebalance it is rebuilt from that topic (see streams/restore.py).
"""
from __future__ import annotations

from schemas.codec import AvroCodec


class OrderStore:
    def __init__(self, codec: AvroCodec | None = None):
        self.codec = codec or AvroCodec("Order")
        self._values: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._values

    def get(self, order_id: str) -> dict | None:
        value = self._values.get(order_id)
        return None if value is None else self.codec.decode(value)

    def put_encoded(self, order_id: str, value: bytes) -> None:
        self._values[order_id] = value

    def discard(self, order_id: str) -> None:
        self._values.pop(order_id, None)

    def drop_where(self, predicate) -> int:
        """Forget orders whose id matches `predicate` (partitions given away in a rebalance)."""
        gone = [oid for oid in self._values if predicate(oid)]
        for oid in gone:
            del self._values[oid]
        return len(gone)
