"""Shared fixtures: one real Tansu broker per test session, fresh topics per test."""
from __future__ import annotations

import os
import uuid

import pytest

from infra.broker import ensure_topics, free_port, start_broker
from schemas.topics import Topics


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """A real Kafka-compatible broker: TONGLU_TEST_KAFKA_BOOTSTRAP if set, else Tansu on a free port."""
    external = os.environ.get("TONGLU_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    port = free_port()
    proc = start_broker(port)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def topics(kafka_bootstrap) -> Topics:
    """Freshly created topics with a unique prefix for this test."""
    t = Topics(prefix=f"t{uuid.uuid4().hex[:8]}.")
    ensure_topics({"bootstrap.servers": kafka_bootstrap}, t.specs(), partitions=4)
    return t
