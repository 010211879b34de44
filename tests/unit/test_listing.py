"""Reading a listing window backwards (connectors/runtime/listing.py) and cutting windows into slices."""
from connectors.runtime.listing import read_backwards, slices


def _listing(totals: dict[int, int]):
    """A listing whose page n reports totals.get(n, 250); the reads are logged as (page, again)."""
    log = []

    async def read(page_no: int, again: bool):
        log.append((page_no, again))
        return f"page {page_no}", totals.get(page_no, 250)

    return read, log


async def _all(gen) -> list:
    return [item async for item in gen]


async def test_a_steady_listing_is_read_once_from_the_last_page_back():
    read, log = _listing({})
    assert await _all(read_backwards(read, 250, 100)) == ["page 3", "page 2"]
    assert log == [(3, False), (2, False)]


async def test_a_total_that_moves_on_any_page_means_one_more_pass_over_the_largest():
    read, log = _listing({3: 310})  # orders came in while page 3 was read; page 2 says 250 again
    await _all(read_backwards(read, 250, 100))
    assert log == [(3, False), (2, False), (4, True), (3, True), (2, True), (1, True)]


async def test_zero_based_pages_and_a_depth_cap():
    read, log = _listing({4: 900})
    await _all(read_backwards(read, 700, 100, first=0, max_pages=5))
    assert [n for n, _ in log] == [4, 3, 2, 1, 4, 3, 2, 1, 0]


async def test_the_platform_may_say_how_many_pages_there_are():
    read, log = _listing({})
    await _all(read_backwards(read, 250, 100, pages=2))
    assert log == [(2, False)]
    read, log = _listing({})
    assert await _all(read_backwards(read, 0, 100)) == [] and log == []


def test_slices_cover_the_window_without_gaps():
    assert slices(0, 25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert slices(5, 5, 10) == [] and slices(0, 3, 0) == [(0, 1), (1, 2), (2, 3)]
