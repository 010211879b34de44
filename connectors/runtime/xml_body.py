"""XML answers turned into the shape of the same API's JSON answers, for every XML-speaking platform.

Gateways mark arrays in XML inconsistently: TOP writes `<trades list="true"><trade/>…</trades>` most of
the time, but not always, and an array with one element then looks exactly like a single object. So
an element is a list when it says so (`list="true"`), when the platform's schema says so (the
manifest's `xml_lists`: element names that are arrays in the API's JSON form), or when it repeats.
A list element becomes `{child_tag: [child, …]}`, as in the JSON form, even with a single child.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection

from schemas.canonical import MappingError


def _value(elem: ET.Element, lists: Collection[str]):
    children = list(elem)
    if elem.get("list") == "true" or elem.tag in lists:
        items: dict[str, list] = {}
        for child in children:
            items.setdefault(child.tag, []).append(_value(child, lists))
        return items
    if not children:
        return elem.text or ""
    out: dict = {}
    for child in children:
        value = _value(child, lists)
        if child.tag in out:  # a repeated element without list="true": still a list
            prev = out[child.tag]
            out[child.tag] = prev + [value] if isinstance(prev, list) else [prev, value]
        else:
            out[child.tag] = value
    return out


def xml_to_json_shape(body: bytes, lists: Collection[str] = ()) -> dict:
    """`{root_tag: value}` of an XML body, arrays as in the JSON form (see the module doc).

    Leaves are text ('' when empty); MappingError with a one-line reason when the XML does not parse.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MappingError(f"malformed XML: {exc}") from None
    return {root.tag: _value(root, frozenset(lists))}
