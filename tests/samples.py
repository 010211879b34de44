"""Valid sample records (canonical orders, events, connector calls, dead letters, anomalies, alert
reports) for tests and benches."""

from __future__ import annotations

import hashlib

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_STATUSES = ("PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED", "COMPLETED")
_EVENT_TYPES = ("OrderCreated", "OrderPaid", "OrderShipped", "OrderDelivered", "OrderCompleted")


def sample_order(
    platform: str = "taobao",
    shop_id: str = "shop1",
    external_id: str = "1001",
    version: int = 1,
    *,
    base_ms: int = BASE_MS,
) -> dict:
    """A canonical order at `version` (status advances with the version), already masked."""
    status = _STATUSES[min(version - 1, len(_STATUSES) - 1)]
    shipped = version >= 3
    return {
        "order_id": f"{platform}:{shop_id}:{external_id}",
        "platform": platform,
        "shop_id": shop_id,
        "external_id": external_id,
        "status": status,
        "refund_status": "NONE",
        "platform_status": status.lower(),
        "created_at": base_ms,
        "paid_at": base_ms + 60_000 if version >= 2 else None,
        "updated_at": base_ms + version * 60_000,
        "shipped_at": base_ms + 180_000 if shipped else None,
        "delivered_at": base_ms + 240_000 if version >= 4 else None,
        "currency": "CNY",
        "items_total": 19_800,
        "shipping_fee": 1_000,
        "discount_total": 500,
        "tax_total": 0,
        "paid_total": 20_300,
        "buyer": {"id": "b-1", "nick_masked": "t***", "message": None},
        "receiver": {
            "name_masked": "张*",
            "phone_masked": "138****5678",
            "country": "CN",
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "address_masked": "文三****",
            "postal_code": None,
            "secure_token": None,
        },
        "lines": [
            {
                "line_id": "1",
                "sku_id": "sku-1",
                "merchant_sku": "M-1",
                "title": "龙井茶 250g",
                "quantity": 2,
                "unit_price": 9_900,
                "total": 19_800,
                "discount": 0,
                "refund_status": "NONE",
            }
        ],
        "shipments": [
            {"carrier": "SF", "tracking_no": "SF100", "shipped_at": base_ms + 180_000, "line_ids": ["1"]}
        ]
        if shipped
        else [],
        "version": version,
        "refunded_total": 0,
    }


def sample_event(
    platform: str = "taobao",
    shop_id: str = "shop1",
    external_id: str = "1001",
    version: int = 1,
    *,
    base_ms: int = BASE_MS,
) -> dict:
    """An OrderEvent producing `version` of the sample order, with a deterministic event_id."""
    order = sample_order(platform, shop_id, external_id, version, base_ms=base_ms)
    event_type = _EVENT_TYPES[min(version - 1, len(_EVENT_TYPES) - 1)]
    event_id = hashlib.sha1(f"{order['order_id']}|{version}|{event_type}".encode()).hexdigest()
    return {
        "event_id": event_id,
        "event_type": event_type,
        "order_id": order["order_id"],
        "version": version,
        "seq": 0,
        "occurred_at": order["updated_at"],
        "recorded_at": order["updated_at"] + 500,
        "changed_fields": ["status"],
        "raw_record_id": None,
        "source": "poll",
        "order": order,
    }


def sample_call(
    call_id: str = "c1",
    platform: str = "taobao",
    shop_id: str = "shop1",
    *,
    ok: bool = True,
    latency_ms: float = 120.0,
    started_at: int = BASE_MS,
) -> dict:
    """A ConnectorCall record."""
    return {
        "call_id": call_id,
        "platform": platform,
        "shop_id": shop_id,
        "endpoint": "taobao.trades.sold.get",
        "started_at": started_at,
        "latency_ms": latency_ms,
        "http_status": 200 if ok else 500,
        "ok": ok,
        "error_code": None if ok else "isp.remote-service-error",
        "records": 10 if ok else 0,
        "attempt": 1,
    }


def sample_dead_letter(offset: int = 7, topic: str = "raw.orders") -> dict:
    """A DeadLetter record of a raw record that failed mapping."""
    return {
        "stage": "map",
        "error": "MappingError: not a money amount: 'abc'",
        "failed_at": BASE_MS,
        "topic": topic,
        "partition": 1,
        "offset": offset,
        "key": b"k",
        "value": b"{bad}",
        "platform": "taobao",
        "shop_id": "shop1",
        "external_id": "1001",
    }


def sample_anomaly(
    order_id: str = "taobao:shop1:1001",
    rule: str = "amount_mismatch",
    *,
    action: str = "hold",
    state: str = "raised",
    detected_at: int = BASE_MS,
    severity: str = "warning",
    evidence: dict | None = None,
) -> dict:
    """An Anomaly record; anomaly_id is derived from order_id|rule like the detector's."""
    platform, shop_id, _ = order_id.split(":", 2)
    return {
        "anomaly_id": hashlib.blake2b(f"{order_id}|{rule}".encode(), digest_size=16).hexdigest(),
        "order_id": order_id,
        "event_id": None,
        "platform": platform,
        "shop_id": shop_id,
        "rule": rule,
        "severity": severity,
        "action": action,
        "state": state,
        "message_zh": "金额不一致：应付 157.80，实付 150.00",
        "message_en": "amount mismatch: due 157.80, paid 150.00",
        "evidence": {"expected": "15780", "actual": "15000"} if evidence is None else evidence,
        "detected_at": detected_at,
        "order_version": 1,
    }


def sample_alert_report(
    key: str = "ops|amount_mismatch|1",
    *,
    ok: bool = True,
    rule: str = "amount_mismatch",
    finished_at: int = BASE_MS,
) -> dict:
    """An AlertReport: one failed attempt on the first channel, then (when `ok`) delivery on the second."""
    attempts = [
        {
            "channel": "dingtalk",
            "attempt": 1,
            "ok": False,
            "error": "HTTP 503",
            "code": "503",
            "retryable": True,
            "started_at": finished_at - 900,
            "latency_ms": 120.5,
        },
    ]
    if ok:
        attempts.append(
            {
                "channel": "wecom",
                "attempt": 1,
                "ok": True,
                "error": None,
                "code": None,
                "retryable": False,
                "started_at": finished_at - 300,
                "latency_ms": 80.0,
            }
        )
    return {
        "key": key,
        "ok": ok,
        "channel": "wecom" if ok else None,
        "route": "ops",
        "rule": rule,
        "kind": "immediate",
        "severity": "critical",
        "title": "金额不一致 1 单 / 1 amount mismatch",
        "anomaly_ids": ["a" * 32],
        "order_ids": ["taobao:shop1:1001"],
        "attempts": attempts,
        "finished_at": finished_at,
    }


def sample_shipment_result(order_id: str = "taobao:shop1:1001", status: str = "UPLOADED", *, tracking_no: str = "SF100",
                           attempt: int = 1, recorded_at: int = BASE_MS, reason: str | None = None) -> dict:
    """A ShipmentResult as the ship-back worker publishes it on fulfillment.results."""
    return {"shipment_id": hashlib.blake2b(f"{order_id}|{tracking_no}".encode(), digest_size=16).hexdigest(),
            "order_id": order_id, "status": status, "carrier_code": "SF", "tracking_no": tracking_no,
            "line_ids": ["1"], "attempt": attempt, "reason": reason, "recorded_at": recorded_at}


def carrier_push(tracking_no: str, turn: str = "delivered", company: str = "zhongtong", salt: str = "s") -> bytes:
    """The form body of a Kuaidi100 push about a parcel that just took `turn` (delivered, exception,
    returned, refused), as the tracking simulator sends it, signed with `salt`."""
    import time
    from urllib.parse import urlencode

    from connectors.tracking import kuaidi100
    from connectors.tracking.parcels import Parcels

    parcels = Parcels("k")
    parcels.subscribe({"key": "k", "company": company, "number": tracking_no,
                       "parameters": {"callbackurl": "http://127.0.0.1/webhooks/kuaidi100", "salt": salt}},
                      time.time(), None)
    parcel = parcels.advance(tracking_no, turn, time.time())
    return urlencode(kuaidi100.push_form(parcel.push(), salt)).encode()
