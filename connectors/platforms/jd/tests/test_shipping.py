"""JD ship-back: how `jingdong.pop.order.shipment` answers are read (refusal words to kinds, gateway errors),
and the simulator answering only words the table knows."""
import orjson
import pytest

from connectors.runtime.base import Response
from connectors.runtime.errors import RateLimited, TransientError
from connectors.runtime.shipping import ShipRefused

from ..api import SHIPMENT_REFUSALS
from ..shipping import classify, refusal_kind
from ..simulator import _REFUSED

WRAPPER = "jingdong_pop_order_shipment_responce"


def answer(doc: dict, status: int = 200) -> Response:
    return Response(status=status, headers={}, body=orjson.dumps(doc))


def result(success: bool, zh: str = "成功", en: str = "success") -> Response:
    return answer({WRAPPER: {"code": "0", "sopjosshipment_result": {
        "success": success, "chineseErrCode": zh, "englishErrCode": en}}})


def test_an_accepted_shipment():
    assert classify(result(True)) == 1


@pytest.mark.parametrize("zh, kind", [("订单已取消", "cancelled"), ("订单未付款", "unpaid"), ("订单已退款", "refunded"),
                                      ("订单已出库", "already_shipped"), ("订单不存在", "not_found"),
                                      ("物流公司不存在", "unknown_carrier"), ("订单已锁定，退款处理中，不能出库", "rejected"),
                                      ("某个新的原因", "rejected")])
def test_refusal_words_become_kinds_with_the_platforms_words_kept(zh, kind):
    with pytest.raises(ShipRefused) as refused:
        classify(result(False, zh, "why"))
    assert refused.value.kind == kind and zh in str(refused.value) and "why" in str(refused.value)


def test_the_simulator_refuses_in_words_the_table_knows():
    for zh, _en in _REFUSED.values():
        assert refusal_kind(zh) != "rejected" and any(zh.startswith(w) for w in SHIPMENT_REFUSALS)


def test_throttling_and_malformed_answers_are_retried():
    with pytest.raises(RateLimited):
        classify(answer({"error_response": {"code": "66", "zh_desc": "调用频率超过限制", "en_desc": "limit"}}))
    with pytest.raises(TransientError):
        classify(answer({WRAPPER: {"code": "0"}}))
    with pytest.raises(TransientError):
        classify(Response(status=200, headers={}, body=b'{"jingdong_pop_order_sh'))
