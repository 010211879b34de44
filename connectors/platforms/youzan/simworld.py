"""The shared simulated world with Youzan's ids and buyers: what the simulator serves and pushes.

- `tid`: `E` + the Beijing creation time (yyyyMMddHHmmss) + 9 digits, e.g. E20240318101530012345678;
- `oid`: a 19-digit number per line (above 2^53), consecutive within an order;
- `kdt_id`: the shop's number, stable per shop id;
- about one buyer in five hides behind a virtual number with an extension (隐私号, 17012345678-1234).
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime

from connectors.simkit.world import SimOrder, World
from schemas.canonical import BEIJING

_FRESH = re.compile(r"E\d{9}")  # what tid_seed makes; the creation time is filled in when the order is added
_MOBILE = re.compile(r"1\d{10}")
VIRTUAL_SHARE = 0.2


def tid_seed(rng) -> str:
    """The world's id factory: the random tail of a tid, completed by YouzanWorld.add."""
    return f"E{rng.randrange(10**9):09d}"


def kdt_id(shop_id: str) -> int:
    """The simulated Youzan shop number (kdt_id) of a shop."""
    return 80_000_000 + int(hashlib.sha256(shop_id.encode()).hexdigest()[:8], 16) % 10_000_000


class YouzanWorld(World):
    """A World whose new orders carry Youzan tids, numeric oids and, now and then, virtual numbers."""

    def __init__(self, seed: int = 7):
        super().__init__(seed=seed, region="CN", currency="CNY", id_factory=tid_seed)

    def add(self, order: SimOrder, paid: bool, now_ms: int) -> SimOrder:
        first = self.rng.randrange(2_870_000_000_000_000_000, 2_879_999_999_999_999_000)
        for n, line in enumerate(order.lines):
            line.line_id = str(first + n)
        if _FRESH.fullmatch(order.external_id):  # a new buyer (a re-placed copy keeps its buyer's number)
            stamp = datetime.fromtimestamp(order.created_at / 1000, tz=BEIJING).strftime("%Y%m%d%H%M%S")
            order.external_id = f"E{stamp}{order.external_id[1:]}"
            if _MOBILE.fullmatch(order.receiver_phone) and self.rng.random() < VIRTUAL_SHARE:
                order.receiver_phone = f"170{self.rng.randrange(10**8):08d}-{self.rng.randrange(10**4):04d}"
        return super().add(order, paid, now_ms)
