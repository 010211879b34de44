"""The raw record archive on disk: round trip, damaged tails, retention, replay filters."""
import logging
import os

from connectors.runtime.archive import (
    DAY_MS,
    ArchivedRecord,
    ArchiveWriter,
    expired_segments,
    matches,
    prune,
    read_archive,
    segments,
)


def _entries(n: int, platform="taobao", shop="home", t0=1_700_000_000_000, start=0):
    return [(f"{platform}:{shop}".encode(), f"value-{start + i}".encode() * (1 + i % 3), t0 + i) for i in range(n)]


def test_batches_round_trip_in_order_with_the_positions_the_broker_gave(tmp_path):
    writer = ArchiveWriter(tmp_path)
    first, second = _entries(3), _entries(2, "shopify", "demo", start=3)
    ref = writer.append(first)
    writer.append(second)  # never acknowledged: a crash between archive and broker
    writer.acknowledge(ref, [(1, 40), (1, 41), (1, 42)])
    writer.close()
    got = list(read_archive(tmp_path))
    assert [(r.key, r.value, r.fetched_at) for r in got] == first + second
    assert [(r.partition, r.offset) for r in got] == [(1, 40), (1, 41), (1, 42)] + [(None, None)] * 2
    assert (got[3].platform, got[3].shop_id) == ("shopify", "demo")


def test_a_restarted_writer_opens_its_own_segment_and_readers_see_both(tmp_path):
    a = ArchiveWriter(tmp_path)
    a.append(_entries(2))
    a.close()
    b = ArchiveWriter(tmp_path)
    b.append(_entries(1, start=2))
    b.close()
    assert len(segments(tmp_path)) == 2
    assert [r.value for r in read_archive(tmp_path)] == [e[1] for e in _entries(2) + _entries(1, start=2)]


def _two_batches(directory):
    """A segment of two batches of two records; returns its path."""
    writer = ArchiveWriter(directory)
    writer.append(_entries(2))
    writer.append(_entries(2, start=2))
    writer.close()
    return segments(directory)[0]


def test_a_tail_cut_short_by_a_crash_is_skipped_with_a_log_line_and_earlier_batches_survive(tmp_path, caplog):
    path = _two_batches(tmp_path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 30, len(data) - 60):
        path.write_bytes(data[:cut])
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            got = list(read_archive(tmp_path))
        assert [r.value for r in got] == [e[1] for e in _entries(2)], cut
        assert "archive" in caplog.text and "skipped" in caplog.text


def test_a_corrupt_byte_fails_the_checksum_and_garbage_never_crashes_a_reader(tmp_path, caplog):
    path = _two_batches(tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert [r.value for r in read_archive(tmp_path)] == [e[1] for e in _entries(2)]
    assert "checksum" in caplog.text
    (tmp_path / "0000000000001-1.seg").write_bytes(os.urandom(500))
    assert len(list(read_archive(tmp_path))) == 2


def test_retention_drops_segments_whose_successor_started_before_the_cutoff():
    from pathlib import Path

    now = 100 * DAY_MS
    paths = [Path(f"{t:013d}-1.seg") for t in (now - 40 * DAY_MS, now - 31 * DAY_MS, now - 29 * DAY_MS, now - DAY_MS)]
    # the first two hold only records older than 30 days; the third may hold records up to 1 day old
    assert expired_segments(paths, 30, now) == paths[:1]
    assert expired_segments(paths, 30.5, now) == paths[:1]
    assert expired_segments(paths, 2, now) == paths[:2]
    assert expired_segments(paths, 0, now) == []  # 0: keep everything
    assert expired_segments(paths[-1:], 0.001, now) == []  # the newest segment is never dropped


def test_prune_deletes_expired_segment_files(tmp_path):
    now = 100 * DAY_MS
    names = [f"{t:013d}-1.seg" for t in (now - 40 * DAY_MS, now - 35 * DAY_MS, now - 20 * DAY_MS)]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in prune(tmp_path, 30, now)] == names[:1]
    assert [p.name for p in segments(tmp_path)] == names[1:]


def test_filters_by_platform_shop_and_fetched_at():
    record = ArchivedRecord(b"taobao:my:shop", b"v", 1000)
    assert (record.platform, record.shop_id) == ("taobao", "my:shop")
    assert matches(record) and matches(record, "taobao", "my:shop", 1000)
    assert not matches(record, platform="shopify")
    assert not matches(record, shop="my")
    assert not matches(record, since_ms=1001)


def test_reader_filters_while_reading(tmp_path):
    writer = ArchiveWriter(tmp_path)
    writer.append(_entries(3) + _entries(2, "shopify", "demo", start=3))
    writer.close()
    assert len(list(read_archive(tmp_path, platform="shopify"))) == 2
    assert len(list(read_archive(tmp_path, shop="home", since_ms=1_700_000_000_001))) == 2
    assert list(read_archive(tmp_path / "missing")) == []
