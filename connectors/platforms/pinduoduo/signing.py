"""PDD POP request signing (pinduoduo.md §2): every parameter but `sign`, sorted by name, as
`name1value1name2value2…`, wrapped in the client secret on both sides, MD5, upper-case hex."""
from __future__ import annotations

import hashlib


def string_to_sign(params: dict, secret: str) -> str:
    """`secret + name1value1… + secret` over the params sorted by name (`sign` and None left out)."""
    body = "".join(f"{k}{v}" for k, v in sorted((str(k), str(v)) for k, v in params.items()
                                                  if k != "sign" and v is not None))
    return secret + body + secret


def sign(params: dict, secret: str) -> str:
    """The `sign` value of a request: MD5 of `string_to_sign`, upper-case hex."""
    return hashlib.md5(string_to_sign(params, secret).encode("utf-8")).hexdigest().upper()
