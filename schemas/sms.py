"""What the SMS topics' records mean beyond their fields: the statuses of an `SmsReceipt` and which of two records
of one message is the later (every reader of sms.receipts — the sender's ledger, the ClickHouse projection — orders
them the same way)."""
from __future__ import annotations

STATUSES = ("queued", "sending", "sent", "delivered", "failed", "suppressed", "unreachable")
# what the API shows: a claim (`sending`) is still waiting for its provider
SHOWN = {"sending": "queued"}


def receipt_rank(status: str, reported: bool = False) -> int:
    """queued < sending < an outcome (sent, failed, suppressed, unreachable) < a delivery report."""
    if reported:
        return 4
    return {"queued": 1, "sending": 2}.get(status, 3)


def receipt_revision(record: dict) -> int:
    """A number that grows with every later record of one message (rank first, then the record's time)."""
    return receipt_rank(record["status"], record.get("reported_at") is not None) * 10 ** 13 + record["at"]
