"""From an order event to the messages it fires — a pure function of the event, the configuration and the time.

`requests_for(event, config, now_ms, resolvable)` reads the event's trigger (its type, with the tracking step for
`TrackingUpdated`: the tracked shipment's state as `STEP_NAMES` calls it), finds the shop's templates for it, fills their variables from the order snapshot — order
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
# the courier's state of a parcel (Order v4 `shipments[].tracking_state`) as the step a trigger names
STEP_NAMES = {"PICKED_UP": "已揽收", "IN_TRANSIT": "到达中转", "OUT_FOR_DELIVERY": "派送中", "DELIVERED": "已签收",
              "EXCEPTION": "疑难", "RETURNING": "退回中", "RETURNED": "已退回", "REFUSED": "拒签",
              "REDIRECTED": "转投", "CUSTOMS": "清关"}


def tracked_shipment(order: Mapping) -> Mapping:
    """The shipment the latest tracking step is about (the last one when none is tracked yet)."""
    shipments = order.get("shipments") or [{}]
    tracked = [s for s in shipments if s.get("tracking_state")]
    return max(tracked, key=lambda s: s.get("tracking_at") or 0) if tracked else shipments[-1]


def tracking_step(event: Mapping) -> str | None:
    """The step a TrackingUpdated event reports, named as triggers name it (`到达中转`, `派送中`, ...; a state
    without a name stays as it is)."""
    state = tracked_shipment(event.get("order") or {}).get("tracking_state")
    return STEP_NAMES.get(state, state) if state else None


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
    shipment = tracked_shipment(order)
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


# Parcels on their way: what a later delay notice needs of the order (its receiver's channel, the parcel, the
# first line), nothing more. Kept by the notifier from the events it reads (and order.state when it starts).
IN_TRANSIT_STATUSES = frozenset({"SHIPPED", "PARTIALLY_SHIPPED"})
STALLED_RULE = "parcel_stalled"


def parcel_card(order: Mapping) -> dict | None:
    """The slim order a delay notice is composed from, or None when the order is not on its way."""
    if order.get("status") not in IN_TRANSIT_STATUSES or not order.get("shipments"):
        return None
    receiver = order.get("receiver") or {}
    return {"order_id": order["order_id"], "platform": order["platform"], "shop_id": order["shop_id"],
            "external_id": order["external_id"], "status": order["status"],
            "refund_status": order.get("refund_status"), "paid_total": order.get("paid_total"),
            "refunded_total": order.get("refunded_total"), "lines": list(order.get("lines") or [])[:1],
            "shipments": list(order["shipments"]),
            "receiver": {"phone_masked": receiver.get("phone_masked"), "secure_token": receiver.get("secure_token")}}


def delayed_event(anomaly: Mapping, card: Mapping) -> dict | None:
    """A `ParcelDelayed` trigger from a raised parcel_stalled finding about an order on its way (the stalled
    parcel's carrier and number in the card's shipments); None for any other finding."""
    if anomaly.get("rule") != STALLED_RULE or anomaly.get("state") != "raised":
        return None
    tracking_no = (anomaly.get("evidence") or {}).get("tracking_no")
    shipments = [s for s in card["shipments"] if s.get("tracking_no") == tracking_no] or card["shipments"]
    return {"event_type": "ParcelDelayed", "occurred_at": anomaly["detected_at"],
            "order": {**card, "shipments": shipments}}
