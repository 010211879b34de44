"""JOS request signing (jd.md §2): md5 over the secret-wrapped, name-sorted name+value concatenation."""
from __future__ import annotations

import hashlib
import json

PARAM_JSON = "360buy_param_json"  # every business parameter travels in this one JSON string


def param_json(business: dict) -> str:
    """The `360buy_param_json` value: compact JSON, values as strings (what JOS expects), non-ASCII kept."""
    return json.dumps({k: str(v) for k, v in business.items() if v is not None}, ensure_ascii=False,
                      separators=(",", ":"))


def canonical_string(params: dict) -> str:
    """`name1value1name2value2…` over the params sorted by name (`360buy_param_json` sorts first: digits
    precede letters), without `sign` and empty values."""
    items = sorted((str(k), str(v)) for k, v in params.items() if k != "sign" and v is not None and v != "")
    return "".join(k + v for k, v in items)


def sign(params: dict, secret: str) -> str:
    """The `sign` value of a JOS request: md5(secret + canonical string + secret), upper-case hex."""
    return hashlib.md5((secret + canonical_string(params) + secret).encode("utf-8")).hexdigest().upper()
