"""Youzan bodies: the answer envelopes and push messages, down to the order objects they carry.

Accepted (youzan.md §1, §4, §6):
- `{"success": true, "code": 200, "data": {...}}` (API versions ≥ 4.0.0) and the legacy `{"response": {...}}`;
  `data.full_order_info_list[].full_order_info` (youzan.trades.sold.get) or `data.full_order_info` next to
  `refund_order` / `delivery_order` / `order_promotion` (youzan.trade.get);
- a push message `{"client_id", "kdt_id", "type", "msg": "<URL-encoded JSON>", ...}`: a `msg` carrying
  `full_order_info` is an order; one that only names the trade or the refund (`{"tid": …}`) is a notice
  whose order the connectors read with `youzan.trade.get`, so it carries no order;
- failures: `{"gw_err_resp": {...}}` (HTTP 200 as well), `{"success": false, ...}`, the legacy
  `{"error_response": {...}}` — each a MappingError naming the code and message.

Ids above 2^64 come out of orjson as floats: the mapping then asks for the body again with `exact=True`,
parsed by the standard library, which keeps integers of any size.
"""
from __future__ import annotations

from urllib.parse import unquote_plus

from schemas.canonical import MappingError
from schemas.exact_json import parse_json


def orders_of(doc, exact: bool = False) -> list[tuple[dict, dict]]:
    """(full_order_info, its surroundings) for every order a parsed body carries. The surroundings are the
    object holding `full_order_info`: a detail's `data`, with `delivery_order` and `refund_order`, or a list item."""
    if not isinstance(doc, dict):
        raise MappingError(f"not a Youzan answer: the top level is {type(doc).__name__}, not an object")
    if "gw_err_resp" in doc:
        err = doc["gw_err_resp"] if isinstance(doc["gw_err_resp"], dict) else {}
        raise MappingError(f"youzan gateway error err_code={err.get('err_code')} err_msg={err.get('err_msg')!r}")
    if "error_response" in doc:
        err = doc["error_response"] if isinstance(doc["error_response"], dict) else {}
        raise MappingError(f"youzan error_response code={err.get('code')} msg={err.get('msg')!r}")
    if "msg" in doc and ("type" in doc or "client_id" in doc):
        return _pushed(doc, exact)
    if isinstance(doc.get("response"), dict):
        return _data(doc["response"])
    if "data" not in doc and "success" not in doc:
        raise MappingError("not a Youzan answer: expected data, response, gw_err_resp or a push message")
    if doc.get("success") is False or doc.get("data") is None:
        raise MappingError(f"youzan error code={doc.get('code')} message={doc.get('message')!r}")
    return _data(doc["data"])


def _data(data) -> list[tuple[dict, dict]]:
    if not isinstance(data, dict):
        raise MappingError(f"youzan data is {type(data).__name__}, not an object")
    if "full_order_info" in data:
        return [(_order_info(data["full_order_info"]), data)]
    if "full_order_info_list" in data:
        items = data["full_order_info_list"]
        if not isinstance(items, list):
            raise MappingError("full_order_info_list must be a list")
        for item in items:
            if not isinstance(item, dict):
                raise MappingError("full_order_info_list items must be objects holding full_order_info")
        return [(_order_info(item.get("full_order_info")), item) for item in items]  # [] says the page is empty
    if str(data.get("total_results")) == "0":
        return []
    raise MappingError(f"youzan data carries no full_order_info and does not say it is empty "
                       f"(total_results={data.get('total_results')!r})")


def _order_info(value) -> dict:
    if not isinstance(value, dict):
        raise MappingError(f"full_order_info must be an object, not {type(value).__name__}")
    return value


def _pushed(doc: dict, exact: bool) -> list[tuple[dict, dict]]:
    message = push_message(doc, exact)
    if "full_order_info" in message:
        return [(_order_info(message["full_order_info"]), message)]
    if message.get("tid") or message.get("refund_id"):
        return []  # a notice naming the trade: the connectors read the order itself
    raise MappingError("youzan push: msg names no trade (no full_order_info, tid or refund_id)")


def push_message(doc: dict, exact: bool = False) -> dict:
    """The message a push carries in its URL-encoded `msg` (MappingError when it is not a JSON object)."""
    msg = doc.get("msg")
    if not isinstance(msg, str) or not msg:
        raise MappingError("youzan push: msg must be a URL-encoded JSON string")
    text = msg
    for _ in range(2):  # URL-encoded once as documented; tolerate a second layer
        if text.lstrip()[:1] == "{":
            break
        text = unquote_plus(text)
    try:
        message = parse_json(text, exact)
    except MappingError:
        raise MappingError("youzan push: msg is not URL-encoded JSON") from None
    if not isinstance(message, dict):
        raise MappingError("youzan push: msg is not a JSON object")
    return message
