"""Youzan push signatures (youzan.md §2). Requests are not signed: they carry only the access token.

- `Event-Sign` header: md5(client_id + raw body + client_secret), lower-case hex.
- The older style, inside the JSON: `sign` = md5(client_id + msg + client_secret), `msg` being the
  URL-encoded message string exactly as it stands in the body.
"""
from __future__ import annotations

import hashlib
import hmac


def event_sign(client_id: str, body: bytes, client_secret: str) -> str:
    """The `Event-Sign` header Youzan sends with a push of `body`."""
    return hashlib.md5(client_id.encode() + body + client_secret.encode()).hexdigest()


def message_sign(client_id: str, msg: str, client_secret: str) -> str:
    """The older in-body `sign` of a push whose `msg` field is `msg`."""
    return event_sign(client_id, msg.encode(), client_secret)


def same(expected: str, given) -> bool:
    """Constant-time comparison of a signature with what a request carried (any case, any type)."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))
