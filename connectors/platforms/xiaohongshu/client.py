"""Xiaohongshu API client for one shop: signed calls to the single gateway, list pages read from the
last one back, a detail call for every listed order, one receiver call and the masks per page.

Window bounds: `startTime`/`endTime` are Unix seconds and both ends count, while our windows are
[start_ms, end_ms); we send start floored to the second and (end_ms − 1 ms) floored, so neighbouring
windows overlap by under a second (duplicates are harmless, gaps are not). A window wider than the
client's limit is cut into slices; one the platform still calls too wide is halved (and the narrower
width kept), one holding more pages than `pageNo` may reach is halved until it fits.

Paging: the list is sorted by update time, newest first. Page 1 tells `total` and `maxPageNo`; the
other pages are read from the last back, so an order leaving the window during the scan can only make a
row appear twice. When a page reports another total than page 1, one more full backward pass follows.
An order already captured in this window with the same `updateTime` is not fetched again.

Each list page becomes one capture (capture.py): the detail answers, the receiver answer and the
platform's masks of the receivers' ciphertexts (`data.batchDesensitise`), byte for byte. An expired access token is refreshed with the shop's refresh token
(`oauth.refreshToken`) and the call repeated once; without a refresh token the shop must be
re-authorised, which the error says.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import read_backwards

from . import errors
from .capture import DETAIL, LIST, MASKS, RECEIVERS, capture
from .signing import VERSION, sign

log = logging.getLogger(__name__)
PATH = "/ark/open_api/v3/common_controller"
REFRESH = "oauth.refreshToken"
MASK_BATCH = 100  # values per data.batchDesensitise call
_LIMITS = folder_manifest(__file__).limits


class TokenExpired(PermanentError):
    """The access token expired: refresh it, then repeat the call."""


class WindowTooWide(PermanentError):
    """The platform refused the time range: halve it."""


class OrderGone(PermanentError):
    """A listed order the detail call no longer finds."""


def _seconds(ms: int) -> int:
    return ms // 1000


class XiaohongshuClient:
    """PlatformClient for Xiaohongshu."""

    platform = "xiaohongshu"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 max_window_ms: int = _LIMITS.window_max_s * 1000, max_page_no: int = 100, concurrency: int = 8):
        self.creds, self.caller = creds, caller
        self.page_size = min(max(page_size, 1), _LIMITS.page_size_max)
        self.max_window_ms, self.max_page_no = max_window_ms, max_page_no
        self.token = creds.access_token
        self.refresh_token = (creds.extra or {}).get("refresh_token") or ""
        self._gate = asyncio.Semaphore(concurrency)
        self._masks_off_until = 0.0
        base = creds.base_url.rstrip("/")
        self.url = base if base.endswith(PATH) else base + PATH

    # ---- one call ----

    def build(self, method: str, business: dict):
        """A RequestSpec factory: a fresh timestamp and sign on every attempt, the current token."""
        def make() -> RequestSpec:
            stamp = str(int(time.time()))
            body = {"method": method, "appId": self.creds.app_key, "timestamp": stamp, "version": VERSION,
                    "sign": sign(method, self.creds.app_key, stamp, self.creds.app_secret)}
            if not method.startswith("oauth."):
                body["accessToken"] = self.token
            return RequestSpec(method="POST", url=self.url, data=orjson.dumps({**body, **business}),
                               headers={"Content-Type": "application/json; charset=utf-8"})
        return make

    @staticmethod
    def data(response: Response) -> dict:
        """The `data` of a usable answer; raises RateLimited / TransientError / PermanentError (and the
        TokenExpired / WindowTooWide / OrderGone kinds of it) for one that is not."""
        raise_for_http(response.status)
        doc = json_answer(response.body)
        if errors.is_error(doc):
            code, message = errors.code_and_message(doc)
            text, meaning = f"xiaohongshu error {code}: {message}", errors.kind(code, message)
            if meaning == errors.RATE_LIMIT:
                raise RateLimited(text, retry_after=1.0, code=str(code))
            if meaning == errors.TRANSIENT:
                raise TransientError(text, code=str(code))
            raise {errors.TOKEN: TokenExpired, errors.WINDOW: WindowTooWide,
                   errors.NOT_FOUND: OrderGone}.get(meaning, PermanentError)(text, code=str(code))
        data = doc.get("data")
        if not isinstance(data, dict):
            raise TransientError("answer without a data object", code="malformed")
        return data

    async def _call(self, method: str, business: dict, check=None) -> tuple[Response, dict]:
        """One API call (retried by the caller); `check(data)` returns the record count of the answer or
        raises TransientError for an answer to another request (a replayed page)."""
        seen: dict = {}

        def classify(response: Response) -> int:
            data = self.data(response)
            seen["data"] = data
            return check(data) if check else 0

        for attempt in (1, 2):
            try:
                response = await self.caller.request(method, self.build(method, business), classify)
                return response, seen["data"]
            except TokenExpired:
                if attempt == 2 or method == REFRESH:
                    raise
                await self._refresh()
        raise AssertionError("unreachable")

    async def _refresh(self) -> None:
        if not self.refresh_token:
            raise PermanentError("xiaohongshu: 授权已过期，请重新授权店铺 the access token expired and there is "
                                 "no refresh token: re-authorise the shop", code="token_expired")
        _, data = await self._call(REFRESH, {"refreshToken": self.refresh_token})
        self.token, self.refresh_token = data["accessToken"], data.get("refreshToken") or self.refresh_token
        log.info("xiaohongshu:%s access token refreshed", self.creds.shop_id)

    # ---- list, details, receivers ----

    async def _list(self, start_s: int, end_s: int, page_no: int) -> tuple[Response, dict]:
        def check(data: dict) -> int:
            if data.get("pageNo") not in (None, page_no) or "orderList" not in data:
                raise TransientError(f"not the list page {page_no} asked for", code="duplicate_page")
            if not isinstance(data["orderList"] or [], list):
                raise TransientError("orderList is not a list", code="malformed")
            return len(data["orderList"] or [])

        return await self._call(LIST, {"startTime": start_s, "endTime": end_s, "timeType": 2, "orderType": 0,
                                       "orderStatus": 0, "pageNo": page_no, "pageSize": self.page_size}, check)

    async def _detail(self, order_id: str) -> tuple[bytes, dict] | None:
        def check(data: dict) -> int:
            if str(data.get("orderId")) != order_id:
                raise TransientError(f"answer for order {data.get('orderId')}, not {order_id}", code="duplicate_page")
            return 1

        async with self._gate:
            try:
                response, data = await self._call(DETAIL, {"orderId": order_id}, check)
            except OrderGone as exc:
                log.warning("xiaohongshu:%s listed order %s has no detail, skipped: %s", self.creds.shop_id,
                            order_id, exc)
                return None
        return response.body, data

    async def _receivers(self, details: list[dict]) -> tuple[bytes, list] | None:
        """The receiver answer for the orders of `details` and its entries."""
        queries = [{"orderId": str(d["orderId"]), "openAddressId": d["openAddressId"]}
                   for d in details if d.get("openAddressId")]
        if not queries:
            return None
        wanted = {q["orderId"] for q in queries}

        def check(data: dict) -> int:
            infos = data.get("receiverInfos")
            if not isinstance(infos, list) or not {str(r.get("orderId")) for r in infos} <= wanted:
                raise TransientError("receiver answer for other orders", code="duplicate_page")
            return 0

        response, data = await self._call(RECEIVERS, {"receiverQueries": queries, "isReturn": False}, check)
        return response.body, data["receiverInfos"]

    async def _masks(self, infos: list) -> list[bytes]:
        """The platform's masks of the receivers' ciphertexts, 100 a call. An app the platform refuses them
        (no permission, daily quota) goes on with the ciphertexts alone for an hour."""
        wanted = [{"dataTag": str(r.get("orderId")), "encryptedData": r[key]} for r in infos if isinstance(r, dict)
                  for key in ("receiverName", "receiverPhone", "receiverAddress") if r.get(key)]
        if not wanted or time.monotonic() < self._masks_off_until:
            return []
        out = []
        for n in range(0, len(wanted), MASK_BATCH):
            batch = wanted[n:n + MASK_BATCH]
            ciphers = {b["encryptedData"] for b in batch}

            def check(data: dict, ciphers=ciphers) -> int:
                entries = data.get("desensitiseInfoList")
                if not isinstance(entries, list) or not {e.get("encryptedData") for e in entries} <= ciphers:
                    raise TransientError("masks for other values", code="duplicate_page")
                return 0

            try:
                response, _ = await self._call(MASKS, {"baseInfos": batch, "actionType": "4",
                                                       "appUserId": "tonglu"}, check)
            except PermanentError as exc:
                self._masks_off_until = time.monotonic() + 3600
                log.warning("xiaohongshu:%s receivers stay ciphertexts for an hour, masks refused: %s",
                            self.creds.shop_id, exc)
                return out
            out.append(response.body)
        return out

    async def _capture(self, data: dict, done: dict) -> Page:
        todo = [s for s in data.get("orderList") or []
                if isinstance(s, dict) and done.get(str(s.get("orderId"))) != s.get("updateTime")]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._detail(str(s["orderId"]))) for s in todo]
        except ExceptionGroup as failed:  # the first failure, as the caller raised it
            raise failed.exceptions[0] from None
        found = [t.result() for t in tasks if t.result() is not None]
        body = await self._bundle(found)
        for s in todo:
            done[str(s["orderId"])] = s.get("updateTime")
        return Page(body=body, content_type="json", endpoint=LIST, records=len(found), page=str(data.get("pageNo")),
                    api_version=VERSION)

    async def _bundle(self, found: list[tuple[bytes, dict]]) -> bytes:
        """The capture of detail answers with their receivers and the platform's masks."""
        receivers = await self._receivers([d for _, d in found])
        if receivers is None:
            return capture([body for body, _ in found])
        return capture([body for body, _ in found], receivers[0], await self._masks(receivers[1]))

    # ---- windows ----

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every order modified in [start_ms, end_ms), one capture per list page. A slice the platform calls
        too wide is halved, and the narrower width kept for the slices after it."""
        low = start_ms
        while low < end_ms:
            high = min(end_ms, low + self.max_window_ms)
            try:
                first = await self._list(_seconds(low), _seconds(high - 1), 1)
            except WindowTooWide:
                if high - low <= 1000:
                    raise
                self.max_window_ms = (high - low) // 2
                log.info("xiaohongshu:%s windows narrowed to %d s", self.creds.shop_id, self.max_window_ms // 1000)
                continue
            async for page in self._window(low, high, first):
                yield page
            low = high

    async def _window(self, start_ms: int, end_ms: int, first=None) -> AsyncIterator[Page]:
        start_s, end_s = _seconds(start_ms), _seconds(end_ms - 1)
        _, data = first or await self._list(start_s, end_s, 1)
        if int(data.get("maxPageNo") or 1) > self.max_page_no:  # more pages than pageNo reaches: halve
            if end_ms - start_ms <= 1000:
                raise PermanentError(f"xiaohongshu: the second {start_s} holds more orders than paging reaches",
                                     code="too_many_pages")
            middle = start_ms + (end_ms - start_ms) // 2
            for low, high in ((start_ms, middle), (middle, end_ms)):
                async for page in self._window(low, high):
                    yield page
            return
        done: dict = {}
        yield await self._capture(data, done)

        async def read(page_no: int, again: bool):
            _, data = await self._list(start_s, end_s, page_no)
            return await self._capture(data, done), int(data.get("total") or 0)

        async for page in read_backwards(read, int(data.get("total") or 0), self.page_size,
                                         pages=int(data.get("maxPageNo") or 1)):
            yield page

    async def fetch_order(self, external_id: str) -> Page:
        """One order as a capture of its detail and receiver answers."""
        found = await self._detail(external_id)
        if found is None:
            raise PermanentError(f"xiaohongshu: order {external_id} not found", code="not_found")
        return Page(body=await self._bundle([found]), content_type="json", endpoint=DETAIL, records=1, page=None,
                    api_version=VERSION)

    async def fetch_orders(self, external_ids: list[str]) -> AsyncIterator[Page]:
        """The orders a push named as one capture: details read side by side, receivers and masks batched
        (an order without a detail is left to the poll)."""
        found = [f for f in await asyncio.gather(*(self._detail(i) for i in external_ids)) if f is not None]
        if found:
            yield Page(body=await self._bundle(found), content_type="json", endpoint=DETAIL, records=len(found),
                       api_version=VERSION)


Client = XiaohongshuClient  # what the platform registry builds for a shop
