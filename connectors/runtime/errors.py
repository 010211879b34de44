"""How a platform answer is classified; clients raise these from their `classify` hook."""
from __future__ import annotations


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


def raise_for_http(status: int) -> None:
    """The error an HTTP status means before the body is read: 5xx transient, 429 rate limited (1 s),
    other 4xx permanent; nothing for 1xx-3xx."""
    if status >= 500:
        raise TransientError(f"HTTP {status}", code=f"http_{status}")
    if status == 429:
        raise RateLimited("HTTP 429", retry_after=1.0, code="http_429")
    if status >= 400:
        raise PermanentError(f"HTTP {status}", code=f"http_{status}")
