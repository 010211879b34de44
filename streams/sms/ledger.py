"""What the sender knows, folded from its own records on sms.receipts (and sms.optouts): pure, no I/O.

Every step of a message is one `SmsReceipt` — a whole snapshot keyed by the idempotency key — written before the
next step happens: `sending` before the provider is called, `sent`/`failed` after, `delivered` when the report
comes. So after a restart (or a kill -9 mid-batch) the ledger read back from the topic says which keys are taken,
which were claimed but never finished (to be checked with the provider, never blindly sent again), what each
number was sent this week (caps), what each shop spent today (budget) and which messages wait for their window.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.sms import receipt_revision
from streams.sms.rules import WEEK_MS, RecipientHistory, day_start

SPENT = frozenset({"sending", "sent", "delivered"})  # counted against caps and budgets
_REQUEST_FIELDS = ("key", "order_id", "member_id", "platform", "shop_id", "trigger", "template", "kind", "channel",
                   "to_masked", "phone_hash", "segments", "created_at")


def receipt(request: Mapping, status: str, at: int, **changes) -> dict:
    """The `SmsReceipt` of `request` in `status` at `at` (epoch ms), with `changes` (provider, reason, code, ...)."""
    record = {name: request.get(name) for name in _REQUEST_FIELDS}
    record.update({"provider": None, "reason": None, "code": None, "provider_id": None, "out_id": None,
                   "release_at": None, "attempts": [], "sent_at": None, "reported_at": None})
    record.update(changes)
    record.update(status=status, at=at)
    return record


def evolve(previous: Mapping, status: str, at: int, **changes) -> dict:
    """The next snapshot of a message from its latest one."""
    return {**previous, **changes, "status": status, "at": at}


@dataclass
class Ledger:
    """The sender's memory. `apply` every receipt it writes (and, after a restart, every one it reads back)."""

    latest: dict[str, dict] = field(default_factory=dict)  # key -> newest snapshot
    sent: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # recipient hash -> [(at, kind)]
    optouts: set[str] = field(default_factory=set)
    spent: dict[tuple[str, int], int] = field(default_factory=dict)  # (shop, day start ms) -> segments
    by_provider_id: dict[str, str] = field(default_factory=dict)  # provider's message id -> key
    by_batch: dict[tuple[str, str], str] = field(default_factory=dict)  # (batch out id, recipient hash) -> key
    _counted: set[str] = field(default_factory=set)  # keys already counted in `sent` and `spent`

    def key_of(self, out_id: str | None, provider_id: str | None, recipient: str) -> str | None:
        """The message a provider's report names: by its out id (the key, or a batch's id and the number), else by
        the provider's message id."""
        if out_id in self.latest:
            return out_id
        return self.by_batch.get((out_id or "", recipient)) or self.by_provider_id.get(provider_id or "")

    def status(self, key: str) -> str | None:
        """The newest status of `key`, None for a key never seen (free)."""
        snapshot = self.latest.get(key)
        return None if snapshot is None else snapshot["status"]

    def apply(self, record: Mapping, timezone: str = "Asia/Shanghai") -> None:
        """Fold one receipt in; an older record (a replay) never overrides a newer one."""
        key = record["key"]
        held = self.latest.get(key)
        if held is not None and receipt_revision(held) > receipt_revision(record):
            return
        self.latest[key] = dict(record)
        if record.get("provider_id"):
            self.by_provider_id[record["provider_id"]] = key
        if record.get("out_id") and record.get("phone_hash"):
            self.by_batch[(record["out_id"], record["phone_hash"])] = key
        if record["status"] in SPENT and key not in self._counted and record.get("phone_hash"):
            self._counted.add(key)
            at = record.get("sent_at") or record["at"]
            self.sent.setdefault(record["phone_hash"], []).append((at, record["kind"]))
            day = (record["shop_id"], day_start(at, timezone))
            self.spent[day] = self.spent.get(day, 0) + record["segments"]

    def history(self, recipient: str | None, now_ms: int) -> RecipientHistory:
        """Opt-out and the last week's messages of one number (or platform recipient)."""
        if recipient is None:
            return RecipientHistory()
        recent = tuple((at, kind) for at, kind in self.sent.get(recipient, ()) if at > now_ms - WEEK_MS)
        return RecipientHistory(opted_out=recipient in self.optouts, sent=recent)

    def spent_today(self, shop_id: str, now_ms: int, timezone: str) -> int:
        """Segments the shop sent since its local midnight."""
        return self.spent.get((shop_id, day_start(now_ms, timezone)), 0)

    def opt_out(self, phone_hash: str, opted_out: bool = True) -> None:
        if opted_out:
            self.optouts.add(phone_hash)
        else:
            self.optouts.discard(phone_hash)

    def unfinished(self) -> list[dict]:
        """Messages claimed for sending whose outcome was never written (the sender stopped in between)."""
        return [r for r in self.latest.values() if r["status"] == "sending"]

    def queued(self) -> Iterable[dict]:
        return (r for r in self.latest.values() if r["status"] == "queued")

    def prune(self, now_ms: int) -> None:
        """Forget per-number history older than a week (keys stay taken)."""
        horizon = now_ms - WEEK_MS
        for recipient in list(self.sent):
            kept = [(at, kind) for at, kind in self.sent[recipient] if at > horizon]
            if kept:
                self.sent[recipient] = kept
            else:
                del self.sent[recipient]
        for day in [d for d in self.spent if d[1] < horizon]:
            del self.spent[day]
