"""Pinduoduo ship-back: how `pdd.logistics.online.send` answers are read (refusal sub_codes to kinds with
the platform's words kept, gateway errors), and the simulator refusing only with sub_codes the table knows."""
import orjson
import pytest

from connectors.runtime.base import Response
from connectors.runtime.errors import PermanentError, RateLimited, TransientError
from connectors.runtime.shipping import REFUSALS, ShipRefused

from .. import api
from ..shipping import classify
from ..simulator import _SHIP_REFUSAL


def answer(doc: dict) -> Response:
    return Response(status=200, headers={}, body=orjson.dumps(doc))


def refusal(sub_code: str, words: str = "订单已取消，不能发货") -> Response:
    return answer({"error_response": {"error_code": api.SHIP_REFUSED_CODE, "error_msg": "业务处理失败",
                                      "sub_code": sub_code, "sub_msg": words, "request_id": "r1"}})


def test_an_accepted_shipment():
    assert classify(answer({api.SHIP_RESPONSE: {"is_success": True, "request_id": "r1"}})) == 1


@pytest.mark.parametrize("sub_code, kind", sorted(api.SHIP_REFUSALS.items()))
def test_refusals_become_kinds_with_the_platforms_words(sub_code, kind):
    with pytest.raises(ShipRefused) as refused:
        classify(refusal(sub_code))
    assert refused.value.kind == kind and sub_code in str(refused.value) and "订单已取消" in str(refused.value)


def test_the_simulator_refuses_with_sub_codes_the_table_knows():
    assert set(api.SHIP_REFUSALS.values()) <= set(REFUSALS)
    assert {sub_code for sub_code, _words in _SHIP_REFUSAL.values()} <= set(api.SHIP_REFUSALS)


def test_other_errors_keep_their_meaning():
    with pytest.raises(RateLimited):
        classify(answer({"error_response": {"error_code": 70031, "error_msg": "调用过于频繁"}}))
    with pytest.raises(TransientError):
        classify(answer({"error_response": {"error_code": 50000, "error_msg": "系统繁忙"}}))
    with pytest.raises(PermanentError) as bad:
        classify(answer({"error_response": {"error_code": 10000, "sub_code": "10000", "sub_msg": "tracking_number 不能为空"}}))
    assert not isinstance(bad.value, ShipRefused)
    with pytest.raises(TransientError):
        classify(answer({"order_info_get_response": {}}))
