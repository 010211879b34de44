"""Taobao mapping: XML = JSON, bad input, privacy (samples vs expected output: tests/conformance)."""
import json
from pathlib import Path

import orjson
import pytest

from connectors.simkit.world import World
from schemas.canonical import MappingError, beijing_to_ms

from ..mapping import map_payload
from ..render import to_xml, trade_dict

SAMPLES = Path(__file__).parents[1] / "samples"
SHOP = "tonglu-home"
def _payloads():
    return sorted(p for p in SAMPLES.iterdir() if not p.name.endswith(".expected.json"))


def test_expected_files_are_complete():
    assert _payloads() and all((SAMPLES / (p.name + ".expected.json")).exists() for p in _payloads())


def test_xml_and_json_of_the_same_trades_agree():
    """The XML sample is shaped as the gateway answers (compact, a trailing comment, the second trade's
    single-line `<orders>` without `list="true"`), not as our simulator renders it."""
    xml = (SAMPLES / "trades_sold_increment_get.xml").read_bytes()
    assert b"<orders><order>" in xml and xml.rstrip().endswith(b"-->")
    as_json = map_payload((SAMPLES / "trades_sold_increment_get.json").read_bytes(), "json", SHOP)
    as_xml = map_payload(xml, "xml", SHOP)
    assert len(as_json) == 3 and [len(o["lines"]) for o in as_json] == [2, 1, 1]
    assert as_json == as_xml
    detail_xml = map_payload((SAMPLES / "trade_fullinfo_get.xml").read_bytes(), "xml", SHOP)
    assert detail_xml == [as_json[1]]
    detail_json = map_payload((SAMPLES / "trade_fullinfo_get.json").read_bytes(), "json", SHOP)
    assert detail_json == [as_json[0]]


def test_single_element_xml_list_is_a_list():
    """One `<trade>` in `<trades>` and no `list="true"` anywhere: still a list of one trade."""
    body = (SAMPLES / "trades_sold_get_single.xml").read_bytes()
    assert b'list="true"' not in body and body.count(b"<trade>") == 1
    orders = map_payload(body, "xml", SHOP)
    assert len(orders) == 1 and len(orders[0]["lines"]) == 2
    one_line = body.replace(body[body.index(b"<order>", body.index(b"</order>")):body.index(b"</orders>")], b"")
    (order,) = map_payload(one_line, "xml", SHOP)
    assert [line["line_id"] for line in order["lines"]] == ["2845000011122233001"]


def test_empty_page():
    body = b'{"trades_sold_increment_get_response":{"total_results":0,"request_id":"x"}}'
    assert map_payload(body, "json", SHOP) == []
    xml = b'<trades_sold_get_response><total_results>0</total_results></trades_sold_get_response>'
    assert map_payload(xml, "xml", SHOP) == []


def _fixture() -> dict:
    return json.loads((SAMPLES / "trades_sold_increment_get.json").read_text())


@pytest.mark.parametrize("body, content_type, fragment", [
    (b'{"trades_sold_increment_get_response": {"trades": {"trade": [{"tid": 1', "json", "malformed JSON"),
    (b"this is not xml", "xml", "malformed XML"),
    (b"<a><b></a>", "xml", "malformed XML"),
    (b"[1, 2]", "json", "not a TOP response"),
    (b'{"trades": {"trade": []}}', "json", "simplify"),
    (b'{"trade_fullinfo_get_response": {"request_id": "x"}}', "json", "carries no trade"),
    (b'{"error_response": {"code": 27, "msg": "Invalid session"}}', "json", "code=27"),
    (b"<error_response><code>7</code><msg>App Call Limited</msg></error_response>", "xml", "code=7"),
])
def test_bad_inputs_raise_mapping_error(body, content_type, fragment):
    with pytest.raises(MappingError, match=fragment):
        map_payload(body, content_type, SHOP)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda t: (t.pop("tid"), t.pop("tid_str")), "tid"),
    (lambda t: t.pop("status"), "status"),
    (lambda t: t["orders"]["order"][0].pop("num"), "num"),
    (lambda t: t.update(created="18/03/2024"), "Beijing time"),
    (lambda t: t.update(payment="12,00"), "money"),
    (lambda t: t.update(orders=[1, 2]), "unmappable"),
    (lambda t: t["orders"]["order"][0].update(num=1.5), "num"),
])
def test_broken_trades_raise_mapping_error(mutate, fragment):
    doc = _fixture()
    mutate(doc["trades_sold_increment_get_response"]["trades"]["trade"][0])
    with pytest.raises(MappingError, match=fragment):
        map_payload(orjson.dumps(doc), "json", SHOP)


def test_big_ids_are_exact_without_str_twins():
    doc = _fixture()
    trade = doc["trades_sold_increment_get_response"]["trades"]["trade"][0]
    del trade["tid_str"]
    trade["tid"] = 9_007_199_254_740_993  # 2^53 + 1: a float would round it
    for order in trade["orders"]["order"]:
        del order["oid_str"]
    trade["orders"]["order"][0]["oid"] = 18_446_744_073_709_551_617  # > 2^64: beyond orjson's integers
    (mapped, *_) = map_payload(json.dumps(doc).encode(), "json", SHOP)
    assert mapped["external_id"] == "9007199254740993"
    assert mapped["lines"][0]["line_id"] == "18446744073709551617"
    assert mapped["lines"][1]["line_id"] == "2841736650120523691"


def test_adjust_fee_counts_as_negative_discount():
    doc = _fixture()
    trade = doc["trades_sold_increment_get_response"]["trades"]["trade"][0]
    trade.update(adjust_fee="3.50", payment="161.30")
    (mapped, *_) = map_payload(orjson.dumps(doc), "json", SHOP)
    assert mapped["discount_total"] == 1200 - 350
    assert mapped["items_total"] + mapped["shipping_fee"] - mapped["discount_total"] == mapped["paid_total"]


def test_buyer_signed_is_delivered_with_end_time():
    doc = _fixture()
    trade = doc["trades_sold_increment_get_response"]["trades"]["trade"][1]
    trade.update(status="TRADE_BUYER_SIGNED", end_time="2024-03-19 12:00:00")
    mapped = map_payload(orjson.dumps(doc), "json", SHOP)[1]
    assert mapped["status"] == "DELIVERED"
    assert mapped["delivered_at"] == beijing_to_ms("2024-03-19 12:00:00")


@pytest.mark.parametrize("states, expected", [
    (["NO_REFUND", "CLOSED"], "NONE"),
    (["WAIT_SELLER_AGREE", "SUCCESS"], "REQUESTED"),
    (["SUCCESS", "NO_REFUND"], "PARTIALLY_REFUNDED"),
    (["SUCCESS", "SUCCESS"], "REFUNDED"),
    (["SELLER_REFUSE_BUYER", "NO_REFUND"], "REJECTED"),
    (["SELLER_REFUSE_BUYER", "SUCCESS"], "PARTIALLY_REFUNDED"),
])
def test_order_refund_status(states, expected):
    doc = _fixture()
    trade = doc["trades_sold_increment_get_response"]["trades"]["trade"][0]
    for order, state in zip(trade["orders"]["order"], states, strict=True):
        order["refund_status"] = state
    (mapped, *_) = map_payload(orjson.dumps(doc), "json", SHOP)
    assert mapped["refund_status"] == expected


def test_no_plaintext_personal_data():
    """Receivers in clear (as an app authorised to decrypt gets them) and a buyer message holding a
    phone and a house number: none of it reaches the canonical order, from JSON or XML."""
    world = World(seed=11)
    order = world.create_orders("s1", 1, beijing_to_ms("2024-03-18 10:00:00"))[0]
    order.receiver_name, order.receiver_phone, order.street = "欧阳娜娜", "13987654321", "文三路477号华星科技大厦"
    order.buyer_message = "改送文三路477号，电话139 8765 4321"
    body = {"trade_fullinfo_get_response": {"trade": trade_dict(order, plaintext=True), "request_id": "r"}}
    plain = ("欧阳娜娜", "13987654321", "98765", "8765 4", "文三路477号", "华星科技大厦")
    for raw, content_type in ((orjson.dumps(body), "json"),
                              (to_xml(body["trade_fullinfo_get_response"], "trade_fullinfo_get_response"), "xml")):
        assert all(p in raw.decode() for p in plain)  # the input really holds them
        (mapped,) = map_payload(raw, content_type, "s1")
        text = json.dumps(mapped, ensure_ascii=False)
        for p in plain:
            assert p not in text, p
        assert mapped["receiver"]["name_masked"] == "欧***"
        assert mapped["receiver"]["phone_masked"] == "139****4321" and mapped["receiver"]["phone_valid"] is True
        assert mapped["buyer"]["message"] == "改送文三路***号，电话139****4321"
