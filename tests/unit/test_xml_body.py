"""The shared XML helper: arrays come out as in the JSON form, however the gateway marked them."""
import pytest

from connectors.runtime.xml_body import xml_to_json_shape
from schemas.canonical import MappingError


def test_a_declared_list_with_one_child_and_no_marker_is_a_list():
    body = b"<r><trades><trade><tid>1</tid><orders><order><oid>9</oid></order></orders></trade></trades></r>"
    assert xml_to_json_shape(body, {"trades", "orders"}) == \
        {"r": {"trades": {"trade": [{"tid": "1", "orders": {"order": [{"oid": "9"}]}}]}}}
    # undeclared, the same element is one object: what the platform's schema says decides
    assert xml_to_json_shape(body) == {"r": {"trades": {"trade": {"tid": "1", "orders": {"order": {"oid": "9"}}}}}}


def test_marked_and_repeated_elements_are_lists_and_empty_lists_empty():
    body = (b'<r><a list="true"><x>1</x></a><b><y>1</y><y>2</y></b><trades list="true"/><orders/>'
            b"<note/></r>")
    assert xml_to_json_shape(body, {"orders"}) == \
        {"r": {"a": {"x": ["1"]}, "b": {"y": ["1", "2"]}, "trades": {}, "orders": {}, "note": ""}}


def test_broken_xml_is_a_one_line_mapping_error():
    with pytest.raises(MappingError, match="^malformed XML: ") as refused:
        xml_to_json_shape(b"<r><a></r>")
    assert "\n" not in str(refused.value)
