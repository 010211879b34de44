"""Simulated orders rendered as Taobao answers map back to canonical orders consistent with the World."""

import orjson
import pytest

from connectors.simkit.world import World
from schemas.canonical import beijing_to_ms
from tests.platform_helpers import expected_refund, lived_orders, to_second

from ..mapping import map_payload
from ..render import to_xml, trade_dict

START = beijing_to_ms("2024-03-18 10:00:00")
# Taobao cannot show "delivered" for non-COD trades: it stays WAIT_BUYER_CONFIRM_GOODS until finished
EXPECTED_STATUS = {"DELIVERED": "SHIPPED"}


ORDERS = lived_orders(World(seed=2024), "shop-rt", 100, 100, START)


def test_lifecycles_cover_every_status():
    assert {o.status for o in ORDERS} >= {"PENDING_PAYMENT", "PAID", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED",
                                          "COMPLETED", "CANCELLED"}
    assert {line.refund_status for o in ORDERS for line in o.lines} == {"NONE", "REQUESTED", "REFUNDED", "REJECTED"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_roundtrip(fmt):
    response = {"total_results": len(ORDERS), "trades": {"trade": [trade_dict(o) for o in ORDERS]},
                "request_id": "rt"}
    body = (orjson.dumps({"trades_sold_get_response": response}) if fmt == "json"
            else to_xml(response, "trades_sold_get_response"))
    mapped = map_payload(body, fmt, "shop-rt")
    assert len(mapped) == len(ORDERS) == 200
    for order, got in zip(ORDERS, mapped, strict=True):
        assert got["external_id"] == order.external_id
        assert got["status"] == EXPECTED_STATUS.get(order.status, order.status)
        assert got["refund_status"] == expected_refund([line.refund_status for line in order.lines])
        assert got["paid_total"] == order.paid_total
        assert got["items_total"] == order.items_total
        assert got["shipping_fee"] == order.shipping_fee
        assert got["discount_total"] == order.line_discounts + order.order_discount
        assert got["refunded_total"] == order.refunded_total
        assert got["items_total"] + got["shipping_fee"] - got["discount_total"] + got["tax_total"] \
            == got["paid_total"]
        assert got["created_at"] == to_second(order.created_at)
        assert got["paid_at"] == to_second(order.paid_at)
        assert got["updated_at"] == to_second(order.updated_at)
        assert got["shipped_at"] == to_second(order.shipped_at)
        assert got["delivered_at"] is None
        assert got["buyer"]["id"] == order.buyer_id
        assert got["receiver"]["province"] == order.province and got["receiver"]["city"] == order.city
        assert got["receiver"]["phone_masked"].endswith(order.receiver_phone[-4:])
        assert [(ln["line_id"], ln["merchant_sku"], ln["quantity"], ln["unit_price"], ln["discount"], ln["total"],
                 ln["refund_status"]) for ln in got["lines"]] == \
            [(ln.line_id, ln.merchant_sku, ln.quantity, ln.unit_price, ln.discount, ln.total, ln.refund_status)
             for ln in order.lines]
        shipped = {}
        for line in order.lines:
            if line.tracking_no:
                shipped.setdefault((line.carrier_name, line.tracking_no), []).append(line.line_id)
        assert {(s["carrier"], s["tracking_no"]): s["line_ids"] for s in got["shipments"]} == shipped
        for shipment in got["shipments"]:
            assert shipment["shipped_at"] is not None
