"""The SMS hub's pure core: message keys, phone identity, opt-out words, templates and the sending rules."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from connectors.sms.text import segments
from streams.sms.identity import (
    is_opt_out,
    mask_phone,
    message_key,
    normalize_phone,
    phone_hash,
    recipient_of,
)
from streams.sms.rules import Candidate, RecipientHistory, decide
from streams.sms.templates import (
    ShopRules,
    SmsConfigError,
    Template,
    load_sms_config,
    parse_sms_config,
)

BJ = ZoneInfo("Asia/Shanghai")
KEY = b"k" * 32


def bj(text: str) -> int:
    """Epoch ms of a Beijing wall-clock time 'YYYY-MM-DD HH:MM'."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BJ).timestamp() * 1000)


def test_one_key_per_order_and_trigger():
    key = message_key("taobao:s1:100", "OrderShipped")
    assert key == message_key("taobao:s1:100", "OrderShipped") and len(key) == 32
    assert len({key, message_key("taobao:s1:100", "OrderPaid"), message_key("taobao:s1:101", "OrderShipped"),
                message_key("taobao:s1:100", "TrackingUpdated:派送中")}) == 4


def test_phones_are_hashed_with_the_key_and_masked():
    assert normalize_phone("+86 138-0013-8000") == "13800138000"
    assert phone_hash("+86 13800138000", KEY) == phone_hash("138 0013 8000", KEY)
    assert phone_hash("13800138000", KEY) != phone_hash("13800138000", b"other")
    assert "13800138000" not in phone_hash("13800138000", KEY)
    assert mask_phone("13800138000") == "138****8000" and mask_phone("+1 415 555 0100") == "****0100"


@pytest.mark.parametrize("reply,out", [("R", True), ("r", True), (" td ", True), ("TD。", True), ("退订", True),
                                       ("退订！", True), ("RR", False), ("谢谢", False), ("", False)])
def test_opt_out_words(reply, out):
    assert is_opt_out(reply) is out


def test_the_channel_follows_the_recipient():
    assert recipient_of("taobao", "oaid-1", None, "138****8000", KEY).channel == "platform"
    encrypted = recipient_of("douyin", "#cipher#", "13800138000", None, KEY)
    assert encrypted.channel == "platform" and encrypted.phone_hash is None  # a token wins; never decrypted
    plain = recipient_of("shopify", None, "+1 415 555 0100", None, KEY)
    assert plain.channel == "gateway" and plain.to_masked == "****0100" and plain.phone_hash
    assert recipient_of("shopify", None, None, None, KEY).channel == "none"


def test_segments_count_the_sign_and_split_at_67():
    assert [segments("字" * n) for n in (1, 70, 71, 134, 135)] == [1, 1, 2, 2, 3]


def _template(**kw):
    return Template(**{"kind": "service", "sign": "【通路】", "text": "订单{{ order_no }}已发货", **kw})


def test_templates_render_in_a_sandbox_with_known_variables():
    assert _template().render({"order_no": "42"}) == "【通路】订单42已发货"
    with pytest.raises(UndefinedError, match="order_no"):
        _template().render({})
    with pytest.raises(SecurityError):  # the sandbox refuses attribute walks to Python internals
        _template(text="{{ order_no.__class__.__mro__ }}").render({"order_no": "x"})


@pytest.mark.parametrize("bad,reason", [
    ({"text": "订单{{ phone }}"}, "unknown variable(s) phone"),
    ({"sign": "通路"}, "not an approved sign"),
    ({"sign": "【通】"}, "not an approved sign"),
    ({"kind": "marketing", "text": "大促来了"}, "拒收请回复R"),
    ({"text": "{{ order_no"}, "does not parse"),
])
def test_bad_templates_are_refused_with_one_line(bad, reason):
    data = {"templates": {"t": {"kind": "service", "sign": "【通路】", "text": "订单{{ order_no }}",
                                "codes": {"aliyun": "A", "tencent": "T"}, **bad}}}
    with pytest.raises(SmsConfigError, match="templates.t") as err:
        parse_sms_config(data)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_configuration_loads_and_triggers_resolve():
    config = load_sms_config("infra/sms.toml")
    assert [n for n, _ in config.templates_for("any", "TrackingUpdated:派送中")] == ["out_for_delivery"]
    assert [n for n, _ in config.templates_for("any", "OrderDelivered")] == ["delivered_care", "repurchase"]
    assert config.templates_for("any", "OrderCreated") == []


def test_a_trigger_naming_no_template_is_refused(tmp_path):
    path = tmp_path / "sms.toml"
    path.write_text('[templates.a]\nkind="service"\nsign="【通路】"\ntext="x"\ncodes={aliyun="1",tencent="2"}\n'
                    '[defaults.triggers]\nOrderPaid=["b"]\n', encoding="utf-8")
    with pytest.raises(SmsConfigError, match="defaults.triggers.OrderPaid: no template named b"):
        load_sms_config(path)


RULES = ShopRules()


def test_service_messages_leave_at_night_marketing_waits_for_the_window():
    night = bj("2026-11-11 23:30")
    assert decide(Candidate("service", True, night), night, RecipientHistory(), RULES).action == "send"
    queued = decide(Candidate("marketing", True, night), night, RecipientHistory(), RULES)
    assert (queued.action, queued.reason, queued.release_at) == ("queue", "quiet_hours", bj("2026-11-12 08:00"))
    assert decide(Candidate("marketing", True, night), bj("2026-11-12 08:00"), RecipientHistory(),
                  RULES).action == "send"
    assert decide(Candidate("marketing", True, night), bj("2026-11-13 08:00"), RecipientHistory(),
                  RULES).reason == "expired"


def test_the_window_is_configurable():
    rules = ShopRules(marketing_hours="09:00-21:00")
    at = bj("2026-11-11 08:30")
    assert decide(Candidate("marketing", True, at), at, RecipientHistory(), rules).reason == "quiet_hours"
    assert decide(Candidate("marketing", True, at), at, RecipientHistory(), RULES).action == "send"


def test_an_opted_out_number_gets_service_but_never_marketing_not_even_queued():
    night, out = bj("2026-11-11 23:30"), RecipientHistory(opted_out=True)
    assert decide(Candidate("marketing", True, night), night, out, RULES).reason == "opt_out"
    assert decide(Candidate("service", True, night), night, out, RULES).action == "send"


def test_caps_per_number_consent_budget_and_unreachable():
    noon = bj("2026-11-11 12:00")
    one_today = RecipientHistory(sent=((bj("2026-11-11 09:00"), "marketing"),))
    assert decide(Candidate("marketing", True, noon), noon, one_today, RULES).reason == "cap"
    yesterday = RecipientHistory(sent=((bj("2026-11-10 21:00"), "marketing"),))
    assert decide(Candidate("marketing", True, noon), noon, yesterday, RULES).action == "send"
    three_this_week = RecipientHistory(sent=tuple((bj(f"2026-11-0{d} 12:00"), "marketing") for d in (6, 8, 9)))
    assert decide(Candidate("marketing", True, noon), noon, three_this_week, RULES).reason == "cap"
    five_service = RecipientHistory(sent=tuple((noon - i * 60_000, "service") for i in range(1, 6)))
    assert decide(Candidate("service", True, noon), noon, five_service, RULES).reason == "cap"
    assert decide(Candidate("marketing", True, noon, consent=False), noon, RecipientHistory(), RULES
                  ).reason == "no_consent"
    budget = ShopRules(daily_budget=10)
    assert decide(Candidate("service", True, noon, segments=2), noon, RecipientHistory(), budget,
                  shop_segments_today=9).reason == "budget"
    assert decide(Candidate("service", False, noon), noon, RecipientHistory(), RULES).action == "unreachable"
