"""JD's view of the shared simulated world: an order line is a SKU of the order.

JD has no line ids; `skuId` names a line within its order. Orders entering a JD world get JD-style
12-digit SKU ids (stable per merchant SKU) and take them as their line ids too, so what the simulator
meant and what the mapping gives agree line by line.
"""
from __future__ import annotations

import zlib

from connectors.simkit.world import SimOrder, World


def sku_id(merchant_sku: str) -> str:
    """JD's skuId of a merchant SKU in the simulator: 12 digits starting 1000, like 100012345678."""
    return str(100_000_000_000 + zlib.crc32(merchant_sku.encode()) % 100_000_000)


class JdWorld(World):
    """A World whose orders carry JD SKU ids as line ids."""

    def add(self, order: SimOrder, paid: bool, now_ms: int) -> SimOrder:
        seen: set[str] = set()
        for line in order.lines:
            sku = sku_id(line.merchant_sku)
            while sku in seen:  # two merchant SKUs on one JD SKU id: keep lines apart
                sku = str(int(sku) + 1)
            seen.add(sku)
            line.sku_id = line.line_id = sku
        return super().add(order, paid, now_ms)
