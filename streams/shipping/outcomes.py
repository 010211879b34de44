"""Pure pieces of ship-back: where a command goes (platform, shop, the platform's carrier code), the
`ShipmentResult` records that tell each step, the `ship_upload_failed` finding, and the retry schedule."""
from __future__ import annotations

from dataclasses import dataclass

from schemas.carriers import describe_known, platform_carrier
from streams.anomalies.detector import anomaly_id

RULE = "ship_upload_failed"
MAX_ATTEMPTS = 8  # transient failures: retried after 1, 2, 4 … 60 s; then the shipment fails
MAX_DELAY_S = 60.0


@dataclass(frozen=True)
class Target:
    """What a platform offers ship-back with: its folder's code, display label, ship-back capability and
    carrier table (platform code -> name)."""

    code: str
    label: str
    ship_back: bool
    carriers: dict


@dataclass(frozen=True)
class Job:
    """One shipment to upload: the command's fields plus where it goes and the next attempt's number."""

    shipment_id: str
    order_id: str
    platform: str
    shop_id: str
    external_id: str
    carrier_code: str
    carrier_name: str
    tracking_no: str
    line_ids: tuple[str, ...]
    attempt: int = 1


class Refusal(Exception):
    """A command that cannot go to the platform at all (the reason is one line)."""


def plan(command: dict, target: Target | None) -> Job:
    """The job of a checked command, or Refusal: an unknown platform, one without ship-back, a carrier the
    platform does not list."""
    platform, shop_id, external_id = command["order_id"].split(":", 2)
    if target is None:
        raise Refusal(f"unknown platform {platform!r}")
    if not target.ship_back:
        raise Refusal(f"{target.label} does not support ship-back (capabilities.ship_back is false)")
    code = platform_carrier(target.carriers, command["carrier"])
    if code is None:
        raise Refusal(f"unknown_carrier: {target.label} has no carrier {command['carrier']!r}; known: "
                      f"{describe_known(target.carriers)}")
    return Job(command["shipment_id"], command["order_id"], platform, shop_id, external_id, code,
               target.carriers[code], command["tracking_no"], tuple(command["line_ids"]))


def job_of(result: dict, target: Target) -> Job:
    """The job to resume from the last result of a shipment that was under way."""
    platform, shop_id, external_id = result["order_id"].split(":", 2)
    code = result["carrier_code"]
    return Job(result["shipment_id"], result["order_id"], platform, shop_id, external_id, code,
               target.carriers.get(code, code), result["tracking_no"], tuple(result["line_ids"]),
               result["attempt"] + (result["status"] == "RETRYING"))


def result(job: Job, status: str, now_ms: int, reason: str | None = None) -> dict:
    """The `ShipmentResult` of a job at this step."""
    return {"shipment_id": job.shipment_id, "order_id": job.order_id, "status": status,
            "carrier_code": job.carrier_code, "tracking_no": job.tracking_no, "line_ids": list(job.line_ids),
            "attempt": job.attempt, "reason": reason, "recorded_at": now_ms}


def refused(command: dict, reason: str, now_ms: int) -> dict:
    """The FAILED `ShipmentResult` of a command refused before any call (no carrier code was chosen)."""
    return {"shipment_id": command["shipment_id"], "order_id": command["order_id"], "status": "FAILED",
            "carrier_code": None, "tracking_no": command["tracking_no"], "line_ids": list(command["line_ids"]),
            "attempt": 1, "reason": reason, "recorded_at": now_ms}


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1` after a transient failure of attempt `attempt`."""
    return min(MAX_DELAY_S, 2.0 ** (attempt - 1))


def finding(outcome: dict, state: str = "raised") -> dict:
    """The `ship_upload_failed` Anomaly of a FAILED result (`state` "resolved" once an upload of the order
    succeeded later): one finding per order, its id like every finding's (order_id|rule)."""
    platform, shop_id, _ = outcome["order_id"].split(":", 2)
    reason = outcome["reason"] or ""
    if state == "raised":
        zh, en = f"发货回传失败：{reason}", f"shipment upload to the platform failed: {reason}"
    else:
        zh, en = "发货回传已成功", "the shipment upload succeeded after all"
    evidence = {"shipment_id": outcome["shipment_id"], "tracking_no": outcome["tracking_no"],
                "status": outcome["status"], "attempt": str(outcome["attempt"]), "reason": reason[:500]}
    if outcome.get("carrier_code"):
        evidence["carrier_code"] = outcome["carrier_code"]
    return {"anomaly_id": anomaly_id(outcome["order_id"], RULE), "order_id": outcome["order_id"], "event_id": None,
            "platform": platform, "shop_id": shop_id, "rule": RULE, "severity": "warning", "action": "flag",
            "state": state, "message_zh": zh[:500], "message_en": en[:500], "evidence": evidence,
            "detected_at": outcome["recorded_at"], "order_version": 0}
