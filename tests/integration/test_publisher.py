"""The publisher against a real broker that swallows produce requests: a failed delivery is re-sent, and a
delivery that does not happen within the timeout raises with nothing acknowledged."""
import logging
import time

import pytest
from confluent_kafka import KafkaException

from schemas.kafka import Publisher
from tests.integration.helpers import TopicReader, publish
from tests.integration.produce_blocker import ProduceBlocker


@pytest.fixture
def blocker():
    proxy = ProduceBlocker().start()
    yield proxy
    proxy.stop()


def _values_on(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """Every value on `topic` once `count` arrived (and 1 s more, for any extra one)."""
    reader = TopicReader(bootstrap, topic)
    try:
        reader.until(count, timeout=20)
        reader.poll(1)
        return [value for _, value in reader.records]
    finally:
        reader.close()


class _UnblockOnResend(logging.Handler):
    """Lets produce requests through once the publisher says it re-sends: only a re-send can then land."""

    def __init__(self, proxy: ProduceBlocker):
        super().__init__()
        self.proxy, self.resends = proxy, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "re-sending" in record.getMessage():
            self.resends += 1
            self.proxy.blocking = False


def test_a_delivery_that_fails_is_re_sent(blocker):
    publish(blocker.bootstrap, [("out", b"k", b"warm-up")])  # the topic exists and the path works
    blocker.blocking = True
    watcher = _UnblockOnResend(blocker)
    log = logging.getLogger("schemas.kafka.publisher")
    log.addHandler(watcher)
    publisher = Publisher({"bootstrap.servers": blocker.bootstrap},
                          **{"message.timeout.ms": 1500, "request.timeout.ms": 1000})
    try:
        publisher.publish([("out", b"k", b"payload")], timeout=20)
    finally:
        log.removeHandler(watcher)
        publisher.close()
    assert blocker.dropped >= 1 and watcher.resends == 1
    assert _values_on(blocker.bootstrap, "out", 2) == [b"warm-up", b"payload"]


def test_a_delivery_that_does_not_happen_in_time_raises_and_nothing_is_acknowledged(blocker):
    publish(blocker.bootstrap, [("out", b"k", b"before")])
    blocker.blocking = True
    publisher = Publisher({"bootstrap.servers": blocker.bootstrap})
    started = time.monotonic()
    with pytest.raises(KafkaException, match="1 messages still undelivered after 2s"):
        publisher.publish([("out", b"k", b"lost in transit")], timeout=2.0)
    assert 2.0 <= time.monotonic() - started < 6
    assert blocker.dropped >= 1
    publisher.producer.purge()  # a later retry from this queue could land; at-least-once allows it, this test not
    blocker.blocking = False
    publish(blocker.bootstrap, [("out", b"k", b"after")])  # positive control: the reader sees what landed
    assert _values_on(blocker.bootstrap, "out", 2) == [b"before", b"after"]
