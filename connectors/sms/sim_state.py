"""The SMS simulator's memory: approved signs and templates, accounts, received messages, per-number flow control,
planned faults, delivery reports waiting to be pushed.

The templates a provider approved are given by whoever starts the simulator (the local stack builds them from
`infra/sms.toml`), so the simulator renders exactly the text a buyer would read and refuses codes it never
approved. Buyers' numbers are kept in memory only — the simulator stands for the provider — and never logged.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from connectors.alerts.sim_store import SMS_DEMO_KEY_ID, SMS_DEMO_SECRET

TENCENT_DEMO_ID, TENCENT_DEMO_SECRET = "AKIDdemoTencentSecretId0001", "demoTencentSecretKey"
TENCENT_DEMO_APP = "1400987654"
FAULT_KINDS = ("down", "error_5xx", "slow", "flow_control", "receipt_failed")
# per-number windows for notifications (the sheet gives 1/min, 5/h, 10/day for verification codes only; these are
# the simulator's defaults, changed with POST /_sim/config)
DEFAULT_LIMITS = {"aliyun": [(5, 60.0), (30, 3600.0), (100, 86400.0)],
                  "tencent": [(3, 30.0), (30, 3600.0), (100, 86400.0)]}


@dataclass(frozen=True)
class ApprovedTemplate:
    """A template a provider (or platform channel) approved: its sign (without brackets), its variables in text
    order, and how it renders (the whole text, sign included)."""

    sign: str
    variables: tuple[str, ...]
    render: Callable[[dict], str]


class SimState:
    def __init__(self, approved: dict[str, dict[str, ApprovedTemplate]], callbacks: dict[str, dict[str, str]],
                 receipt_delay_s: float = 1.0, clock: Callable[[], float] = time.time, max_messages: int = 200_000):
        """`approved[provider][code]`; `callbacks[provider]` = {"report": url, "uplink": url} (may be empty)."""
        self.approved, self.callbacks, self.receipt_delay_s, self.clock = approved, callbacks, receipt_delay_s, clock
        self.signs = {t.sign for codes in approved.values() for t in codes.values()}
        self.aliyun_keys = {SMS_DEMO_KEY_ID: {"secret": SMS_DEMO_SECRET}}
        self.tencent_keys = {TENCENT_DEMO_ID: TENCENT_DEMO_SECRET}
        self.tencent_apps = {TENCENT_DEMO_APP}
        self.channel_apps: dict[str, dict[str, dict]] = {}
        self.limits = {p: list(v) for p, v in DEFAULT_LIMITS.items()}
        self.messages: deque[dict] = deque(maxlen=max_messages)
        self._by_out_id: dict[str, list[dict]] = {}
        self._by_phone: dict[str, deque[dict]] = {}
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._nonces: set[str] = set()
        self._nonce_times: deque[tuple[float, str]] = deque()
        self._faults: dict[str, deque[tuple[str, float]]] = {}
        self._failing_receipts: dict[str, int] = {}
        # (due, order of arrival, provider, message, tries): a heap, as a retry may be due after later reports
        self.pending_reports: list[tuple[float, int, str, dict, int]] = []
        self._arrival = itertools.count()
        self.report_fields: dict[str, dict[str, str]] = {}  # platform -> its report's names for ours
        self.pushed = self.push_failures = 0

    # -- accounts (the alert simulator's RPC checks read `robot`, `clock` and `nonce_fresh`) -------------------
    def robot(self, service: str, key: str) -> dict | None:
        return self.aliyun_keys.get(key) if service == "sms" else None

    def nonce_fresh(self, nonce: str, ttl: float = 900.0) -> bool:
        now = self.clock()
        while self._nonce_times and self._nonce_times[0][0] < now - ttl:
            self._nonces.discard(self._nonce_times.popleft()[1])
        if nonce in self._nonces:
            return False
        self._nonces.add(nonce)
        self._nonce_times.append((now, nonce))
        return True

    def add_channel_app(self, platform: str, app_key: str, secret: str, session: str | None = None) -> None:
        self.channel_apps.setdefault(platform, {})[app_key] = {"secret": secret, "session": session}

    def channel_app(self, platform: str, app_key: str) -> dict | None:
        return self.channel_apps.get(platform, {}).get(app_key)

    # -- templates ---------------------------------------------------------------------------------------------
    def check_message(self, provider: str, sign: str, code: str, params) -> tuple[str, str] | None:
        """None when the provider would accept (sign, template, params); else (problem, message) with problem one
        of `sign`, `template`, `params`."""
        template = self.approved.get(provider, {}).get(code)
        if sign not in self.signs:
            return "sign", f"签名未审核 sign {sign!r} is not approved"
        if template is None:
            return "template", f"模板未审核 template {code!r} is not approved"
        values = self.values(template, params)
        if values is None:
            return "params", f"模板参数不全 template {code} needs {', '.join(template.variables)}"
        return None

    @staticmethod
    def values(template: ApprovedTemplate, params) -> dict | None:
        """Named values from named (dict) or positional (list) parameters; None when some are missing."""
        if isinstance(params, list):
            if len(params) != len(template.variables):
                return None
            return dict(zip(template.variables, map(str, params), strict=True))
        if not isinstance(params, dict) or any(v not in params for v in template.variables):
            return None
        return {k: str(v) for k, v in params.items()}

    def render(self, provider: str, code: str, params) -> str:
        template = self.approved[provider][code]
        return template.render(self.values(template, params))

    # -- received messages -------------------------------------------------------------------------------------
    def record(self, provider: str, to: str, sign: str, code: str, params, out_id: str | None,
               message_id: str, report: bool = False) -> dict:
        """Keep one accepted message; `report`: a delivery report follows after the simulator's delay."""
        now = self.clock()
        message = {"provider": provider, "to": to, "sign": sign, "template": code, "params": params,
                   "text": self.render(provider, code, params), "out_id": out_id, "received_at": int(now * 1000),
                   "message_id": message_id, "status": "sent"}
        self.messages.append(message)
        if out_id:
            self._by_out_id.setdefault(out_id, []).append(message)
        self._by_phone.setdefault(to[-11:], deque(maxlen=200)).append(message)
        if report and self.callbacks.get(provider, {}).get("report"):
            self.report_at(now + self.receipt_delay_s, provider, message)
        return message

    def listed(self, provider: str | None = None, out_id: str | None = None) -> list[dict]:
        """Messages as `GET /_sim/messages` shows them, oldest first."""
        found = self._by_out_id.get(out_id, []) if out_id else self.messages
        keys = ("provider", "to", "sign", "template", "params", "text", "out_id", "received_at")
        return [{k: m[k] for k in keys} for m in found if provider in (None, m["provider"])]

    def sent_to(self, phone: str) -> list[dict]:
        return list(self._by_phone.get(phone[-11:], ()))

    def clear(self) -> None:
        self.messages.clear()
        self._by_out_id.clear()
        self._by_phone.clear()
        self._hits.clear()
        self.pending_reports.clear()

    # -- flow control ------------------------------------------------------------------------------------------
    def admit(self, provider: str, phone: str, count: bool = True) -> str | None:
        """None (and the hit counted unless `count` is False) when every per-number window allows it; else the
        window that refused (`minute`, `hour`, `day`, `30s`)."""
        now = self.clock()
        hits = self._hits.setdefault((provider, phone[-11:]), deque())
        limits = self.limits.get(provider, [])
        horizon = max((seconds for _, seconds in limits), default=0.0)
        while hits and hits[0] <= now - horizon:
            hits.popleft()
        for allowed, seconds in limits:
            if sum(1 for t in hits if t > now - seconds) >= allowed:
                return {30.0: "30s", 60.0: "minute", 3600.0: "hour"}.get(seconds, "day")
        if count:
            hits.append(now)
        return None

    # -- faults ------------------------------------------------------------------------------------------------
    def add_fault(self, provider: str, kind: str, count: int = 1, seconds: float = 3.0) -> int:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if kind == "receipt_failed":
            self._failing_receipts[provider] = self._failing_receipts.get(provider, 0) + count
            return self._failing_receipts[provider]
        queue = self._faults.setdefault(provider, deque())
        queue.extend([(kind, seconds)] * count)
        return len(queue)

    def report_at(self, due: float, provider: str, message: dict, tries: int = 0) -> None:
        """Push the report of `message` at `due` (`tries`: the pushes that failed so far)."""
        heapq.heappush(self.pending_reports, (due, next(self._arrival), provider, message, tries))

    def due_reports(self, now: float) -> list[tuple[str, dict, int]]:
        """(provider, message, tries) of the reports due by `now`, taken off the queue in due order."""
        due = []
        while self.pending_reports and self.pending_reports[0][0] <= now:
            _, _, provider, message, tries = heapq.heappop(self.pending_reports)
            due.append((provider, message, tries))
        return due

    def clear_faults(self) -> None:
        self._faults.clear()
        self._failing_receipts.clear()

    def take_flow_fault(self, provider: str) -> bool:
        """Whether the next request meets a planned flow-control refusal."""
        queue = self._faults.get(provider)
        if queue and queue[0][0] == "flow_control":
            queue.popleft()
            return True
        return False

    async def fault_answer(self, provider: str) -> web.Response | None:
        """Play a planned `down` (503), `error_5xx` (500) or `slow` (answer late) fault of `provider`."""
        queue = self._faults.get(provider)
        if not queue or queue[0][0] == "flow_control":
            return None
        kind, seconds = queue.popleft()
        if kind == "down":
            return web.Response(status=503, text="503 Service Temporarily Unavailable")
        if kind == "error_5xx":
            return web.json_response({"Code": "ServiceUnavailable", "Message": "系统繁忙 service busy"}, status=500)
        await asyncio.sleep(seconds)
        return None

    def report_fails(self, provider: str) -> bool:
        """Whether the next delivery report of `provider` says the message failed."""
        left = self._failing_receipts.get(provider, 0)
        if left > 0:
            self._failing_receipts[provider] = left - 1
            return True
        return False
