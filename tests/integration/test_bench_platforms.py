"""The benchmark's every-platform phase on the real broker: mapping table, then a mixed workload of every
registered platform through a fresh normalizer and projector into ClickHouse."""
import pytest

from connectors import platforms
from infra.bench import suite

pytestmark = pytest.mark.integration


def test_a_mixed_workload_of_every_platform_runs_end_to_end(kafka_bootstrap, tmp_path, capsys):
    mixed, summary = suite.every_platform(kafka_bootstrap, None, tmp_path, 2_000,
                                          suite.EndToEnd(rate=1_000.0, cpu_us=300.0))
    assert mixed.rate > 0 and mixed.cpu_us > 0  # the normalizer's and projector's CPU (the broker is not ours)
    assert f"{mixed.rate / 1_000:.0%} of Taobao only" in summary and "mapping at most " in summary
    out = capsys.readouterr().out
    table = out.split("mapping cost per order", 1)[1].split("mixed,", 1)[0]
    assert all(f"  {code} " in table for code in platforms.codes()), table
    assert f"mixed, {len(platforms.codes())} platforms" in out and "2,000 orders" in out
