"""Youzan open-API client for one shop: token, windows listed with youzan.trades.sold.get, orders read
with youzan.trade.get (youzan.md §1, §3, §4, §7).

Why details: the list gives `full_order_info` only; which lines went out in which package (partial
shipments, tracking numbers) and the refunds are in the detail. Publishing the list next to the details
would give the normalizer two different pictures of one order at one `update_time`, so the list only
finds the orders changed in a window and every record published is a detail. A detail already read is
kept (per tid, bounded) and given again while the list shows no newer `update_time`: re-read windows
(overlap, lookback sweeps) cost no detail calls, and a page whose publication failed is still given again.

Windows: times are second-granular and inclusive at both ends, our windows [start_ms, end_ms): we ask
for start floored to the second and end − 1 ms floored to the second (a neighbour's edge second may be
read twice; nothing is skipped). A window wider than `max_window_ms` is cut; one the platform calls too
wide is halved (and the narrower width kept); one holding more orders than the deep-paging cap is
halved until each half can be paged. Pages are read from the last back to the first: an order changing
during the scan only leaves the window, which can make us read a row twice but never skip one; if the
total moved during the pass, one more backward pass follows.

Failures (classify): `gw_err_resp` 4203 / HTTP 429 -> RateLimited (back off, retry); 4201/4202 -> a new
token (silent authorisation with client_secret and kdt_id, or the refresh token) and the call once more,
else a PermanentError saying the token cannot be renewed; HTTP 5xx, a cut body, an answer replayed
(same trace_id) -> TransientError (retry); other business errors -> PermanentError with code and message.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials, each_order
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import read_backwards, slices
from schemas.canonical import ms_to_beijing

from . import api

log = logging.getLogger(__name__)
_LIMITS = folder_manifest(__file__).limits
_JSON = {"Content-Type": "application/json"}


class TokenRejected(PermanentError):
    """The gateway refused the access token (invalid or expired)."""


class WindowTooWide(PermanentError):
    """The platform refused the time range as too wide."""


class PageTooDeep(PermanentError):
    """The platform refused a page beyond its deep-paging cap."""


class OrderNotFound(PermanentError):
    """youzan.trade.get does not know the tid."""


_BUSINESS = {api.WINDOW_TOO_WIDE: WindowTooWide, api.PAGE_TOO_DEEP: PageTooDeep, api.ORDER_NOT_FOUND: OrderNotFound}


def _decode(response: Response) -> dict:
    """The JSON object of a usable HTTP answer; raises for HTTP failures and cut or foreign bodies."""
    status = response.status
    raise_for_http(status, client_errors=False)  # a 4xx body may carry the gateway's error
    try:
        doc = json_answer(response.body)
    except TransientError:
        if status != 200:
            raise PermanentError(f"youzan: HTTP {status}", code=f"http_{status}") from None
        raise
    gateway = doc.get("gw_err_resp")
    if isinstance(gateway, dict):
        code, message = gateway.get("err_code"), gateway.get("err_msg")
        text = f"有赞网关错误 youzan gateway error {code}: {message}"
        if code == api.GW_RATE_LIMITED:
            raise RateLimited(text, retry_after=1.0, code=str(code))
        if code in api.TOKEN_ERRORS:
            raise TokenRejected(text, code=str(code))
        raise PermanentError(text, code=str(code))
    if status != 200:
        raise PermanentError(f"youzan: HTTP {status}", code=f"http_{status}")
    if doc.get("success") is False:
        code = doc.get("code")
        raise _BUSINESS.get(code, PermanentError)(f"有赞接口错误 youzan error {code}: {doc.get('message')}",
                                                  code=str(code))
    if not isinstance(doc.get("data"), dict):
        raise TransientError("youzan: answer without data", code="malformed")
    return doc


def _seconds(ms: int) -> str:
    return ms_to_beijing(ms // 1000 * 1000)


class YouzanClient:
    """PlatformClient for Youzan: lists the orders changed in a window, publishes their details."""

    platform = "youzan"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 max_window_ms: int = _LIMITS.window_max_s * 1000, deep_page_cap: int = api.DEEP_PAGE_CAP,
                 versions: dict | None = None, kept_details: int = 4096):
        self.creds, self.caller = creds, caller
        self.page_size = max(1, min(page_size, _LIMITS.page_size_max))
        self.max_window_ms, self.deep_page_cap = max_window_ms, deep_page_cap
        self.versions = dict(versions or api.VERSIONS)
        self.base = creds.base_url.rstrip("/")
        self._token = creds.access_token or None
        self._expires_ms: int | None = None
        self._refresh_token = creds.extra.get("refresh_token")
        self._trace_ids: deque = deque(maxlen=512)  # answers already used, to spot a replayed one
        self._details: OrderedDict[str, tuple[str, Page]] = OrderedDict()
        self._kept = kept_details

    # ---- token ----

    async def _renew_token(self) -> None:
        """A new access token: the refresh token when there is one, else silent authorisation."""
        if not self.creds.app_secret or not self.creds.app_key:
            raise PermanentError("有赞 access_token 无效或已过期，且没有 client_id/client_secret 可以换新 youzan access "
                                 "token invalid or expired and no client_id/client_secret to renew it", code="token")
        base = {"client_id": self.creds.app_key, "client_secret": self.creds.app_secret}
        attempts = []
        if self._refresh_token:
            attempts.append({**base, "authorize_type": "refresh_token", "refresh_token": self._refresh_token})
        grant = self.creds.extra.get("kdt_id")
        attempts.append({**base, "authorize_type": "silent", "refresh": True,
                         **({"grant_id": grant} if grant not in (None, "") else {})})
        for n, body in enumerate(attempts):
            try:
                data = await self._token_call(body)
                break
            except PermanentError:
                if n == len(attempts) - 1:
                    raise
        self._token = data["access_token"]
        self._expires_ms = int(data["expires"]) if str(data.get("expires", "")).isdigit() else None
        self._refresh_token = data.get("refresh_token") or self._refresh_token

    async def _token_call(self, body: dict) -> dict:
        seen: dict = {}

        def classify(response: Response) -> int:
            doc = _decode(response)
            if not doc["data"].get("access_token"):
                raise TransientError("youzan: token answer without access_token", code="malformed")
            seen["data"] = doc["data"]
            return 0

        await self.caller.request("auth/token", lambda: RequestSpec(
            "POST", self.base + api.TOKEN_PATH, data=orjson.dumps(body), headers=_JSON), classify)
        return seen["data"]

    def _token_fresh(self) -> bool:
        return self._token is not None and (self._expires_ms is None or self._expires_ms > time.time() * 1000 + 60_000)

    # ---- calls ----

    async def _call(self, name: str, params: dict, decode=None) -> tuple[Response, dict]:
        """One API call with a valid token (renewed once if the gateway refuses it); `decode(response)`
        reads an API of another envelope (the 3.x ones) in place of the 4.x `_decode`."""
        for attempt in (1, 2):
            if not self._token_fresh():
                await self._renew_token()
            try:
                return await self._call_once(name, params, decode or _decode)
            except TokenRejected:
                if attempt == 2:
                    raise
                self._token = None  # expired or revoked: renew and call once more
        raise AssertionError("unreachable")

    async def _call_once(self, name: str, params: dict, decode) -> tuple[Response, dict]:
        seen: dict = {}

        def build() -> RequestSpec:
            return RequestSpec("POST", f"{self.base}/api/{name}/{self.versions[name]}",
                               params={"access_token": self._token}, data=orjson.dumps(params), headers=_JSON)

        def classify(response: Response) -> int:
            doc = decode(response)
            trace = doc.get("trace_id")
            if trace is not None and trace in self._trace_ids:
                raise TransientError(f"youzan: answer {trace} given twice", code="duplicate_page")
            if trace is not None:
                self._trace_ids.append(trace)
            seen["doc"] = doc
            rows = (doc.get("data") or {}).get("full_order_info_list")
            return len(rows) if isinstance(rows, list) else 1

        return await self.caller.request(name, build, classify), seen["doc"]

    async def _sold_page(self, start: str, end: str, page_no: int) -> dict:
        _, doc = await self._call(api.SOLD_GET, {"start_update": start, "end_update": end, "page_no": page_no,
                                                 "page_size": self.page_size})
        return doc["data"]

    # ---- windows ----

    async def _listed(self, start_ms: int, end_ms: int) -> dict[str, str]:
        """tid -> update_time of every order changed in [start_ms, end_ms), split as the platform needs."""
        start, end = _seconds(start_ms), _seconds(end_ms - 1)
        splittable = end_ms - start_ms > 1000
        try:
            first = await self._sold_page(start, end, 1)
        except WindowTooWide:
            if not splittable:
                raise
            self.max_window_ms = min(self.max_window_ms, (end_ms - start_ms) // 2)
            return await self._halves(start_ms, end_ms)
        total = int(first.get("total_results") or 0)
        if total > self.deep_page_cap and splittable:
            return await self._halves(start_ms, end_ms)
        seen = _rows(first)

        async def read(page_no: int, again: bool):
            data = await self._sold_page(start, end, page_no)
            return _rows(data), int(data.get("total_results") or 0)

        try:
            deepest = self.deep_page_cap // self.page_size
            async for rows in read_backwards(read, total, self.page_size, max_pages=deepest):
                seen = _merged(seen, rows)
        except PageTooDeep:
            if not splittable:
                raise
            return await self._halves(start_ms, end_ms)
        if total > self.deep_page_cap:
            log.error("youzan %s: %d orders changed within one second, only %d can be paged",
                      self.creds.shop_id, total, self.deep_page_cap)
        return seen

    async def _halves(self, start_ms: int, end_ms: int) -> dict[str, str]:
        middle = start_ms + (end_ms - start_ms) // 2
        return _merged(await self._listed(start_ms, middle), await self._listed(middle, end_ms))

    async def _detail(self, tid: str, updated: str) -> Page | None:
        kept = self._details.get(tid)
        if kept is not None and kept[0] >= updated:
            self._details.move_to_end(tid)
            return kept[1]
        try:
            response, doc = await self._call(api.TRADE_GET, {"tid": tid})
        except OrderNotFound as exc:
            log.warning("youzan %s: listed order %s has no detail: %s", self.creds.shop_id, tid, exc)
            return None
        page = Page(body=response.body, content_type="json", endpoint=api.TRADE_GET, records=1, page=tid,
                    request_id=doc.get("trace_id"), api_version=self.versions[api.TRADE_GET])
        info = (doc["data"].get("full_order_info") or {}).get("order_info") or {}
        self._details[tid] = (str(info.get("update_time") or updated), page)
        self._details.move_to_end(tid)
        while len(self._details) > self._kept:
            self._details.popitem(last=False)
        return page

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """The detail of every order changed in [start_ms, end_ms), one page each."""
        for low, high in slices(start_ms, end_ms, max(self.max_window_ms, 1000)):
            for tid, updated in (await self._listed(low, high)).items():
                page = await self._detail(tid, updated)
                if page is not None:
                    yield page

    async def fetch_order(self, external_id: str) -> Page:
        """One order's detail (`youzan.trade.get`), read afresh."""
        self._details.pop(external_id, None)
        page = await self._detail(external_id, "")
        if page is None:
            raise PermanentError(f"youzan: order {external_id} not found", code=str(api.ORDER_NOT_FOUND))
        return page

    def fetch_orders(self, external_ids: list[str]) -> AsyncIterator[Page]:
        """The orders a push named, one `youzan.trade.get` each."""
        return each_order(self.fetch_order, external_ids)


def _merged(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    """Both listings, each tid with its latest update_time (the times compare as text)."""
    out = dict(a)
    for tid, updated in b.items():
        if updated > out.get(tid, ""):
            out[tid] = updated
    return out


def _rows(data: dict) -> dict[str, str]:
    out = {}
    for item in data.get("full_order_info_list") or ():
        info = ((item or {}).get("full_order_info") or {}).get("order_info") or {}
        tid = info.get("tid")
        if tid not in (None, ""):
            out[str(tid)] = str(info.get("update_time") or "")
    return out


Client = YouzanClient  # what the platform registry builds for a shop
