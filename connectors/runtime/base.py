"""The contract between the connector runtime and one platform's API client."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class RequestSpec:
    """One HTTP request, built afresh for every attempt (signatures carry timestamps)."""

    method: str
    url: str
    params: dict | None = None
    data: dict | bytes | None = None
    headers: dict = field(default_factory=dict)


@dataclass
class Page:
    """One API answer worth publishing to raw.orders, body exactly as received."""

    body: bytes
    content_type: str  # json | xml
    endpoint: str
    records: int
    page: str | None = None
    request_id: str | None = None
    api_version: str | None = None
    kind: str = "order"


@dataclass(frozen=True)
class Push:
    """A push whose signature verified: which shop it is for and its provenance (a platform folder's
    `webhooks.authenticate` returns it)."""

    shop_id: str
    endpoint: str | None = None  # the push kind, e.g. Shopify's topic `orders/paid`
    request_id: str | None = None
    api_version: str | None = None
    content_type: str = "json"
    kind: str = "order"


class Caller(Protocol):
    async def request(self, endpoint: str, build: Callable[[], RequestSpec],
                      classify: Callable[[Response], int]) -> Response:
        """Send with per-shop rate limiting, retries with backoff, and a connector.calls record per attempt.

        `classify` returns the number of orders in a usable answer, or raises RateLimited /
        TransientError / PermanentError for one that is not usable.
        """


@dataclass
class ShopCredentials:
    platform: str
    shop_id: str
    base_url: str
    app_key: str = ""
    app_secret: str = ""
    access_token: str = ""
    extra: dict = field(default_factory=dict)


class PlatformClient(Protocol):
    platform: str
    max_window_ms: int  # longest modification window one listing may ask for

    def __init__(self, creds: ShopCredentials, caller: Caller): ...

    def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders modified in [start_ms, end_ms), none skipped at page edges."""
