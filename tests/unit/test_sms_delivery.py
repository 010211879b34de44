"""The SMS hub's pure parts beyond the core: provider signing and answers, pushes, composing, the ledger,
failover, member care and the configuration's environment."""
import copy
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
import pytest

from connectors.sms.callbacks import (
    CallbackError,
    aliyun_replies,
    aliyun_reports,
    platform_reports,
    tencent_replies,
    tencent_reports,
)
from connectors.sms.gateways import AliyunGateway, Outgoing, aliyun_result, tencent_results, unanswered
from connectors.sms.signing import tc3_authorization, tc3_signature, tc3_string_to_sign
from connectors.sms.simulator import platform_report
from connectors.sms.transport import TransportError
from projections.clickhouse.ddl import TABLE_COLUMNS
from projections.clickhouse.rows import sms_message_row
from streams.derive import derive_events
from streams.sms.compose import delayed_event, parcel_card, requests_for, trigger_of, variable_order
from streams.sms.failover import Health, try_order
from streams.sms.identity import phone_hash
from streams.sms.ledger import Ledger, evolve, receipt
from streams.sms.members import birthday_requests, member_record, parse_members_csv, points_requests
from streams.sms.templates import SmsConfigError, load_sms_config
from tests.factories import BASE_MS, canonical_order, changed

ROOT = Path(__file__).parents[2]
SAMPLES, ALIYUN_SAMPLES = ROOT / "connectors/sms/samples", ROOT / "connectors/alerts/samples/sms"
CONFIG = load_sms_config(ROOT / "infra/sms.toml", {})
KEY = b"k" * 32
BJ = ZoneInfo("Asia/Shanghai")


def _json(path: Path):
    return orjson.loads(path.read_bytes())


# -- signing ----------------------------------------------------------------------------------------------------
def test_the_gateway_signs_sendsms_exactly_as_the_sheets_worked_example():
    form = next(line for line in (ALIYUN_SAMPLES / "aliyun_sendsms_request.txt").read_text().splitlines()
                if line.startswith("Signature="))
    expected = dict(parse_qsl(form))
    at = datetime(2024, 5, 29, 2, 15, tzinfo=ZoneInfo("UTC")).timestamp()
    gateway = AliyunGateway("aliyun", "http://x/", "LTAI5tDemoKeyId0001", "demoAccessKeySecret", None,
                            clock=lambda: at)
    message = Outgoing("TL-SMS-000123", "+86 138 0013 8000", "【通路商城】", "SMS_465123456",
                       (("order", "TL240529001"), ("no", "SF1402938475610")))
    params = gateway.send_params([message], message.key, nonce="7c1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6")
    assert params == expected
    assert params["Signature"] == "L0VHbtekLS1IULBczrUdkXAjxew="


def test_tc3_worked_example():
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    assert tc3_string_to_sign("cvm.tencentcloudapi.com", "cvm", 1551113065, payload).endswith(
        "2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    signature = tc3_signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm.tencentcloudapi.com", "cvm", 1551113065,
                              payload)
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    header = tc3_authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                               "cvm.tencentcloudapi.com", "cvm", 1551113065, payload)
    assert header.endswith(f"SignedHeaders=content-type;host, Signature={signature}")


# -- provider answers -------------------------------------------------------------------------------------------
def test_aliyun_answers_say_who_may_take_the_message():
    ok = aliyun_result(200, (ALIYUN_SAMPLES / "aliyun_sendsms_response_ok.json").read_bytes(), 0)
    assert ok.ok and ok.provider_id == "900619717000123456^0"
    limit = aliyun_result(200, (ALIYUN_SAMPLES / "aliyun_sendsms_response_limit.json").read_bytes(), 0)
    assert (limit.ok, limit.elsewhere, limit.unhealthy) == (False, True, False)  # flow control: next gateway
    bad = aliyun_result(200, (ALIYUN_SAMPLES / "aliyun_sendsms_response_bad_mobile.json").read_bytes(), 0)
    assert (bad.code, bad.elsewhere) == ("isv.MOBILE_NUMBER_ILLEGAL", False)  # no gateway takes a bad number
    down = aliyun_result(503, b"503 Service Temporarily Unavailable", 0)
    assert down.elsewhere and down.unhealthy
    proxy = aliyun_result(504, b"504 Gateway Time-out", 0)  # the gateway behind may still take it
    assert (proxy.elsewhere, proxy.in_doubt) == (False, True)


def test_a_call_without_an_answer_goes_elsewhere_only_when_it_never_left():
    never_left = unanswered(TransportError("cannot connect to 127.0.0.1:1", sent=False), 0)
    assert (never_left.elsewhere, never_left.in_doubt, never_left.unhealthy) == (True, False, True)
    timed_out = unanswered(TransportError("no answer within 2s"), 0)
    assert (timed_out.elsewhere, timed_out.in_doubt, timed_out.unhealthy) == (False, True, True)


def test_tencent_answers_per_number():
    message = Outgoing("TL-SMS-000125", "13800138000", "【通路商城】", "2187654", ())
    (result,) = tencent_results(200, (SAMPLES / "tencent_sendsms_response.json").read_bytes(), [message], 0)
    assert result.ok and result.provider_id == "2028:5207717000021456789"
    limited = {"Response": {"SendStatusSet": [{"PhoneNumber": "+8613800138000", "Code":
                                               "LimitExceeded.PhoneNumberDailyLimit", "Message": "limit"}]}}
    (result,) = tencent_results(200, orjson.dumps(limited), [message], 0)
    assert result.elsewhere and not result.unhealthy
    auth = {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "x"}}}
    (result,) = tencent_results(200, orjson.dumps(auth), [message], 0)
    assert result.elsewhere and result.unhealthy
    other = Outgoing("TL-SMS-000126", "13900139000", "【通路商城】", "2187654", ())
    answered = {"Response": {"SendStatusSet": [{"PhoneNumber": "+8613800138000", "Code": "Ok", "SerialNo": "s1"}]}}
    found, unmentioned = tencent_results(200, orjson.dumps(answered), [message, other], 0)
    assert found.ok and (unmentioned.in_doubt, unmentioned.elsewhere) == (True, False)  # it may have gone out


# -- pushes -------------------------------------------------------------------------------------------------------
def test_delivery_reports_of_both_providers():
    delivered, failed = aliyun_reports(_json(ALIYUN_SAMPLES / "aliyun_sms_report_push.json"))
    assert (delivered.out_id, delivered.delivered, delivered.code) == ("TL-SMS-000123", True, "DELIVERED")
    assert (failed.out_id, failed.delivered, failed.code) == ("TL-SMS-000124", False, "MK:0001")
    assert delivered.reported_at == int(datetime(2024, 5, 29, 10, 15, 7, tzinfo=BJ).timestamp() * 1000)
    (report,) = tencent_reports(_json(SAMPLES / "tencent_status_callback.json"))
    assert (report.out_id, report.provider_id, report.delivered, report.phone) == (
        "TL-SMS-000125", "2028:5207717000021456789", True, "13800138000")
    with pytest.raises(CallbackError, match="aliyun"):
        aliyun_reports([{"out_id": "x"}])


def test_platform_reports_in_the_configured_shape():
    pushed = [platform_report({"out_id": "k1", "message_id": "39501^0", "to": "oaid-1"}, False, 1_800_000_000.0,
                              {"out_id": "extend"}),
              platform_report({"out_id": "k2", "message_id": "39502^0", "to": "oaid-2"}, True, 1_800_000_000.0,
                              {"out_id": "extend"})]
    assert "extend" in pushed[0] and "out_id" not in pushed[0]
    first, second = platform_reports(pushed, "taobao", {"out_id": "extend"})
    assert (first.provider, first.out_id, first.provider_id, first.token, first.delivered, first.code) == (
        "taobao", "k1", "39501^0", "oaid-1", True, "DELIVERED")
    assert (second.delivered, second.code) == (False, "MK:0001") and second.reported_at == 1_800_000_000_000
    with pytest.raises(CallbackError, match="needs out_id"):
        platform_reports(pushed, "taobao")  # read with our own names, the key is missing


def test_replies_of_both_providers():
    (reply,) = aliyun_replies([{"phone_number": "13800138000", "content": "TD", "sign_name": "通路"}])
    assert (reply.phone, reply.text) == ("13800138000", "TD")
    (reply,) = tencent_replies({"extend": "", "mobile": "13800138000", "nationcode": "86", "text": "退订"})
    assert (reply.phone, reply.text) == ("13800138000", "退订")


# -- composing ----------------------------------------------------------------------------------------------------
def _event(order, previous=None, now=BASE_MS, kind=None):
    events = derive_events(previous, order, now)
    return next(e for e in events if kind is None or e["event_type"] == kind)


def test_an_event_fires_its_templates_once_per_order_trigger_and_template():
    paid = _event(canonical_order(), kind="OrderPaid")
    (request,) = requests_for(paid, CONFIG, BASE_MS, lambda p: False)
    assert (request["trigger"], request["template"], request["channel"]) == ("OrderPaid", "order_confirmed",
                                                                             "platform")
    assert request["token"] == "1aQnJ0dpbOvg7" and request["text"].startswith("【通路好物】您在shop1的订单1001已付款157.80元")
    assert [p["name"] for p in request["params"]] == ["shop_name", "order_no", "amount"]
    assert requests_for(copy.deepcopy(paid), CONFIG, BASE_MS + 5000, lambda p: False)[0]["key"] == request["key"]
    shipped = changed(canonical_order(), status="SHIPPED", shipments=[
        {"carrier": "顺丰速运", "tracking_no": "SF1402938475610", "shipped_at": BASE_MS, "line_ids": ["1"]}])
    (notice,) = requests_for(_event(shipped, canonical_order(), kind="OrderShipped"), CONFIG, BASE_MS, bool)
    assert "顺丰速运" in notice["text"] and notice["key"] != request["key"]


def test_the_channel_follows_the_receiver_and_no_text_holds_personal_data():
    plain = canonical_order(platform="shopify")
    plain["receiver"] = {**plain["receiver"], "secure_token": None}
    (request,) = requests_for(_event(plain, kind="OrderPaid"), CONFIG, BASE_MS, lambda p: p == "shopify")
    assert (request["channel"], request["token"], request["to_masked"]) == ("gateway", None, "138****1111")
    (request,) = requests_for(_event(plain, kind="OrderPaid"), CONFIG, BASE_MS, lambda p: False)
    assert request["channel"] == "none"
    assert "张" not in orjson.dumps(request).decode()


def test_old_events_fire_nothing_and_tracking_steps_pick_their_template():
    paid = _event(canonical_order(), kind="OrderPaid")
    assert requests_for(paid, CONFIG, BASE_MS + 25 * 3_600_000, bool) == []
    tracked = changed(paid["order"], status="SHIPPED", shipments=[
        {"carrier": "中通快递", "tracking_no": "ZT1", "tracking_state": "IN_TRANSIT", "tracking_at": BASE_MS - 9},
        {"carrier": "顺丰速运", "tracking_no": "SF2", "tracking_state": "OUT_FOR_DELIVERY", "tracking_at": BASE_MS},
        {"carrier": "圆通速递", "tracking_no": "YT3", "tracking_state": None, "tracking_at": None}])
    event = {**paid, "event_type": "TrackingUpdated", "order": tracked}  # Order v4: the parcel's state
    assert trigger_of(event) == ("TrackingUpdated", "派送中")
    (request,) = requests_for(event, CONFIG, BASE_MS, bool)
    assert (request["trigger"], request["trigger_detail"], request["template"]) == (
        "TrackingUpdated", "派送中", "out_for_delivery")
    assert "顺丰速运 SF2" in request["text"]
    moved = {**event, "order": {**tracked, "shipments": tracked["shipments"][:1]}}
    assert [r["template"] for r in requests_for(moved, CONFIG, BASE_MS, bool)] == ["in_transit"]
    picked = {**event, "order": {**tracked, "shipments": [{**tracked["shipments"][0], "tracking_state": "PICKED_UP"}]}}
    assert requests_for(picked, CONFIG, BASE_MS, bool) == []  # no template for that step
    assert variable_order(CONFIG.templates["in_transit"]) == ["carrier", "tracking_no", "step", "eta"]


def test_a_stalled_parcel_of_an_order_on_its_way_fires_one_delay_notice():
    shipped = changed(canonical_order(), status="SHIPPED", shipments=[
        {"carrier": "中通快递", "tracking_no": "ZT1", "shipped_at": BASE_MS, "line_ids": []},
        {"carrier": "顺丰速运", "tracking_no": "SF2", "shipped_at": BASE_MS, "line_ids": []}])
    card = parcel_card(shipped)
    assert "name_masked" not in card["receiver"] and parcel_card(canonical_order()) is None  # not on its way
    stalled = {"rule": "parcel_stalled", "state": "raised", "detected_at": BASE_MS, "order_id": card["order_id"],
               "evidence": {"tracking_no": "SF2", "hours_since_movement": "50"}}
    (request,) = requests_for(delayed_event(stalled, card), CONFIG, BASE_MS, bool)
    assert (request["trigger"], request["template"], request["channel"]) == ("ParcelDelayed", "delay_notice",
                                                                             "platform")
    assert "顺丰速运 SF2" in request["text"] and "运输原因" in request["text"]
    assert delayed_event({**stalled, "state": "resolved"}, card) is None
    assert delayed_event({**stalled, "rule": "parcel_returned"}, card) is None


# -- the ledger ---------------------------------------------------------------------------------------------------
def _request(key="k1", kind="service", shop="shop1"):
    return {"key": key, "order_id": "taobao:shop1:1", "member_id": None, "platform": "taobao", "shop_id": shop,
            "trigger": "OrderPaid", "template": "order_confirmed", "kind": kind, "channel": "gateway",
            "to_masked": "138****1111", "phone_hash": None, "segments": 1, "created_at": BASE_MS}


def test_the_ledger_keeps_the_newest_state_and_counts_what_was_spent():
    ledger = Ledger()
    claim = receipt(_request(), "sending", BASE_MS, phone_hash="h1")
    sent = evolve(claim, "sent", BASE_MS + 10, provider="aliyun", sent_at=BASE_MS + 10, provider_id="biz")
    delivered = evolve(sent, "delivered", BASE_MS + 20, reported_at=BASE_MS + 20)
    for record in (claim, delivered, sent, claim):  # replays out of order never go back
        ledger.apply(record)
    assert ledger.status("k1") == "delivered" and ledger.by_provider_id["biz"] == "k1"
    assert ledger.history("h1", BASE_MS + 30).sent == ((BASE_MS, "service"),)
    assert ledger.spent_today("shop1", BASE_MS + 30, "Asia/Shanghai") == 1
    ledger.apply(receipt(_request("k2"), "sending", BASE_MS, phone_hash="h2"))
    assert [r["key"] for r in ledger.unfinished()] == ["k2"]
    ledger.opt_out("h1")
    assert ledger.history("h1", BASE_MS).opted_out and not ledger.history("h2", BASE_MS).opted_out


def test_a_gateway_that_keeps_failing_is_passed_over_then_probed():
    health = {"aliyun": Health(down_after=3, down_for_ms=5000), "tencent": Health()}
    for at in range(3):
        health["aliyun"].record(False, True, at)
    assert try_order(["aliyun", "tencent"], health, 10) == ["tencent", "aliyun"]
    assert try_order(["aliyun", "tencent"], health, 5003) == ["aliyun", "tencent"]
    health["tencent"].record(False, False, 10)  # flow control marks nobody down
    assert health["tencent"].up(11)


# -- member care --------------------------------------------------------------------------------------------------
MEMBERS = """member_id,shop_id,phone,platform,token,name,birthday,points,consent
m1,shop1,13800138000,,,张三,1990-03-18,100,1
m2,shop1,,taobao,oaid-2,,03-19,5,否
m3,shop1,12345,,,,,,1
m4,shop1,13800138001,,,,1990-02-30,,1
,shop1,13800138002,,,,,,1
m6,shop1,13800138003,,,,,ten,yes
"""


def test_the_members_import_refuses_bad_lines_by_number():
    rows, errors = parse_members_csv(MEMBERS)
    assert [r.member_id for r in rows] == ["m1", "m2"]
    assert [e.split(":")[0] for e in errors] == ["line 4", "line 5", "line 6", "line 7"]
    assert "phone" in errors[0] and "birthday" in errors[1] and "member_id" in errors[2] and "points" in errors[3]
    (header_error,) = parse_members_csv("id,phone\n1,13800138000\n")[1]
    assert header_error.startswith("line 1: the header lacks member_id, shop_id (columns: member_id, shop_id")


def test_birthdays_once_a_year_and_points_changes():
    rows, _ = parse_members_csv(MEMBERS)
    member = member_record(rows[0], BASE_MS, KEY, lambda phone: {"sealed": len(phone)})
    assert member["phone_hash"] == phone_hash("13800138000", KEY) and member["to_masked"] == "138****8000"
    assert "13800138000" not in orjson.dumps(member).decode() and member["name_masked"] == "张*"
    on_the_day = int(datetime(2026, 3, 18, 9, tzinfo=BJ).timestamp() * 1000)
    (greeting,) = birthday_requests(member, CONFIG, on_the_day)
    assert (greeting["trigger"], greeting["kind"], greeting["channel"]) == ("Birthday", "marketing", "gateway")
    assert birthday_requests(member, CONFIG, on_the_day + 3_600_000)[0]["key"] == greeting["key"]
    next_year = int(datetime(2027, 3, 18, 9, tzinfo=BJ).timestamp() * 1000)
    assert birthday_requests(member, CONFIG, next_year)[0]["key"] != greeting["key"]
    assert birthday_requests(member, CONFIG, on_the_day + 86_400_000) == []
    later = {**member, "points": 250, "updated_at": BASE_MS + 1000}
    (notice,) = points_requests(member, later, CONFIG, BASE_MS + 2000)
    assert "+150" in notice["text"] and "250" in notice["text"]
    assert points_requests(member, {**member, "updated_at": BASE_MS + 5}, CONFIG, BASE_MS + 10) == []


# -- configuration ------------------------------------------------------------------------------------------------
def test_the_environment_sets_the_window_and_the_simulator(tmp_path):
    config = load_sms_config(ROOT / "infra/sms.toml", {"TONGLU_SMS_MARKETING_HOURS": "09:00-21:00",
                                                       "TONGLU_SMS_SIM_HTTP": "http://127.0.0.1:9999"})
    assert config.defaults.marketing_hours == "09:00-21:00" and config.rules("any").marketing_hours == "09:00-21:00"
    assert config.gateways["aliyun"].url == "http://127.0.0.1:9999/aliyun/"
    with pytest.raises(SmsConfigError, match="TONGLU_SMS_MARKETING_HOURS='9-21' is not HH:MM-HH:MM"):
        load_sms_config(ROOT / "infra/sms.toml", {"TONGLU_SMS_MARKETING_HOURS": "9-21"})
    own = tmp_path / "sms.toml"
    own.write_text((ROOT / "infra/sms.toml").read_text() + '\n[shops.s1]\nmarketing_hours = "10:00-20:00"\n')
    config = load_sms_config(own, {"TONGLU_SMS_MARKETING_HOURS": "09:00-21:00"})
    assert config.rules("s1").marketing_hours == "10:00-20:00"  # a shop's own window stays its own


def test_a_receipt_becomes_one_row_whose_revision_orders_the_records():
    claim = receipt(_request(), "sending", BASE_MS, phone_hash="h1", to_masked="138****1111")
    row = dict(zip(TABLE_COLUMNS["sms_messages"], sms_message_row(claim), strict=True))
    assert "phone_hash" not in row and row["to_masked"] == "138****1111" and row["status"] == "sending"
    sent = evolve(claim, "sent", BASE_MS - 5, sent_at=BASE_MS - 5)  # a clock step back still orders after
    reported = evolve(sent, "failed", BASE_MS + 9, reported_at=BASE_MS + 9, code="MK:0001")
    revisions = [sms_message_row(r)[-1] for r in (receipt(_request(), "queued", BASE_MS + 50), claim, sent, reported)]
    assert revisions == sorted(revisions)
