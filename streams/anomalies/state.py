"""The detector's bounded in-memory state: duplicate index, per-SKU statistics, ship deadlines.

All lookups are O(1) dict accesses; sizes are bounded by a time horizon (duplicates), a sample
window per SKU (statistics) or the set of paid-but-unshipped orders (deadlines).
"""
from __future__ import annotations

import bisect
import heapq
from collections import deque


def line_sku(line: dict) -> str | None:
    """The SKU a line is counted under: the merchant's code if any, else the platform SKU id."""
    return line.get("merchant_sku") or line.get("sku_id")


def duplicate_key(order: dict) -> tuple:
    """Buyer id, receiver fingerprint (masked fields + token) and the sorted (sku, quantity) lines.

    A tuple of the order's own strings: dicts hash it (string hashes are cached), no digest needed.
    """
    r = order["receiver"]
    lines = order["lines"]
    if len(lines) == 1:
        skus = ((line_sku(lines[0]) or lines[0]["title"], lines[0]["quantity"]),)
    else:
        skus = tuple(sorted((line_sku(line) or line["title"], line["quantity"]) for line in lines))
    return ((order.get("buyer") or {}).get("id"), r.get("name_masked"), r.get("phone_masked"), r.get("province"),
            r.get("city"), r.get("district"), r.get("address_masked"), r.get("secure_token"), skus)


class DuplicateIndex:
    """Orders by duplicate key, forgotten `horizon_ms` after their time (the longest shop window)."""

    def __init__(self, horizon_ms: int):
        self.horizon_ms = horizon_ms
        self._by_key: dict[tuple, dict[str, int]] = {}     # key -> {order_id: at}
        self._by_order: dict[str, tuple[tuple, int, tuple]] = {}  # order_id -> (key, at, (platform, shop_id))
        self._queue: deque[tuple[int, str]] = deque()       # (at, order_id) in arrival order
        self._newest = 0

    def matches(self, order_id: str, key: tuple, at: int, window_ms: float) -> list[tuple[int, str]]:
        """(time, order id) of every other indexed order with the same key whose time is within the window
        (not this order, nor the same platform order under another shop)."""
        bucket = self._by_key.get(key)
        if not bucket or (len(bucket) == 1 and order_id in bucket):  # the common case: no twin
            return []
        same_ref = order_id.split(":", 1)[0], order_id.rsplit(":", 1)[-1]
        return [(other_at, other) for other, other_at in bucket.items()
                if other != order_id and abs(other_at - at) <= window_ms
                and (other.split(":", 1)[0], other.rsplit(":", 1)[-1]) != same_ref]

    def owner(self, order_id: str) -> tuple[str, str] | None:
        """(platform, shop_id) of an indexed order."""
        held = self._by_order.get(order_id)
        return None if held is None else held[2]

    def record(self, order_id: str, key: tuple, at: int, owner: tuple[str, str] = ("", "")) -> None:
        """Index (or re-index after a change of key) an order; drop entries beyond the horizon."""
        held = self._by_order.get(order_id)
        if held is not None:
            if held[0] == key:
                return
            self.forget(order_id)
        self._by_order[order_id] = (key, at, owner)
        self._by_key.setdefault(key, {})[order_id] = at
        self._queue.append((at, order_id))
        self._newest = max(self._newest, at)
        self._expire()

    def forget(self, order_id: str) -> None:
        """Remove an order (cancelled: buying again after a cancel is no duplicate)."""
        held = self._by_order.pop(order_id, None)
        if held is not None:
            bucket = self._by_key.get(held[0])
            if bucket is not None:
                bucket.pop(order_id, None)
                if not bucket:
                    del self._by_key[held[0]]

    def _expire(self) -> None:
        limit = self._newest - self.horizon_ms
        queue = self._queue
        while queue and queue[0][0] < limit:
            at, order_id = queue.popleft()
            held = self._by_order.get(order_id)
            if held is not None and held[1] == at:
                self.forget(order_id)

    def __len__(self) -> int:
        return len(self._by_order)


class _Window:
    __slots__ = ("ordered", "recent")

    def __init__(self, size: int):
        self.recent: deque = deque(maxlen=size)
        self.ordered: list = []


class SkuStats:
    """The last `window` unit prices and quantities per SKU key, with O(1) medians."""

    def __init__(self, window: int = 200):
        self.window = window
        self._prices: dict[tuple, _Window] = {}
        self._quantities: dict[tuple, _Window] = {}

    def _add(self, table: dict, key: tuple, value: int) -> None:
        win = table.get(key)
        if win is None:
            win = table[key] = _Window(self.window)
        if len(win.recent) == self.window:
            old = win.recent[0]
            del win.ordered[bisect.bisect_left(win.ordered, old)]
        win.recent.append(value)
        bisect.insort(win.ordered, value)

    @staticmethod
    def _median(table: dict, key: tuple, min_samples: int) -> float | None:
        win = table.get(key)
        if win is None or len(win.ordered) < min_samples:
            return None
        values, mid = win.ordered, len(win.ordered) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    def learn(self, key: tuple, unit_price: int, quantity: int) -> None:
        """Add one line's unit price and quantity to its SKU's window."""
        self._add(self._prices, key, unit_price)
        self._add(self._quantities, key, quantity)

    def price_median(self, key: tuple, min_samples: int) -> float | None:
        """Median recent unit price, or None with fewer than `min_samples` samples."""
        return self._median(self._prices, key, min_samples)

    def quantity_median(self, key: tuple, min_samples: int) -> float | None:
        """Median recent quantity per line, or None with fewer than `min_samples` samples."""
        return self._median(self._quantities, key, min_samples)

    def samples(self, key: tuple) -> int:
        win = self._prices.get(key)
        return 0 if win is None else len(win.ordered)


class OverdueTracker:
    """Paid-but-unshipped orders by deadline; `due(now)` pops those past it (lazy-deleting heap)."""

    def __init__(self):
        self._deadline: dict[str, tuple] = {}   # order_id -> (deadline, info)
        self._heap: list[tuple[int, str]] = []

    def track(self, order_id: str, deadline: int, info: tuple) -> None:
        """Watch an order until `deadline` (re-tracking with the same deadline is free)."""
        held = self._deadline.get(order_id)
        self._deadline[order_id] = (deadline, info)
        if held is None or held[0] != deadline:
            heapq.heappush(self._heap, (deadline, order_id))

    def untrack(self, order_id: str) -> None:
        """Stop watching (shipped, cancelled, refunded)."""
        self._deadline.pop(order_id, None)

    def due(self, now_ms: int) -> list[tuple[str, int, tuple]]:
        """(order_id, deadline, info) of watched orders past their deadline; they stop being watched."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            deadline, order_id = heapq.heappop(heap)
            held = self._deadline.get(order_id)
            if held is not None and held[0] == deadline:
                del self._deadline[order_id]
                out.append((order_id, deadline, held[1]))
        return out

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._deadline

    def __len__(self) -> int:
        return len(self._deadline)
