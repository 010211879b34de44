"""Doudian API client for one shop: signed calls, token refresh, `order.searchList` windows read backwards.

Calls: `POST {base}/{method with dots as slashes}?app_key&method&timestamp&v=2&sign_method&sign&access_token`
with the business params as the JSON body (its exact text is the signed `param_json`).

Windows: our windows are [start_ms, end_ms); `update_time_start`/`update_time_end` are whole seconds,
inclusive at both ends, so we ask for start floored and (end − 1 ms) floored: whole-second windows map
exactly, a fractional edge overlaps its neighbour by under a second (a duplicate is harmless, a gap
is not). Orders come newest first (`order_by=update_time`, `order_asc=false`); page 0 tells the total,
the other pages are read from the last one back, so an order leaving the window during the pass can
only make us read another one twice; if the total moved, one more full backward pass follows. A window
holding more orders than the paging cap (`page` × `size`, facts.toml) is split in halves first, and
again if the gateway still refuses a page as too deep.

Errors (douyin.md §7): 60000 → RateLimited; 20000/20001/90000, HTTP 5xx, a malformed body or a repeated
`log_id` (a replayed page) → TransientError; 40003 `isv.access-token-expired` → one `token.refresh`
with the shop's refresh token (failing that, `token.create` as a self-use app) and the call again, else
a PermanentError saying to re-authorise the shop; every other code → PermanentError.

A list entry without `sku_order_list` is a summary: such a page is not published, the client fetches
`order.orderDetail` for each of its orders instead.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials, each_order
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import read_backwards

from .facts import FACTS
from .payload import OK, error_text
from .signing import VERSION, param_json, sign

SEARCH = "order.searchList"
DETAIL = "order.orderDetail"
TOKEN_METHODS = ("token.create", "token.refresh")
EXPIRED = ("isv.access-token-expired",)
TRANSIENT_CODES = {20000, 20001, 90000, 10001}
_LIMITS = folder_manifest(__file__).limits
log = logging.getLogger(__name__)


def _answer(response: Response) -> dict:
    """The parsed answer of a usable HTTP response; raises the runtime's errors for the others."""
    raise_for_http(response.status)
    doc = json_answer(response.body, "code")
    code = doc["code"]
    if code == OK:
        if not isinstance(doc.get("data"), dict):
            raise TransientError("douyin: answer without data", code="malformed")
        return doc
    text = f"douyin error {error_text(doc)}"
    sub_code = str(doc.get("sub_code") or "")
    if code == 60000:
        raise RateLimited(text, retry_after=1.0, code="60000")
    if code in TRANSIENT_CODES:
        raise TransientError(text, code=str(code))
    raise PermanentError(text, code=sub_code or str(code))


class _TooDeep(PermanentError):
    """A window holding more orders than `page` × `size` may reach: split it."""

    def __init__(self):
        super().__init__("douyin: window too deep to page through", code=FACTS.paging.deep_sub_code)


def _records(data: dict) -> int:
    if "shop_order_detail" in data:
        return 1
    return len(data.get("shop_order_list") or [])


class DouyinClient:
    """PlatformClient for Douyin Shop (Doudian Open Platform)."""

    platform = "douyin"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 sign_method: str = "hmac-sha256", max_window_ms: int = _LIMITS.window_max_s * 1000,
                 depth_max: int = FACTS.paging.depth_max):
        self.creds, self.caller = creds, caller
        self.page_size, self.sign_method = min(max(page_size, 1), _LIMITS.page_size_max), sign_method
        self.max_window_ms, self.depth_max = max_window_ms, depth_max
        self.access_token = creds.access_token
        self.refresh_token = str(creds.extra.get("refresh_token") or "")
        self.base = creds.base_url.rstrip("/")
        self._log_ids: deque = deque(maxlen=256)  # answers already used, to spot replayed pages

    # ---- calls ----

    def build(self, method: str, params: dict):
        """A RequestSpec factory: the same body text, a fresh timestamp and signature on every attempt."""
        text = param_json(params)
        body = text.encode("utf-8")

        def make() -> RequestSpec:
            stamp = str(int(time.time()))
            query = {"app_key": self.creds.app_key, "method": method, "timestamp": stamp, "v": VERSION,
                     "sign_method": self.sign_method,
                     "sign": sign(self.creds.app_key, self.creds.app_secret, method, text, stamp, self.sign_method)}
            if method not in TOKEN_METHODS:
                query["access_token"] = self.access_token
            return RequestSpec("POST", f"{self.base}/{method.replace('.', '/')}", params=query, data=body,
                               headers={"Content-Type": "application/json"})
        return make

    async def _send(self, method: str, params: dict) -> tuple[Response, dict]:
        seen: dict = {}

        def classify(response: Response) -> int:
            doc = _answer(response)
            if doc.get("log_id") and doc["log_id"] in self._log_ids:
                # every Douyin answer has a fresh log_id: this one is a replayed (cached/duplicated) page
                raise TransientError(f"douyin: duplicate answer {doc['log_id']}", code="duplicate_page")
            seen["doc"] = doc
            return _records(doc["data"])

        response = await self.caller.request(method, self.build(method, params), classify)
        doc = seen["doc"]
        if doc.get("log_id"):
            self._log_ids.append(doc["log_id"])
        return response, doc

    async def call(self, method: str, params: dict) -> tuple[Response, dict]:
        """One API call; an expired access token is refreshed once and the call repeated."""
        if not self.access_token and method not in TOKEN_METHODS:
            await self.create_token()
        try:
            return await self._send(method, params)
        except PermanentError as exc:
            if exc.code not in EXPIRED:
                raise
            expired = exc
        try:
            if not self.refresh_token:
                raise PermanentError("no refresh_token", code="token")
            await self.refresh()
        except PermanentError:
            try:  # a self-use app may simply ask for a new token
                await self.create_token()
            except PermanentError:
                raise PermanentError(f"douyin: access_token of shop {self.creds.shop_id} expired and could not "
                                     f"be refreshed: re-authorise the shop ({expired})", code=expired.code) from None
        return await self._send(method, params)

    async def refresh(self) -> None:
        """`token.refresh`: a new access/refresh token pair from the refresh token."""
        _, doc = await self._send("token.refresh", {"grant_type": "refresh_token",
                                                    "refresh_token": self.refresh_token})
        self._take_tokens(doc["data"])

    async def create_token(self) -> None:
        """`token.create` for a self-use app: tokens for the shop (its Douyin shop id)."""
        shop = str(self.creds.extra.get("douyin_shop_id") or self.creds.shop_id)
        _, doc = await self._send("token.create", {"grant_type": "authorization_self", "shop_id": shop})
        self._take_tokens(doc["data"])

    def _take_tokens(self, data: dict) -> None:
        if not data.get("access_token"):
            raise PermanentError("douyin: token answer without access_token", code="token")
        self.access_token = str(data["access_token"])
        self.refresh_token = str(data.get("refresh_token") or self.refresh_token)

    def _page(self, response: Response, doc: dict, endpoint: str, page: str | None) -> Page:
        return Page(body=response.body, content_type="json", endpoint=endpoint, records=_records(doc["data"]),
                    page=page, request_id=str(doc.get("log_id") or "") or None, api_version=VERSION)

    # ---- listing ----

    async def _list(self, lo: int, hi: int, page: int) -> tuple[Page, dict, int]:
        params = {"update_time_start": lo, "update_time_end": hi, "order_by": "update_time", "order_asc": False,
                  "page": page, "size": self.page_size}
        try:
            response, doc = await self.call(SEARCH, params)
        except PermanentError as exc:
            if exc.code != FACTS.paging.deep_sub_code or page == 0:
                raise
            self.depth_max = min(self.depth_max, page * self.page_size)  # the gateway's cap is lower
            raise _TooDeep() from None
        data = doc["data"]
        return self._page(response, doc, SEARCH, str(page)), data, int(data.get("total") or 0)

    async def _publishable(self, page: Page, data: dict) -> AsyncIterator[Page]:
        """The page itself, or the detail of each of its orders when it lists summaries."""
        orders = data.get("shop_order_list") or []
        if all(isinstance(o, dict) and "sku_order_list" in o for o in orders):
            yield page
            return
        for order in orders:
            if isinstance(order, dict) and order.get("order_id"):
                yield await self.fetch_order(str(order["order_id"]))

    async def _pass(self, lo: int, hi: int) -> AsyncIterator[Page]:
        """One window [lo, hi] (seconds): page 0, then the last page back to 1, and once more if the
        total moved. _TooDeep when it holds more orders than the paging cap lets through."""
        first, data, total = await self._list(lo, hi, 0)
        if total > self.depth_max:
            if hi > lo:
                raise _TooDeep()
            log.warning("douyin %s: %d orders changed within one second (%d); only %d can be paged",
                        self.creds.shop_id, total, lo, self.depth_max)
        async for page in self._publishable(first, data):
            yield page

        async def read(page_no: int, again: bool):
            page, data, reported = await self._list(lo, hi, page_no)
            return (page, data), reported

        async for page, data in read_backwards(read, total, self.page_size, first=0,
                                               max_pages=self.depth_max // self.page_size):
            async for out in self._publishable(page, data):
                yield out

    async def _scan(self, lo: int, hi: int) -> AsyncIterator[Page]:
        """A window, halved (recursively) while it is too deep to page through."""
        try:
            async for page in self._pass(lo, hi):
                yield page
            return
        except _TooDeep:
            if hi <= lo:  # one second: the cap is known now, page what it lets through
                async for page in self._pass(lo, hi):
                    yield page
                return
        mid = (lo + hi) // 2
        async for page in self._scan(lo, mid):
            yield page
        async for page in self._scan(mid + 1, hi):
            yield page

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders whose update_time lies in [start_ms, end_ms)."""
        if end_ms - start_ms > self.max_window_ms:
            raise ValueError(f"window of {end_ms - start_ms} ms exceeds {self.max_window_ms} ms")
        lo, hi = start_ms // 1000, (end_ms - 1) // 1000
        if hi < lo:
            return
        async for page in self._scan(lo, hi):
            yield page

    async def fetch_order(self, external_id: str) -> Page:
        """One order's detail (`order.orderDetail`)."""
        response, doc = await self.call(DETAIL, {"shop_order_id": external_id})
        return self._page(response, doc, DETAIL, None)

    def fetch_orders(self, external_ids: list[str]) -> AsyncIterator[Page]:
        """The orders a push named, one `order.orderDetail` each."""
        return each_order(self.fetch_order, external_ids)


Client = DouyinClient  # what the platform registry builds for a shop
