"""When a read from the start is caught up: every partition at its start watermark, then quiet."""
from schemas.kafka import CatchUp


def test_an_empty_topic_is_caught_up_once_quiet():
    progress = CatchUp({("t", 0): (0, 0), ("t", 1): (0, 0)}, idle=0.5, now=100.0)
    assert not progress.done(100.4)
    assert progress.done(100.5)


def test_every_partition_must_reach_its_start_watermark():
    progress = CatchUp({("t", 0): (0, 3), ("t", 1): (0, 2)}, idle=0.5, now=0.0)
    progress.seen([("t", 0, 0), ("t", 0, 1), ("t", 0, 2), ("t", 1, 0)], now=1.0)
    assert set(progress.pending) == {("t", 1)}
    assert not progress.done(60.0)  # quiet for long, but partition 1 still lacks offset 1
    progress.seen([("t", 1, 1)], now=61.0)
    assert not progress.done(61.2)
    assert progress.done(61.5)


def test_records_after_the_watermark_restart_the_quiet_period():
    progress = CatchUp({("t", 0): (0, 1)}, idle=1.0, now=0.0)
    progress.seen([("t", 0, 0)], now=0.1)
    assert progress.done(1.1)
    progress.seen([("t", 0, 1)], now=1.2)  # a producer still writing: later records keep the read going
    assert not progress.done(2.1)
    assert progress.done(2.2)


def test_partitions_whose_records_were_all_deleted_are_not_waited_for():
    progress = CatchUp({("t", 0): (40, 40), ("u", 0): (5, 7)}, idle=0.0, now=0.0)
    assert set(progress.pending) == {("u", 0)}
    progress.seen([("u", 0, 6)], now=0.0)
    assert progress.done(0.0)


def test_records_of_other_topics_do_not_count():
    progress = CatchUp({("t", 0): (0, 1)}, idle=0.0, now=0.0)
    progress.seen([("u", 0, 5)], now=0.0)
    assert not progress.done(10.0)
