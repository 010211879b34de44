"""The unverified API numbers of api.toml (error codes, token lifetimes, decrypt batch size)."""
from __future__ import annotations

import tomllib
from pathlib import Path

_DATA = tomllib.loads((Path(__file__).parent / "api.toml").read_text(encoding="utf-8"))
ERRORS: dict = _DATA["error_codes"]
TOKEN: dict = _DATA["token"]
DECRYPT_BATCH_MAX: int = _DATA["decrypt"]["batch_max"]

TOKEN_EXPIRED = frozenset(ERRORS["access_token_expired"])
THROTTLED = frozenset(ERRORS["rate_limited"])
# the codes the simulator answers with
TOKEN_EXPIRED_CODE, THROTTLED_CODE = ERRORS["access_token_expired"][0], ERRORS["rate_limited"][0]
BUSY_FIRST, BUSY_LAST = ERRORS["system_busy"]


def is_busy(code: int) -> bool:
    """A system-busy code (retry later)."""
    return BUSY_FIRST <= code <= BUSY_LAST
SHIP_RESPONSE: str = _DATA["shipping"]["response"]
SHIP_REFUSED_CODE: int = _DATA["shipping"]["refused_code"]
SHIP_REFUSALS: dict[str, str] = _DATA["ship_refusals"]
