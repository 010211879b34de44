"""Shopify Admin REST client for the connector runtime (PlatformClient).

Window semantics: our windows are [start_ms, end_ms) while Shopify's `updated_at_min/max` are inclusive and
its times have one-second precision. An order shown with updated_at second S maps to S*1000 ms, so the
listing asks for updated_at_min = ceil(start / 1 s) and updated_at_max = floor((end - 1 ms) / 1 s); together
these select exactly the orders whose canonical updated_at lies in [start, end), with bodies kept verbatim.
Follow-up pages use the `rel="next"` Link URL verbatim (Shopify rejects filters next to `page_info`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import json_answer, raise_for_http

_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')
_LIMITS = folder_manifest(__file__).limits


def _header(headers: dict, name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def next_link(headers: dict) -> str | None:
    """The `rel="next"` URL of a Link header, verbatim, or None on the last page."""
    for url, rel in _LINK.findall(_header(headers, "Link") or ""):
        if rel == "next":
            return url
    return None


def _iso_seconds(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def classify(response: Response, key: str = "orders") -> int:
    """Number of orders in a usable answer; raises RateLimited / TransientError / PermanentError otherwise."""
    try:
        retry_after = float(_header(response.headers, "Retry-After") or 2.0)
    except ValueError:
        retry_after = 2.0
    raise_for_http(response.status, retry_after, detail=repr(response.body[:200]))
    doc = json_answer(response.body, key)
    value = doc[key]
    return len(value) if isinstance(value, list) else 1


class ShopifyClient:
    """Lists orders modified in a window and fetches single orders of one shop."""

    platform = "shopify"
    max_window_ms = _LIMITS.window_max_s * 1000  # Shopify has no window limit; this keeps one listing bounded

    def __init__(
        self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
        api_version: str = "2024-10"
    ):
        self.creds, self.caller = creds, caller
        self.page_size, self.api_version = min(max(page_size, 1), _LIMITS.page_size_max), api_version
        self.base = f"{creds.base_url.rstrip('/')}/admin/api/{api_version}"

    def _headers(self) -> dict:
        return {"X-Shopify-Access-Token": self.creds.access_token, "Accept": "application/json"}

    def _page(self, response: Response, endpoint: str, page: str, records: int) -> Page:
        return Page(
            body=response.body,
            content_type="json",
            endpoint=endpoint,
            records=records,
            page=page,
            request_id=_header(response.headers, "X-Request-Id"),
            api_version=_header(response.headers, "X-Shopify-API-Version") or self.api_version,
        )

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders whose updated_at is in [start_ms, end_ms), oldest first."""
        low, high = -(-start_ms // 1000) * 1000, (end_ms - 1) // 1000 * 1000
        if high < low:
            return
        url = f"{self.base}/orders.json"
        params: dict | None = {
            "status": "any",
            "updated_at_min": _iso_seconds(low),
            "updated_at_max": _iso_seconds(high),
            "limit": str(self.page_size),
            "order": "updated_at asc",
        }
        page_no = "1"
        while url:
            response = await self.caller.request(
                "orders.json",
                lambda u=url, p=params: RequestSpec("GET", u, params=p, headers=self._headers()),
                classify,
            )
            records = len(orjson.loads(response.body)["orders"])
            yield self._page(response, "orders.json", page_no, records)
            url, params = next_link(response.headers), None
            if url:
                page_no = parse_qs(urlsplit(url).query).get("page_info", ["?"])[0]

    async def fetch_order(self, external_id: str) -> Page:
        """One order (`{"order": {...}}`) by its Shopify id."""
        response = await self.caller.request(
            "orders/{id}.json",
            lambda: RequestSpec("GET", f"{self.base}/orders/{external_id}.json", headers=self._headers()),
            lambda r: classify(r, "order"),
        )
        return self._page(response, "orders/{id}.json", str(external_id), 1)


Client = ShopifyClient  # what the platform registry builds for a shop
