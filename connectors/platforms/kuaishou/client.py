"""Kuaishou open-platform client for one shop: signed GETs, cursor paging by update time, token refresh.

- Requests: GET `{base}/open/order/cursor/list?appkey&access_token&method&version=1&signMethod&
  timestamp(ms)&param&sign`; `param` is the business JSON serialised once, and that exact string is
  both signed and sent (signing.py).
- Credentials: a shop's `app_secret` is the app's signSecret (the secret that signs calls; pushes are
  checked with it too); `extra` may carry `refresh_token` and `oauth_app_secret` (the OAuth appSecret).
  An expired or refused access token is refreshed once through `/oauth2/refresh_token` and the call
  repeated; without a refresh token it is a clear PermanentError (re-authorise the shop).
- Windows: our [start_ms, end_ms) becomes beginTime = start, endTime = end − 1 (both inclusive in the
  API; an exclusive end would only shift one millisecond into the next window, which re-reads its
  overlap anyway). Wider than the manifest's limit (7 days) → split; a time-range refusal from the
  platform (2001 naming beginTime/endTime, e.g. when the unverified 7-day limit is smaller) → halve
  and retry each half, down to one minute.
- Paging: queryType 2 (update time), sort 2 (ascending), cursor "" first, then the returned cursor
  until it is "nomore". Ascending keyset order means an order updated during the scan moves behind the
  cursor, where the scan still finds it (or the next window does): nothing is lost at a page edge.
- A list entry without `orderItemInfo` (a summary) is not published: its page is replaced by one
  `open.order.detail` page per order of that page, each body as received.
- Errors: result 803 / a flow-control sub_code → RateLimited (the caller waits and retries); HTTP 5xx,
  a truncated body or a replayed answer (a `requestId` seen before) → TransientError (retried);
  anything else → PermanentError with the platform's code and message.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials, each_order
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import slices

from .signing import sign

LIST, DETAIL = "open.order.cursor.list", "open.order.detail"
REFRESH = "oauth2.refresh_token"
RATE_LIMITED, TOKEN_REFUSED, PARAMS_INVALID = 803, 28, 2001
MIN_WINDOW_MS = 60_000
_LIMITS = folder_manifest(__file__).limits


class TokenRefused(PermanentError):
    """The access token is expired or unknown: refresh it, then repeat the call."""


class WindowRefused(PermanentError):
    """The platform refused the time range of a listing: ask for smaller windows."""


def _error_text(doc: dict) -> tuple[str, str]:
    get = doc.get
    message = str(get("error_msg") or get("errorMsg") or get("msg") or "")
    sub = str(get("sub_code") or get("subCode") or "")
    return message, sub


def raise_for_error(doc: dict) -> None:
    """Raise the runtime error an answer with `result` ≠ 1 stands for."""
    result = doc.get("result")
    message, sub = _error_text(doc)
    text = f"kuaishou error result={result} code={doc.get('code')!r} {message} {sub}".strip()
    if result == RATE_LIMITED or "flow" in sub.lower() or "limit" in sub.lower():
        raise RateLimited(text, retry_after=1.0, code=str(result))
    if result == TOKEN_REFUSED or "access_token" in message.lower() or sub.startswith("access_token"):
        raise TokenRefused(text, code=str(result))
    if result == PARAMS_INVALID and ("beginTime" in message or "endTime" in message):
        raise WindowRefused(text, code=str(result))
    raise PermanentError(text, code=str(result))


class KuaishouClient:
    """PlatformClient for Kuaishou Shop."""

    platform = "kuaishou"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 sign_method: str = "MD5", max_window_ms: int = _LIMITS.window_max_s * 1000):
        self.creds, self.caller = creds, caller
        self.page_size = min(max(page_size, 1), _LIMITS.page_size_max)
        self.sign_method, self.max_window_ms = sign_method, max_window_ms
        self.base = creds.base_url.rstrip("/")
        self.access_token = creds.access_token
        self.refresh_token = creds.extra.get("refresh_token")
        self._request_ids: deque = deque(maxlen=256)  # answers already used, to spot replayed pages

    # ---- requests ----

    def build(self, method: str, business: dict):
        """A RequestSpec factory: the current token, a fresh timestamp and the signature on every attempt."""
        param = orjson.dumps(business).decode()

        def make() -> RequestSpec:
            params = {"appkey": self.creds.app_key, "access_token": self.access_token, "method": method,
                      "version": "1", "signMethod": self.sign_method, "timestamp": str(int(time.time() * 1000)),
                      "param": param}
            params["sign"] = sign(params, self.creds.app_secret)
            return RequestSpec(method="GET", url=f"{self.base}/{method.replace('.', '/')}", params=params)
        return make

    @staticmethod
    def _decode(response: Response) -> dict:
        raise_for_http(response.status)
        return json_answer(response.body, "result")

    async def _call(self, method: str, business: dict, refreshed: bool = False) -> tuple[Response, dict]:
        seen: dict = {}

        def classify(response: Response) -> int:
            doc = self._decode(response)
            if doc["result"] != 1:
                raise_for_error(doc)
            request_id = doc.get("requestId")
            if request_id and request_id in self._request_ids:
                raise TransientError(f"duplicate answer {request_id}", code="duplicate_page")
            data = doc.get("data")
            if not isinstance(data, dict):
                raise TransientError("answer without data", code="malformed")
            seen["doc"] = doc
            orders = data.get("orderList")
            return len(orders) if isinstance(orders, list) else 1

        try:
            response = await self.caller.request(method, self.build(method, business), classify)
        except TokenRefused:
            if refreshed:
                raise
            await self.refresh()
            return await self._call(method, business, refreshed=True)
        doc = seen["doc"]
        if doc.get("requestId"):
            self._request_ids.append(doc["requestId"])
        return response, doc

    async def refresh(self) -> None:
        """A new access token from the refresh token (`/oauth2/refresh_token`)."""
        oauth_secret = self.creds.extra.get("oauth_app_secret")
        if not self.refresh_token or not oauth_secret:
            raise PermanentError("快手 access_token 已失效且无法刷新 kuaishou access token expired or refused and no "
                                 "refresh_token/oauth_app_secret for this shop: authorise it again", code="token")
        query = {"app_id": self.creds.app_key, "app_secret": oauth_secret, "refresh_token": self.refresh_token,
                 "grant_type": "refresh_token"}
        seen: dict = {}

        def classify(response: Response) -> int:
            doc = self._decode(response)
            if doc["result"] != 1 or not doc.get("access_token"):
                message, _ = _error_text(doc)
                raise PermanentError(f"kuaishou token refresh refused: result={doc['result']} {message} "
                                     f"{doc.get('error') or ''}".strip(), code=str(doc["result"]))
            seen["doc"] = doc
            return 0

        await self.caller.request(REFRESH, lambda: RequestSpec("GET", f"{self.base}/oauth2/refresh_token",
                                                               params=query), classify)
        doc = seen["doc"]
        self.access_token = doc["access_token"]
        self.refresh_token = doc.get("refresh_token") or self.refresh_token

    def _page(self, response: Response, doc: dict, endpoint: str, records: int, page: str | None) -> Page:
        return Page(body=response.body, content_type="json", endpoint=endpoint, records=records, page=page,
                    request_id=doc.get("requestId"), api_version="1")

    # ---- listing ----

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders updated in [start_ms, end_ms), windows split to the platform's limit."""
        for lo, hi in slices(start_ms, end_ms, self.max_window_ms):
            async for page in self._window(lo, hi):
                yield page

    async def _window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        cursor, first = "", True
        while True:
            business = {"orderViewStatus": 1, "pageSize": self.page_size, "sort": 2, "queryType": 2,
                        "beginTime": start_ms, "endTime": end_ms - 1, "cpsType": 0, "cursor": cursor}
            try:
                response, doc = await self._call(LIST, business)
            except WindowRefused:
                if not first or end_ms - start_ms <= MIN_WINDOW_MS:
                    raise
                middle = start_ms + (end_ms - start_ms) // 2
                async for page in self._window(start_ms, middle):
                    yield page
                async for page in self._window(middle, end_ms):
                    yield page
                return
            first = False
            data = doc["data"]
            orders = data.get("orderList") or []
            if all(isinstance(o, dict) and isinstance(o.get("orderItemInfo"), dict) for o in orders):
                yield self._page(response, doc, LIST, len(orders), cursor or "first")
            else:  # summaries: publish each order's detail instead of this page
                for entry in orders:
                    oid = str(((entry if isinstance(entry, dict) else {}).get("orderBaseInfo") or {}).get("oid"))
                    if not oid.isdigit():
                        raise PermanentError(f"kuaishou list entry without an oid: {str(entry)[:120]}")
                    yield await self.fetch_order(oid)
            following = data.get("cursor")
            if not following or following == "nomore" or following == cursor:
                return
            cursor = following

    async def fetch_order(self, external_id: str) -> Page:
        """One order's detail (`open.order.detail`)."""
        response, doc = await self._call(DETAIL, {"oid": int(external_id)})
        return self._page(response, doc, DETAIL, 1, external_id)

    def fetch_orders(self, external_ids: list[str]) -> AsyncIterator[Page]:
        """The orders a push named, one `open.order.detail` each."""
        return each_order(self.fetch_order, external_ids)


Client = KuaishouClient  # what the platform registry builds for a shop
