"""Parsing Doudian bodies: the `{code, msg, sub_code, sub_msg, log_id, data}` answer of every API, and the
JSON array of a push batch. Douyin speaks JSON only.
"""
from __future__ import annotations

import orjson

from schemas.canonical import MappingError
from schemas.exact_json import parse_json

OK = 10000


def parse_body(body: bytes, content_type: str, exact: bool = False):
    """A Douyin body -> Python objects (integers of up to 64 bits exact, see mapping for larger ones)."""
    if "xml" in (content_type or "").lower():
        raise MappingError("douyin answers JSON only, not XML")
    return parse_json(body, exact)


def error_text(doc: dict) -> str:
    """`code=… msg=… sub_code=… sub_msg=…` of an answer, one line."""
    return (f"code={doc.get('code')} msg={doc.get('msg')!r} sub_code={doc.get('sub_code')!r} "
            f"sub_msg={doc.get('sub_msg')!r}")


def is_push(doc) -> bool:
    """A push batch (a JSON array of `{tag, msg_id, data}` messages) or one such message."""
    if isinstance(doc, list):
        return True
    return isinstance(doc, dict) and "tag" in doc and "data" in doc and "code" not in doc


def push_messages(doc) -> list[dict]:
    """The messages of a push batch, each with its `data` JSON string parsed; MappingError if misshapen."""
    messages = doc if isinstance(doc, list) else [doc]
    if not messages:
        raise MappingError("douyin push batch holds no message")
    out = []
    for message in messages:
        if not isinstance(message, dict) or "tag" not in message or not isinstance(message.get("data"), str):
            raise MappingError("douyin push message must be an object with `tag` and a `data` JSON string")
        try:
            data = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            raise MappingError(f"douyin push message {message.get('msg_id')!r}: `data` is not JSON") from None
        if not isinstance(data, dict):
            raise MappingError(f"douyin push message {message.get('msg_id')!r}: `data` is not an object")
        out.append({**message, "data": data})
    return out


def orders_of(doc) -> list:
    """The shop orders of a parsed body: every one of an `order.searchList` page, the one of
    `order.orderDetail`, none for a push batch (its messages only name orders) or a page that says it
    is empty. An error answer or anything else is a MappingError."""
    if is_push(doc):
        push_messages(doc)  # validated, but a message carries no order
        return []
    if not isinstance(doc, dict):
        raise MappingError(f"not a douyin answer: top level is {type(doc).__name__}")
    if "code" not in doc:
        raise MappingError("not a douyin answer: no `code` (expected {code, msg, data})")
    if doc["code"] != OK and str(doc["code"]) != str(OK):
        raise MappingError(f"douyin error {error_text(doc)}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MappingError("douyin answer: `data` is not an object")
    if "shop_order_detail" in data:
        detail = data["shop_order_detail"]
        if not isinstance(detail, dict):
            raise MappingError("data.shop_order_detail is not an object")
        return [detail]
    if "shop_order_list" not in data and "total" not in data:
        raise MappingError("douyin answer carries neither data.shop_order_list nor data.shop_order_detail")
    orders = data.get("shop_order_list")
    if orders is None:
        orders = []
    if not isinstance(orders, list):
        raise MappingError("data.shop_order_list must be a list")
    if orders or _says_empty(data):
        return orders
    raise MappingError(f"order.searchList page carries no order and does not say the page is empty "
                       f"(page={data.get('page')!r}, size={data.get('size')!r}, total={data.get('total')!r})")


def _says_empty(data: dict) -> bool:
    """An empty page by Douyin's own word: `total` 0, or a page at or past the end (page × size ≥ total)."""
    try:
        total, page, size = int(data["total"]), int(data.get("page", 0)), int(data.get("size", 0))
    except (KeyError, TypeError, ValueError):
        return False
    return total == 0 or page * size >= total
