"""What became of every shipment: the fold of the fulfillment.results topic, which is the worker's dedup record.

Before the platform is called, the worker publishes the shipment's PENDING result and waits for the broker's
acknowledgement; every later attempt and the outcome follow on the same topic. Read back from the start
after a restart (kill -9 included), the topic tells which shipments were uploaded (never again), which
failed, and which were under way when the worker stopped (resumed: the platform's own view of the order
settles whether the interrupted call landed).
"""
from __future__ import annotations

FINAL = frozenset({"UPLOADED", "FAILED"})
UNDER_WAY = frozenset({"PENDING", "RETRYING"})


class Ledger:
    """The last status of each shipment (with the full last result of those under way), and the orders
    whose ship-back last failed. About 0.25 KB per shipment: the topic's retention bounds it."""

    def __init__(self):
        self.last: dict[str, tuple[str, int]] = {}  # shipment_id -> (status, recorded_at)
        self.open: dict[str, dict] = {}  # shipment_id -> last result, while under way
        self.failed_orders: set[str] = set()

    def record(self, result: dict) -> bool:
        """Take one ShipmentResult in topic order; True when it resolves its order's failed ship-back (an
        upload after a failure)."""
        sid, status = result["shipment_id"], result["status"]
        self.last[sid] = (status, result["recorded_at"])
        if status in UNDER_WAY:
            self.open[sid] = result
        else:
            self.open.pop(sid, None)
        if status == "FAILED":
            self.failed_orders.add(result["order_id"])
        elif status == "UPLOADED" and result["order_id"] in self.failed_orders:
            self.failed_orders.discard(result["order_id"])
            return True
        return False

    def decide(self, command: dict) -> str:
        """What a consumed command asks of the worker:

        - "new": nothing known, or the shipment failed before this request was made (a person or an ERP
          asks again, e.g. with the carrier corrected): upload it;
        - "under_way": an attempt is running or will be resumed;
        - "seen": the command was handled already (a redelivery after a restart);
        - "answer_again": uploaded already, asked again later: tell the outcome again, upload nothing.
        """
        last = self.last.get(command["shipment_id"])
        if last is None:
            return "new"
        status, recorded_at = last
        if status in UNDER_WAY:
            return "under_way"
        if command["requested_at"] <= recorded_at:
            return "seen"
        return "new" if status == "FAILED" else "answer_again"

    def under_way(self) -> list[dict]:
        """The last results of shipments that were neither uploaded nor failed when the record ends."""
        return list(self.open.values())
