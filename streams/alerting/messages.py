"""Chinese-first alert texts per anomaly rule, with an English line; no plaintext personal data.

Only order ids (linked to `{api_base}/api/orders/{order_id}`), platform, shop, rule and allow-listed
evidence (amounts, SKU, quantities, thresholds) appear. The anomaly's own `message_zh`/`message_en` are NOT
used: a rule may have quoted the address or phone it found wrong. Allow-listed evidence values are still
scrubbed (phone numbers, e-mail addresses, ID numbers masked).
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from connectors.alerts.message import AlertMessage

__all__ = ["AlertMessage", "render_digest", "render_group", "render_single", "safe_evidence", "scrub"]

# rule → (phrase after "N 个订单", headline, English)
RULES = {
    "zero_amount": ("金额为 0", "订单金额为 0", "zero order amount"),
    "amount_mismatch": ("金额与明细合计不一致", "订单金额不一致", "order total does not match its lines"),
    "duplicate_order": ("疑似重复下单", "疑似重复订单", "possible duplicate orders"),
    "invalid_address": ("收货地址无效或不完整", "收货地址无效", "invalid or incomplete address"),
    "invalid_phone": ("收货手机号无效", "收货手机号无效", "invalid receiver phone number"),
    "price_anomaly": ("成交价格异常", "价格异常", "unusual unit price"),
    "quantity_spike": ("购买数量异常偏高", "购买数量异常", "unusually high quantity"),
    "ship_overdue": ("超时未发货", "发货超时", "shipment overdue"),
    "ship_upload_failed": ("发货回传平台失败", "发货回传失败", "shipment upload to the platform failed"),
    "parcel_exception": ("快件异常（疑难件）", "快件异常", "parcel in trouble with the carrier"),
    "parcel_returned": ("快件退回或拒签", "快件退回", "parcel returned or refused"),
    "parcel_stalled": ("快件长时间无物流更新", "物流停滞", "parcel without movement"),
    "changed_after_shipment": ("发货后收货地址被修改", "发货后改址", "address changed after shipment"),
}
SEVERITY_ZH = {"info": "提示", "warning": "警告", "critical": "严重"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
MAX_EXAMPLES = 5
BEIJING = timezone(timedelta(hours=8))

_SAFE_KEY = re.compile(r"amount|total|price|fee|sku|quantity|qty|currency|expected|actual|threshold|ratio|"
                       r"median|count|due|overdue|hours|minutes|duplicate_of|status|version|field",
                       re.IGNORECASE)
_PII_KEY = re.compile(r"phone|mobile|tel|name|addr|street|receiver|buyer|email|mail|card|id_no|nick|contact",
                      re.IGNORECASE)
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NO = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+\.)+[\w-]+")


def scrub(text: str) -> str:
    """Mask phone numbers (138****5678), ID card numbers and e-mail addresses in free text."""
    text = _ID_NO.sub(r"\1********\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    return _EMAIL.sub("***@***", text)


def safe_evidence(evidence: dict | None, limit: int = 3) -> list[tuple[str, str]]:
    """Allow-listed evidence items (amounts, SKU, quantities …), values scrubbed and cut to 40 characters."""
    items = []
    for key, value in (evidence or {}).items():
        if _SAFE_KEY.search(key) and not _PII_KEY.search(key):
            items.append((key, scrub(str(value))[:40]))
        if len(items) == limit:
            break
    return items


def order_link(api_base: str, order_id: str) -> str:
    """The order in the HTTP API."""
    return f"{api_base.rstrip('/')}/api/orders/{quote(order_id, safe=':')}"


def rule_text(rule: str) -> tuple[str, str, str]:
    """(phrase, headline, English) of a rule; unknown rules fall back to their code."""
    return RULES.get(rule, (f"触发规则 {rule}", f"规则 {rule}", f"rule {rule}"))


def window_text(seconds: int) -> tuple[str, str]:
    """'1 分钟' / '1 min' style wording of a window length."""
    if seconds % 60 == 0:
        return f"{seconds // 60} 分钟", f"{seconds // 60} min"
    return f"{seconds} 秒", f"{seconds} s"


def _top_severity(anomalies: list[dict]) -> str:
    return max((a.get("severity", "warning") for a in anomalies), key=lambda s: SEVERITY_RANK.get(s, 1))


def _example_lines(anomalies: list[dict], api_base: str, limit: int = MAX_EXAMPLES) -> tuple[list, list]:
    markdown, plain = [], []
    for anomaly in anomalies[:limit]:
        order_id = str(anomaly["order_id"])
        facts = "，".join(f"{k}={v}" for k, v in safe_evidence(anomaly.get("evidence")))
        suffix = f" {facts}" if facts else ""
        markdown.append(f"- [{order_id}]({order_link(api_base, order_id)}){suffix}")
        plain.append(f"- {order_id}{suffix}\n  {order_link(api_base, order_id)}")
    return markdown, plain


def _scope(anomalies: list[dict]) -> tuple[str, str]:
    platforms = Counter(str(a.get("platform", "?")) for a in anomalies)
    shops = {(a.get("platform"), a.get("shop_id")) for a in anomalies}
    zh_platforms = "、".join(f"{p}×{n}" if len(platforms) > 1 else p for p, n in platforms.most_common(5))
    if len(shops) == 1:
        shop = str(next(iter(shops))[1])
        return f"平台 {zh_platforms}，店铺 {shop}", f"platform {', '.join(platforms)}, shop {shop}"
    return (f"平台 {zh_platforms}，涉及 {len(shops)} 个店铺",
            f"platforms {', '.join(platforms)}, {len(shops)} shops")


def _message(title: str, summary: str, body_md: list[str], body_plain: list[str], severity: str,
             anomalies: list[dict]) -> AlertMessage:
    return AlertMessage(title=title, text_markdown="\n".join([f"### {title}", *body_md]),
                        text_plain="\n".join([title, *body_plain]), severity=severity,
                        order_ids=tuple(dict.fromkeys(str(a["order_id"]) for a in anomalies)),
                        anomaly_ids=tuple(str(a["anomaly_id"]) for a in anomalies), summary=summary)


def render_group(rule: str, anomalies: list[dict], window_s: int, api_base: str,
                 resolved: int = 0) -> AlertMessage:
    """One message for all anomalies of one rule in one window: count, scope, ≤ 5 linked examples, English."""
    phrase, headline, english = rule_text(rule)
    severity, count = _top_severity(anomalies), len(anomalies)
    win_zh, win_en = window_text(window_s)
    scope_zh, scope_en = _scope(anomalies)
    title = f"【通路告警】{SEVERITY_ZH.get(severity, severity)}：{headline} ×{count}"
    lead = f"过去 {win_zh} {count} 个订单{phrase}（{rule}），{scope_zh}。"
    md, plain = _example_lines(anomalies, api_base)
    more = [f"- 另有 {count - MAX_EXAMPLES} 个订单未列出"] if count > MAX_EXAMPLES else []
    back = [f"同期已恢复 {resolved} 个。"] if resolved else []
    en = (f"{count} orders with {english} ({rule}) in the last {win_en}; {scope_en}."
          + (f" {resolved} resolved meanwhile." if resolved else ""))
    return _message(title, f"{headline} ×{count}", [lead, "示例订单：", *md, *more, *back, "", en],
                    [lead, "示例订单：", *plain, *more, *back, "", en], severity, anomalies)


def render_single(anomaly: dict, api_base: str) -> AlertMessage:
    """An immediate message for one (critical) anomaly."""
    rule = str(anomaly.get("rule", "?"))
    phrase, headline, english = rule_text(rule)
    severity = anomaly.get("severity", "critical")
    order_id = str(anomaly["order_id"])
    link = order_link(api_base, order_id)
    action = anomaly.get("action", "flag")
    action_zh = "已暂停履约（hold）" if action == "hold" else "已标记（flag）"
    detected = datetime.fromtimestamp(int(anomaly.get("detected_at", 0)) / 1000, BEIJING)
    facts = "，".join(f"{k}={v}" for k, v in safe_evidence(anomaly.get("evidence"), limit=5)) or "—"
    title = f"【通路告警】{SEVERITY_ZH.get(severity, severity)}：{headline}"
    rows = [f"订单{phrase}（{rule}），{action_zh}。",
            f"- 平台/店铺：{anomaly.get('platform')} / {anomaly.get('shop_id')}", f"- 证据：{facts}",
            f"- 检测时间：{detected:%Y-%m-%d %H:%M:%S} (UTC+8)"]
    en = f"Order {order_id}: {english} ({rule}), action {action}."
    return _message(title, f"{headline} {anomaly.get('platform')}",
                    [*rows[:1], f"- 订单：[{order_id}]({link})", *rows[1:], "", en],
                    [*rows[:1], f"- 订单：{order_id}  {link}", *rows[1:], "", en], severity, [anomaly])


def render_digest(by_rule: dict[str, list[dict]], quiet_label: str, api_base: str) -> AlertMessage:
    """One message summarizing the non-critical anomalies held during quiet hours."""
    everything = [a for items in by_rule.values() for a in items]
    total = len(everything)
    ranked = sorted(by_rule.items(), key=lambda kv: -len(kv[1]))
    title = f"【通路告警】静默时段汇总：{total} 条非紧急告警"
    lines_zh = [f"- {rule_text(rule)[1]}（{rule}）：{len(items)} 个" for rule, items in ranked]
    lines_en = ", ".join(f"{rule} {len(items)}" for rule, items in ranked)
    firsts = [items[0] for _, items in ranked][:MAX_EXAMPLES]
    md, plain = _example_lines(firsts, api_base)
    lead = f"静默时段（{quiet_label}）内共 {total} 条非紧急告警，按规则："
    en = f"Quiet hours ({quiet_label}) digest: {total} non-critical anomalies ({lines_en})."
    severity = _top_severity(everything)
    return _message(title, f"静默汇总 {total} 条", [lead, *lines_zh, "示例订单：", *md, "", en],
                    [lead, *lines_zh, "示例订单：", *plain, "", en], severity, everything)
