"""Parsing TOP bodies: JSON as is, XML turned into the same shape by the shared XML helper, which
keeps the elements the manifest lists under `xml_lists` (`<trades><trade/></trades>`,
`<orders><order/></orders>`…) lists even when the gateway leaves out `list="true"` around one child.
"""
from __future__ import annotations

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.xml_body import xml_to_json_shape
from schemas.canonical import MappingError
from schemas.exact_json import parse_json

LIST_RESPONSES = ("trades_sold_increment_get_response", "trades_sold_get_response")
XML_LISTS = frozenset(folder_manifest(__file__).xml_lists)


def parse_body(body: bytes, content_type: str, exact: bool = False):
    """A TOP response body (json or xml) -> Python objects, XML converted to the JSON shape."""
    if "xml" in (content_type or "").lower():
        return xml_to_json_shape(body, XML_LISTS)
    return parse_json(body, exact)


def trades_of(doc) -> list:
    """The trade objects of a parsed TOP body ([] for an empty page or a TMC message)."""
    if not isinstance(doc, dict):
        raise MappingError(f"not a TOP response: top level is {type(doc).__name__}")
    if "error_response" in doc:
        err = doc["error_response"] if isinstance(doc["error_response"], dict) else {}
        raise MappingError(f"taobao error_response code={err.get('code')} msg={err.get('msg')!r} "
                           f"sub_code={err.get('sub_code')!r} sub_msg={err.get('sub_msg')!r}")
    if "topic" in doc and "content" in doc:
        return []  # a TMC message only says which trade changed; the trade itself must be re-fetched
    names = [k for k in doc if k.endswith("_response")]
    if len(names) != 1:
        raise MappingError("not a TOP response: expected one '<method>_response' object (simplify=true "
                           "is not supported)")
    resp = doc[names[0]]
    if not isinstance(resp, dict):
        raise MappingError(f"{names[0]} is not an object")
    if "trade" in resp:
        return [resp["trade"]]
    if "trades" in resp:
        trades = resp["trades"]
        if trades in ("", None):
            trades = {}
        if not isinstance(trades, dict) or not isinstance(trades.get("trade", []), list):
            raise MappingError("trades.trade must be a list")
        if trades.get("trade"):
            return trades["trade"]
    elif names[0] not in LIST_RESPONSES:
        raise MappingError(f"{names[0]} carries no trade")
    if _says_empty(resp):
        return []  # an empty page carries no `trades` at all
    raise MappingError(f"{names[0]} carries no trade and does not say the page is empty "
                       f"(total_results={resp.get('total_results')!r}, has_next={resp.get('has_next')!r})")


def _says_empty(resp: dict) -> bool:
    """A list page with no trades is empty by TOP's own word only when it says so: `total_results` 0
    (page counting) or `has_next` false (has_next paging, a page past the last)."""
    return str(resp.get("total_results")) == "0" or str(resp.get("has_next")).lower() == "false"
