"""The shared Kafka I/O of every room: producer and consumer defaults, `Publisher`, reads from the start.

It lives beside the contracts because the partitioning rule is part of them: a producer must hash keys
exactly as `schemas.topics.partition_for` does (murmur2, as Java clients and Faust), or one shop's pages
land on two partitions and per-order ordering breaks. `schemas/` is the only package every room may
import, so this is the one place connectors, streams, projections, infra and tests take their Kafka
clients from, and no room writes its own producer or "read the topic until quiet" loop.
"""
from schemas.kafka.publisher import PRODUCER_DEFAULTS, Publisher
from schemas.kafka.reading import (
    CONSUMER_DEFAULTS,
    CatchUp,
    consumer_config,
    consumer_from_now,
    consumer_from_start,
    read_to_end,
    usable,
)

__all__ = ["CONSUMER_DEFAULTS", "PRODUCER_DEFAULTS", "CatchUp", "Publisher", "consumer_config",
           "consumer_from_now", "consumer_from_start", "read_to_end", "usable"]
