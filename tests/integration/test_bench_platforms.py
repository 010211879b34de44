"""The benchmark's every-platform phase on the real broker: mapping table, then a mixed workload of every
registered platform through a fresh normalizer and projector into ClickHouse."""
import pytest

from connectors import platforms
from infra.bench import suite

pytestmark = pytest.mark.integration


def test_a_mixed_workload_of_every_platform_runs_end_to_end(kafka_bootstrap, tmp_path, capsys):
    rate, ratio, mapping = suite.every_platform(kafka_bootstrap, tmp_path, 2_000, taobao_rate=1_000.0)
    assert rate > 0 and ratio == pytest.approx(rate / 1_000.0)
    out = capsys.readouterr().out
    table = out.split("mapping cost per order", 1)[1].split("mixed,", 1)[0]
    assert all(f"  {code} " in table for code in platforms.codes()), table
    assert f"mixed, {len(platforms.codes())} platforms" in out and "2,000 orders" in out
    assert mapping.startswith("mapping at most ")
