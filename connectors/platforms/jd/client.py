"""JOS API client for one shop: signed calls to `/routerjson`, windows of at most a month, paged from the
last page back, token refresh, and the error answers of jd.md §7.

Windows: the API is second-granular and `end_date` inclusive, while our windows are [start_ms, end_ms):
`start_date` = start floored to the second, `end_date` = (end_ms − 1 ms) floored to the second. A window
wider than the manifest's limit is cut into pieces; one the router still calls too wide (the limit is
a month, whose length the platform decides) is split in halves until it is accepted.

Paging: `sortType` 1 lists the most recently modified first and there is no has_next: page 1 gives
`orderTotal`, the remaining pages are read from the last back to page 2, so an order modified during
the scan (it leaves the window, the rows after it move up) can only be read twice, never skipped. If
`orderTotal` moved meanwhile, one more backward pass follows. A page identical to one already read in
the pass is a replayed answer: it is retried (a transient error).

Summaries: orders without `itemInfoList` (too few `optional_fields`) cannot be mapped; such a page is
replaced by the detail answer (`order.enGet`) of each of its orders.

Errors: `error_response` codes come from api.toml: an invalid or expired token is
refreshed once with the shop's refresh token (else a permanent error saying to re-authorise), a rate
limit backs off and retries, "system busy" retries, anything else is permanent; `apiResult.success`
false is a business failure (permanent, except a window too wide, which is split).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, json_answer, raise_for_http
from connectors.runtime.listing import read_backwards, slices
from schemas.canonical import MappingError, ms_to_beijing

from . import api
from .answer import DETAIL_METHOD, LIST_METHOD, PLAIN_DETAIL_METHOD, PLAIN_LIST_METHOD, Answer, read
from .signing import PARAM_JSON, param_json, sign

_MANIFEST = folder_manifest(__file__)
_LIMITS = _MANIFEST.limits
ERRORS = {name: frozenset(codes) for name, codes in api.ERRORS.items()}
BUSINESS = {name: frozenset(codes) for name, codes in api.BUSINESS_ERRORS.items()}
LISTED_STATES = ",".join(s for s in _MANIFEST.statuses if s != "NOT_PAY")  # unpaid orders are not listed
OPTIONAL_FIELDS = (
    "orderId,venderId,orderType,payType,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,sellerDiscount,"
    "balanceUsed,orderState,orderStateRemark,deliveryType,invoiceCode,orderRemark,venderRemark,orderSource,pin,"
    "open_id_buyer,xid_buyer,orderStartTime,paymentConfirmTime,orderEndTime,modified,waybill,logisticsId,"
    "parentOrderId,directParentOrderId,consigneeInfo,itemInfoList," + api.COUPONS
)


class TokenExpired(PermanentError):
    """Error code 19: the access token is invalid or has expired."""


class WindowTooWide(PermanentError):
    """The router refused the window as too wide: split it."""


class JdClient:
    """PlatformClient for JD POP orders over JOS."""

    platform = "jd"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 max_window_ms: int = _LIMITS.window_max_s * 1000, optional_fields: str = OPTIONAL_FIELDS,
                 encrypted: bool = True, order_states: str = LISTED_STATES):
        self.creds, self.caller = creds, caller
        self.page_size, self.max_window_ms = page_size, max_window_ms
        self.optional_fields, self.order_states = optional_fields, order_states
        # enSearch/enGet give receivers as TDE ciphertexts; search/get are the older plaintext APIs
        self.list_method, self.detail_method = (LIST_METHOD, DETAIL_METHOD) if encrypted else (
            PLAIN_LIST_METHOD, PLAIN_DETAIL_METHOD)
        base = creds.base_url.rstrip("/")
        self.url = base if base.endswith("/routerjson") else base + "/routerjson"

    def build(self, method: str, business: dict):
        """A RequestSpec factory: system params, a fresh timestamp, the current token and the signature
        on every attempt."""
        def make() -> RequestSpec:
            params = {"method": method, "app_key": self.creds.app_key, "access_token": self.creds.access_token,
                      "timestamp": ms_to_beijing(int(time.time() * 1000)), "v": "2.0",
                      PARAM_JSON: param_json(business)}
            params["sign"] = sign(params, self.creds.app_secret)
            return RequestSpec(method="POST", url=self.url, data=params)
        return make

    def classify(self, response: Response) -> Answer:
        """The answer of a usable response; raises RateLimited / TransientError / PermanentError (and its
        TokenExpired / WindowTooWide kinds) for one that is not usable."""
        raise_for_http(response.status)
        try:
            answer = read(json_answer(response.body))
        except MappingError:
            raise TransientError("malformed body", code="malformed") from None
        if answer.kind == "error":
            self._raise(answer)
        if answer.kind == "business":
            text = f"jd {answer.name}: numberCode {answer.number_code} {answer.message}"
            if answer.number_code in BUSINESS.get("window_too_wide", ()):
                raise WindowTooWide(text, code=str(answer.number_code))
            raise PermanentError(text, code=str(answer.number_code))
        return answer

    @staticmethod
    def _raise(answer: Answer) -> None:
        code, text = answer.code, f"jd error {answer.code} {answer.message}".strip()
        if code in ERRORS.get("token_invalid", ()):
            raise TokenExpired(text, code=code)
        if code in ERRORS.get("rate_limited", ()):
            raise RateLimited(text, retry_after=1.0, code=code)
        if code in ERRORS.get("system_busy", ()):
            raise TransientError(text, code=code)
        raise PermanentError(text, code=code)

    def _classifier(self, got: dict, seen: set | None):
        """`classify` for one call, keeping its answer (and body digest) in `got`."""
        def classify(response: Response) -> int:
            answer = self.classify(response)
            if seen is not None and answer.orders:
                digest = hashlib.blake2b(response.body, digest_size=16).digest()
                if digest in seen:
                    raise TransientError("the previous page again", code="duplicate_page")
                got["digest"] = digest
            got["answer"] = answer
            return len(answer.orders)
        return classify

    async def _call(self, method: str, business: dict, page: str | None = None,
                    seen: set | None = None) -> tuple[Page, Answer]:
        """One call (retried by the caller); an expired token is refreshed once. `seen` holds the digests
        of the bodies already read in this pass: the same body again is a replayed page."""
        refreshed = False
        while True:
            got: dict = {}
            try:
                response = await self.caller.request(method, self.build(method, business),
                                                     self._classifier(got, seen))
            except TokenExpired as exc:
                if refreshed or not await self.refresh():
                    raise TokenExpired(f"{exc}: 京东授权已失效，请重新授权店铺 re-authorise shop "
                                       f"{self.creds.shop_id} (no refresh token, or it was refused)",
                                       code=exc.code) from None
                refreshed = True
                continue
            if seen is not None and "digest" in got:
                seen.add(got["digest"])
            answer = got["answer"]
            return Page(body=response.body, content_type="json", endpoint=method, records=len(answer.orders),
                        page=page, api_version="2.0"), answer

    async def refresh(self) -> bool:
        """Renew the access token with the shop's refresh token (OAuth 2.0, jd.md §3); False without one."""
        token = self.creds.extra.get("refresh_token")
        if not token:
            return False
        base = self.creds.extra.get("oauth_base") or api.OAUTH_BASE
        if base == "/":  # served by the API host itself (the simulator)
            parts = urlsplit(self.url)
            base = f"{parts.scheme}://{parts.netloc}"
        got: dict = {}

        def build() -> RequestSpec:
            return RequestSpec(method="POST", url=base.rstrip("/") + "/oauth2/refresh_token",
                               data={"app_key": self.creds.app_key, "app_secret": self.creds.app_secret,
                                     "grant_type": "refresh_token", "refresh_token": token})

        def classify(response: Response) -> int:
            raise_for_http(response.status, client_errors=False)  # a refused refresh says why in its body
            doc = json_answer(response.body)
            if not doc.get("access_token"):
                err = doc.get("error_response", doc)
                raise PermanentError(f"jd token refresh refused: {err}", code=str(err.get("code", "refresh")))
            got["doc"] = doc
            return 0

        try:
            await self.caller.request("oauth2.refresh_token", build, classify)
        except PermanentError:
            return False
        self.creds.access_token = got["doc"]["access_token"]
        self.creds.extra["refresh_token"] = got["doc"].get("refresh_token") or token
        return True

    def _business(self, start: str, end: str, page_no: int) -> dict:
        return {"start_date": start, "end_date": end, "order_state": self.order_states,
                "optional_fields": self.optional_fields, "page": page_no, "page_size": self.page_size,
                "sortType": 1, "dateType": 0}

    async def _complete(self, page: Page, answer: Answer) -> AsyncIterator[Page]:
        """The page itself, or — when it holds summaries without items — each of its orders' details."""
        if all(isinstance(o, dict) and "itemInfoList" in o for o in answer.orders):
            yield page
            return
        for order in answer.orders:
            yield await self.fetch_order(str(order.get("orderId")) if isinstance(order, dict) else "")

    async def _scan(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        start, end = ms_to_beijing(start_ms), ms_to_beijing(end_ms - 1)
        passes: tuple[set, set] = (set(), set())  # digests of the bodies read in each pass (a replay repeats one)
        first, head = await self._call(self.list_method, self._business(start, end, 1), "1", passes[0])
        async for page in self._complete(first, head):
            yield page

        async def read(page_no: int, again: bool):
            page, answer = await self._call(self.list_method, self._business(start, end, page_no), str(page_no),
                                            passes[again])
            return (page, answer), answer.total

        async for page, answer in read_backwards(read, head.total or 0, self.page_size):
            async for out in self._complete(page, answer):
                yield out

    async def _window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        try:
            async for page in self._scan(start_ms, end_ms):
                yield page
        except WindowTooWide:
            if end_ms - start_ms <= 2000:
                raise
            middle = start_ms + (end_ms - start_ms) // 2 // 1000 * 1000
            for lo, hi in ((start_ms, middle), (middle, end_ms)):
                async for page in self._window(lo, hi):
                    yield page

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of orders modified in [start_ms, end_ms), in pieces of at most `max_window_ms`."""
        for lo, hi in slices(start_ms, end_ms, self.max_window_ms):
            async for page in self._window(lo, hi):
                yield page

    async def fetch_order(self, external_id: str) -> Page:
        """One order's full detail (`jingdong.pop.order.enGet`)."""
        page, _ = await self._call(self.detail_method, {"order_id": external_id, "optional_fields": OPTIONAL_FIELDS})
        return page


Client = JdClient  # what the platform registry builds for a shop
