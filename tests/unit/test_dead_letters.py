"""Poison records: every bad value on raw.orders becomes exactly one dead letter, and the normalizer goes on.

Property (hypothesis): over thousands of generated batches mixing bad and good records, the number of dead
letters equals the number of bad records, each bad record's offset appears once, and the good pages still
become their events.
"""
import io
import json

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import registry
from schemas.codec import AvroCodec
from streams.normalize import Normalizer, RawIn
from streams.state import OrderStore
from tests.poison import BAD, GOOD_RECORD, SHOPIFY_PAGE, TAOBAO_PAGE, huge_payment
from tests.poison import raw as _raw

DLQ = AvroCodec("DeadLetter")


@pytest.mark.parametrize("name", list(BAD))
def test_each_kind_of_bad_record_is_one_dead_letter_and_the_next_page_still_flows(name):
    value, stage, reason = BAD[name]
    normalizer = Normalizer()
    out = normalizer.process([RawIn("raw.orders", 2, 40, b"taobao:home", value),
                              RawIn("raw.orders", 2, 41, b"taobao:home", GOOD_RECORD)])
    assert len(out.dead) == 1
    key, letter = out.dead[0][0], DLQ.decode(out.dead[0][1])
    assert key == b"taobao:home"
    assert (letter["stage"], letter["partition"], letter["offset"]) == (stage, 2, 40)
    assert reason in letter["error"] and "\n" not in letter["error"]
    assert letter["value"] == (value or b"") and letter["tombstone"] is (value is None)
    assert out.pages == 1 and len(out.events) == 9  # the good page after it: 3 trades, 9 events


def test_a_page_that_fails_halfway_leaves_no_trace_in_the_store():
    """The huge payment is on the first trade of three; the other two must not be half-applied."""
    normalizer = Normalizer()
    out = normalizer.process([RawIn("raw.orders", 0, 1, None, _raw(huge_payment()))])
    assert len(out.dead) == 1 and not out.events and not out.states
    assert len(normalizer.store) == 0
    assert len(normalizer.process([RawIn("raw.orders", 0, 2, None, GOOD_RECORD)]).events) == 9


@pytest.mark.parametrize("value,platform,content_type", [
    (b'{"trades_sold_increment_get_response": {"total_results": 0, "request_id": "x"}}', "taobao", "json"),
    (b'{"trades_sold_increment_get_response": {"has_next": false}}', "taobao", "json"),
    (b"<trades_sold_get_response><total_results>0</total_results></trades_sold_get_response>", "taobao", "xml"),
    (b'{"orders": []}', "shopify", "json"),
])
def test_a_page_empty_by_the_platforms_word_is_no_dead_letter(value, platform, content_type):
    out = Normalizer().process([RawIn("raw.orders", 0, 1, None, _raw(value, platform, content_type))])
    assert (out.pages, out.empty, out.dead, out.events) == (1, 1, [], [])


def test_old_dead_letter_readers_read_the_new_records_and_new_readers_the_old():
    v1 = registry.historical()["DeadLetter"][0]
    letter = Normalizer().process([RawIn("raw.orders", 1, 7, b"k", None)]).dead[0][1]
    assert letter[2:10] == registry.fingerprint_of(registry.current("DeadLetter"))
    old = schemaless_reader(io.BytesIO(letter[10:]), parse_schema(registry.plain(registry.current("DeadLetter"))),
                            parse_schema(registry.plain(v1)))
    assert (old["stage"], old["offset"], old["value"]) == ("decode", 7, b"") and "tombstone" not in old
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(registry.plain(v1)), {**old, "value": b"x"})
    written_by_v1 = b"\xc3\x01" + registry.fingerprint_of(v1) + buf.getvalue()
    assert DLQ.decode(written_by_v1)["tombstone"] is False
    assert DLQ.decode(written_by_v1)["value"] == b"x"


# ---- the property: bad in == dead letters out -------------------------------------------------------

_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                            lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.sampled_from(["id", "order", "orders", "trades", "trade",
                                                               "total_results", "has_next", "x"]), inner,
                                              max_size=3), max_leaves=8)
# bodies a platform must refuse: not JSON/XML, not an object of its shape, or a list page with no orders
# that does not say it is empty (never total_results 0 / has_next false, never "orders": [])
_bad_taobao_bodies = st.one_of(
    st.binary(max_size=40).filter(lambda b: b.strip()[:1] not in (b"{", b"<")),
    _json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["trades_sold_get_response", "trade_fullinfo_get_response"]),
                    st.fixed_dictionaries({}, optional={"total_results": st.integers(1, 99),
                                                        "trades": st.sampled_from([None, "", {}, [], 3]),
                                                        "has_next": st.just(True)}),
                    min_size=1, max_size=1).map(lambda v: json.dumps(v).encode()),
)
_bad_shopify_bodies = st.one_of(
    st.binary(max_size=40).filter(lambda b: b.strip()[:1] != b"{"),
    st.fixed_dictionaries({"orders": st.one_of(st.none(), st.integers(), st.text(max_size=4),
                                               st.lists(_json_values, min_size=1, max_size=2))}),
    st.fixed_dictionaries({"order": _json_values}),
    st.fixed_dictionaries({"id": st.integers()}, optional={"created_at": st.text(max_size=4)}),
).map(lambda v: v if isinstance(v, bytes) else json.dumps(v).encode())

_bad_values = st.one_of(
    st.none(),
    st.binary(max_size=64).filter(lambda b: b[:2] != b"\xc3\x01"),
    st.integers(1, len(GOOD_RECORD) - 1).map(lambda n: GOOD_RECORD[:n]),  # truncated Avro
    st.binary(min_size=8, max_size=8).map(lambda fp: b"\xc3\x01" + fp + GOOD_RECORD[10:]).filter(
        lambda v: v[2:10] not in registry.by_fingerprint()),
    st.text(min_size=1, max_size=6).filter(lambda p: p not in ("taobao", "tmall", "shopify")).map(
        lambda p: _raw(TAOBAO_PAGE, platform=p)),
    _bad_taobao_bodies.map(_raw),
    _bad_taobao_bodies.map(lambda b: _raw(b, content_type="xml")),
    _bad_shopify_bodies.map(lambda b: _raw(b, platform="shopify")),
)
GOOD_SHOPIFY = _raw(SHOPIFY_PAGE, platform="shopify")
_good_values = st.sampled_from([GOOD_RECORD, GOOD_SHOPIFY, _raw(b'{"orders": []}', platform="shopify")])


NOW = 1_710_000_000_000
MIXED, GOOD_ONLY = Normalizer(), Normalizer()  # codecs compile once; each example starts with an empty store


def _fresh(normalizer: Normalizer) -> Normalizer:
    normalizer.store = OrderStore(normalizer.order_codec)
    return normalizer


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), _bad_values, _good_values), min_size=1, max_size=16))
def test_bad_in_equals_dead_letters_out(batch):
    records, bad_offsets = [], set()
    for offset, (is_bad, bad, good) in enumerate(batch):
        records.append(RawIn("raw.orders", 0, offset, b"k", bad if is_bad else good))
        if is_bad:
            bad_offsets.add(offset)
    out = _fresh(MIXED).process(records, now_ms=NOW)
    letters = [DLQ.decode(value) for _, value in out.dead]
    assert sorted(letter["offset"] for letter in letters) == sorted(bad_offsets)
    assert all(letter["error"] and letter["stage"] in ("decode", "map", "derive") for letter in letters)
    assert out.pages == len(records) - len(bad_offsets)
    # the good pages give exactly the events they give without the bad ones around them
    good_only = _fresh(GOOD_ONLY).process([r for r in records if r.offset not in bad_offsets], now_ms=NOW)
    assert out.events == good_only.events and out.states == good_only.states
