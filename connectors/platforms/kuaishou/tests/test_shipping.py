"""Kuaishou ship-back: how `open.seller.order.goods.deliver` answers are read (refusal words to kinds with
the platform's words kept, other errors as they are), and the simulator refusing only in known words."""
import orjson
import pytest

from connectors.runtime.base import Response
from connectors.runtime.errors import PermanentError, RateLimited
from connectors.runtime.shipping import REFUSALS, ShipRefused

from ..shipping import REFUSAL_WORDS, classify
from ..simulator import _SHIP_REFUSAL


def answer(doc: dict) -> Response:
    return Response(status=200, headers={}, body=orjson.dumps(doc))


def refused(words: str) -> Response:
    return answer({"result": 2001, "code": "807000", "msg": "业务处理失败", "error_msg": words, "subCode": "2001",
                   "subMsg": words, "success": False})


def test_an_accepted_shipment():
    assert classify(answer({"result": 1, "msg": "success", "data": {}, "requestId": "r1"})) == 1


@pytest.mark.parametrize("words, kind", sorted(REFUSAL_WORDS.items()))
def test_refusal_words_become_kinds_with_the_words_kept(words, kind):
    with pytest.raises(ShipRefused) as got:
        classify(refused(words + "，不能发货"))
    assert got.value.kind == kind and words in str(got.value)


def test_the_simulator_refuses_in_words_the_table_knows():
    assert set(REFUSAL_WORDS.values()) <= set(REFUSALS)
    for words in _SHIP_REFUSAL.values():
        assert any(words.startswith(start) for start in REFUSAL_WORDS), words


def test_other_errors_keep_their_meaning():
    with pytest.raises(RateLimited):
        classify(answer({"result": 803, "error_msg": "api call frequency exceeded", "sub_code": "flow.limit"}))
    with pytest.raises(PermanentError) as other:
        classify(refused("expressNo不能为空"))
    assert not isinstance(other.value, ShipRefused)
