"""The OpenAPI 3.1 description of Tonglu's HTTP API (served at `GET /api/openapi.json`) and of the webhooks
Tonglu sends to ERPs (`webhooks`).

One operation per route of `projections.access.ROUTES`, each marked with the role it needs
(`x-tonglu-role`); a test checks that every registered route is described and that nothing else is
(routes of `access.PLANNED` may be described before their handler exists). The canonical order's
schema is derived from `schemas/tonglu.Order.avsc` (`json_schema`), so the document cannot drift from
the contract.
"""
from __future__ import annotations

from functools import cache

from projections import sms_queries
from projections.access import OPEN, ROUTES
from schemas import registry

VERSION = "0.1.0"
_ERROR = {"$ref": "#/components/responses/Error"}


def json_schema(avro, named: dict | None = None) -> dict:
    """The JSON Schema of an Avro type as Tonglu writes it in JSON: times (timestamp-millis) as ISO-8601
    strings with Z, a nullable union as the type or null, every field of a record present. `named` collects
    the named types met so far (a later mention by name reuses them)."""
    named = {} if named is None else named
    if isinstance(avro, list):
        kinds = [json_schema(t, named) for t in avro if t != "null"]
        one = kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
        return {"anyOf": [one, {"type": "null"}]} if "null" in avro else one
    if isinstance(avro, str):
        primitive = {"string": {"type": "string"}, "long": {"type": "integer"}, "int": {"type": "integer"},
                     "boolean": {"type": "boolean"}, "double": {"type": "number"}, "float": {"type": "number"},
                     "bytes": {"type": "string"}, "null": {"type": "null"}}
        return primitive.get(avro) or named[avro if "." in avro else f"{registry.NAMESPACE}.{avro}"]
    kind = avro["type"]
    if avro.get("logicalType") == "timestamp-millis":
        return {"type": "string", "format": "date-time"}
    if kind == "record":
        props = {f["name"]: {**json_schema(f["type"], named), **({"description": f["doc"]} if f.get("doc") else {})}
                 for f in avro["fields"]}
        out = {"type": "object", "properties": props, "required": [f["name"] for f in avro["fields"]],
               **({"description": avro["doc"]} if avro.get("doc") else {})}
    elif kind == "enum":
        out = {"type": "string", "enum": list(avro["symbols"])}
    elif kind == "array":
        return {"type": "array", "items": json_schema(avro["items"], named)}
    elif kind == "map":
        return {"type": "object", "additionalProperties": json_schema(avro["values"], named)}
    else:
        return json_schema(kind, named)
    name = avro["name"] if "." in avro["name"] else f"{avro.get('namespace', registry.NAMESPACE)}.{avro['name']}"
    named[name] = out
    return out


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


_ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "`{platform}:{shop_id}:{external_id}` (URL-encode the colons or not)"}
_LIMIT = _query("limit", "how many (the route's default and maximum apply)", {"type": "integer", "minimum": 1})
_LIST = {"type": "array", "items": {"type": "object"}}
_MEMBER = {"type": "object", "required": ["member_id", "shop_id"], "properties": {
    **{name: {"type": "string"} for name in ("member_id", "shop_id", "phone", "platform", "token", "name")},
    "birthday": {"type": "string", "description": "MM-DD or YYYY-MM-DD"}, "points": {"type": "integer"},
    "consent": {"type": "boolean"}}}
_IMPORTED = {"type": "object", "properties": {"imported": {"type": "integer"}, "refused": {
    "type": "array", "items": {"type": "string"}, "description": "`line N: reason` (CSV) or `row N: reason` (JSON)"}}}

# (method, route) -> the operation, without its role (taken from access.ROUTES)
OPERATIONS: dict[tuple[str, str], dict] = {
    ("GET", "/"): {"summary": "Status page (HTML; its figures come from viewer routes)", "responses": {
        "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}}},
    ("GET", "/healthz"): {"summary": "Health of every stage and the broker", "responses": {
        "200": _json(_ref("Health"), "every stage up"), "503": _json(_ref("Health"), "a stage or the broker down")}},
    ("GET", "/metrics"): {"summary": "Prometheus metrics", "responses": {"200": {
        "description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}},
    ("GET", "/api/openapi.json"): {"summary": "This document", "responses": {"200": _json({"type": "object"})}},
    ("GET", "/api/stats"): {"summary": "Dashboard figures: orders by platform and status, events/s, lag, dead "
                                       "letters, API success and latency, stages", "responses": {
        "200": _json({"type": "object"})}},
    ("GET", "/api/platforms"): {"summary": "Every platform: code, names, aliases, capabilities", "responses": {
        "200": _json({"type": "object", "properties": {"platforms": _LIST}})}},
    ("GET", "/api/orders"): {"summary": "Latest orders, newest update first", "parameters": [
        _query("platform", "platform code"), _query("shop", "shop id"),
        _query("status", "canonical status", _ref("OrderStatus")),
        _query("hold", "only held (true) or not held (false) orders", {"type": "boolean"}), _LIMIT],
        "responses": {"200": _json({"type": "object", "properties": {
            "orders": {"type": "array", "items": _ref("Order")}, "count": {"type": "integer"}}}), "400": _ERROR}},
    ("GET", "/api/orders/{order_id}"): {
        "summary": "The latest masked canonical order, its version and hold state (open findings)",
        "parameters": [_ORDER_ID], "responses": {"200": _json({"allOf": [_ref("Order"), {
            "type": "object", "properties": {"hold": {"type": "boolean"}, "hold_reasons": _LIST,
                                             "anomalies": _LIST}}]}), "404": _ERROR}},
    ("POST", "/api/orders/{order_id}/release"): {
        "summary": "Release a held order (the detector resolves its holds)", "parameters": [_ORDER_ID],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}},
            "additionalProperties": True}}}},
        "responses": {"202": _json({"type": "object", "properties": {
            "accepted": {"type": "boolean"}, "command_id": {"type": "string"}, "order_id": {"type": "string"},
            "releases": {"type": "array", "items": {"type": "string"}}}}, "accepted"),
            "400": _ERROR, "404": _ERROR, "409": _ERROR, "503": _ERROR}},
    ("POST", "/api/orders/{order_id}/shipments"): {
        "summary": "Ship-back: tell the platform (some lines of) the order left the warehouse",
        "description": "Also accepted on Kafka topic `fulfillment.commands` (Avro `ShipmentCommand`, key order_id). "
                       "Idempotent: the same order and tracking number give the same shipment, uploaded once. "
                       "The platform's answer is published on `fulfillment.results`.",
        "parameters": [_ORDER_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ShipmentRequest")}}},
        "responses": {"202": _json({"type": "object", "required": ["shipment_id", "status"], "properties": {
            "shipment_id": {"type": "string"}, "status": {"type": "string", "enum": ["PENDING"]}}}, "accepted"),
            "400": _ERROR, "404": _ERROR}},
    ("GET", "/api/anomalies"): {"summary": "Findings, newest first (latest state of each)", "parameters": [
        _query("order_id", "one order"), _query("rule", "rule id, e.g. zero_amount"),
        _query("state", "raised or resolved", {"type": "string", "enum": ["raised", "resolved"]}),
        _query("since", "ISO time or epoch ms"), _query("history", "every raised/resolved record",
                                                        {"type": "boolean"}), _LIMIT],
        "responses": {"200": _json({"type": "object", "properties": {"anomalies": _LIST,
                                                                      "count": {"type": "integer"}}}), "400": _ERROR}},
    ("GET", "/api/alerts"): {"summary": "Alert messages, newest first: channel, ok, attempts", "parameters": [
        _query("rule", "rule id"), _LIMIT], "responses": {"200": _json({"type": "object", "properties": {
            "alerts": _LIST, "count": {"type": "integer"}}}), "400": _ERROR}},
    ("GET", "/api/sms"): {"summary": "SMS to buyers and members, newest first (latest state of each; recipient "
                                     "masked, never the number)", "parameters": [
        _query("order_id", "one order"), _query("shop", "shop id"),
        _query("status", "the message's state", {"type": "string", "enum": list(sms_queries.API_STATUSES)}),
        _LIMIT], "responses": {"200": _json({"type": "object", "properties": {"messages": _LIST}}), "400": _ERROR}},
    ("GET", "/api/sms/stats"): {"summary": "SMS figures per shop and template (sent, delivered, failed, suppressed, "
                                           "queued, unreachable) and failures by provider, shop and code",
                                "responses": {"200": _json({"type": "object"})}},
    ("POST", "/api/sms/members"): {
        "summary": "Import members for birthday greetings and points notices (as `tonglu sms members FILE.csv`); good "
                   "rows are imported, bad ones refused with their CSV line or JSON row number",
        "requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string", "description": "header member_id,shop_id and any of phone, "
                                                                      "platform, token, name, birthday, points, consent"}},
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": _MEMBER},
                {"type": "object", "required": ["members"], "properties": {"members": {"type": "array",
                                                                                       "items": _MEMBER}}}]}}}},
        "responses": {"200": _json(_IMPORTED), "422": _json(_IMPORTED, "some rows refused"), "400": _ERROR,
                      "503": _ERROR}},
    ("POST", "/api/sql"): {"summary": "Read-only analyst SQL over the tonglu tables, under limits",
                           "requestBody": {"required": True, "content": {"application/json": {"schema": {
                               "type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}}}},
                           "responses": {"200": _json({"type": "object", "properties": {
                               "columns": {"type": "array", "items": {"type": "string"}},
                               "rows": {"type": "array", "items": {"type": "array"}}}}), "400": _ERROR}},
    ("GET", "/api/tokens"): {"summary": "Every token (never the token itself)", "responses": {
        "200": _json({"type": "object", "properties": {"tokens": _LIST}})}},
    ("POST", "/api/tokens"): {"summary": "Create a token (shown once)", "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["name", "role"], "properties": {
            "name": {"type": "string"}, "role": {"type": "string", "enum": ["viewer", "operator", "admin"]}}}}}},
        "responses": {"201": _json({"type": "object", "properties": {"token": {"type": "string"}}}, "created"),
                      "400": _ERROR}},
    ("DELETE", "/api/tokens/{token_id}"): {"summary": "Revoke a token", "parameters": [{
        "name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _json({"type": "object"}), "404": _ERROR}},
}

_SIGNED_HEADERS = {
    "X-Tonglu-Event-Id": ("the event id: the same on every retry and replay — drop repeats by it", "string"),
    "Idempotency-Key": ("the event id again, for receivers that look for this name", "string"),
    "X-Tonglu-Event": ("the event type, e.g. OrderPaid", "string"),
    "X-Tonglu-Delivery": ("unique per attempt", "string"),
    "X-Tonglu-Timestamp": ("unix seconds of the attempt; refuse one more than 300 s from your clock", "string"),
    "X-Tonglu-Signature": ('`sha256=` + hex HMAC-SHA256(secret, timestamp + "." + the raw body)', "string"),
}


def _webhooks() -> dict:
    headers = [{"name": name, "in": "header", "required": True, "description": text, "schema": {"type": kind}}
               for name, (text, kind) in _SIGNED_HEADERS.items()]
    return {
        "erpOrderEvent": {"post": {
            "summary": "Every order event, to each configured ERP endpoint (format json)",
            "description": "Delivered in version order per order; anything but a 2xx (or no answer within the "
                           "endpoint's timeout) is retried with jittered, capped backoff, then dead-lettered to "
                           "`erp.dlq` and replayable (`tonglu erp replay`). See README, \"ERP delivery\".",
            "parameters": headers,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ErpOrderEvent")}}},
            "responses": {"2XX": {"description": "accepted (anything else is retried)"}}}},
        "qimenDeliveryOrderCreate": {"post": {
            "summary": "Qimen `taobao.qimen.deliveryorder.create` for WMSs (format qimen)",
            "description": "System parameters in the query string (method, app_key, customerId, timestamp in "
                           "Beijing time, format=xml, v=2.0, sign_method=md5, sign = UPPER(MD5(secret + sorted "
                           "key+value + body + secret))); deliveryOrderCode is the order id.",
            "requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"}}}},
            "responses": {"2XX": {"description": "accepted when the XML says <flag>success</flag>"}}}},
    }


def _components() -> dict:
    order = json_schema(registry.current("Order"))
    status = order["properties"]["status"]
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description":
                                       "a Tonglu API token (`tonglu token create`); roles viewer < operator < admin"}},
        "responses": {"Error": _json({"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string", "description": "one line, Chinese and English"}}}, "refused, with the reason")},
        "schemas": {
            "Order": order,
            "OrderStatus": {k: v for k, v in status.items() if k != "description"},
            "ErpOrderEvent": {"type": "object", "required": [
                "event_id", "event_type", "order_id", "version", "occurred_at", "order"], "properties": {
                "event_id": {"type": "string"}, "event_type": {"type": "string", "description": "past tense: "
                                                               "OrderCreated, OrderPaid, OrderShipped, …"},
                "order_id": {"type": "string"}, "version": {"type": "integer"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "order": {**_ref("Order"), "description": "the canonical order after the event, as `tonglu "
                                                          "normalize` prints it"}},
                "additionalProperties": False},
            "ShipmentRequest": {"type": "object", "required": ["carrier", "tracking_no"], "properties": {
                "carrier": {"type": "string", "description": "ZTO, 中通快递, or the platform's own code"},
                "tracking_no": {"type": "string"},
                "line_ids": {"type": "array", "items": {"type": "string"},
                             "description": "omitted: every unshipped line"}}},
            "Health": {"type": "object", "required": ["status", "stages"], "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "stages": {"type": "object", "additionalProperties": {"type": "object"}}}},
        },
    }


def _operation(method: str, route: str) -> dict:
    rule = ROUTES[(method, route)]
    role = "open" if rule.role is OPEN else rule.role.label
    op = {**OPERATIONS[(method, route)], "operationId": f"{method.lower()}{route}".replace("/", "_")
          .replace("{", "").replace("}", "").replace(".", "_").rstrip("_"), "x-tonglu-role": role}
    if rule.role is OPEN:
        op["security"] = []
    else:
        op["responses"] = {**op["responses"], "401": _ERROR, "403": _ERROR}
    return op


@cache
def document() -> dict:
    """The whole OpenAPI document (built once)."""
    paths: dict[str, dict] = {}
    for method, route in ROUTES:
        paths.setdefault(route, {})[method.lower()] = _operation(method, route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tonglu (通路) HTTP API", "version": VERSION, "description":
                 "The order hub's HTTP API and the webhooks it sends to ERPs. Every route needs the role in its "
                 "`x-tonglu-role` (viewer < operator < admin; `open`: no token)."},
        "servers": [{"url": "http://127.0.0.1:8080", "description": "the local stack (TONGLU_HTTP)"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": _webhooks(),
        "components": _components(),
    }
