"""channels/ec client for one shop: access tokens, ids-only listing by update time, one order/get per order.

- Credentials: `app_key` is the AppID, `app_secret` the AppSecret, `access_token` a token to start with
  (may be empty). Tokens come from `POST /cgi-bin/stable_token` (a stable token is not invalidated by
  another component fetching one, unlike `/cgi-bin/token`); 42001 (expired), 40001/40014 (invalid) and
  41001 (missing) fetch a fresh one and repeat the call once; a token we fetched is renewed five
  minutes before it expires.
- Windows: `update_time_range` in Unix seconds, start floored and end rounded up (a second of overlap
  at most: duplicates are harmless, gaps are not); at most 7 days, wider windows are cut into 7-day
  pieces, and a window the API still calls too wide is halved.
- Paging: `next_key` cursor until `has_more` is false, ids only; each new id is read with order/get
  (a few at a time) and every detail answer is one `Page`, body as received. The cursor counts
  positions, so an order updated during a pass leaves the list and shifts the later ones back: when a
  pass took more than one page, the window is listed again until a pass finds no id it had not seen.
- Errors: 45011 (minute quota) waits until the next minute, 45009 (daily quota) until Beijing midnight,
  -1 (system busy), HTTP 5xx, a truncated body and an order not readable yet are retried with backoff,
  an answer for another order than asked (a repeated answer) too; anything else is a PermanentError
  naming errcode and errmsg.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import slices

LIST, DETAIL, TOKEN = "channels/ec/order/list/get", "channels/ec/order/get", "cgi-bin/stable_token"
TOKEN_ERRORS = {40001, 40014, 41001, 42001}
MINUTE_QUOTA, DAILY_QUOTA, SYSTEM_BUSY = 45011, 45009, -1
INVALID_ARGS = 40097
ORDER_NOT_FOUND = 10020001  # order not readable (yet): pushes can name an order before order/get has it
RENEW_BEFORE_S = 300
_LIMITS = folder_manifest(__file__).limits
_BEIJING_OFFSET_S = 8 * 3600


class TokenRejected(PermanentError):
    """The access token is expired or not valid (any more): fetch a new one."""


class WindowTooWide(PermanentError):
    """The API refused the time range as too wide."""


def _seconds_to_next_minute(now: float) -> float:
    return 60.0 - now % 60 + 0.5


def _seconds_to_beijing_midnight(now: float) -> float:
    return 86_400.0 - (now + _BEIJING_OFFSET_S) % 86_400 + 1.0


class WeChatChannelsClient:
    """PlatformClient for a WeChat Channels shop over the channels/ec API."""

    platform = "wechat_channels"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 max_window_ms: int = _LIMITS.window_max_s * 1000 - 1000, detail_concurrency: int = 8,
                 minute_quota_wait_s: float | None = None, max_passes: int = 4):
        self.creds, self.caller = creds, caller
        self.page_size = page_size
        # one second below the limit: the window's ends are widened to whole seconds
        self.max_window_ms = max_window_ms
        self.detail_concurrency, self.max_passes = detail_concurrency, max_passes
        self.minute_quota_wait_s = minute_quota_wait_s  # None: until the next minute, as 45011 says
        self.base = creds.base_url.rstrip("/")
        self.token = creds.access_token or ""
        self.token_expires_at: float | None = None  # known only for tokens this client fetched
        self._token_lock = asyncio.Lock()

    # ---- answers ----

    def _parse(self, response: Response) -> dict:
        raise_for_http(response.status)
        doc = json_answer(response.body)
        code = doc.get("errcode") or 0
        if code:
            self._raise(code, str(doc.get("errmsg") or ""))
        return doc

    def _raise(self, code, message: str) -> None:
        text = f"wechat_channels errcode {code}: {message}"
        if code in TOKEN_ERRORS:
            raise TokenRejected(text, code=str(code))
        if code == MINUTE_QUOTA:
            wait = self.minute_quota_wait_s
            raise RateLimited(text, retry_after=_seconds_to_next_minute(time.time()) if wait is None else wait,
                              code=str(code))
        if code == DAILY_QUOTA:
            raise RateLimited(text, retry_after=_seconds_to_beijing_midnight(time.time()), code=str(code))
        if code == SYSTEM_BUSY or code == ORDER_NOT_FOUND:
            raise TransientError(text, code=str(code))
        if code == INVALID_ARGS and ("range" in message or "7 days" in message):
            raise WindowTooWide(text, code=str(code))
        raise PermanentError(text, code=str(code))

    # ---- tokens ----

    async def _fetch_token(self, force: bool) -> None:
        if not (self.creds.app_key and self.creds.app_secret):
            raise PermanentError("wechat_channels: the access token was refused and there is no AppID/AppSecret "
                                 "to fetch a new one (微信小店 access_token 无效且无法刷新)", code="no_credentials")
        got: dict = {}

        def build() -> RequestSpec:
            body = {"grant_type": "client_credential", "appid": self.creds.app_key, "secret": self.creds.app_secret,
                    "force_refresh": force}
            return RequestSpec("POST", f"{self.base}/{TOKEN}", data=orjson.dumps(body),
                               headers={"Content-Type": "application/json"})

        def classify(response: Response) -> int:
            try:
                doc = self._parse(response)
            except TokenRejected as exc:  # on the token endpoint these name the AppID/secret: not retryable
                raise PermanentError(str(exc), code=exc.code) from None
            if not doc.get("access_token"):
                raise TransientError("token answer without access_token", code="malformed")
            got.update(doc)
            return 0

        await self.caller.request(TOKEN, build, classify)
        self.token = str(got["access_token"])
        self.token_expires_at = time.time() + float(got.get("expires_in") or 7200)

    async def _renew(self, failed: str | None) -> None:
        """A fresh token, once for all concurrent callers that saw `failed` refused (None: none yet)."""
        async with self._token_lock:
            if failed is not None and self.token != failed:
                return  # another call renewed it meanwhile
            await self._fetch_token(force=False)
            if failed is not None and self.token == failed:  # the platform still holds the refused one
                await self._fetch_token(force=True)

    async def _ready_token(self) -> str:
        if not self.token:
            await self._renew(None)
        elif self.token_expires_at is not None and time.time() > self.token_expires_at - RENEW_BEFORE_S:
            await self._renew(self.token)
        return self.token

    # ---- calls ----

    async def _call(self, path: str, body: dict, check=None, parse=None) -> tuple[Response, dict]:
        """POST `body` to `path` with the current token; a refused token is renewed and the call repeated once.
        `parse(response)` reads the answer in place of `_parse` (the shipper's refusals)."""
        got: dict = {}

        def build() -> RequestSpec:
            return RequestSpec("POST", f"{self.base}/{path}", params={"access_token": self.token},
                               data=orjson.dumps(body), headers={"Content-Type": "application/json"})

        def classify(response: Response) -> int:
            doc = (parse or self._parse)(response)
            records = check(doc) if check else 0
            got["doc"] = doc
            return records

        for attempt in (1, 2):
            token = await self._ready_token()
            try:
                response = await self.caller.request(path, build, classify)
                return response, got["doc"]
            except TokenRejected:
                if attempt == 2:
                    raise
                await self._renew(token)
        raise AssertionError("unreachable")

    async def _list(self, start_s: int, end_s: int, next_key: str) -> dict:
        def check(doc: dict) -> int:
            if not isinstance(doc.get("order_id_list"), list):
                raise TransientError("list answer without order_id_list", code="malformed")
            return 0  # ids only: the orders arrive with order/get

        body = {"update_time_range": {"start_time": start_s, "end_time": end_s}, "page_size": self.page_size,
                "next_key": next_key}
        return (await self._call(LIST, body, check))[1]

    async def fetch_order(self, external_id: str) -> Page:
        """One order's full detail (`order/get`), body as received."""
        def check(doc: dict) -> int:
            order = doc.get("order")
            if not isinstance(order, dict):
                raise TransientError("detail answer without order", code="malformed")
            if str(order.get("order_id")) != external_id:  # a repeated or misrouted answer
                raise TransientError(f"asked for order {external_id}, got {order.get('order_id')}",
                                     code="duplicate_page")
            return 1

        response, _ = await self._call(DETAIL, {"order_id": external_id}, check)
        return Page(body=response.body, content_type="json", endpoint=DETAIL, records=1)

    async def fetch_orders(self, external_ids: list[str]) -> AsyncIterator[Page]:
        """The orders a push named, read with `order/get` side by side."""
        for page in await self._details(list(external_ids)):
            yield page

    async def _details(self, ids: list[str]) -> list[Page]:
        gate = asyncio.Semaphore(self.detail_concurrency)

        async def one(external_id: str) -> Page:
            async with gate:
                return await self.fetch_order(external_id)

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def _pass(self, start_s: int, end_s: int, seen: set[str]) -> AsyncIterator[tuple[list[Page], bool]]:
        """One listing of the window: (detail pages of ids not seen before, whether the pass took > 1 page)."""
        next_key, pages = "", 0
        while True:
            doc = await self._list(start_s, end_s, next_key)
            pages += 1
            fresh = []
            for value in doc["order_id_list"]:
                external_id = str(value)
                if external_id not in seen:
                    seen.add(external_id)
                    fresh.append(external_id)
            more = bool(doc.get("has_more")) and bool(doc.get("next_key"))
            yield await self._details(fresh), pages > 1 or more
            if not more:
                return
            next_key = str(doc["next_key"])

    async def _window(self, start_s: int, end_s: int) -> AsyncIterator[Page]:
        seen: set[str] = set()
        for pass_no in range(self.max_passes):
            found, paged = 0, False
            async for details, paged in self._pass(start_s, end_s, seen):
                found += len(details)
                for page in details:
                    yield page
            if not paged or (pass_no and not found):
                return

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every order modified in [start_ms, end_ms), one order/get answer per Page."""
        pieces = slices(start_ms, end_ms, self.max_window_ms)
        while pieces:
            start, end = pieces.pop(0)
            start_s, end_s = start // 1000, -(-end // 1000)
            try:
                async for page in self._window(start_s, end_s):
                    yield page
            except WindowTooWide:
                if end - start <= 60_000:
                    raise
                middle = (start + end) // 2
                pieces[:0] = [(start, middle), (middle, end)]


Client = WeChatChannelsClient  # what the platform registry builds for a shop
