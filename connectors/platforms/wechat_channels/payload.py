"""The shapes of `channels/ec` bodies: which orders a parsed body carries, or why it carries none.

- `order/get` answer `{errcode: 0, errmsg: "ok", order: {...}}`: its one order;
- `{"responses": [order/get answers]}` (or a bare JSON array of them): the detail answers of one
  `order/list/get` page, in list order — how samples and `render.page_body` group orders;
- `order/list/get` answer `{order_id_list, next_key, has_more}`: ids only, no order ([]); the client
  reads every id with `order/get`;
- a push (`MsgType` "event", JSON or the XML `<xml>…</xml>` form, or a safe-mode `Encrypt` envelope):
  names an order, carries none ([]);
- `errcode` other than 0: MappingError with the code and message.

JSON is parsed with orjson; a body holding an integer beyond 64 bits (which orjson turns into a float)
is parsed again with the standard library, which keeps integers of any size exact.
"""
from __future__ import annotations

from connectors.runtime.xml_body import xml_to_json_shape
from schemas.canonical import MappingError
from schemas.exact_json import parse_json


def parse_body(body: bytes, content_type: str, exact: bool = False):
    """A body (JSON, or XML for pushes) -> Python objects; XML as `{root_tag: value}` turned into its value."""
    if "xml" in (content_type or "").lower():
        doc = xml_to_json_shape(body)
        (root, value), = doc.items()
        if root != "xml":
            raise MappingError(f"not a WeChat XML message: root element <{root}>")
        return value
    return parse_json(body, exact)


def _error(doc: dict) -> None:
    code = doc.get("errcode")
    if code not in (None, 0, "0"):
        raise MappingError(f"wechat_channels error errcode={code} errmsg={doc.get('errmsg')!r}")


def orders_of(doc) -> list:
    """The order objects of a parsed body ([] for an ids-only list page or a push)."""
    if isinstance(doc, list):
        return _answers(doc)
    if not isinstance(doc, dict):
        raise MappingError(f"not a channels/ec answer: top level is {type(doc).__name__}")
    _error(doc)
    if "order" in doc:
        order = doc["order"]
        if not isinstance(order, dict):
            raise MappingError("order/get answer: `order` is not an object")
        return [order]
    if "responses" in doc:
        answers = doc["responses"]
        if not isinstance(answers, list):
            raise MappingError("`responses` is not a list of order/get answers")
        return _answers(answers)
    if "order_id_list" in doc:
        if not isinstance(doc["order_id_list"], list):
            raise MappingError("order/list/get answer: `order_id_list` is not a list")
        return []  # ids only: each order is read with order/get
    if doc.get("MsgType") == "event" or "Event" in doc or "Encrypt" in doc:
        return []  # a push names the order (order_info.order_id); its state is read with order/get
    if "order_id" in doc and "order_detail" in doc:
        return [doc]
    raise MappingError("not a channels/ec order answer: expected `order` (order/get), `order_id_list` "
                       "(order/list/get), `responses` or a push event")


def _answers(answers: list) -> list:
    orders = []
    for answer in answers:
        if not isinstance(answer, dict) or "order" not in answer:
            _error(answer if isinstance(answer, dict) else {})
            raise MappingError("a batch entry is not an order/get answer with an `order`")
        _error(answer)
        orders.append(answer["order"])
    return orders
