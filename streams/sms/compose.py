"""From an order event to the messages it fires — a pure function of the event, the configuration and the time.

`requests_for(event, config, now_ms, resolvable)` reads the event's trigger (its type, with the tracking step for
`TrackingUpdated`), finds the shop's templates for it, fills their variables from the order snapshot — order
number, amount, first item, carrier and tracking number, never a name, phone or street — and names the recipient's
channel: the platform's token (its official channel), a plain phone the sender can look up on the platform
(`resolvable(platform)`), or nobody. Each message is keyed by (order, trigger, template): a replayed or repeated
event gives the same keys, which the sender finds taken.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from connectors.sms.text import segments
from streams.sms.identity import message_key
from streams.sms.templates import SmsConfig, Template

TRACKING = "TrackingUpdated"
HOUR_MS = 3_600_000
TITLE_CHARS = 20  # providers cap a variable's length (isv.PARAM_LENGTH_LIMIT); a title is cut to this
# what a variable says when the event does not carry it
FALLBACKS = {"eta": "近日", "delay_reason": "运输原因", "carrier": "快递", "tracking_no": "-", "step": "运输中"}
_VARIABLE = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)")
# where a TrackingUpdated event may carry its step: on the event, or on the order's latest shipment
_STEP_FIELDS = ("tracking_step", "step", "tracking_state")


def tracking_step(event: Mapping) -> str | None:
    """The carrier step a TrackingUpdated event reports (`到达中转`, `派送中`, ...), wherever it carries it."""
    for name in _STEP_FIELDS:
        if event.get(name):
            return str(event[name])
    shipments = (event.get("order") or {}).get("shipments") or []
    for name in _STEP_FIELDS:
        if shipments and shipments[-1].get(name):
            return str(shipments[-1][name])
    return None


def trigger_of(event: Mapping) -> tuple[str, str | None]:
    """(event type, detail): the tracking step for tracking updates, else no detail."""
    kind = event["event_type"]
    return (kind, tracking_step(event)) if kind == TRACKING else (kind, None)


def trigger_name(kind: str, detail: str | None) -> str:
    """The trigger as the configuration and the key name it: `OrderPaid`, `TrackingUpdated:派送中`."""
    return f"{kind}:{detail}" if detail else kind


def variable_order(template: Template) -> list[str]:
    """The variables of a template in the order its text first uses them (Tencent's parameters are positional)."""
    seen: list[str] = []
    for name in _VARIABLE.findall(template.text):
        if name not in seen:
            seen.append(name)
    return seen


def _yuan(minor: int | None) -> str:
    return f"{(minor or 0) / 100:.2f}"


def order_variables(event: Mapping, shop_name: str, step: str | None) -> dict[str, str]:
    """Every template variable an order event can fill (strings; none of them personal data)."""
    order = event["order"]
    lines = order.get("lines") or []
    shipment = (order.get("shipments") or [{}])[-1]
    refunded = order.get("refunded_total") or (order["paid_total"] if order.get("refund_status") == "REFUNDED" else 0)
    found = {
        "shop_name": shop_name, "order_no": order["external_id"], "amount": _yuan(order.get("paid_total")),
        "item": (lines[0]["title"][:TITLE_CHARS] if lines else ""),
        "item_count": str(sum(line.get("quantity", 0) for line in lines)),
        "carrier": shipment.get("carrier"), "tracking_no": shipment.get("tracking_no"), "step": step,
        "eta": event.get("eta") or shipment.get("eta"), "delay_reason": event.get("delay_reason"),
        "refund_amount": _yuan(refunded),
    }
    return {k: str(v) if v not in (None, "") else FALLBACKS.get(k, "") for k, v in found.items()}


def channel_of(order: Mapping, resolvable: Callable[[str], bool]) -> tuple[str, str | None]:
    """(channel, token): the platform's token wins (its official channel); else a plain phone the sender can
    look up; else nobody."""
    receiver = order.get("receiver") or {}
    if receiver.get("secure_token"):
        return "platform", receiver["secure_token"]
    if receiver.get("phone_masked") and resolvable(order["platform"]):
        return "gateway", None
    return "none", None


def build_request(*, key: str, template_name: str, template: Template, variables: Mapping[str, str],
                  platform: str, shop_id: str, trigger: str, detail: str | None, channel: str,
                  occurred_at: int, now_ms: int, order_id: str | None = None, member_id: str | None = None,
                  token: str | None = None, contact: dict | None = None, phone_hash: str | None = None,
                  to_masked: str | None = None, consent: bool | None = None,
                  providers: Sequence[str] | None = None) -> dict:
    """One `SmsRequest` record, with the template codes of `providers` (the gateways for a plain number, the
    platform's channel for its token; every code when not given)."""
    names = variable_order(template)
    text = template.render(variables)
    codes = template.codes if providers is None else {p: template.codes[p] for p in providers
                                                      if p in template.codes}
    return {
        "key": key, "order_id": order_id, "member_id": member_id, "platform": platform, "shop_id": shop_id,
        "trigger": trigger, "trigger_detail": detail, "template": template_name, "kind": template.kind,
        "sign": template.sign, "codes": dict(codes),
        "params": [{"name": n, "value": str(variables[n])} for n in names], "text": text,
        "segments": segments(text), "channel": channel, "token": token, "contact": contact,
        "phone_hash": phone_hash, "to_masked": to_masked, "consent": consent, "occurred_at": occurred_at,
        "created_at": now_ms,
    }


def requests_for(event: Mapping, config: SmsConfig, now_ms: int, resolvable: Callable[[str], bool]) -> list[dict]:
    """The `SmsRequest`s an order event fires in its shop (none for an event older than the shop allows)."""
    order = event["order"]
    kind, detail = trigger_of(event)
    trigger = trigger_name(kind, detail)
    shop_id = order["shop_id"]
    chosen = config.templates_for(shop_id, trigger)
    rules = config.rules(shop_id)
    if not chosen or now_ms - event["occurred_at"] > rules.trigger_max_age_hours * HOUR_MS:
        return []
    channel, token = channel_of(order, resolvable)
    variables = order_variables(event, rules.shop_name or shop_id, detail)
    providers = [order["platform"]] if channel == "platform" else config.providers
    return [build_request(
        key=message_key(order["order_id"], f"{trigger}/{name}"), template_name=name, template=template,
        variables=variables, platform=order["platform"], shop_id=shop_id, trigger=kind, detail=detail,
        channel=channel, occurred_at=event["occurred_at"], now_ms=now_ms, order_id=order["order_id"], token=token,
        to_masked=(order.get("receiver") or {}).get("phone_masked"), providers=providers)
        for name, template in chosen]
