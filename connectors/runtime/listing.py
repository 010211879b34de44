"""Reading a window of a platform's order listing without losing orders at page edges.

Listings sorted by modification time, newest first, shift while they are read: an order modified during
the scan leaves the window (or moves to its top), and the rows behind it move up a page. Reading from the
last page back means a shift can only make a row be read twice, never skipped; when a page reports a
total other than the first page's, rows crossed page edges anyway, and one more backward pass over every
page reads them (duplicates are harmless downstream).
"""
from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def slices(start_ms: int, end_ms: int, width_ms: int) -> list[tuple[int, int]]:
    """[start_ms, end_ms) cut into consecutive [lo, hi) slices of at most `width_ms` (at least 1 ms)."""
    width = max(width_ms, 1)
    return [(lo, min(end_ms, lo + width)) for lo in range(start_ms, end_ms, width)]


async def read_backwards(read: Callable[[int, bool], Awaitable[tuple[T, int | None]]], total: int, page_size: int,
                         first: int = 1, pages: int | None = None, max_pages: int | None = None) -> AsyncIterator[T]:
    """The rest of a listing whose first page (number `first`, read by the caller) said `total`.

    `read(page_no, again)` returns (what to yield for that page, the total it reported); `again` is True
    in the second pass. Pages run from the last (`pages` when the platform says how many, else enough for
    `total`; at most `max_pages`) back to `first + 1`; when any reported another total, every page once
    more from the last the largest total needs (at most `max_pages`) back to `first`."""
    def count(orders: int) -> int:
        needed = math.ceil(orders / page_size)
        return needed if max_pages is None else min(needed, max_pages)

    totals = {total}
    for page_no in range(first + (count(total) if pages is None else pages) - 1, first, -1):
        item, reported = await read(page_no, False)
        totals.add(reported or 0)
        yield item
    if len(totals) > 1:
        for page_no in range(first + count(max(totals)) - 1, first - 1, -1):
            item, _ = await read(page_no, True)
            yield item
