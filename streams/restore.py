"""Rebuild the normalizer's order store from the compacted `order.state` topic."""
from __future__ import annotations

from schemas.kafka import read_to_end
from streams.state import OrderStore


def restore_store(kafka_config: dict, state_topic: str, store: OrderStore, owned, idle: float = 0.5,
                  timeout: float = 120.0) -> int:
    """Load every latest order whose id satisfies `owned(order_id)`; returns how many were loaded.

    Raises TimeoutError when order.state cannot be read to its end in `timeout` seconds: a partial store
    would restart versions, so the worker must not start normalizing on one.
    """
    loaded = 0
    for batch in read_to_end(kafka_config, [state_topic], idle=idle, timeout=timeout, group="tonglu-restore"):
        for msg in batch:
            key = msg.key()
            if key is None:
                continue
            order_id = key.decode()
            if owned(order_id):
                value = msg.value()
                if value is None:
                    store.discard(order_id)
                else:
                    store.put_encoded(order_id, value)
                    loaded += 1
    return loaded
