"""Douyin ship-back: business failures to refusal kinds, and the simulated ship APIs checking what the
platform requires (pack fields, a sku leaving whole) and answering in its words."""
import time

import pytest

from connectors.runtime.errors import PermanentError
from connectors.runtime.shipping import REFUSALS, ShipRefused, ShipRequest

from ..facts import FACTS
from ..shipping import Shipper, refusal
from ..simulator import _SHIP_REFUSAL
from .test_client import SHOP, sim  # noqa: F401 (the fixture of a served simulator)


def test_business_failures_become_refusal_kinds_with_the_platforms_words():
    got = refusal(PermanentError("douyin error code=50002 sub_msg='订单已取消，不能发货'", code="isv.business-failed:10101"))
    assert isinstance(got, ShipRefused) and got.kind == "cancelled" and "订单已取消" in str(got)
    assert refusal(PermanentError("x", code="isv.business-failed:99999")).kind == "rejected"
    other = PermanentError("bad token", code="isv.access-token-no-existed")
    assert refusal(other) is other  # not a refusal of the shipment: stays what it is


def test_every_refusal_the_simulator_answers_is_in_the_table():
    assert set(FACTS.ship_refusals.values()) <= set(REFUSALS)
    assert {number for number, _words in _SHIP_REFUSAL.values()} <= set(FACTS.ship_refusals)


async def test_a_pack_must_name_whole_skus_and_known_carriers(sim):  # noqa: F811 (the fixture)
    order = next(o for o in sim.world.create_orders(SHOP, 20, int(time.time() * 1000)) if len(o.lines) > 1)
    client = await sim.client()
    line = order.lines[0]
    pack = {"company_code": "zhongtong", "logistics_code": "ZT1234567890",
            "shipped_order_info": [{"shipped_order_id": line.line_id, "shipped_num": line.quantity + 1}]}
    with pytest.raises(PermanentError) as part:
        await client.call("order.logisticsAddMultiPack", {"order_id": order.external_id, "pack_list": [pack]})
    assert "shipped_num" in str(part.value)
    with pytest.raises(PermanentError) as missing:
        await client.call("order.logisticsAdd", {"order_id": order.external_id, "company_code": "zhongtong"})
    assert "logistics_code" in str(missing.value)
    shipper = Shipper(await sim.creds(), sim.caller())
    with pytest.raises(ShipRefused) as carrier:
        await shipper.ship(ShipRequest(order.external_id, "nosuch", "?", "ZT1234567890"))
    assert carrier.value.kind == "unknown_carrier" and "物流公司编码不存在" in str(carrier.value)
    assert sim.world.uploads == []
    assert await shipper.ship(ShipRequest(order.external_id, "zhongtong", "中通快递", "ZT1234567890",
                                          (line.line_id,))) == "accepted"
    assert [c["endpoint"] for c in sim.calls][-2:] == ["order.orderDetail", "order.logisticsAddMultiPack"]
    assert sim.world.uploads[0]["line_ids"] == [line.line_id] and order.status == "PARTIALLY_SHIPPED"
