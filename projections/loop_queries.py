"""Read queries of the closed loop (blocking: run them in a thread): an order's timeline and the loop's
figures for the status page. Exact answers read with FINAL.

`shipments` holds every outcome of every ship-back upload (fulfillment.results), `tracking` every
tracking step Tonglu took (TrackingUpdated events). Events sent to ERPs are counted from an
`erp_deliveries` table when the database has one, else from what the running ERP deliverers report
in their heartbeats (`stage_progress`), else 0.
"""

from __future__ import annotations

from projections.anomaly_queries import quote
from projections.clickhouse.ddl import check_identifier
from schemas.canonical import ms_to_iso

FINAL_PARCEL_STATES = ("DELIVERED", "RETURNED", "REFUSED")
LATE_RULES = ("ship_overdue", "parcel_stalled")
_KIND_ORDER = {"event": 0, "shipment": 1}


def _tracking_of(rows: list[dict]) -> dict[str, dict]:
    return {r["event_id"]: {"tracking_no": r["tracking_no"], "carrier": r["carrier"], "state": r["tracking_state"],
                            "status": r["tracking_status"], "step": r["step"]} for r in rows}


def order_timeline(backend, db: str, order_id: str) -> list[dict]:
    """What happened to an order, oldest first: its events (a tracking step with the parcel's state and
    what the carrier said), and every outcome of its shipment uploads."""
    db = check_identifier(db)
    platform, shop_id = (order_id.split(":", 2) + ["", ""])[:2]
    key = quote(order_id)
    events = backend.query(
        "SELECT event_id, event_type, version, seq, toUnixTimestamp64Milli(occurred_at) AS occurred, "
        f"toUnixTimestamp64Milli(recorded_at) AS recorded FROM {db}.order_events FINAL WHERE platform = "
        f"{quote(platform)} AND shop_id = {quote(shop_id)} AND order_id = {key} ORDER BY version, seq")
    steps = _tracking_of(backend.query(
        "SELECT event_id, tracking_no, carrier, tracking_state, tracking_status, step "
        f"FROM {db}.tracking FINAL WHERE order_id = {key}"))
    uploads = backend.query(
        "SELECT shipment_id, status, carrier_code, tracking_no, attempt, reason, "
        f"toUnixTimestamp64Milli(recorded_at) AS recorded FROM {db}.shipments FINAL WHERE order_id = {key}")
    timeline = []
    for e in events:
        entry = {"at": ms_to_iso(int(e["occurred"])), "kind": "event", "event_type": e["event_type"],
                 "version": int(e["version"]), "event_id": e["event_id"], "recorded_at": ms_to_iso(int(e["recorded"]))}
        if e["event_id"] in steps:
            entry["tracking"] = steps[e["event_id"]]
        timeline.append((int(e["occurred"]), 0, int(e["version"]), int(e["seq"]), entry))
    for u in uploads:
        timeline.append((int(u["recorded"]), 1, int(u["attempt"]), 0, {
            "at": ms_to_iso(int(u["recorded"])), "kind": "shipment", "shipment_id": u["shipment_id"],
            "status": u["status"], "carrier_code": u["carrier_code"], "tracking_no": u["tracking_no"],
            "attempt": int(u["attempt"]), "reason": u["reason"]}))
    timeline.sort(key=lambda item: item[:4])
    return [entry for *_order, entry in timeline]


def _table_exists(backend, db: str, table: str) -> bool:
    return bool(int(backend.query(f"EXISTS TABLE {db}.{table}")[0]["result"]))


def loop_figures(backend, db: str) -> dict[str, int]:
    """The loop's figures: events sent to ERPs, shipments uploaded / failed (by their latest outcome),
    tracked parcels in transit / delivered (by their latest step), and late orders (open ship_overdue and
    parcel_stalled findings)."""
    db = check_identifier(db)
    figures = {"sent_to_erp": 0}
    if _table_exists(backend, db, "erp_deliveries"):
        figures["sent_to_erp"] = int(backend.query(
            f"SELECT uniqExact(event_id) AS n FROM {db}.erp_deliveries")[0]["n"])
    shipments = backend.query(
        "SELECT countIf(latest = 'UPLOADED') AS uploaded, countIf(latest = 'FAILED') AS failed FROM ("
        f"SELECT argMax(status, (recorded_at, attempt)) AS latest FROM {db}.shipments FINAL GROUP BY shipment_id)")[0]
    final = ", ".join(quote(s) for s in FINAL_PARCEL_STATES)
    parcels = backend.query(
        f"SELECT countIf(latest NOT IN ({final})) AS in_transit, countIf(latest = 'DELIVERED') AS delivered FROM ("
        f"SELECT argMax(tracking_state, (step_at, version)) AS latest FROM {db}.tracking FINAL "
        "GROUP BY order_id, tracking_no)")[0]
    late = {r["rule"]: int(r["n"]) for r in backend.query(
        f"SELECT rule, uniqExact(order_id) AS n FROM {db}.anomalies FINAL WHERE state = 'raised' AND rule IN "
        f"({', '.join(quote(r) for r in LATE_RULES)}) GROUP BY rule")}
    figures.update(
        shipments_uploaded=int(shipments["uploaded"]), shipments_failed=int(shipments["failed"]),
        parcels_in_transit=int(parcels["in_transit"]), parcels_delivered=int(parcels["delivered"]),
        late_to_ship=late.get("ship_overdue", 0), parcels_stalled=late.get("parcel_stalled", 0))
    figures["late"] = figures["late_to_ship"] + figures["parcels_stalled"]
    return figures


def stage_progress(stage: dict | None) -> int:
    """The sum of the progress figures the live instances of a stage report in their heartbeats (0 for a
    stage that is not running or not known)."""
    return sum(int(i.get("progress") or 0) for i in (stage or {}).get("instances") or ())
