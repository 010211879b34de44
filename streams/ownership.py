"""Which orders this worker owns (those of its raw.orders partitions) and warming their state."""
from __future__ import annotations

import asyncio
import logging

from schemas.topics import Topics, partition_for, shop_key_of_order
from streams.normalize import RawIn
from streams.restore import restore_store
from streams.state import OrderStore

log = logging.getLogger(__name__)


class Ownership:
    def __init__(self, kafka_config: dict, topics: Topics, store: OrderStore):
        self.kafka_config, self.topics, self.store = kafka_config, topics, store
        self.warm_partitions: set[int] = set()
        self._partitions: int | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def raw_in(message) -> RawIn:
        return RawIn(message.topic, message.partition, message.offset, message.key, message.value)

    def partition_of(self, order_id: str) -> int:
        return partition_for(shop_key_of_order(order_id), self._partitions)

    async def warm(self, partitions: set[int]) -> None:
        """Before the first record of a newly owned partition, load its orders from order.state."""
        cold = partitions - self.warm_partitions
        if not cold:
            return
        async with self._lock:
            cold = partitions - self.warm_partitions
            if not cold:
                return
            loop = asyncio.get_running_loop()
            if self._partitions is None:
                self._partitions = await loop.run_in_executor(None, self._count_partitions)
            loaded = await loop.run_in_executor(None, lambda: restore_store(
                self.kafka_config, self.topics.order_state, self.store,
                lambda oid: self.partition_of(oid) in cold))
            self.warm_partitions |= cold
            log.info("warmed raw.orders partitions %s with %d orders from %s", sorted(cold), loaded,
                     self.topics.order_state)

    def revoke(self, partitions: set[int]) -> None:
        if not partitions or self._partitions is None:
            self.warm_partitions -= partitions
            return
        self.warm_partitions -= partitions
        dropped = self.store.drop_where(lambda oid: self.partition_of(oid) in partitions)
        log.info("gave away raw.orders partitions %s (%d orders forgotten)", sorted(partitions), dropped)

    def _count_partitions(self) -> int:
        from confluent_kafka.admin import AdminClient

        meta = AdminClient(self.kafka_config).list_topics(self.topics.raw_orders, timeout=10)
        return len(meta.topics[self.topics.raw_orders].partitions)
