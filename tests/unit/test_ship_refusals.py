"""Why a platform refuses a shipment, judged on its own view of the order (connectors/runtime/shipping.py)."""
import pytest

from connectors.runtime.shipping import ShipRefused, explain_refusal
from tests.factories import canonical_order


def order(status="PAID", shipments=(), refunds=("NONE", "NONE")) -> dict:
    o = canonical_order(status=status)
    o["lines"] = [dict(o["lines"][0], line_id=str(n + 1), refund_status=r) for n, r in enumerate(refunds)]
    o["shipments"] = [{"carrier": "ZTO", "tracking_no": t, "shipped_at": 1, "line_ids": list(ids)}
                      for t, ids in shipments]
    return o


@pytest.mark.parametrize("o,tracking,lines,want", [
    (order("SHIPPED", [("ZT1", ["1", "2"])]), "ZT1", [], "uploaded"),            # our earlier attempt landed
    (order("SHIPPED", [("ZT1", ["1", "2"])]), "ZT1", ["2"], "uploaded"),
    (order("PARTIALLY_SHIPPED", [("ZT1", ["1"])]), "ZT1", ["1", "2"], "already_shipped"),  # not all of it
    (order("SHIPPED", [("ZT1", ["1", "2"])]), "ZT2", [], "already_shipped"),     # another number
    (order("PARTIALLY_SHIPPED", [("ZT1", ["1"])]), "ZT2", ["1"], "already_shipped"),
    (order("CANCELLED", refunds=("REFUNDED", "REFUNDED")), "ZT1", [], "cancelled"),
    (order("PENDING_PAYMENT"), "ZT1", [], "unpaid"),
    (order("PAID", refunds=("REFUNDED", "NONE")), "ZT1", ["1"], "refunded"),
    (order("PAID", refunds=("REFUNDED", "NONE")), "ZT1", ["2"], None),            # nothing wrong with line 2
    (order("PAID"), "ZT1", ["9"], "unknown_lines"),
    (order("PAID"), "ZT1", [], None),
])
def test_the_order_explains_the_refusal(o, tracking, lines, want):
    assert explain_refusal(o, tracking, lines) == want


def test_a_refusal_names_a_known_kind():
    assert ShipRefused("cancelled", "x").kind == "cancelled"
    with pytest.raises(ValueError):
        ShipRefused("bored", "x")
