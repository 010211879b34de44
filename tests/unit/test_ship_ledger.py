"""The ship-back worker's pure side: the ledger's decisions, planning, results, findings, retries."""
import pytest

from schemas.codec import AvroCodec
from schemas.shipments import shipment_id
from streams.anomalies.detector import anomaly_id
from streams.shipping.ledger import Ledger
from streams.shipping.outcomes import (
    MAX_DELAY_S,
    Refusal,
    Target,
    finding,
    job_of,
    plan,
    refused,
    result,
    retry_delay,
)

ORDER = "taobao:tonglu-home:2841736650118523691"
TAOBAO = Target("taobao", "淘宝/天猫 Taobao/Tmall", True, {"ZTO": "中通快递", "SF": "顺丰速运"})


def command(tracking="ZT7700001", carrier="中通", at=1000, lines=(), order=ORDER) -> dict:
    return {"shipment_id": shipment_id(order, tracking), "order_id": order, "carrier": carrier,
            "tracking_no": tracking, "line_ids": list(lines), "issued_by": "ops#1", "requested_at": at}


def test_a_command_is_planned_to_the_platform_code_of_its_carrier():
    job = plan(command(lines=("1",)), TAOBAO)
    assert (job.platform, job.shop_id, job.external_id) == ("taobao", "tonglu-home", "2841736650118523691")
    assert (job.carrier_code, job.carrier_name, job.line_ids, job.attempt) == ("ZTO", "中通快递", ("1",), 1)


@pytest.mark.parametrize("target,carrier,reason", [
    (None, "ZTO", "unknown platform 'taobao'"),
    (Target("taobao", "淘宝", False, {"ZTO": "中通快递"}), "ZTO", "does not support ship-back"),
    (TAOBAO, "YTO", "unknown_carrier: 淘宝/天猫 Taobao/Tmall has no carrier 'YTO'; known: ZTO 中通快递, SF 顺丰速运"),
])
def test_a_command_that_cannot_go_to_the_platform_is_refused_with_the_reason(target, carrier, reason):
    with pytest.raises(Refusal) as exc:
        plan(command(carrier=carrier), target)
    assert reason in str(exc.value)


def test_results_findings_and_their_resolution_fit_the_contracts():
    job = plan(command(), TAOBAO)
    codecs = AvroCodec("ShipmentResult"), AvroCodec("Anomaly")
    failed = result(job, "FAILED", 5000, "cancelled: taobao 15 isv.logistics-offline-service-error:B04 …")
    raised, resolved = finding(failed), finding(result(job, "UPLOADED", 9000), "resolved")
    for record, codec in ((failed, codecs[0]), (raised, codecs[1]), (resolved, codecs[1])):
        assert codec.decode(codec.encode(record)) == record
    assert raised["anomaly_id"] == resolved["anomaly_id"] == anomaly_id(ORDER, "ship_upload_failed")
    assert (raised["rule"], raised["severity"], raised["action"], raised["state"]) == (
        "ship_upload_failed", "warning", "flag", "raised")
    assert raised["message_zh"].startswith("发货回传失败：cancelled") and raised["evidence"]["carrier_code"] == "ZTO"
    assert resolved["state"] == "resolved" and resolved["detected_at"] == 9000
    early = refused(command(carrier="YTO"), "unknown_carrier: …", 5000)
    assert early["carrier_code"] is None and "carrier_code" not in finding(early)["evidence"]


def test_the_ledger_uploads_once_resumes_what_was_under_way_and_retries_failures_asked_again():
    ledger = Ledger()
    first = command(at=1000)
    assert ledger.decide(first) == "new"
    job = plan(first, TAOBAO)
    ledger.record(result(job, "PENDING", 1001))
    assert ledger.decide(first) == "under_way"
    assert ledger.decide(command(at=2000)) == "under_way"
    assert [r["status"] for r in ledger.under_way()] == ["PENDING"]
    assert not ledger.record(result(job, "UPLOADED", 1500))
    assert ledger.decide(first) == "seen"               # redelivered after a restart
    assert ledger.decide(command(at=2000)) == "answer_again"  # asked again later: told again, not uploaded
    assert ledger.under_way() == []

    other = command("SF1402938475610", "SF", at=3000)
    ledger.record(result(plan(other, TAOBAO), "FAILED", 3001, "refunded"))
    assert ledger.decide(other) == "seen"
    assert ledger.decide(command("SF1402938475610", "顺丰", at=4000)) == "new"  # corrected and asked again
    assert ledger.failed_orders == {ORDER}
    assert ledger.record(result(plan(command("SF1402938475610", at=4000), TAOBAO), "UPLOADED", 4001))
    assert ledger.failed_orders == set()


def test_a_resumed_job_continues_its_attempts():
    job = plan(command(), TAOBAO)
    assert job_of(result(job, "PENDING", 1), TAOBAO).attempt == 1
    assert job_of(result(job.__class__(**{**job.__dict__, "attempt": 3}), "RETRYING", 1), TAOBAO).attempt == 4
    assert job_of(result(job, "PENDING", 1), TAOBAO) == job


def test_retries_back_off_to_a_cap():
    assert [retry_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, MAX_DELAY_S, MAX_DELAY_S]
