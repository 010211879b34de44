"""The dashboard's per-platform rows: every registered platform by name, with its orders and API health."""
from connectors import platforms
from projections.api import platform_rows


def test_every_platform_has_a_row_with_its_names_even_before_it_has_orders():
    figures = {"orders_by_platform": {"taobao": 7, "tmall": 2, "gone": 1}, "orders_today_by_platform": {"taobao": 3},
               "connector_calls_by_platform": [{"platform": "taobao", "calls": 40, "success_rate": 0.95,
                                                "p50_ms": 12.0, "p99_ms": 80.0}]}
    rows = {r["code"]: r for r in platform_rows(platforms.catalogue(), figures)}
    assert list(rows)[: len(platforms.codes())] == platforms.codes()
    for code in platforms.codes():
        assert (rows[code]["name_zh"], rows[code]["name_en"]) == \
            (platforms.manifest(code).names.zh, platforms.manifest(code).names.en)
    assert rows["taobao"] == {"code": "taobao", "name_zh": "淘宝/天猫", "name_en": "Taobao/Tmall", "orders": 7,
                              "orders_today": 3, "calls": 40, "success_rate": 0.95, "p50_ms": 12.0, "p99_ms": 80.0}
    assert rows["shopify"]["orders"] == 0 and rows["shopify"]["success_rate"] is None
    assert (rows["tmall"]["name_zh"], rows["tmall"]["orders"]) == ("天猫", 2)  # an alias, under its own name
    assert (rows["gone"]["name_zh"], rows["gone"]["orders"]) == ("gone", 1)   # unknown code: shown by its code
