"""Shared helpers of clients and simulators: what an HTTP status means, the simulated QPS cap and faults."""
import time
from collections import deque

import pytest

from connectors.runtime.errors import (
    PermanentError,
    RateLimited,
    TransientError,
    json_answer,
    json_object,
    raise_for_http,
)
from connectors.simkit.faults import over_qps
from connectors.simkit.server import FAULTS, new_sim_app, take_fault
from connectors.simkit.world import World


@pytest.mark.parametrize("status, kind, code", [(502, TransientError, "http_502"), (500, TransientError, "http_500"),
                                                (429, RateLimited, "http_429"), (403, PermanentError, "http_403"),
                                                (404, PermanentError, "http_404")])
def test_error_statuses(status, kind, code):
    with pytest.raises(kind) as raised:
        raise_for_http(status)
    assert type(raised.value) is kind and raised.value.code == code


@pytest.mark.parametrize("status", [200, 204, 302])
def test_other_statuses_pass(status):
    raise_for_http(status)


def test_qps_cap_counts_the_last_second():
    calls = deque()
    assert [over_qps(calls, 2, t) for t in (0.0, 0.1, 0.2, 0.9, 1.15, 2.5)] == [False, False, True, True, True, False]
    assert not any(over_qps(deque(), limit, 0.0) for limit in (None, 0))


def test_qps_cap_per_second_counts_whole_seconds():
    calls = deque()
    assert [over_qps(calls, 2, t, per_second=True) for t in (0.1, 0.5, 0.9, 1.0, 1.1, 1.95, 2.0)] == \
        [False, False, True, False, False, True, False]


def test_a_platform_may_read_its_own_4xx_bodies_and_name_the_wait():
    raise_for_http(400, client_errors=False)
    with pytest.raises(RateLimited) as raised:
        raise_for_http(429, retry_after=7.5, client_errors=False)
    assert raised.value.retry_after == 7.5
    with pytest.raises(PermanentError, match=r"^HTTP 401: b'denied'$"):
        raise_for_http(401, detail="b'denied'")


@pytest.mark.parametrize("body", [b'{"orders": ', b"[1, 2]", b"", b'{"order": {}}'])
def test_an_answer_that_is_no_json_object_with_its_key_is_malformed(body):
    with pytest.raises(TransientError) as raised:
        json_answer(body, "orders")
    assert raised.value.code == "malformed"


def test_a_json_answer_is_its_object():
    assert json_answer(b'{"orders": []}', "orders") == {"orders": []} == json_answer(b'{"orders": []}')


def test_a_lenient_read_is_the_object_or_nothing():
    assert json_object(b'{"result": 1}') == {"result": 1}
    assert json_object(b'{"result": ') == json_object(b"[1]") == json_object(b"success") == json_object(b"") == {}


async def test_a_planned_fault_is_taken_once_and_a_slow_one_waits():
    app = new_sim_app(World(), lambda shop_id: {})
    assert await take_fault(app) == (None, 0.0)
    app[FAULTS].add("slow", 1, 0.2)
    app[FAULTS].add("rate_limit", 1, 3.0)
    started = time.monotonic()
    assert await take_fault(app) == ("slow", 0.2) and time.monotonic() - started >= 0.2
    assert await take_fault(app) == ("rate_limit", 3.0) and app[FAULTS].pending() == 0
