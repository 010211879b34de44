"""Faithful local stand-ins for the chat robots and the SMS gateway, in ONE aiohttp app.

Real-looking API (answers shaped like erp_and_messaging.md §3/§4 and the fixtures):
- `POST /robot/send?access_token=..&timestamp=..&sign=..`  DingTalk: unknown token 300001, bad/missing sign or
  timestamp off by > 1 h 310000, keyword missing 310000, > 20/min per robot 130101 (robot throttled 10 min)
- `POST /open-apis/bot/v2/hook/{token}`                    Feishu/Lark: 19021 sign/timestamp, 19024 keyword,
  5/s and 100/min per bot 11232, unknown token 19001
- `POST /cgi-bin/webhook/send?key=..`                      WeCom: unknown key 93000, > 20/min 45009,
  text > 2048 / markdown > 4096 bytes 40058, bad msgtype 40008
- `POST /sms/`                                              Aliyun SendSms (see `sim_sms`)

Control API (not part of any real service):
- `GET /_sim/messages?service=dingtalk[&robot=..]` → {"messages":[{service, robot, title, text, received_at}]}
- `DELETE /_sim/messages[?service=..]`                → forget messages and rate windows
- `POST /_sim/robots {"service", "robot", "secret"?, "keyword"?, "per_minute"?, "per_second"?,
  "penalty_seconds"?}` (SMS: "per_number_minute"/"_hour"/"_day")
- `GET /_sim/robots`                                  → configured robots (defaults in `sim_store`)
- `POST /_sim/faults {"service", "kind": "down"|"error_5xx"|"slow", "count": 1, "seconds": 2}`;
  `DELETE /_sim/faults`. down → 503 (SMTP 421), error_5xx → 500 (SMTP 451), slow → answer late
"""
from __future__ import annotations

import asyncio
import hmac
import time

import orjson
from aiohttp import web

from connectors.alerts.signing import dingtalk_sign_b64, feishu_sign
from connectors.alerts.sim_sms import handle_sms
from connectors.alerts.sim_store import SimStore

STORE = web.AppKey("alert_sim_store", SimStore)
HOUR_MS = 3_600_000


def create_app(store: SimStore | None = None) -> web.Application:
    """The alert simulator app; pass the `SimStore` of an SMTP sink to show mails under service=email."""
    app = web.Application()
    app[STORE] = store or SimStore()
    app.router.add_post("/robot/send", dingtalk_send)
    app.router.add_post("/open-apis/bot/v2/hook/{token}", feishu_send)
    app.router.add_post("/cgi-bin/webhook/send", wecom_send)
    app.router.add_post("/sms/", _sms)
    app.router.add_get("/_sim/messages", _messages)
    app.router.add_delete("/_sim/messages", _clear_messages)
    app.router.add_get("/_sim/robots", _robots)
    app.router.add_post("/_sim/robots", _configure_robot)
    app.router.add_post("/_sim/faults", _add_fault)
    app.router.add_delete("/_sim/faults", _clear_faults)
    return app


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def apply_fault(store: SimStore, service: str) -> web.Response | None:
    """Play the next planned fault: `down` → 503, `error_5xx` → 500, `slow` → sleep then serve normally."""
    fault = store.take_fault(service)
    if fault is None:
        return None
    kind, seconds = fault
    if kind == "down":
        return web.Response(status=503, text="503 Service Temporarily Unavailable")
    if kind == "error_5xx":
        return _json({"errcode": -1, "errmsg": "系统繁忙 system busy"}, status=500)
    await asyncio.sleep(seconds)
    return None


async def _read_json(request: web.Request) -> dict | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _limits(robot: dict, per_minute: int, per_second: int | None = None) -> list[tuple[int, float]]:
    limits = [(int(robot.get("per_minute", per_minute)), 60.0)]
    if per_second or robot.get("per_second"):
        limits.append((int(robot.get("per_second", per_second)), 1.0))
    return limits


# -- DingTalk ------------------------------------------------------------------------------------------------
def _dingtalk_text(body: dict) -> tuple[str, str] | None:
    kind = body.get("msgtype")
    part = body.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return None
    if kind == "text":
        return "", str(part.get("content", ""))
    if kind in ("markdown", "link", "actionCard"):
        return str(part.get("title", "")), str(part.get("text", ""))
    if kind == "feedCard":
        return "", "\n".join(str(link.get("title", "")) for link in part.get("links", []))
    return None


async def dingtalk_send(request: web.Request) -> web.Response:
    """DingTalk custom robot `robot/send`."""
    store = request.app[STORE]
    if (fault := await apply_fault(store, "dingtalk")) is not None:
        return fault
    token = request.query.get("access_token", "")
    robot = store.robot("dingtalk", token)
    if robot is None:
        return _json({"errcode": 300001, "errmsg": "token is not exist"})
    if secret := robot.get("secret"):
        ts, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
        if not ts.isdigit() or abs(int(store.clock() * 1000) - int(ts)) > HOUR_MS:
            return _json({"errcode": 310000, "errmsg": "invalid timestamp"})
        if not hmac.compare_digest(sign.encode(), dingtalk_sign_b64(secret, ts).encode()):
            return _json({"errcode": 310000,
                          "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
    body = await _read_json(request)
    parsed = _dingtalk_text(body) if body else None
    if parsed is None:
        return _json({"errcode": 40035, "errmsg": "缺少参数 json"})
    title, text = parsed
    if (keyword := robot.get("keyword")) and keyword not in title + text:
        return _json({"errcode": 310000, "errmsg": "keywords not in content"})
    if not store.admit(("dingtalk", token), _limits(robot, 20), float(robot.get("penalty_seconds", 600))):
        return _json({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    store.record("dingtalk", token, text, title, msgtype=body["msgtype"])
    return _json({"errcode": 0, "errmsg": "ok"})


# -- Feishu / Lark -------------------------------------------------------------------------------------------
def _feishu_text(body: dict) -> tuple[str, str] | None:
    kind, content = body.get("msg_type"), body.get("content")
    content = content if isinstance(content, dict) else {}
    if kind == "text" and isinstance(content.get("text"), str):
        return "", content["text"]
    if kind == "interactive" and isinstance(body.get("card"), dict):
        card = body["card"]
        title = str(card.get("header", {}).get("title", {}).get("content", ""))
        elements = [el for el in card.get("elements", []) if isinstance(el, dict) and "text" in el]
        texts = [str(el["text"].get("content", "")) for el in elements]
        return title, "\n".join(texts)
    if kind == "post" and isinstance(content.get("post"), dict):
        post = next(iter(content["post"].values()), {})
        lines = [" ".join(str(node.get("text", "")) for node in line) for line in post.get("content", [])]
        return str(post.get("title", "")), "\n".join(lines)
    return None


async def feishu_send(request: web.Request) -> web.Response:
    """Feishu/Lark custom bot webhook."""
    store = request.app[STORE]
    if (fault := await apply_fault(store, "feishu")) is not None:
        return fault
    token = request.match_info["token"]
    robot = store.robot("feishu", token)
    if robot is None:
        return _json({"code": 19001, "data": {},
                      "msg": "param invalid: incoming webhook access token invalid"})
    body = await _read_json(request)
    if body is None:
        return _json({"code": 9499, "data": {}, "msg": "Bad Request"}, status=400)
    if secret := robot.get("secret"):
        ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
        fresh = ts.isdigit() and abs(store.clock() - int(ts)) <= 3600
        if not fresh or not hmac.compare_digest(sign.encode(), feishu_sign(secret, ts).encode()):
            return _json({"code": 19021, "data": {},
                          "msg": "sign match fail or timestamp is not within one hour from current time"})
    parsed = _feishu_text(body)
    if parsed is None:
        return _json({"code": 9499, "data": {}, "msg": "Bad Request"}, status=400)
    title, text = parsed
    if (keyword := robot.get("keyword")) and keyword not in title + text:
        return _json({"code": 19024, "data": {}, "msg": "Key Words Not Found"})
    if not store.admit(("feishu", token), _limits(robot, 100, 5)):
        return _json({"code": 11232, "data": {},
                      "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"})
    store.record("feishu", token, text, title, msgtype=body["msg_type"])
    return _json({"code": 0, "data": {}, "msg": "success"})


# -- WeCom ---------------------------------------------------------------------------------------------------
WECOM_MAX_BYTES = {"text": 2048, "markdown": 4096}


async def wecom_send(request: web.Request) -> web.Response:
    """WeCom group robot `cgi-bin/webhook/send`."""
    store = request.app[STORE]
    if (fault := await apply_fault(store, "wecom")) is not None:
        return fault
    key = request.query.get("key", "")
    robot = store.robot("wecom", key)
    if robot is None:
        return _json({"errcode": 93000, "errmsg": "invalid webhook url, hint: [sim]"})
    body = await _read_json(request) or {}
    kind = body.get("msgtype")
    content = (body.get(kind) or {}).get("content") if kind in WECOM_MAX_BYTES else None
    if not isinstance(content, str):
        return _json({"errcode": 40008, "errmsg": "invalid message type"})
    if len(content.encode("utf-8")) > WECOM_MAX_BYTES[kind]:
        return _json({"errcode": 40058,
                      "errmsg": f"{kind}.content exceed max length {WECOM_MAX_BYTES[kind]}"})
    if not store.admit(("wecom", key), _limits(robot, 20)):
        return _json({"errcode": 45009, "errmsg": "api freq out of limit"})
    store.record("wecom", key, content, "", msgtype=kind)
    return _json({"errcode": 0, "errmsg": "ok"})


async def _sms(request: web.Request) -> web.Response:
    store = request.app[STORE]
    if (fault := await apply_fault(store, "sms")) is not None:
        return fault
    return await handle_sms(request, store)


# -- control -------------------------------------------------------------------------------------------------
async def _messages(request: web.Request) -> web.Response:
    messages = request.app[STORE].messages(request.query.get("service"), request.query.get("robot"))
    return _json({"messages": messages, "now": int(time.time() * 1000)})


async def _clear_messages(request: web.Request) -> web.Response:
    request.app[STORE].clear(request.query.get("service"))
    return _json({"ok": True})


async def _robots(request: web.Request) -> web.Response:
    return _json({"robots": request.app[STORE].robots})


async def _configure_robot(request: web.Request) -> web.Response:
    body = await _read_json(request) or {}
    ids = ("service", "robot", "token", "key", "access_key_id")
    options = {k: v for k, v in body.items() if k not in ids}
    robot = body.get("robot") or body.get("token") or body.get("key") or body.get("access_key_id")
    try:
        if not robot:
            raise ValueError("robot (token / key / access_key_id) is required")
        request.app[STORE].configure(str(body.get("service")), str(robot), options)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json({"ok": True, "service": body["service"], "robot": robot})


async def _add_fault(request: web.Request) -> web.Response:
    body = await _read_json(request) or {}
    try:
        pending = request.app[STORE].add_fault(str(body.get("service")), str(body.get("kind")),
                                               int(body.get("count", 1)), float(body.get("seconds", 2.0)))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json({"pending": pending})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[STORE].clear_faults()
    return _json({"ok": True})
