"""The contract between the connector runtime and one platform's API client."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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
    `webhooks.authenticate` returns it). `external_ids` are the orders a push only names (it carries no
    order the mapping could read): the connectors then ask the shop's client for them at once."""

    shop_id: str
    endpoint: str | None = None  # the push kind, e.g. Shopify's topic `orders/paid`
    request_id: str | None = None
    api_version: str | None = None
    content_type: str = "json"
    kind: str = "order"
    external_ids: tuple[str, ...] = ()


def id_text(value) -> str | None:
    """An order id a push names, as exact text: a string of digits and letters as given, an integer by its
    digits (parse bodies with the standard `json` module, which keeps integers of any size); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and value.strip().isalnum():
        return value.strip()
    return None


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

    # optional, on clients of platforms whose pushes name orders without carrying them:
    # def fetch_orders(self, external_ids: Sequence[str]) -> AsyncIterator[Page]:
    #     """The current detail of each named order, as pages to publish like polled ones."""


async def each_order(fetch_order: Callable[[str], Awaitable[Page]], external_ids: Sequence[str]) -> AsyncIterator[Page]:
    """`fetch_orders` for a client whose API reads one order per call: `fetch_order(id)` for each id in turn."""
    for external_id in external_ids:
        yield await fetch_order(external_id)
