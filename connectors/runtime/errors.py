"""How a platform answer is classified; clients raise these from their `classify` hook."""
from __future__ import annotations

import orjson


class ConnectorError(Exception):
    code: str | None = None


class RateLimited(ConnectorError):
    """The platform throttled us; wait `retry_after` seconds (per shop) and try again."""

    def __init__(self, message: str, retry_after: float = 1.0, code: str | None = None):
        super().__init__(message)
        self.retry_after, self.code = retry_after, code


class TransientError(ConnectorError):
    """5xx, timeouts, platform-side service errors: retry with backoff."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class PermanentError(ConnectorError):
    """Bad credentials, bad request: retrying the same call will not help."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def raise_for_http(status: int, retry_after: float = 1.0, detail: str = "", client_errors: bool = True) -> None:
    """The error an HTTP status means before the body is read: 5xx transient, 429 rate limited (`retry_after`
    seconds, e.g. from a Retry-After header), other 4xx permanent; nothing for 1xx-3xx. Codes are
    `http_<status>`; `detail` (e.g. the start of the body) ends the message. `client_errors=False` leaves
    4xx other than 429 to the caller, for platforms whose 4xx bodies say what went wrong."""
    text = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status >= 500:
        raise TransientError(text, code=f"http_{status}")
    if status == 429:
        raise RateLimited(text, retry_after=retry_after, code="http_429")
    if status >= 400 and client_errors:
        raise PermanentError(text, code=f"http_{status}")


def json_answer(body: bytes, key: str | None = None) -> dict:
    """The JSON object an answer body holds (one with `key`, when given); TransientError 'malformed body'
    (code `malformed`) for anything else — a cut or foreign body is worth another try."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TransientError("malformed body", code="malformed") from None
    if not isinstance(doc, dict) or (key is not None and key not in doc):
        raise TransientError("malformed body", code="malformed")
    return doc


def json_object(body: bytes) -> dict:
    """The JSON object a body holds, {} for anything else (a reply or message read leniently)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
