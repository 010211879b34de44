"""What an ERP endpoint receives: the JSON webhook body and headers, the Qimen delivery order."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
from typer.testing import CliRunner

from connectors.erp import payloads, qimen
from connectors.erp.signing import verify_webhook
from infra.cli import app
from schemas.codec import AvroCodec, EventDecoder
from tests.samples import sample_event

SAMPLE = Path(__file__).parents[2] / "connectors" / "platforms" / "taobao" / "samples" / "trade_fullinfo_get.json"
PARTY = qimen.QimenParty(app_key="23456789", customer_id="TLWMS01", warehouse_code="HZ-WH-01", owner_code="TONGLU")


def _event_of_normalized_order() -> tuple[dict, dict]:
    """An OrderEvent carrying what `tonglu normalize` prints for a recorded payload, as read from the topic."""
    printed = json.loads(CliRunner().invoke(app, ["normalize", "--platform", "taobao", "--shop", "s1",
                                                  str(SAMPLE)]).stdout)[0]
    event = sample_event()
    from connectors import platforms

    order = platforms.map_payload("taobao", SAMPLE.read_bytes(), "json", "s1")[0]
    order["version"] = 1
    event.update(order_id=order["order_id"], order=order)
    value = AvroCodec("OrderEvent").encode(event)
    return EventDecoder().decode(value, {}), printed


def test_the_body_carries_the_event_and_the_order_exactly_as_normalize_prints_it():
    event, printed = _event_of_normalized_order()
    body = payloads.webhook_body(event)
    parsed = json.loads(body)
    assert list(parsed) == ["event_id", "event_type", "order_id", "version", "occurred_at", "order"]
    assert parsed["order"] == printed
    assert parsed["occurred_at"].endswith("Z") and parsed["version"] == event["version"]
    # the spliced body is the plain serialisation of the whole object, byte for byte
    assert body == orjson.dumps(parsed)
    assert "张**" in body.decode("utf-8")  # UTF-8, not \\u escapes, as normalize prints


def test_a_prerendered_order_gives_the_same_body():
    event, _ = _event_of_normalized_order()
    assert payloads.webhook_body(event, payloads.order_json_bytes(event["order"])) == payloads.webhook_body(event)


def test_headers_sign_the_body_and_carry_the_event_id_twice():
    event, _ = _event_of_normalized_order()
    body = payloads.webhook_body(event)
    headers = dict(payloads.webhook_headers(event["event_id"], event["event_type"], body, "sec", 1717000000, "d-1"))
    assert headers["X-Tonglu-Event-Id"] == headers["Idempotency-Key"] == event["event_id"]
    assert headers["X-Tonglu-Timestamp"] == "1717000000" and headers["X-Tonglu-Delivery"] == "d-1"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert verify_webhook("sec", "1717000000", headers["X-Tonglu-Signature"], body, 1717000000) is None


def test_qimen_delivery_order_of_an_event():
    event, _ = _event_of_normalized_order()
    xml = qimen.deliveryorder_xml(event, PARTY, "TB", "淘宝/天猫 Taobao/Tmall")
    root = ET.fromstring(xml)
    order = root.find("deliveryOrder")
    assert order.findtext("deliveryOrderCode") == event["order_id"]
    assert order.findtext("sourcePlatformCode") == "TB" and order.findtext("warehouseCode") == "HZ-WH-01"
    assert order.findtext("totalAmount") == "157.80" and order.findtext("itemAmount") == "169.80"
    assert order.findtext("discountAmount") == "12.00" and order.findtext("freight") == "0.00"
    assert order.findtext("payTime") == "2024-03-18 09:58:40"  # Beijing time
    receiver = order.find("receiverInfo")
    assert receiver.findtext("name") == "张**" and receiver.findtext("province") == "浙江省"
    assert order.find("extendProps").findtext("tongluEventId") == event["event_id"]
    lines = root.findall("orderLines/orderLine")
    assert [ln.findtext("itemCode") for ln in lines] == ["TL-MUG-350-WHT", "TL-TOWEL-L-GRY"]
    assert [ln.findtext("planQty") for ln in lines] == ["2", "1"]
    assert lines[0].findtext("retailPrice") == "39.90" and lines[0].findtext("actualPrice") == "36.90"
    assert lines[0].findtext("sourceOrderCode") == event["order"]["external_id"]


def test_qimen_text_is_escaped():
    event, _ = _event_of_normalized_order()
    event["order"]["buyer"]["message"] = "<b>&</b>"
    root = ET.fromstring(qimen.deliveryorder_xml(event, PARTY, "OTHER", "x"))
    assert root.find("deliveryOrder").findtext("buyerMessage") == "<b>&</b>"


def test_qimen_query_is_signed_over_the_body():
    from urllib.parse import parse_qsl

    from connectors.erp.signing import qimen_sign

    body = b"<request/>"
    params = dict(parse_qsl(qimen.request_query(PARTY, "qimen_demo_secret", body, 1716948900000)))
    assert params["method"] == "taobao.qimen.deliveryorder.create" and params["customerId"] == "TLWMS01"
    assert params["timestamp"] == "2024-05-29 10:15:00" and params["format"] == "xml"
    assert params["sign"] == qimen_sign("qimen_demo_secret", params, body)


def test_a_cancellation_or_full_refund_before_shipping_is_a_qimen_order_cancel():
    paid = sample_event(version=2)["order"]
    shipped = sample_event(version=3)["order"]
    unpaid = sample_event(version=1)["order"]
    assert qimen.method_for("OrderPaid", paid) == qimen.METHOD
    assert qimen.method_for("OrderCancelled", {**paid, "status": "CANCELLED"}) == qimen.CANCEL_METHOD
    assert qimen.method_for("OrderRefunded", paid) == qimen.CANCEL_METHOD
    assert qimen.method_for("OrderRefunded", shipped) is None  # on its way: nothing for the WMS to stop
    assert qimen.method_for("OrderCancelled", {**paid, "shipments": [{"tracking_no": "SF1"}]}) is None
    assert qimen.method_for("OrderCancelled", unpaid) is None  # the WMS never had it

    event = {**sample_event(version=2), "event_type": "OrderCancelled"}
    root = ET.fromstring(qimen.ordercancel_xml(event, PARTY))
    assert root.tag == "request" and root.findtext("orderCode") == event["order_id"]
    assert root.findtext("warehouseCode") == "HZ-WH-01" and root.findtext("ownerCode") == PARTY.owner_code
    assert root.findtext("orderType") == "JYCK" and "取消" in root.findtext("cancelReason")
    assert root.find("extendProps").findtext("tongluEventId") == event["event_id"]


def test_a_qimen_cancel_is_signed_with_its_own_method():
    from urllib.parse import parse_qsl

    from connectors.erp.signing import qimen_sign

    body = b"<request/>"
    params = dict(parse_qsl(qimen.request_query(PARTY, "s", body, 1716948900000, qimen.CANCEL_METHOD)))
    assert params["method"] == "taobao.qimen.order.cancel" and params["sign"] == qimen_sign("s", params, body)


def test_qimen_responses():
    samples = Path(__file__).parents[2] / "connectors" / "erp" / "samples"
    assert qimen.response_error((samples / "qimen_deliveryorder_create_response.xml").read_bytes()) is None
    failure = qimen.response_error((samples / "qimen_deliveryorder_create_failure.xml").read_bytes())
    assert failure.startswith("flag failure: ITEM_NOT_EXIST: 商品 TL-MUG-BLK")
    assert qimen.response_error(b"<html>oops</html>").startswith("not a Qimen response")


def test_the_documented_example_is_what_the_deliverer_sends():
    """connectors/erp/samples/webhook_order_paid.* (shown in the README) against the renderer and the signer."""
    from connectors import platforms

    samples = Path(__file__).parents[2] / "connectors" / "erp" / "samples"
    order = platforms.map_payload("taobao", SAMPLE.read_bytes(), "json", "tonglu-home")[0]
    order["version"] = 2
    event = {"event_id": "9c1e5f3a7b2d4e6f8a0b1c2d3e4f5a6b", "event_type": "OrderPaid", "order_id": order["order_id"],
             "version": 2, "occurred_at": order["paid_at"], "order": order}
    body = (samples / "webhook_order_paid.body.json").read_bytes()
    assert payloads.webhook_body(event) == body
    lines = (samples / "webhook_order_paid.headers.txt").read_text(encoding="utf-8").splitlines()[1:]
    documented = dict(line.split(": ", 1) for line in lines if not line.startswith("#"))
    assert documented == dict(payloads.webhook_headers(event["event_id"], "OrderPaid", body, "whsec_tonglu_demo",
                                                       1710727125, documented["X-Tonglu-Delivery"]))
