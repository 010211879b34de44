"""Reading JOS answers (jd.md §1, §7): the error envelope, the `<method>_responce` wrapper with its
gateway `code`, and the result object whose `apiResult.success` says whether the call itself worked.

Both layers must be checked: a gateway `code` "0" with `apiResult.success` false is a business failure.
`read` turns a decoded body into an `Answer`; the mapping and the client decide what each kind means.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from schemas.canonical import MappingError

RESULT_KEYS = ("searchorderinfo_result", "orderDetailInfo")  # order list, order detail
LIST_METHOD, DETAIL_METHOD = "jingdong.pop.order.enSearch", "jingdong.pop.order.enGet"  # ciphertext receivers
PLAIN_LIST_METHOD, PLAIN_DETAIL_METHOD = "jingdong.pop.order.search", "jingdong.pop.order.get"  # the older APIs
SHIPMENT_METHOD = "jingdong.pop.order.shipment"


def wrapper(method: str) -> str:
    """An answer's wrapper name: the method with dots as underscores plus JD's `_responce`."""
    return method.replace(".", "_") + "_responce"


@dataclass
class Answer:
    kind: str  # "orders" | "error" (error_response / gateway code) | "business" (apiResult.success false) | "other"
    name: str = ""  # the wrapper, e.g. jingdong_pop_order_enSearch_responce
    code: str = ""  # error_response / gateway code
    number_code: int | None = None  # apiResult.numberCode of a business failure
    message: str = ""
    orders: list = field(default_factory=list)
    total: int | None = None  # orderTotal of a list answer
    listed: bool = False  # the answer carries an explicit orderInfoList (possibly empty)
    encrypted: bool = False  # enSearch / enGet: receivers are TDE ciphertexts


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _error(err, name: str = "") -> Answer:
    err = err if isinstance(err, dict) else {}
    zh, en = err.get("zh_desc") or "", err.get("en_desc") or err.get("msg") or ""
    return Answer("error", name, code=str(err.get("code", "")), message=f"{zh} {en}".strip())


def read(doc) -> Answer:
    """What a decoded JOS body says; MappingError when it is not a JOS answer at all."""
    if not isinstance(doc, dict):
        raise MappingError(f"not a JOS answer: top level is {type(doc).__name__}")
    if "error_response" in doc:
        return _error(doc["error_response"])
    names = [k for k in doc if k.endswith(("_responce", "_response"))]
    if len(names) != 1:
        raise MappingError("not a JOS answer: expected one '<method>_responce' object or an error_response")
    name = names[0]
    resp = doc[name]
    if not isinstance(resp, dict):
        raise MappingError(f"{name} is not an object")
    if str(resp.get("code", "0")) != "0":
        return _error(resp, name)
    encrypted = "_order_en" in name
    result = next((resp[k] for k in RESULT_KEYS if k in resp), None)
    if result is None:
        return Answer("other", name, encrypted=encrypted)
    if not isinstance(result, dict):
        raise MappingError(f"{name}: the result is not an object")
    api = result.get("apiResult")
    if isinstance(api, dict) and not _truthy(api.get("success")):
        number = api.get("numberCode")
        return Answer("business", name, number_code=number if isinstance(number, int) else None,
                      message=f"{api.get('chineseErrCode') or ''} {api.get('englishErrCode') or ''}".strip())
    if "orderInfo" in result:
        return Answer("orders", name, orders=[result["orderInfo"]], encrypted=encrypted)
    orders = result.get("orderInfoList")
    total = result.get("orderTotal")
    if orders is not None and not isinstance(orders, list):
        raise MappingError(f"{name}: orderInfoList is not a list")
    try:
        total = None if total in (None, "") else int(total)
    except (TypeError, ValueError):
        raise MappingError(f"{name}: orderTotal is not an integer: {total!r}") from None
    return Answer("orders", name, orders=orders or [], total=total, listed=orders is not None, encrypted=encrypted)
