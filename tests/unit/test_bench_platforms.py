"""The benchmark's per-platform parts: mapping cost rows against Taobao's, and the mixed workload's pages."""
from collections import Counter

import pytest

from connectors import platforms
from infra.bench import platforms_bench, workload
from schemas.codec import AvroCodec


def test_every_platform_gets_a_mapping_cost_with_its_ratio_to_taobao():
    costs = platforms_bench.mapping_costs(seconds_per_sample=0.01)
    assert {c.platform for c in costs} == set(platforms.codes())
    for cost in costs:
        assert cost.us_per_order > 0 and cost.samples >= 1 and cost.ratio is not None
        if cost.platform == "taobao":
            assert cost.ratio == 1.0 and cost.list_pages and cost.orders_per_page >= 2
    slow = platforms_bench.MappingCost("shopify", "json", 1, 3.0, 30.0, True, ratio=2.0)
    assert slow.too_slow and not platforms_bench.MappingCost("shopify", "json", 1, 3.0, 15.0, True, ratio=1.5).too_slow
    table = platforms_bench.mapping_table([*costs, slow])
    assert len(table) == len(costs) + 2 and "⚠ above 1.5x" in table[-1] and "⚠" not in table[1 + costs.index(
        next(c for c in costs if c.platform == "taobao"))]


def test_each_page_counts_with_the_least_of_its_rounds_taken_platform_after_platform():
    calls = []

    def timing(platform, body, content_type, orders, seconds):
        calls.append(platform)
        # load elsewhere in the first and last rounds: only the least timing may count
        return (2e-5 if len(pages) < len(calls) <= 2 * len(pages) else 9e-5) / (1 + (platform != "taobao"))

    pages = [(code, page) for code in platforms.codes() for page in platforms_bench._sample_pages(code)[0]]
    costs = platforms_bench.mapping_costs(seconds_per_sample=0.3, rounds=3, timing=timing)
    assert len(calls) == 3 * len(pages)
    assert calls[:len(pages)] == calls[len(pages):2 * len(pages)] == [code for code, _ in pages]  # round after round
    for cost in costs:
        assert cost.us_per_order == pytest.approx(20.0 if cost.platform == "taobao" else 10.0)
        assert cost.ratio == pytest.approx(1.0 if cost.platform == "taobao" else 0.5)


def test_the_figure_is_taken_on_recorded_pages_and_the_hand_made_ones_are_shown_beside_it():
    hand_made = {(code, name) for code in platforms.codes() for name in platforms.manifest(code).hand_made_samples}
    bodies = {source.read_bytes(): (code, source.name) for code in platforms.codes()
              for source, _ in platforms.samples(code)}

    def timing(platform, body, content_type, orders, seconds):
        return 9e-5 if bodies[body] in hand_made else 1e-5  # a hand-made page costs 9 times a recorded one

    costs = {(c.platform, c.content_type): c for c in platforms_bench.mapping_costs(rounds=1, timing=timing)}
    douyin, taobao = costs["douyin", "json"], costs["taobao", "json"]
    assert (douyin.us_per_order, douyin.ratio, douyin.recorded) == (pytest.approx(10.0), pytest.approx(1.0), True)
    assert douyin.samples == 1 and douyin.with_hand_made > 10.0 and douyin.ratio_with_hand_made > 1.0
    assert taobao.with_hand_made is None and costs["pinduoduo", "json"].with_hand_made is None
    xml = costs["taobao", "xml"]  # no recorded XML page: the hand-made one's figure, and it says so
    assert (xml.us_per_order, xml.recorded, xml.with_hand_made) == (pytest.approx(90.0), False, None)
    rows = platforms_bench.mapping_table(list(costs.values()))
    assert any("(hand-made pages only)" in row and row.split()[:2] == ["taobao", "xml"] for row in rows)
    assert any(row.split()[0] == "douyin" and f"{douyin.with_hand_made:.1f}" in row for row in rows)


def test_the_mixed_workload_spreads_orders_over_every_platform_as_their_list_answers():
    pages = platforms_bench.mixed_pages(1000, page_size=50)
    mapped = Counter()
    for key, shop, body, platform in pages:
        assert key == f"{platform}:{shop}".encode()
        mapped[platform] += len(platforms.map_payload(platform, body, "json", shop))
    codes = platforms.codes()
    assert sum(mapped.values()) == 1000 and set(mapped) == set(codes)
    assert max(mapped.values()) - min(mapped.values()) <= 1
    raw = [AvroCodec("RawRecord").decode(v) for _, v, _ in workload.encode_pages(pages[:3] + pages[-3:])]
    assert {r["platform"] for r in raw} == {pages[0][3], pages[-1][3]}
