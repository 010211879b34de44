"""TOP API client for one shop: signed calls to `/router/rest`, windows paged from the last page back.

Window bounds: the API is second-granular and `end_modified` is inclusive, while our windows are
[start_ms, end_ms). We send `start_modified` = start floored to the second and `end_modified` =
(end_ms − 1 ms) floored to the second: whole-second windows map exactly, and a fractional edge only
overlaps the neighbouring window by under a second (duplicates are harmless, gaps are not).
"""
from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import AsyncIterator

import orjson

from connectors.platforms.manifest import folder_manifest
from connectors.runtime.base import Caller, Page, RequestSpec, Response, ShopCredentials
from connectors.runtime.errors import PermanentError, RateLimited, TransientError, raise_for_http
from connectors.runtime.listing import read_backwards
from schemas.canonical import ms_to_beijing

from .signing import sign

INCREMENT = "taobao.trades.sold.increment.get"
FULLINFO = "taobao.trade.fullinfo.get"
TRADE_FIELDS = (
    "tid,tid_str,status,type,created,pay_time,consign_time,end_time,modified,payment,total_fee,post_fee,"
    "discount_fee,adjust_fee,buyer_open_uid,buyer_nick,buyer_message,seller_nick,receiver_name,receiver_mobile,"
    "receiver_phone,receiver_state,receiver_city,receiver_district,receiver_town,receiver_address,receiver_zip,"
    "oaid,orders"
)
TRADE_TYPES = (
    "fixed,auction,guarantee_trade,step,independent_simple_trade,independent_shop_trade,auto_delivery,ec,cod,"
    "game_equipment,shopex_trade,netcn_trade,external_trade,instant_trade,b2c_cod,hotel_trade,super_market_trade,"
    "super_market_cod_trade,taohua,waimai,nopaid,eticket,tmall_i18n,o2o_offlinetrade"
)
_LIMITS = folder_manifest(__file__).limits
_BAN = re.compile(r"(\d+(?:\.\d+)?)\s*more\s+second")


def _decode(body: bytes, fmt: str):
    """Parsed body (XML turned into {root_tag: element}) or None when it does not parse."""
    try:
        if fmt == "xml":
            root = ET.fromstring(body)
            return {root.tag: root}
        return orjson.loads(body)
    except (orjson.JSONDecodeError, ET.ParseError):
        return None


def _get(node, key):
    """Child value of a JSON dict or an XML element (text for leaves)."""
    if isinstance(node, dict):
        return node.get(key)
    if node is None:
        return None
    child = node.find(key)
    if child is None:
        return None
    return child if len(child) else child.text


def _count_trades(resp) -> int:
    if _get(resp, "trade") is not None:
        return 1
    trades = _get(resp, "trades")
    if trades is None:
        return 0
    return len(trades.get("trade") or []) if isinstance(trades, dict) else len(list(trades))


class TaobaoClient:
    """PlatformClient for Taobao/Tmall over TOP."""

    platform = "taobao"

    def __init__(self, creds: ShopCredentials, caller: Caller, page_size: int = _LIMITS.page_size_max,
                 sign_method: str = "md5", fmt: str = "json", max_window_ms: int = _LIMITS.window_max_s * 1000,
                 trade_types: str | None = TRADE_TYPES):
        self.creds, self.caller = creds, caller
        self.page_size, self.sign_method, self.fmt = page_size, sign_method, fmt
        self.max_window_ms = max_window_ms  # TOP rejects > 1 day; the runtime picks smaller windows
        self.trade_types = trade_types  # the default `type` silently hides step/tmall_i18n/o2o trades
        self._request_ids: deque = deque(maxlen=256)  # answers already used, to spot replayed pages
        base = creds.base_url.rstrip("/")
        self.url = base if base.endswith("/router/rest") else base + "/router/rest"

    def build(self, method: str, business: dict):
        """A RequestSpec factory: system params, a fresh timestamp and the signature on every attempt."""
        def make() -> RequestSpec:
            params = {"method": method, "app_key": self.creds.app_key, "session": self.creds.access_token,
                      "timestamp": ms_to_beijing(int(time.time() * 1000)), "format": self.fmt, "v": "2.0",
                      "sign_method": self.sign_method, **{k: str(v) for k, v in business.items() if v is not None}}
            params["sign"] = sign(params, self.creds.app_secret, self.sign_method)
            return RequestSpec(method="POST", url=self.url, data=params)
        return make

    def classify(self, response: Response) -> int:
        """Number of trades in a usable answer; raises RateLimited / TransientError / PermanentError."""
        return self._classify(response)[0]

    def _classify(self, response: Response):
        raise_for_http(response.status)
        doc = _decode(response.body, self.fmt)
        if not isinstance(doc, dict) or len(doc) != 1:
            raise TransientError("malformed body", code="malformed")
        name, resp = next(iter(doc.items()))
        if name == "error_response":
            self._raise(resp)
        return _count_trades(resp), resp

    @staticmethod
    def _raise(err) -> None:
        code, msg = str(_get(err, "code") or ""), str(_get(err, "msg") or "")
        sub_code, sub_msg = str(_get(err, "sub_code") or ""), str(_get(err, "sub_msg") or "")
        text = f"taobao error {code} {msg} {sub_code} {sub_msg}".strip()
        if code == "7":
            match = _BAN.search(sub_msg)
            raise RateLimited(text, retry_after=float(match.group(1)) if match else 1.0, code=code)
        # code 15 is TOP's catch-all: `isp.*` is the platform's own failure (retry), `isv.*` is our request's
        if sub_code.startswith("isp.") or (code == "15" and not sub_code.startswith("isv.")):
            raise TransientError(text, code=code)
        raise PermanentError(text, code=code)

    async def _call(self, method: str, business: dict, page: str | None):
        seen: dict = {}

        def classify(response: Response) -> int:
            records, resp = self._classify(response)
            request_id = _get(resp, "request_id")
            if request_id is not None and request_id in self._request_ids:
                # every TOP answer has a fresh request_id: this is a replayed (cached/duplicated) page
                raise TransientError(f"duplicate answer {request_id}", code="duplicate_page")
            seen["resp"] = resp
            return records

        response = await self.caller.request(method, self.build(method, business), classify)
        resp = seen["resp"]
        total = _get(resp, "total_results")
        records = _count_trades(resp)
        request_id = _get(resp, "request_id")
        if request_id is not None:
            self._request_ids.append(request_id)
        out = Page(body=response.body, content_type=self.fmt, endpoint=method, records=records, page=page,
                   request_id=str(request_id) if request_id is not None else None, api_version="2.0")
        return out, (int(total) if total is not None else None)

    async def _list_page(self, page_no: int, start: str, end: str):
        business = {"fields": TRADE_FIELDS, "start_modified": start, "end_modified": end, "page_no": page_no,
                    "page_size": self.page_size, "use_has_next": "false", "type": self.trade_types}
        return await self._call(INCREMENT, business, str(page_no))

    async def fetch_window(self, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """Every page of trades modified in [start_ms, end_ms).

        Page 1 tells the total; the remaining pages are fetched from the last one backwards (TOP sorts by
        modified DESC, so a trade leaving the window mid-way can only make us read a row twice). Each page
        reports the total again; if it moved during the pass, one more full backward pass follows. An
        answer whose request_id was already seen (a replayed page) is rejected as transient and retried.
        """
        if end_ms - start_ms > self.max_window_ms:
            raise ValueError(f"window of {end_ms - start_ms} ms exceeds {self.max_window_ms} ms")
        start, end = ms_to_beijing(start_ms), ms_to_beijing(end_ms - 1)
        first, total = await self._list_page(1, start, end)
        yield first
        async for page in read_backwards(lambda n, _: self._list_page(n, start, end), total or 0, self.page_size):
            yield page

    async def fetch_order(self, external_id: str) -> Page:
        """One trade's full detail (`taobao.trade.fullinfo.get`)."""
        page, _ = await self._call(FULLINFO, {"fields": TRADE_FIELDS, "tid": external_id}, None)
        return page


Client = TaobaoClient  # what the platform registry builds for a shop
