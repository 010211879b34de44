"""The local ERP/WMS simulator (`tonglu up` serves it on TONGLU_ERP_SIM_HTTP, http://127.0.0.1:8084).

What an ERP and a WMS would do with Tonglu's deliveries:
- any `POST` (e.g. `/hooks/tonglu`): a signed JSON webhook. The signature is checked with
  `TONGLU_ERP_SECRET` (a demo default when unset) and a timestamp more than 300 s off: else 401 with the
  reason. Accepted → 200 `{"ok": true}`, recorded, and offered to the warehouse.
- a `POST` whose query names `method=taobao.qimen.*` (e.g. `/router/qimen`): a Qimen request, signed with
  `TONGLU_QIMEN_SECRET` (demo default `qimen_demo_secret`); answered in Qimen XML (`<flag>success</flag>`
  with a `deliveryOrderId` that stays the same for a repeated `deliveryOrderCode`, or failure
  `sign-check-failure`). `taobao.qimen.order.cancel` cancels a delivery order created before (again:
  success; an `orderCode` never created: failure `order-not-exist`).

Control API (not part of any real service):
- `GET /_sim/received[?order_id=][&format=qimen]` → `{"received": [{"headers": {…}, "body": {…},
  "raw": "<the body exactly as received>", "received_at": ms}]}` in arrival order (the last
  TONGLU_ERP_SIM_KEEP, default 20,000); `DELETE /_sim/received` forgets them and the counts.
- `POST /_sim/faults {"kind": "down"|"error_5xx"|"slow", "count": N}` — the next N deliveries: `down`
  drops the connection without an answer, `error_5xx` answers 500, `slow` answers after `"seconds"`
  (default 2); `"for_seconds": S` instead of a count applies the fault to everything for S seconds.
  `GET` lists what is planned, `DELETE` clears it.
- `GET /_sim/shipments` → what the warehouse picked and posted (`warehouse.Warehouse`).
- `GET /_sim/stats` → counts: received, rejected, repeats (an event id seen before), out of order (an
  event of an order older than one already received), and `GET /_sim/arrivals` → `[[event_id, order_id,
  version, received_at_ms], …]` for latency figures.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from connectors.erp.signing import qimen_sign, verify_webhook
from connectors.erp.warehouse import Warehouse

DEMO_SECRET = "whsec_tonglu_demo"
QIMEN_DEMO_SECRET = "qimen_demo_secret"
FAULT_KINDS = ("down", "error_5xx", "slow")
_OK = orjson.dumps({"ok": True})
CANCEL = "taobao.qimen.order.cancel"


@dataclass
class FaultPlan:
    """Planned misbehaviour: a count of deliveries, or everything until a time."""

    queue: deque = field(default_factory=deque)  # (kind, seconds) per delivery
    until: float = 0.0
    timed: tuple[str, float] | None = None

    def add(self, kind: str, count: int, seconds: float, for_seconds: float | None, now: float) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if for_seconds is not None:
            self.timed, self.until = (kind, seconds), now + for_seconds
        else:
            self.queue.extend([(kind, seconds)] * count)

    def take(self, now: float) -> tuple[str, float] | None:
        if self.timed is not None and now < self.until:
            return self.timed
        return self.queue.popleft() if self.queue else None

    def public(self, now: float) -> dict:
        timed = None if self.timed is None or now >= self.until else {
            "kind": self.timed[0], "seconds_left": round(self.until - now, 1)}
        return {"pending": [kind for kind, _ in self.queue], "timed": timed}


@dataclass
class Tally:
    """What a receiver counts of the webhooks it accepted: repeats (an event id seen before) and events out
    of order (older than an event of the same order received before), with each first arrival's time."""

    counts: dict = field(default_factory=lambda: {"received": 0, "rejected": 0, "repeats": 0, "out_of_order": 0,
                                                  "qimen_received": 0, "qimen_rejected": 0})
    seen_events: set = field(default_factory=set)
    latest_version: dict = field(default_factory=dict)
    arrivals: deque = field(default_factory=lambda: deque(maxlen=200_000))  # (event_id, order_id, version, ms)
    remember: int = 1_000_000  # event ids kept for spotting repeats; then they start afresh (bounded memory)

    def accepted(self, event_id, order_id, version, now_ms: int) -> None:
        self.counts["received"] += 1
        if len(self.seen_events) >= self.remember:
            self.seen_events.clear()
            self.latest_version.clear()
        if event_id in self.seen_events:
            self.counts["repeats"] += 1
            return
        self.seen_events.add(event_id)
        self.arrivals.append((event_id, order_id, version, now_ms))
        if isinstance(version, int):
            if version < self.latest_version.get(order_id, -1):
                self.counts["out_of_order"] += 1
            else:
                self.latest_version[order_id] = version

    def public(self) -> dict:
        return {**self.counts, "orders": len(self.latest_version)}


@dataclass
class ErpSim:
    secret: str
    qimen_secret: str
    warehouse: Warehouse | None
    keep: int = 20_000
    received: deque = field(default_factory=deque)  # (headers, raw, order_id, received_at_ms)
    qimen: deque = field(default_factory=deque)
    faults: FaultPlan = field(default_factory=FaultPlan)
    tally: Tally = field(default_factory=Tally)
    delivery_orders: dict = field(default_factory=dict)
    cancelled: set = field(default_factory=set)  # deliveryOrderCodes cancelled through order.cancel

    def __post_init__(self):
        self.received = deque(maxlen=self.keep)
        self.qimen = deque(maxlen=self.keep)


SIM = web.AppKey("erp_sim", ErpSim)


def create_app(secret: str | None = None, qimen_secret: str | None = None, warehouse: Warehouse | None = None,
               keep: int | None = None) -> web.Application:
    """The simulator app; secrets default to TONGLU_ERP_SECRET / TONGLU_QIMEN_SECRET, then the demo ones."""
    sim = ErpSim(secret or os.environ.get("TONGLU_ERP_SECRET") or DEMO_SECRET,
                 qimen_secret or os.environ.get("TONGLU_QIMEN_SECRET") or QIMEN_DEMO_SECRET, warehouse,
                 keep or int(os.environ.get("TONGLU_ERP_SIM_KEEP", "20000")))
    app = web.Application(client_max_size=16 << 20)
    app[SIM] = sim
    app.router.add_get("/_sim/received", _received)
    app.router.add_delete("/_sim/received", _forget)
    app.router.add_get("/_sim/faults", _faults)
    app.router.add_post("/_sim/faults", _add_fault)
    app.router.add_delete("/_sim/faults", _clear_faults)
    app.router.add_get("/_sim/shipments", _shipments)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/arrivals", _arrivals)
    app.router.add_post("/{tail:.*}", _deliver)
    app.on_cleanup.append(_close)
    return app


async def _close(app: web.Application) -> None:
    if app[SIM].warehouse is not None:
        await app[SIM].warehouse.close()


def _json(body, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _fault(request: web.Request, sim: ErpSim) -> web.StreamResponse | None:
    fault = sim.faults.take(time.time())
    if fault is None:
        return None
    kind, seconds = fault
    if kind == "down":
        await request.read()
        request.transport.abort()  # no answer at all, as from a crashed server
        return web.Response(status=503)
    if kind == "error_5xx":
        return _json({"ok": False, "error": "系统繁忙 simulated server error"}, 500)
    await asyncio.sleep(seconds)
    return None


async def _deliver(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        raise web.HTTPNotFound()
    sim = request.app[SIM]
    if (fault := await _fault(request, sim)) is not None:
        return fault
    raw = await request.read()
    if request.query.get("method", "").startswith("taobao.qimen."):
        return _qimen(request, sim, raw)
    headers = request.headers
    reason = verify_webhook(sim.secret, headers.get("X-Tonglu-Timestamp"), headers.get("X-Tonglu-Signature"), raw,
                            time.time())
    if reason is not None:
        sim.tally.counts["rejected"] += 1
        return _json({"ok": False, "error": f"签名无效 {reason}"}, 401)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        sim.tally.counts["rejected"] += 1
        return _json({"ok": False, "error": "body is not JSON"}, 400)
    if not isinstance(body, dict):
        sim.tally.counts["rejected"] += 1
        return _json({"ok": False, "error": "body is not a JSON object"}, 400)
    now_ms = int(time.time() * 1000)
    order_id = body.get("order_id")
    sim.received.append(({str(k): v for k, v in headers.items()}, raw, order_id, now_ms))
    sim.tally.accepted(body.get("event_id"), order_id, body.get("version"), now_ms)
    if sim.warehouse is not None:
        sim.warehouse.offer(body)
    return web.Response(body=_OK, content_type="application/json")


def _qimen_answer(flag: str, code: str, message: str, **more: str) -> web.Response:
    extra = "".join(f"<{k}>{v}</{k}>" for k, v in more.items())
    text = (f'<?xml version="1.0" encoding="utf-8"?><response><flag>{flag}</flag><code>{code}</code>'
            f"<message>{message}</message>{extra}</response>")
    return web.Response(text=text, content_type="text/xml", charset="utf-8")


def _qimen(request: web.Request, sim: ErpSim, raw: bytes) -> web.Response:
    params = dict(parse_qsl(request.query_string, keep_blank_values=True))
    expected = qimen_sign(sim.qimen_secret, params, raw)
    if not hmac.compare_digest(params.get("sign", "").upper().encode(), expected.encode()):
        sim.tally.counts["qimen_rejected"] += 1
        return _qimen_answer("failure", "sign-check-failure", "Illegal request: sign check failure")
    text = raw.decode("utf-8", "replace")
    method = params.get("method")
    if method == CANCEL:
        code = _between(text, "orderCode") or ""
        known = sim.delivery_orders.get(code)
        if known is None:
            return _qimen_answer("failure", "order-not-exist", f"单据不存在 no delivery order {code}")
        sim.cancelled.add(code)
        answer = _qimen_answer("success", "0", "取消成功")
        body = {"deliveryOrderCode": code, "deliveryOrderId": known, "cancelReason": _between(text, "cancelReason")}
    else:
        code = _between(text, "deliveryOrderCode") or ""
        known = sim.delivery_orders.setdefault(code, f"WMS-DO-{len(sim.delivery_orders) + 1:08d}")
        answer = _qimen_answer("success", "0", "创建成功", createTime=time.strftime("%Y-%m-%d %H:%M:%S"),
                               deliveryOrderId=known)
        body = {"deliveryOrderCode": code}
    body.update(tongluEventId=_between(text, "tongluEventId"), method=method)
    headers = {str(k): v for k, v in request.headers.items()}
    sim.qimen.append(({**headers, "_query": params}, raw, body, int(time.time() * 1000)))
    sim.tally.counts["qimen_received"] += 1
    return answer


def _between(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>", start)
    return text[start + len(tag) + 2:end] if start >= 0 and end > start else None


async def _received(request: web.Request) -> web.Response:
    sim, order_id = request.app[SIM], request.query.get("order_id")
    if request.query.get("format") == "qimen":
        rows = [{"headers": h, "body": b, "raw": raw.decode("utf-8", "replace"), "received_at": at}
                for h, raw, b, at in sim.qimen if order_id is None or b.get("deliveryOrderCode") == order_id]
        return _json({"received": rows})
    rows = [{"headers": h, "body": orjson.loads(raw), "raw": raw.decode("utf-8", "replace"), "received_at": at}
            for h, raw, oid, at in sim.received if order_id is None or oid == order_id]
    return _json({"received": rows})


async def _forget(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    sim.received.clear()
    sim.qimen.clear()
    sim.tally = Tally()
    return _json({"ok": True})


async def _faults(request: web.Request) -> web.Response:
    return _json(request.app[SIM].faults.public(time.time()))


async def _add_fault(request: web.Request) -> web.Response:
    try:
        spec = orjson.loads(await request.read())
        kind, count = spec["kind"], int(spec.get("count", 1))
        seconds = float(spec.get("seconds", 2.0))
        for_seconds = None if spec.get("for_seconds") is None else float(spec["for_seconds"])
        if count < 0 or seconds < 0 or (for_seconds is not None and for_seconds < 0):
            raise ValueError("count and seconds must not be negative")
        request.app[SIM].faults.add(kind, count, seconds, for_seconds, time.time())
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return _json({"ok": False, "error": f'expected {{"kind": "down"|"error_5xx"|"slow", "count": N}}: {exc}'},
                     400)
    return _json({"ok": True, **request.app[SIM].faults.public(time.time())})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[SIM].faults = FaultPlan()
    return _json({"ok": True})


async def _shipments(request: web.Request) -> web.Response:
    warehouse = request.app[SIM].warehouse
    rows = [] if warehouse is None else [p.public() for p in warehouse.pickings.values()]
    return _json({"shipments": rows})


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[SIM].tally.public())


async def _arrivals(request: web.Request) -> web.Response:
    return _json({"arrivals": list(request.app[SIM].tally.arrivals)})


def main() -> None:
    """`python -m connectors.erp.simulator --port P`: the simulator alone, without a warehouse (benchmarks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
