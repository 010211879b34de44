"""The shared JSON parsing of platform mappings: ids beyond 64 bits stay exact, other failures are one line."""
import pytest

from schemas.canonical import MappingError
from schemas.exact_json import LostPrecision, map_exactly, parse_json

BIG = b'{"id": 18446744073709551617, "n": 1}'  # 2**64 + 1


def _ids(exact: bool) -> list[str]:
    """A tiny mapping: the id as digits, LostPrecision when it is a float."""
    value = parse_json(BIG, exact)["id"]
    if isinstance(value, float):
        raise LostPrecision("id")
    return [str(value)]


def test_an_id_beyond_64_bits_is_mapped_from_the_exact_parse():
    assert isinstance(parse_json(BIG)["id"], float)  # orjson alone would lose it
    assert map_exactly(_ids, "demo") == ["18446744073709551617"]


def test_a_float_id_in_the_exact_parse_too_is_one_line():
    def fractional(exact: bool):
        raise LostPrecision("order_id")

    with pytest.raises(MappingError, match=r"^order_id lost precision$"):
        map_exactly(fractional, "demo")


@pytest.mark.parametrize("error, line", [(KeyError("lines"), "unmappable demo payload: KeyError: 'lines'"),
                                         (ZeroDivisionError("division by zero"),
                                          "unmappable demo payload: ZeroDivisionError: division by zero"),
                                         (MappingError("missing required field 'tid'"),
                                          "missing required field 'tid'")])
def test_mapping_failures_become_one_line_mapping_errors(error, line):
    def broken(exact: bool):
        raise error

    with pytest.raises(MappingError) as raised:
        map_exactly(broken, "demo")
    assert str(raised.value) == line


@pytest.mark.parametrize("body", [b'{"a": ', b"", b'"\xff\xfe"', None])
def test_malformed_json_is_one_line(body):
    for exact in (False, True):
        with pytest.raises(MappingError, match=r"^malformed JSON: ") as raised:
            parse_json(body, exact)
        assert "\n" not in str(raised.value)
