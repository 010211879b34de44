"""Polling windows: a short overlap on every poll, the whole lookback only on a sweep."""
from connectors.runtime.poller import PollPolicy, next_window

POLICY = PollPolicy(overlap_ms=2_000, lookback_ms=60_000, settle_ms=1_000, window_ms=30 * 60_000,
                    first_sync_ms=24 * 3600_000)
NOW = 1_700_000_000_000


def test_a_new_shop_starts_a_day_back_in_slices_the_client_allows():
    assert next_window(None, NOW, POLICY, 10 * 60_000) == (NOW - 1_000 - 24 * 3600_000,
                                                           NOW - 1_000 - 24 * 3600_000 + 10 * 60_000)


def test_an_ordinary_poll_rereads_only_the_overlap():
    checkpoint = NOW - 3_000
    assert next_window(checkpoint, NOW, POLICY, 30 * 60_000) == (checkpoint - 2_000, NOW - 1_000)


def test_a_sweep_rereads_the_whole_lookback():
    checkpoint = NOW - 3_000
    assert next_window(checkpoint, NOW, POLICY, 30 * 60_000, sweep=True) == (checkpoint - 60_000, NOW - 1_000)


def test_the_window_never_reaches_into_the_settle_time():
    start, end = next_window(NOW - 500, NOW, POLICY, 30 * 60_000)
    assert end == NOW - 1_000 and start < end
