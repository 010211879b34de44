"""The JD manifest: the fact sheet's complete status table, and every unverified fact kept as data."""
from pathlib import Path

import pytest

from connectors import platforms
from connectors.platforms.manifest import ManifestError, load_manifest

from .. import api

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


def test_unverified_facts_are_data():
    """Manifest keys the sheet leaves unverified are named; the other unverified facts are in api.toml."""
    m = platforms.manifest("jd")
    assert set(m.unverified) == {"statuses.NOT_PAY", "carriers", "rate", "push"}
    assert m.carriers["2087"] == "京东快递" and m.sim_port == 8093
    assert not m.capabilities.push and m.push.channel == "message_queue"
    assert api.ERRORS["token_invalid"] == ["19"] and api.ERRORS["rate_limited"] == ["62", "66"]
    assert (api.WAYBILLS, api.EXTENSION, api.MASKED_MOBILE) == ("|", "-", "desen_mobile")
    assert set(api.REFUND_APPLY_STATUSES) == {str(n) for n in range(10)}
    text = (MANIFEST.parent / "api.toml").read_text(encoding="utf-8")
    assert text.count("(unverified") >= 8


def test_the_client_reads_api_toml_and_unverified_names_manifest_keys(tmp_path):
    """The codes the client backs off on come from api.toml; an `unverified` entry must name a key."""
    from ..client import ERRORS
    assert ERRORS["rate_limited"] == frozenset(api.ERRORS["rate_limited"])
    bad = tmp_path / "manifest.toml"
    bad.write_text(MANIFEST.read_text(encoding="utf-8").replace('"statuses.NOT_PAY"', '"statuses.NOT_PAID"'),
                   encoding="utf-8")
    with pytest.raises(ManifestError, match="unverified names 'statuses.NOT_PAID'"):
        load_manifest(bad)
