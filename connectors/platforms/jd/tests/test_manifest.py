"""The JD manifest: the fact sheet's complete status table, and every unverified fact kept as data."""
from pathlib import Path

import pytest

from connectors import platforms
from connectors.platforms.manifest import ManifestError, load_manifest

MANIFEST = Path(__file__).parents[1] / "manifest.toml"
# jd.md §5, every orderState the sheet names
SHEET_STATES = {"WAIT_SELLER_STOCK_OUT": "PAID", "WAIT_GOODS_RECEIVE_CONFIRM": "SHIPPED", "WAIT_SELLER_DELIVERY": "PAID",
                "POP_ORDER_PAUSE": "PAID", "PAUSE": "PAID", "LOCKED": "PAID", "FINISHED_L": "COMPLETED",
                "TRADE_CANCELED": "CANCELLED", "WAIT_SEND_CODE": "PAID", "NOT_PAY": "PENDING_PAYMENT"}


def test_the_status_table_is_the_sheets():
    m = platforms.manifest("jd")
    assert {k: v.status for k, v in m.statuses.items()} == SHEET_STATES
    assert m.statuses["LOCKED"].refund == "REQUESTED"
    assert {v.refund for k, v in m.statuses.items() if k != "LOCKED"} == {"NONE"}


def test_unverified_facts_are_named_and_present():
    m = platforms.manifest("jd")
    assert {"statuses.NOT_PAY", "carriers", "rate", "push", "facts.errors.token_invalid",
            "facts.errors.rate_limited", "facts.refund_apply_statuses", "facts.waybill_separator"} <= set(m.unverified)
    assert m.facts["errors"]["token_invalid"] == ["19"] and m.facts["errors"]["rate_limited"] == ["62", "66"]
    assert m.carriers["2087"] == "京东快递" and m.sim_port == 8085
    assert not m.capabilities.push and m.push.channel == "message_queue"


def test_an_unverified_entry_must_name_a_fact(tmp_path):
    text = MANIFEST.read_text(encoding="utf-8")
    bad = tmp_path / "manifest.toml"
    bad.write_text(text.replace('"facts.waybill_separator",', '"facts.waybill_separators",'), encoding="utf-8")
    with pytest.raises(ManifestError, match="unverified names 'facts.waybill_separators'"):
        load_manifest(bad)
    assert load_manifest(MANIFEST).facts["waybill_separator"] == "|"
