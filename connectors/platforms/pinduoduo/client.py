"""PDD POP client for one shop: signed calls to `/api/router`, 30-minute windows read from the last page back.

Windows: `pdd.order.number.list.increment.get` takes Unix seconds, both ends inclusive, at most 30
minutes apart (manifest limits.window_max_s). A wider window is split into consecutive slices; a slice
the platform still refuses as too wide (参数错误 naming the 时间间隔) is halved, down to a minute.
Our windows are [start_ms, end_ms): we send start floored to the second and (end_ms − 1 ms) floored
to the second, so neighbouring slices overlap by under a second at most (duplicates are harmless).

Paging: page 1 (page numbers from 1, `use_has_next=false`) tells `total_count`; when there is more
than one page, every page is then read from the last back to page 1 again, as the PDD doc advises.
An order leaving the window mid-scan (it changed again) shifts the rows after it one place forward:
read backwards, such a row moves onto a page still to be read, so it can appear twice but is never
skipped (page 1 is read again for the rows that moved onto it after the first read). Only a row
entering the window can shift others onto read pages: if the total grew during the pass, one more
full backward pass follows. A page whose `request_id` was already seen (a replayed answer) is
refused as transient and asked again.

Errors (codes in api.toml): throttling → RateLimited (the caller waits and retries); system busy
and HTTP 5xx → TransientError; an expired access token → one refresh with the shop's
`refresh_token` (`pdd.pop.auth.token.refresh`) and the call again, or a PermanentError saying the
shop must be authorised again; anything else → PermanentError with PDD's code and message.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import slices

from . import api
from .signing import sign

INCREMENT = "pdd.order.number.list.increment.get"
INFORMATION = "pdd.order.information.get"
REFRESH = "pdd.pop.auth.token.refresh"
_LIMITS = folder_manifest(__file__).limits
_MIN_SPLIT_MS = 60_000


class TokenExpired(PermanentError):
    """The shop's access token expired (refresh it, or the shop must authorise the app again)."""


def _records(resp: dict) -> int:
    if "order_info" in resp:
        return 1
    orders = resp.get("order_sn_list", resp.get("order_list"))
    return len(orders) if isinstance(orders, list) else 0


class PinduoduoClient:
    """PlatformClient for Pinduoduo over PDD POP."""

    platform = "pinduoduo"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 max_window_ms: int = _LIMITS.window_max_s * 1000, now=time.time):
        self.creds, self.caller, self.page_size = creds, caller, page_size
        self.max_window_ms = max_window_ms  # slices asked for; fetch_window splits wider windows itself
        self._now = now
        self._request_ids: deque = deque(maxlen=256)
        base = creds.base_url.rstrip("/")
        self.url = base if base.endswith("/api/router") else base + "/api/router"

    # ---- one call ----

    def build(self, api_type: str, business: dict, with_token: bool = True):
        """A RequestSpec factory: system params, a fresh timestamp (seconds) and a signature per attempt."""
        def make() -> RequestSpec:
            params = {"type": api_type, "client_id": self.creds.app_key, "timestamp": str(int(self._now())),
                      "data_type": "JSON", "version": "V1",
                      **{k: str(v) for k, v in business.items() if v is not None}}
            if with_token:
                params["access_token"] = self.creds.access_token
            params["sign"] = sign(params, self.creds.app_secret)
            return RequestSpec(method="POST", url=self.url, data=params)
        return make

    def classify(self, response: Response) -> int:
        """Number of orders in a usable answer; raises RateLimited / TransientError / PermanentError."""
        return _records(self._answer(response))

    def _answer(self, response: Response) -> dict:
        """The `<api>_response` object of a usable answer; raises for throttling, errors and broken bodies."""
        raise_for_http(response.status)
        doc = json_answer(response.body)
        if len(doc) != 1:
            raise TransientError("malformed body", code="malformed")
        (name, resp), = doc.items()
        if name == "error_response":
            self._raise(resp if isinstance(resp, dict) else {})
        if not isinstance(resp, dict):
            raise TransientError(f"malformed body: {name} is not an object", code="malformed")
        return resp

    @staticmethod
    def _raise(err: dict) -> None:
        code = err.get("error_code")
        text = f"pinduoduo error {code} {err.get('error_msg') or ''} {err.get('sub_msg') or ''}".strip()
        number = code if isinstance(code, int) else int(code) if str(code).isdigit() else -1
        if number in api.THROTTLED:
            raise RateLimited(text, retry_after=1.0, code=str(code))
        if api.is_busy(number):
            raise TransientError(text, code=str(code))
        if number in api.TOKEN_EXPIRED:
            raise TokenExpired(text, code=str(code))
        raise PermanentError(text, code=str(code))

    async def _call(self, api_type: str, business: dict, page: str | None) -> tuple[Page, dict]:
        try:
            return await self._call_once(api_type, business, page)
        except TokenExpired:
            if not self.creds.extra.get("refresh_token"):
                raise PermanentError("拼多多授权已过期，请重新授权 the shop's PDD access token expired and "
                                     "there is no refresh token: authorise the app again",
                                     code="token_expired") from None
            await self.refresh_token()
            return await self._call_once(api_type, business, page)

    async def _call_once(self, api_type: str, business: dict, page: str | None) -> tuple[Page, dict]:
        seen: dict = {}

        def classify(response: Response) -> int:
            resp = self._answer(response)
            rid = resp.get("request_id")
            if rid is not None and rid in self._request_ids:
                # every PDD answer has a fresh request_id: this one is a replayed (cached/duplicated) page
                raise TransientError(f"duplicate answer {rid}", code="duplicate_page")
            seen["resp"] = resp
            return _records(resp)

        response = await self.caller.request(api_type, self.build(api_type, business), classify)
        resp = seen["resp"]
        rid = resp.get("request_id")
        if rid is not None:
            self._request_ids.append(rid)
        return Page(body=response.body, content_type="json", endpoint=api_type, records=_records(resp),
                    page=page, request_id=str(rid) if rid is not None else None, api_version="V1"), resp

    async def refresh_token(self) -> None:
        """Swap the shop's tokens for fresh ones (`pdd.pop.auth.token.refresh`)."""
        build = self.build(REFRESH, {"refresh_token": self.creds.extra["refresh_token"]}, with_token=False)
        holder: dict = {}

        def classify(response: Response) -> int:
            holder["resp"] = self._answer(response)
            return 0

        try:
            await self.caller.request(REFRESH, build, classify)
        except PermanentError as exc:
            raise PermanentError(f"拼多多授权刷新失败，请重新授权 refreshing the PDD token failed: {exc}",
                                 code="token_refresh_failed") from None
        resp = holder["resp"]
        if not resp.get("access_token"):
            raise PermanentError("拼多多授权刷新失败 the token refresh answer has no access_token",
                                 code="token_refresh_failed")
        self.creds.access_token = resp["access_token"]
        if resp.get("refresh_token"):
            self.creds.extra["refresh_token"] = resp["refresh_token"]

    # ---- windows and pages ----

    async def _list_page(self, page_no: int, start_s: int, end_s: int) -> tuple[Page, int | None]:
        business = {"start_updated_at": start_s, "end_updated_at": end_s, "order_status": 5,
                    "refund_status": 5, "is_lucky_flag": 0, "page": page_no, "page_size": self.page_size,
                    "use_has_next": "false"}
        page, resp = await self._call(INCREMENT, business, str(page_no))
        total = resp.get("total_count")
        return page, int(total) if isinstance(total, int) or str(total).isdigit() else None

    async def _slice(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        start_s, end_s = start_ms // 1000, (end_ms - 1) // 1000
        try:
            first, total = await self._list_page(1, start_s, end_s)
        except PermanentError as exc:
            too_wide = exc.code == str(api.ERRORS["invalid_parameter"]) and "间隔" in str(exc)
            if not too_wide or end_ms - start_ms <= _MIN_SPLIT_MS:
                raise
            middle = start_ms + (end_ms - start_ms) // 2  # the platform allows less than we thought: halve
            async for page in self._slice(start_ms, middle):
                yield page
            async for page in self._slice(middle, end_ms):
                yield page
            return
        yield first
        pages = math.ceil((total or 0) / self.page_size)
        while pages > 1:
            most = total or 0
            for page_no in range(pages, 0, -1):  # page 1 again last: see the module doc
                page, now_total = await self._list_page(page_no, start_s, end_s)
                most = max(most, now_total or 0)
                yield page
            if most <= (total or 0):
                return
            total, pages = most, math.ceil(most / self.page_size)  # orders came in mid-scan: one more pass

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders updated in [start_ms, end_ms), in slices of at most `max_window_ms`."""
        for lo, hi in slices(start_ms, end_ms, self.max_window_ms):
            async for page in self._slice(lo, hi):
                yield page

    async def fetch_order(self, order_sn: str) -> Page:
        """One order's detail (`pdd.order.information.get`)."""
        page, _ = await self._call(INFORMATION, {"order_sn": order_sn}, None)
        return page


Client = PinduoduoClient  # what the platform registry builds for a shop
