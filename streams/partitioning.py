"""Kafka's default key partitioning (murmur2), so we know which raw.orders partition owns an order."""
from __future__ import annotations


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
    """raw.orders is keyed by shop: every capture of one shop's orders lands on one partition, in order."""
    return f"{platform}:{shop_id}".encode()


def shop_key_of_order(order_id: str) -> bytes:
    platform, shop_id, _ = order_id.split(":", 2)
    return shop_key(platform, shop_id)
