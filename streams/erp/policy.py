"""When an ERP delivery attempt succeeded, when to try again, and when to give up (pure).

A 2xx is success (for Qimen endpoints also `<flag>success</flag>`); anything else — another status, no
answer, a timeout — is retried after a backoff that doubles from `initial_s` up to `max_s`, with "equal
jitter" (half of it fixed, half random) so a crowd of retries after an outage spreads out but none comes
straight back; a `Retry-After` the endpoint sent is honoured up to `max_s`. After `max_attempts` the
event is dead-lettered to erp.dlq with the last reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from streams.erp.config import Retry


@dataclass(frozen=True)
class Outcome:
    """The verdict on one attempt: ok, or the one-line reason and the HTTP status (None: no answer)."""

    ok: bool
    reason: str = ""
    status: int | None = None
    retry_after_s: float | None = None


def judge(status: int, body: bytes, headers: dict[str, str], body_error: str | None = None) -> Outcome:
    """The outcome of an answer. `body_error` is the format's complaint about a 2xx body (Qimen's flag)."""
    if 200 <= status < 300 and body_error is None:
        return Outcome(True, status=status)
    if 200 <= status < 300:
        return Outcome(False, body_error, status)
    snippet = body[:160].decode("utf-8", "replace").replace("\n", " ").replace("\r", " ").strip()
    return Outcome(False, f"HTTP {status}{': ' + snippet if snippet else ''}", status,
                   retry_after(headers.get("retry-after")))


def retry_after(value: str | None) -> float | None:
    """Seconds of a `Retry-After` header given in seconds (an HTTP date is ignored: the backoff applies)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def backoff_s(failed_attempts: int, retry: Retry, rand: float, retry_after_s: float | None = None) -> float:
    """Seconds to wait after the `failed_attempts`-th failed attempt (1, 2, ...); `rand` in [0, 1)."""
    full = min(retry.max_s, retry.initial_s * 2 ** min(failed_attempts - 1, 60))
    delay = full / 2 + rand * full / 2
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry.max_s))
    return delay


def exhausted(failed_attempts: int, retry: Retry) -> bool:
    """Whether an event that failed this many times goes to the dead letters."""
    return failed_attempts >= retry.max_attempts
