"""Shared helpers of clients and simulators: what an HTTP status means, and the simulated QPS cap."""
from collections import deque

import pytest

from connectors.runtime.errors import PermanentError, RateLimited, TransientError, raise_for_http
from connectors.simkit.faults import over_qps


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
