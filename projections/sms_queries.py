"""Read queries of the SMS hub (blocking: run them in a thread) over `sms_messages` (one row per message after
FINAL). The API shows a message claimed for sending (`sending`) as `queued`: it still waits for its provider."""

from __future__ import annotations

from projections.anomaly_queries import quote
from projections.clickhouse.ddl import check_identifier
from schemas.canonical import ms_to_iso
from schemas.sms import SHOWN

SMS_LIST_DEFAULT, SMS_LIST_MAX = 100, 1000
API_STATUSES = ("queued", "sent", "delivered", "failed", "suppressed", "unreachable")
_SELECT = ("key, order_id, shop_id, trigger, template, kind, channel, provider, status, reason, to_masked, segments, "
           "toUnixTimestamp64Milli(created_at) AS created_ms, toUnixTimestamp64Milli(sent_at) AS sent_ms")


def sms_item(row: dict) -> dict:
    """A row -> the API form of a message (times ISO-8601 Z; the number only masked)."""
    return {"key": row["key"], "order_id": row["order_id"], "shop_id": row["shop_id"], "trigger": row["trigger"],
            "template": row["template"], "kind": row["kind"], "channel": row["channel"],
            "provider": row["provider"], "status": SHOWN.get(row["status"], row["status"]), "reason": row["reason"],
            "to_masked": row["to_masked"], "segments": int(row["segments"]),
            "created_at": ms_to_iso(int(row["created_ms"])),
            "sent_at": ms_to_iso(int(row["sent_ms"])) if row["sent_ms"] is not None else None}


def list_sms(backend, db: str, order_id: str | None = None, shop: str | None = None, status: str | None = None,
             limit: int = SMS_LIST_DEFAULT) -> list[dict]:
    """Messages newest first, filtered by order, shop and (API) status."""
    db = check_identifier(db)
    where = []
    if order_id:
        where.append(f"order_id = {quote(order_id)}")
    if shop:
        where.append(f"shop_id = {quote(shop)}")
    if status:
        shown = [status, *(s for s, api in SHOWN.items() if api == status)]
        where.append(f"status IN ({', '.join(quote(s) for s in shown)})")
    sql = (f"SELECT {_SELECT} FROM {db}.sms_messages FINAL {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY created_at DESC, key LIMIT {max(1, min(int(limit), SMS_LIST_MAX))}")
    return [sms_item(row) for row in backend.query(sql)]


def sms_stats(backend, db: str) -> dict:
    """Per shop and template: sent (reached a provider), delivered, failed, suppressed, queued, unreachable; the
    failures by provider, shop and code; held-back messages by reason."""
    db = check_identifier(db)
    table = f"{db}.sms_messages FINAL"
    by_template = backend.query(
        "SELECT shop_id, template, "
        "countIf(status IN ('sent', 'delivered') OR (status = 'failed' AND reported_at IS NOT NULL)) AS sent, "
        "countIf(status = 'delivered') AS delivered, countIf(status = 'failed') AS failed, "
        "countIf(status = 'suppressed') AS suppressed, countIf(status IN ('queued', 'sending')) AS queued, "
        f"countIf(status = 'unreachable') AS unreachable FROM {table} GROUP BY shop_id, template "
        "ORDER BY shop_id, template")
    failures = backend.query(
        f"SELECT ifNull(provider, '') AS provider, shop_id, ifNull(code, '') AS code, count() AS messages FROM {table} "
        "WHERE status = 'failed' GROUP BY provider, shop_id, code ORDER BY messages DESC LIMIT 100")
    held = backend.query(
        f"SELECT status, ifNull(reason, '') AS reason, count() AS messages FROM {table} "
        "WHERE status IN ('queued', 'suppressed', 'unreachable') GROUP BY status, reason ORDER BY messages DESC")
    counts = ("sent", "delivered", "failed", "suppressed", "queued", "unreachable")
    return {"by_template": [{**r, **{c: int(r[c]) for c in counts}} for r in by_template],
            "failures": [{**r, "messages": int(r["messages"])} for r in failures],
            "held": [{**r, "messages": int(r["messages"])} for r in held]}
