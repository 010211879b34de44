"""Carrier names -> a platform's carrier code (schemas/carriers.py), on the shipped platforms' tables."""
import pytest

from connectors import platforms
from schemas.carriers import CARRIERS, canonical_carrier, describe_known, platform_carrier

TAOBAO = {"SF": "顺丰速运", "ZTO": "中通快递", "EMS": "EMS", "JD": "京东快递"}
OTHER_CODES = {"zhongtong": "中通快递", "shunfeng": "顺丰速运", "ems": "EMS"}  # a platform with its own codes
SHOPIFY_LIKE = {"UPS": "UPS", "ZTO Express": "ZTO Express", "China EMS (ePacket)": "China EMS (ePacket)"}


@pytest.mark.parametrize("given,table,want", [
    ("ZTO", TAOBAO, "ZTO"),                    # the platform's own code
    ("zto", TAOBAO, "ZTO"),                    # case does not matter
    ("中通快递", TAOBAO, "ZTO"),                # the name the platform gives it
    ("中通", TAOBAO, "ZTO"),                    # another name of the canonical carrier
    ("ZTO Express", TAOBAO, "ZTO"),
    ("ZTO", OTHER_CODES, "zhongtong"),         # canonical code -> the platform's own code, through the name
    ("顺丰", OTHER_CODES, "shunfeng"),
    ("ZTO", SHOPIFY_LIKE, "ZTO Express"),
    ("EMS", SHOPIFY_LIKE, "China EMS (ePacket)"),
    ("ups", SHOPIFY_LIKE, "UPS"),
    ("YTO", TAOBAO, None),                     # a real carrier this platform does not list
    ("Pony Express", TAOBAO, None),            # no such carrier at all
    ("", TAOBAO, None),
    ("  ", TAOBAO, None),
])
def test_a_carrier_is_found_by_code_name_or_canonical_code(given, table, want):
    assert platform_carrier(table, given) == want


def test_canonical_names_are_unambiguous():
    seen = {}
    for carrier in CARRIERS.values():
        for name in carrier.names():
            key = "".join(name.split()).casefold()
            assert seen.setdefault(key, carrier.code) == carrier.code, f"{name!r} names two carriers"
    assert canonical_carrier("ZTO Express") == canonical_carrier("中通快递") == "ZTO"


@pytest.mark.parametrize("platform", [p for p in platforms.codes() if platforms.manifest(p).capabilities.ship_back])
def test_every_listed_carrier_of_a_ship_back_platform_is_reachable_by_its_code_and_name(platform):
    carriers = platforms.manifest(platform).carriers
    assert carriers, f"{platform} ships back but lists no carriers"
    for code, name in carriers.items():
        assert platform_carrier(carriers, code) == code
        assert platform_carrier(carriers, name) == code


def test_known_carriers_are_described_briefly():
    assert describe_known(TAOBAO) == "SF 顺丰速运, ZTO 中通快递, EMS, JD 京东快递"
    many = {f"C{i}": f"C{i}" for i in range(20)}
    assert describe_known(many, limit=3) == "C0, C1, C2, … (20 in all)"
