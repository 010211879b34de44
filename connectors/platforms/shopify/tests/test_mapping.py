"""Shopify mapping: bad inputs, PII never in plaintext (samples vs expected output: tests/conformance)."""

from pathlib import Path

import orjson
import pytest

from schemas.canonical import MappingError, ms_to_iso

from ..mapping import map_payload

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CASES = ["orders_list.json", "order_detail.json", "webhook_orders_paid.body.json"]


@pytest.mark.parametrize("name", CASES)
def test_no_plaintext_pii(name):
    raw = (SAMPLES / name).read_bytes()
    text = orjson.dumps(map_payload(raw, "json", "tonglu-demo")).decode()
    doc = orjson.loads(raw)
    orders = doc.get("orders") or [doc.get("order") or doc]
    for o in orders:
        addr = o["shipping_address"]
        secrets = [
            o["email"],
            o["customer"]["email"],
            addr["name"],
            addr["last_name"],
            addr["phone"],
            addr["phone"][2:],
            addr["address1"],
            o["customer"]["last_name"],
        ]
        for value in secrets:
            assert value not in text, value
        assert o["email"].split("@")[0] not in text


def _order() -> dict:
    return orjson.loads((SAMPLES / "order_detail.json").read_bytes())["order"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"orders": [', "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[]", "not a JSON object"),
        (b'{"errors":"[API] Invalid API key or access token"}', "Invalid API key"),
        (b'{"errors":{"limit":["must be <= 250"]}}', "shopify API error"),
        (b'{"something": 1}', "neither"),
        (b'{"orders": {"id": 1}}', "not a list"),
        (b'{"orders": [1]}', "not a JSON object"),
    ],
)
def test_bad_bodies(body, message):
    with pytest.raises(MappingError, match=message):
        map_payload(body, "json", "s")


@pytest.mark.parametrize(
    "field", ["id", "created_at", "updated_at", "currency", "financial_status", "line_items", "total_price"]
)
def test_missing_required_field(field):
    order = _order()
    del order[field]
    with pytest.raises(MappingError, match=field):
        map_payload(orjson.dumps({"order": order}), "json", "s")


@pytest.mark.parametrize(
    "patch",
    [
        {"created_at": "yesterday"},
        {"total_price": "12,00"},
        {"line_items": [{"id": 1}]},
        {"line_items": "x"},
        {"refunds": [{"refund_line_items": [{"quantity": 1}]}]},
        {"fulfillments": [1]},
        {"shipping_address": "x"},
        {"customer": 5},
        {"updated_at": "2024-05-28T25:99:99-04:00"},
    ],
)
def test_bad_fields_raise_mapping_error_only(patch):
    order = {**_order(), **patch}
    with pytest.raises(MappingError) as info:
        map_payload(orjson.dumps(order), "json", "s")
    assert "\n" not in str(info.value)


def test_xml_content_type_rejected():
    with pytest.raises(MappingError, match="content type"):
        map_payload(b"<orders/>", "xml", "s")


def test_status_table():
    base = _order()
    cases = [
        ({"cancelled_at": "2024-05-28T15:40:02-04:00"}, "CANCELLED"),
        ({"fulfillment_status": "fulfilled", "closed_at": "2024-05-29T15:40:02-04:00"}, "COMPLETED"),
        ({"fulfillment_status": "fulfilled"}, "SHIPPED"),
        ({"fulfillment_status": None, "financial_status": "authorized"}, "PAID"),
        ({"fulfillment_status": None, "financial_status": "partially_refunded"}, "PAID"),
        ({"fulfillment_status": None, "financial_status": "pending"}, "PENDING_PAYMENT"),
        ({"fulfillment_status": None, "financial_status": "partially_paid"}, "PENDING_PAYMENT"),
        ({"fulfillment_status": None, "financial_status": "voided"}, "CANCELLED"),
        ({"fulfillment_status": None, "financial_status": "expired"}, "UNKNOWN"),
    ]
    for patch, status in cases:
        assert map_payload(orjson.dumps({**base, **patch}), "json", "s")[0]["status"] == status, patch
    delivered = {**base, "fulfillment_status": "fulfilled"}
    delivered["fulfillments"] = [
        {**base["fulfillments"][0], "shipment_status": "delivered", "updated_at": "2024-05-30T10:00:00-04:00"}
    ]
    out = map_payload(orjson.dumps(delivered), "json", "s")[0]
    assert (out["status"], ms_to_iso(out["delivered_at"])) == ("DELIVERED", "2024-05-30T14:00:00.000Z")
    pending = map_payload(orjson.dumps({**base, "financial_status": "pending"}), "json", "s")[0]
    assert pending["paid_at"] is None and pending["platform_status"] == "pending/partial"


def test_partial_line_refund_and_discounts():
    order = _order()
    order["line_items"][0]["discount_allocations"] = [{"amount": "3.00", "discount_application_index": 0}]
    order["line_items"][0]["total_discount"] = "3.00"
    order["refunds"] = [
        {
            "refund_line_items": [{"line_item_id": 15001110001, "quantity": 1}],
            "transactions": [
                {"kind": "refund", "status": "success", "amount": "16.50"},
                {"kind": "refund", "status": "failure", "amount": "16.50"},
            ],
        }
    ]
    out = map_payload(orjson.dumps(order), "json", "s")[0]
    line = out["lines"][0]
    assert (line["discount"], line["total"], line["refund_status"]) == (300, 3300, "PARTIALLY_REFUNDED")
    assert out["lines"][1]["refund_status"] == "NONE"
    assert out["refunded_total"] == 1650
