"""The rule file: defaults, per-shop overrides, and one-line errors on bad config."""
import pytest
from pydantic import ValidationError

from streams.anomalies.config import DEFAULT_PATH, RuleBook, RuleConfigError, ShopRules, load_rules


def _write(tmp_path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_equals_the_built_in_defaults():
    book = load_rules(DEFAULT_PATH)
    assert book.defaults == RuleBook.default().defaults == ShopRules()
    assert book.engine.sku_window == 200


def test_defaults_are_sensible():
    rules = RuleBook.default().for_shop("taobao", "any")
    assert (rules.zero_amount.severity, rules.zero_amount.action) == ("critical", "hold")
    assert rules.amount_mismatch.tolerance_for("CNY") == 1
    assert rules.amount_mismatch.tolerance_for("XXX") == rules.amount_mismatch.default_tolerance
    assert rules.duplicate_order.window_minutes == 10
    assert rules.price_anomaly.ratio == 0.3 and rules.price_anomaly.min_samples == 20
    assert rules.quantity_spike.factor == 5 and rules.quantity_spike.min_quantity == 10
    assert rules.ship_overdue.promise_hours == 48 and rules.ship_overdue.action == "flag"


def test_shop_overrides_only_touch_their_keys(tmp_path):
    book = load_rules(_write(tmp_path, """
[defaults.amount_mismatch]
tolerance = { CNY = 5, USD = 2 }

[shops."taobao:shop1".ship_overdue]
promise_hours = 24
[shops."taobao:shop1".amount_mismatch]
tolerance = { CNY = 10 }
[shops."shopify:s.myshopify.com".invalid_phone]
enabled = false
"""))
    shop1 = book.for_shop("taobao", "shop1")
    assert shop1.ship_overdue.promise_hours == 24
    assert shop1.ship_overdue.severity == "warning"              # untouched keys keep the defaults
    assert shop1.amount_mismatch.tolerance_for("CNY") == 10
    assert shop1.amount_mismatch.tolerance_for("USD") == 2       # merged with [defaults]
    assert book.for_shop("taobao", "other").amount_mismatch.tolerance_for("CNY") == 5
    assert book.for_shop("shopify", "s.myshopify.com").invalid_phone.enabled is False
    assert book.for_shop("taobao", "shop1") is shop1             # cached


def test_rule_objects_are_frozen():
    rules = RuleBook.default().defaults
    with pytest.raises(ValidationError):
        rules.price_anomaly.ratio = 0.9


@pytest.mark.parametrize("text, names", [
    ("[defaults.price_anomaly]\nratio = 1.5\n", "defaults.price_anomaly.ratio"),
    ("[defaults.price_anomaly]\nratoi = 0.2\n", "defaults.price_anomaly.ratoi"),
    ("[defaults.zero_amount]\nseverity = \"urgent\"\n", "defaults.zero_amount.severity"),
    ("[defaults.duplicate_order]\naction = \"block\"\n", "defaults.duplicate_order.action"),
    ("[defaults.no_such_rule]\nenabled = true\n", "defaults.no_such_rule"),
    ("[shops.\"taobao:s1\".ship_overdue]\npromise_hours = -1\n", 'shops."taobao:s1".ship_overdue.promise_hours'),
    ("[shops.taobao_s1.ship_overdue]\npromise_hours = 1\n", 'shops."taobao_s1"'),
    ("[engine]\nsku_window = 1\n", "engine.sku_window"),
    ("[defaults.amount_mismatch]\ntolerance = { CNY = \"one\" }\n", "defaults.amount_mismatch.tolerance.CNY"),
    ("[unknown]\n", "unknown"),
])
def test_bad_config_is_one_clear_line_naming_the_key(tmp_path, text, names):
    path = _write(tmp_path, text)
    with pytest.raises(RuleConfigError) as err:
        load_rules(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and names in message


def test_unreadable_or_broken_files(tmp_path):
    with pytest.raises(RuleConfigError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")
    with pytest.raises(RuleConfigError, match="not valid TOML"):
        load_rules(_write(tmp_path, "[defaults\n"))
