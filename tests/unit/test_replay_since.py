"""`tonglu replay --since`: epoch milliseconds or ISO-8601 times."""
import pytest

from projections.anomaly_queries import parse_since


def test_since_reads_epoch_ms_and_iso_times_in_utc_unless_a_zone_is_given():
    assert parse_since(None) is None and parse_since(" ") is None
    assert parse_since("1710727092000") == 1_710_727_092_000
    # 2024-03-18T01:58:12Z = 1,710,727,092 s: 19,800 days to 2024-03-18, + 1 h 58 min 12 s = 7,092 s
    assert parse_since("2024-03-18T01:58:12Z") == 19_800 * 86_400_000 + 7_092_000
    assert parse_since("2024-03-18T01:58:12") == 1_710_727_092_000
    assert parse_since("2024-03-18T09:58:12+08:00") == 1_710_727_092_000
    assert parse_since("2024-03-18") == 1_710_720_000_000
    assert parse_since("1970-01-01T00:00:01.001Z") == 1001  # not 1000 from float rounding


def test_since_refuses_other_text_with_a_one_line_reason():
    with pytest.raises(ValueError, match="epoch milliseconds or an ISO-8601 time"):
        parse_since("yesterday")
