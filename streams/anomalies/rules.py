"""The anomaly rules: one pure function per rule id, `(order, cfg, ctx) -> Finding | None`.

`order` is a canonical order dict, `cfg` the shop's `ShopRules`, `ctx` the detector's read-only
view of its state (`dupes`, `skus`, `now_ms`). Rules never mutate anything; learning from an
order is the detector's job, after judging it. Messages are Chinese first, then English; evidence
holds amounts, SKUs, division names and order ids — never a plain name, phone or street.
"""
from __future__ import annotations

from typing import NamedTuple

from streams.anomalies.address import address_problem
from streams.anomalies.config import ShopRules
from streams.anomalies.state import duplicate_key, line_sku

_ZERO_DECIMALS = frozenset(("JPY", "KRW", "VND", "IDR", "CLP", "ISK", "TWD", "HUF"))
HOUR_MS = 3_600_000


class Finding(NamedTuple):
    """What a rule found: its id, messages and evidence (severity and action come from the config)."""

    rule: str
    message_zh: str
    message_en: str
    evidence: dict[str, str]


def money(minor: float, currency: str) -> str:
    """Minor units as a decimal string: 15780 CNY -> '157.80', 500 JPY -> '500'."""
    if currency in _ZERO_DECIMALS:
        return f"{minor:.0f}"
    return f"{minor / 100:.2f}"


def is_gift(line: dict, markers: tuple[str, ...]) -> bool:
    """A declared gift: `is_gift` on the line, or a gift marker (赠品, gift ...) in its title."""
    if line.get("is_gift"):
        return True
    lowered = (line.get("title") or "").lower()
    return any(marker.lower() in lowered for marker in markers)


def sku_key(order: dict, line: dict) -> tuple | None:
    """Statistics key: (currency, merchant SKU) shared by all shops of the brand, else the shop's sku_id."""
    if line.get("merchant_sku"):
        return order["currency"], line["merchant_sku"]
    if line.get("sku_id"):
        return order["currency"], order["platform"], order["shop_id"], line["sku_id"]
    return None


def order_time(order: dict, fallback: int) -> int:
    """The time duplicate windows compare: created, else paid, else updated, else `fallback`."""
    return order.get("created_at") or order.get("paid_at") or order.get("updated_at") or fallback


def zero_amount(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """Paid total <= 0, or a line priced 0 that is not a declared gift."""
    cur = order["currency"]
    if order["paid_total"] <= 0:
        return Finding("zero_amount", f"订单金额为 {money(order['paid_total'], cur)}",
                       f"order total is {money(order['paid_total'], cur)} {cur}",
                       {"paid_total": str(order["paid_total"]), "currency": cur})
    markers = cfg.zero_amount.gift_markers
    for line in order["lines"]:
        if line["unit_price"] <= 0 and not is_gift(line, markers):
            sku = line_sku(line) or line["line_id"]
            return Finding("zero_amount", f"商品单价为 0：{sku}（非赠品）", f"line {sku} priced 0 and not a gift",
                           {"line_id": line["line_id"], "sku": str(sku), "unit_price": str(line["unit_price"])})
    return None


def amount_mismatch(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """items + shipping - discount + tax != paid total, or a line total != qty x price - line discount."""
    cur = order["currency"]
    tol = cfg.amount_mismatch.tolerance_for(cur)
    expected = order["items_total"] + order["shipping_fee"] - order["discount_total"] + order["tax_total"]
    paid = order["paid_total"]
    if abs(paid - expected) > tol:
        return Finding("amount_mismatch", f"金额不一致：应付 {money(expected, cur)}，实付 {money(paid, cur)}",
                       f"amounts do not add up: expected {money(expected, cur)}, paid {money(paid, cur)} {cur}",
                       {"expected": str(expected), "paid_total": str(paid), "currency": cur,
                        "items_total": str(order["items_total"]), "shipping_fee": str(order["shipping_fee"]),
                        "discount_total": str(order["discount_total"]), "tax_total": str(order["tax_total"])})
    for line in order["lines"]:
        line_expected = line["quantity"] * line["unit_price"] - line.get("discount", 0)
        if abs(line["total"] - line_expected) > tol:
            sku = line_sku(line) or line["line_id"]
            return Finding(
                "amount_mismatch",
                f"金额不一致：{sku} 小计应为 {money(line_expected, cur)}，实为 {money(line['total'], cur)}",
                f"line {sku} total should be {money(line_expected, cur)}, is {money(line['total'], cur)} {cur}",
                {"line_id": line["line_id"], "sku": str(sku), "expected": str(line_expected),
                 "line_total": str(line["total"]), "currency": cur})
    return None


def placed_rank(at: int, order_id: str) -> tuple:
    """What orders the members of a duplicate pair by when they were placed: the time, then (equal times)
    the longer and then the larger order id, so the decision never depends on which arrived first."""
    return at, len(order_id), order_id


def duplicate_roles(order_id: str, at: int, twins: list[tuple[int, str]]) -> tuple[str | None, list[str]]:
    """Of an order placed at `at` and its `twins` ((time, order id) of orders with the same buyer,
    receiver and lines): the original it duplicates (the earliest twin placed before it, None if it came
    first), and the twins placed after it, which are duplicates of it. Arrival order plays no part."""
    mine = placed_rank(at, order_id)
    earlier = min((placed_rank(t_at, t_id) for t_at, t_id in twins if placed_rank(t_at, t_id) < mine), default=None)
    later = [t_id for t_at, t_id in twins if placed_rank(t_at, t_id) > mine]
    return (earlier[2] if earlier else None), later


def duplicate_finding(original: str, window_minutes: float) -> Finding:
    """The duplicate_order finding of an order placed again after `original`."""
    return Finding("duplicate_order", f"疑似重复订单（与 {original} 相同买家、收件人和商品）",
                   f"possible duplicate of {original} (same buyer, receiver and items)",
                   {"other_order_id": original, "window_minutes": f"{window_minutes:g}"})


def duplicate_order(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """Placed after another order (any shop/platform) with the same buyer, receiver and lines within the
    window. Of a pair, the later-placed order is the duplicate whichever reaches the detector first; when
    the earlier one arrives second the detector flags the later one (see `duplicate_roles`)."""
    window = cfg.duplicate_order.window_minutes
    key = getattr(ctx, "dup_key", None) or duplicate_key(order)  # the detector hashes each version once
    at = order_time(order, ctx.now_ms)
    original, _ = duplicate_roles(order["order_id"], at, ctx.dupes.matches(order["order_id"], key, at,
                                                                          window * 60_000))
    return None if original is None else duplicate_finding(original, window)


_ADDRESS_TEXT = {
    "country": ("收货地址无效：国家代码 {country} 无效", "invalid address: unknown country code {country}"),
    "postal_code": ("收货地址无效：邮编格式不符合 {country} 的规则", "invalid address: malformed {country} postal code"),
    "vague": ("收货地址过于模糊，无法配送", "address too vague to deliver"),
}


def invalid_address(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """Not a real province/city/district combination, bad country or postal code, or a vague street."""
    r = order["receiver"]
    problem = address_problem(r)
    if problem is None:
        return None
    evidence = {"problem": problem, "country": str(r.get("country"))}
    if problem in _ADDRESS_TEXT:
        zh, en = _ADDRESS_TEXT[problem]
        return Finding("invalid_address", zh.format(country=r.get("country")), en.format(country=r.get("country")),
                       evidence)
    place = f"{r.get('province')}/{r.get('city') or ''}/{r.get('district') or ''}"
    evidence.update(province=str(r.get("province")), city=str(r.get("city")), district=str(r.get("district")))
    return Finding("invalid_address", f"收货地址无效：{place} 不是有效的省市区组合",
                   f"invalid address: {place} is not a real province/city/district ({problem})", evidence)


def invalid_phone(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """The mapping judged the receiver phone not a dialable mobile number (None: unknown, no finding)."""
    if order["receiver"].get("phone_valid") is False:
        return Finding("invalid_phone", "手机号无效", "receiver phone is not a valid mobile number",
                       {"phone_valid": "false", "country": str(order["receiver"].get("country"))})
    return None


def price_anomaly(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """A unit price far below the SKU's recent median (a mis-set promotion price)."""
    rc = cfg.price_anomaly
    cur = order["currency"]
    for line in order["lines"]:
        price = line["unit_price"]
        if price <= 0:
            continue  # zero prices are zero_amount's
        key = sku_key(order, line)
        median = None if key is None else ctx.skus.price_median(key, rc.min_samples)
        if median is not None and price < rc.ratio * median:
            sku = line_sku(line)
            return Finding("price_anomaly", f"单价异常：{sku} 售价 {money(price, cur)}，近期中位数 {money(median, cur)}",
                           f"price anomaly: {sku} sold at {money(price, cur)}, recent median {money(median, cur)}",
                           {"sku": str(sku), "unit_price": str(price), "median": f"{median:g}",
                            "ratio": f"{rc.ratio:g}", "currency": cur})
    return None


def quantity_spike(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """A line quantity far above the SKU's usual quantity per order."""
    rc = cfg.quantity_spike
    for line in order["lines"]:
        quantity = line["quantity"]
        if quantity <= rc.min_quantity:
            continue
        key = sku_key(order, line)
        median = None if key is None else ctx.skus.quantity_median(key, rc.min_samples)
        if median is not None and quantity > max(rc.min_quantity, rc.factor * median):
            sku = line_sku(line)
            return Finding("quantity_spike", f"数量异常：{sku} 数量 {quantity}，通常 {median:g}",
                           f"quantity spike: {sku} x {quantity}, usually {median:g}",
                           {"sku": str(sku), "quantity": str(quantity), "median": f"{median:g}",
                            "factor": f"{rc.factor:g}"})
    return None


def ship_deadline(order: dict, cfg: ShopRules) -> int | None:
    """When a paid, unshipped, not (being) refunded order must have shipped; None if nothing is due."""
    if order["status"] != "PAID" or order.get("paid_at") is None or order.get("shipments"):
        return None
    if order.get("refund_status") in ("REQUESTED", "REFUNDED"):
        return None
    return int(order["paid_at"] + cfg.ship_overdue.promise_hours * HOUR_MS)


def overdue_finding(paid_at: int, now_ms: int, promise_hours: float) -> Finding:
    """The ship_overdue finding for an order paid at `paid_at`, judged at `now_ms`."""
    hours = (now_ms - paid_at) // HOUR_MS
    return Finding("ship_overdue", f"超时未发货：已付款 {hours} 小时（承诺 {promise_hours:g} 小时）",
                   f"not shipped {hours} h after payment (promised within {promise_hours:g} h)",
                   {"paid_at": str(paid_at), "hours_since_paid": str(hours), "promise_hours": f"{promise_hours:g}"})


def ship_overdue(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """Paid but not shipped within the shop's promised time, judged at `ctx.now_ms`."""
    deadline = ship_deadline(order, cfg)
    if deadline is None or ctx.now_ms < deadline:
        return None
    return overdue_finding(order["paid_at"], ctx.now_ms, cfg.ship_overdue.promise_hours)


_RETURNED = {"RETURNING": "退回", "RETURNED": "退签", "REFUSED": "拒签"}
_FINAL = frozenset(("DELIVERED", "RETURNED", "REFUSED"))  # a parcel that will not move again
SHIPPED_STATUSES = frozenset(("PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED"))


def _parcel_in(order: dict, states) -> dict | None:
    return next((s for s in order["shipments"] if s.get("tracking_state") in states), None)


def _parcel_evidence(shipment: dict) -> dict[str, str]:
    return {"tracking_no": str(shipment.get("tracking_no")), "carrier": str(shipment.get("carrier")),
            "tracking_status": str(shipment.get("tracking_status")), "tracking_at": str(shipment.get("tracking_at"))}


def parcel_exception(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """The carrier reports a parcel of the order in trouble (Kuaidi100 疑难); clears when it moves on."""
    shipment = _parcel_in(order, ("EXCEPTION",))
    if shipment is None:
        return None
    return Finding("parcel_exception", f"快件异常（疑难件）：{shipment.get('tracking_no')}",
                   f"parcel {shipment.get('tracking_no')} is in trouble with the carrier", _parcel_evidence(shipment))


def parcel_returned(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """A parcel of the order is being returned, was returned (退回, 退签) or refused (拒签)."""
    shipment = _parcel_in(order, _RETURNED)
    if shipment is None:
        return None
    word = _RETURNED[shipment["tracking_state"]]
    return Finding("parcel_returned", f"快件{word}：{shipment.get('tracking_no')}",
                   f"parcel {shipment.get('tracking_no')} {shipment['tracking_state'].lower()}",
                   _parcel_evidence(shipment))


def changed_after_shipment(order: dict, cfg: ShopRules, ctx) -> Finding | None:
    """The platform changed the receiver of an order that had already shipped: the parcel is on its way
    to the old address. Judged on the version that changed the receiver (`ctx.changed`)."""
    changed = ctx.changed
    if not changed or "receiver" not in changed:
        return None
    before = (order["shipments"] and "shipments" not in changed) or (
        order["status"] in SHIPPED_STATUSES and "status" not in changed)
    if not before:
        return None
    numbers = ", ".join(str(s.get("tracking_no")) for s in order["shipments"]) or "-"
    return Finding("changed_after_shipment", f"发货后收货地址被修改（运单 {numbers}）",
                   f"receiver address changed after shipment (tracking {numbers})",
                   {"status": order["status"], "tracking_no": numbers})


def stall_deadline(order: dict, cfg: ShopRules) -> tuple[int, dict] | None:
    """(when, parcel) by which the tracked parcel that moved least recently must move again; None when no
    tracked parcel is still under way (or the order is cancelled)."""
    if order["status"] == "CANCELLED":
        return None
    moving = [s for s in order["shipments"] if s.get("tracking_at") is not None
              and s.get("tracking_state") not in _FINAL]
    if not moving:
        return None
    oldest = min(moving, key=lambda s: s["tracking_at"])
    return int(oldest["tracking_at"] + cfg.parcel_stalled.stall_hours * HOUR_MS), oldest


def stalled_finding(tracking_no: str, tracking_at: int, now_ms: int, stall_hours: float) -> Finding:
    """The parcel_stalled finding of a parcel whose last step was at `tracking_at`, judged at `now_ms`."""
    hours = (now_ms - tracking_at) // HOUR_MS
    return Finding("parcel_stalled", f"物流停滞：快件 {tracking_no} 已 {hours} 小时无新轨迹（阈值 {stall_hours:g} 小时）",
                   f"parcel {tracking_no} has not moved for {hours} h (threshold {stall_hours:g} h)",
                   {"tracking_no": tracking_no, "tracking_at": str(tracking_at), "hours_since_movement": str(hours),
                    "stall_hours": f"{stall_hours:g}"})


_MONEY = frozenset(("items_total", "shipping_fee", "discount_total", "tax_total", "paid_total", "currency"))
DUPLICATE_INPUTS = frozenset(("buyer", "receiver", "lines", "created_at"))
# (rule id, function, the top-level order fields it reads): a new version re-runs a rule only when
# one of its inputs changed; ship_overdue is time-driven (Detector.tick)
EVENT_RULES = (("zero_amount", zero_amount, _MONEY | {"lines"}),
               ("amount_mismatch", amount_mismatch, _MONEY | {"lines"}),
               ("duplicate_order", duplicate_order, DUPLICATE_INPUTS),
               ("invalid_address", invalid_address, frozenset(("receiver",))),
               ("invalid_phone", invalid_phone, frozenset(("receiver",))),
               ("price_anomaly", price_anomaly, frozenset(("lines", "currency"))),
               ("quantity_spike", quantity_spike, frozenset(("lines",))))
# Rules that read only the detector's light fields (shipments, status) and the changed fields: they run
# without decoding the rest of the snapshot (tracking updates are frequent); parcel_stalled is time-driven.
LIGHT_RULES = (("parcel_exception", parcel_exception, frozenset(("shipments",))),
               ("parcel_returned", parcel_returned, frozenset(("shipments",))),
               ("changed_after_shipment", changed_after_shipment, frozenset(("receiver",))))
