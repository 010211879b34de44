"""The one message shape every alert channel sends (rendered by `streams.alerting.messages`)."""
from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertMessage:
    """A rendered alert: Chinese first, no plaintext personal data, links to the orders in the API.

    `summary` is a short single line without links (SMS template variable, notification previews).
    """

    title: str
    text_markdown: str
    text_plain: str
    severity: str = "warning"
    order_ids: tuple[str, ...] = field(default_factory=tuple)
    anomaly_ids: tuple[str, ...] = field(default_factory=tuple)
    summary: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form (for alert reports on Kafka / ClickHouse)."""
        return {"title": self.title, "text_markdown": self.text_markdown, "text_plain": self.text_plain,
                "severity": self.severity, "order_ids": list(self.order_ids),
                "anomaly_ids": list(self.anomaly_ids), "summary": self.summary}

    @classmethod
    def from_dict(cls, data: dict) -> AlertMessage:
        """Inverse of `to_dict`."""
        return cls(title=data["title"], text_markdown=data["text_markdown"], text_plain=data["text_plain"],
                   severity=data.get("severity", "warning"), order_ids=tuple(data.get("order_ids", ())),
                   anomaly_ids=tuple(data.get("anomaly_ids", ())), summary=data.get("summary", ""))


def truncate_utf8(text: str, max_bytes: int, suffix: str = "…") -> str:
    """`text` cut so its UTF-8 encoding (with `suffix` when cut) fits `max_bytes`, never mid-character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    room = max(0, max_bytes - len(suffix.encode("utf-8")))
    return raw[:room].decode("utf-8", errors="ignore") + suffix
