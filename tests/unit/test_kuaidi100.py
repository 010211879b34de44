"""Kuaidi100 conventions: signatures against the recorded pushes, parsing, states, carriers, masking."""
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors.tracking import kuaidi100
from connectors.tracking.kuaidi100 import PushError
from schemas.canonical import beijing_to_ms

SAMPLES = Path(kuaidi100.__file__).parent / "samples"
PUSH = (SAMPLES / "kuaidi100_push.param.json").read_text(encoding="utf-8")
DELIVERED = (SAMPLES / "kuaidi100_push_delivered.param.json").read_text(encoding="utf-8")
SALT = "tlsalt2024"


def _recorded_push_body() -> bytes:
    text = (SAMPLES / "kuaidi100_push.http").read_text(encoding="utf-8")
    return text.split("\n\n", 1)[1].split("\n", 1)[0].encode()


def test_signatures_match_the_recorded_pushes():
    assert kuaidi100.push_sign(PUSH, SALT) == "513E7847FA6774181FB672AB308CE46E"
    assert kuaidi100.push_sign(DELIVERED, SALT) == "AC85D8EE7F6BFA9EF0FADCE9BA6360BC"


def test_a_recorded_push_body_reads_and_verifies():
    param, sign = kuaidi100.read_push(_recorded_push_body())
    assert param == PUSH
    assert kuaidi100.verify_push(param, sign, SALT)
    assert kuaidi100.verify_push(param, sign.lower(), SALT)
    assert not kuaidi100.verify_push(param, sign, "another-salt")
    assert not kuaidi100.verify_push(param.replace("派件", "签收"), sign, SALT)


@pytest.mark.parametrize("body", [b"", b"param=%7B%7D", b"sign=ABC", b"\xff\xfe"])
def test_a_body_without_param_and_sign_is_refused(body):
    with pytest.raises(PushError):
        kuaidi100.read_push(body)


def test_the_update_of_a_recorded_push():
    update = kuaidi100.tracking_update(PUSH)
    assert update == {
        "tracking_no": "SF1402938475610", "company": "shunfeng", "carrier": "顺丰速运", "state": "OUT_FOR_DELIVERY",
        "status": "派件", "step": "[上海市]快件交给王师傅，正在派送途中（联系电话：137****1234）",
        "step_at": beijing_to_ms("2024-05-30 08:41:12"), "delivered_at": None, "monitoring": "polling", "steps": 4}


def test_the_final_push_says_delivered_and_when():
    update = kuaidi100.tracking_update(DELIVERED)
    assert update["state"] == "DELIVERED" and update["monitoring"] == "shutdown"
    assert update["delivered_at"] == update["step_at"] == beijing_to_ms("2024-05-30 11:20:45")


@pytest.mark.parametrize("param, reason", [
    ("not json", "not JSON"), ('{"lastResult": {}}', "lastResult.nu"), ("[]", "lastResult.nu"),
    ('{"lastResult": {"nu": "X1", "state": "99", "data": []}}', "state"),
    ('{"lastResult": {"nu": "X1", "state": "0", "data": [{"ftime": "30/05/2024"}]}}', "step time"),
    ('{"lastResult": {"nu": "X1", "state": "0", "data": [{"ftime": 17}]}}', "step time"),
])
def test_a_param_that_says_nothing_usable_is_refused_with_the_reason(param, reason):
    with pytest.raises(PushError, match=reason):
        kuaidi100.tracking_update(param)


@pytest.mark.parametrize("code, state", [("0", "IN_TRANSIT"), ("1", "PICKED_UP"), ("101", "PICKED_UP"),
                                         ("2", "EXCEPTION"), ("3", "DELIVERED"), ("301", "DELIVERED"),
                                         ("4", "RETURNED"), ("5", "OUT_FOR_DELIVERY"), ("501", "OUT_FOR_DELIVERY"),
                                         ("6", "RETURNING"), ("14", "REFUSED"), ("1401", "REFUSED")])
def test_state_codes_and_sub_states(code, state):
    assert kuaidi100.STATES[kuaidi100.main_state(code)][0] == state


@pytest.mark.parametrize("code", ["9", "99", "", None, "3x"])
def test_unknown_state_codes(code):
    assert kuaidi100.main_state(code) is None


@pytest.mark.parametrize("given, company", [
    ("ZTO", "zhongtong"), ("zto", "zhongtong"), ("中通快递", "zhongtong"), ("中通", "zhongtong"),
    ("zhongtong", "zhongtong"), ("SF Express", "shunfeng"), ("顺丰速运有限公司", "shunfeng"), ("YUNDA", "yunda"),
    ("京东物流", "jd"), ("UPS", "ups"), ("unknown carrier", None), ("", None), (None, None)])
def test_carriers_by_any_name(given, company):
    assert kuaidi100.company_code(given) == company


def test_the_subscription_form_holds_the_callback_and_salt():
    callback = kuaidi100.callback_url("http://127.0.0.1:8090/webhooks/kuaidi100", "taobao:shop 1:123")
    assert callback == "http://127.0.0.1:8090/webhooks/kuaidi100?order_id=taobao%3Ashop%201%3A123"
    form = kuaidi100.subscribe_form("shunfeng", "SF1402938475610", "kd100demoKey", callback, "s4lt", phone="0147")
    assert form["schema"] == "json"
    param = json.loads(form["param"])
    assert param == {"company": "shunfeng", "number": "SF1402938475610", "key": "kd100demoKey",
                     "parameters": {"callbackurl": callback, "salt": "s4lt", "resultv2": "1", "phone": "0147"}}
    assert dict(parse_qsl(callback.split("?", 1)[1]))["order_id"] == "taobao:shop 1:123"


def test_salts_differ_per_order_parcel_and_secret():
    salt = kuaidi100.subscription_salt("secret", "taobao:s:1", "SF1")
    assert len(salt) == 32 and salt == kuaidi100.subscription_salt("secret", "taobao:s:1", "SF1")
    assert salt != kuaidi100.subscription_salt("secret", "taobao:s:2", "SF1")
    assert salt != kuaidi100.subscription_salt("secret", "taobao:s:1", "SF2")
    assert salt != kuaidi100.subscription_salt("other", "taobao:s:1", "SF1")


@pytest.mark.parametrize("code, outcome", [("200", "subscribed"), ("501", "subscribed"), ("500", "retry"),
                                           ("600", "refused"), ("700", "refused"), ("701", "refused")])
def test_subscription_replies(code, outcome):
    assert kuaidi100.subscribe_outcome({"result": code == "200", "returnCode": code}) == outcome


def test_a_push_form_round_trips():
    push = json.loads(DELIVERED)
    form = kuaidi100.push_form(push, SALT)
    param, sign = kuaidi100.read_push(urlencode(form).encode())
    assert json.loads(param) == push and kuaidi100.verify_push(param, sign, SALT)


@pytest.mark.parametrize("text, masked", [
    ("您的快件已签收，签收人：张三丰。", "您的快件已签收，签收人：张**。"),
    ("签收人: 李四 如有疑问", "签收人: 李* 如有疑问"),
    ("已签收，签收人：本人", "已签收，签收人：本人"),
    ("派送中（联系电话：13700001234）", "派送中（联系电话：137****1234）"),
    ("快件到达【上海浦东陆家嘴营业点】", "快件到达【上海浦东陆家嘴营业点】"),
    (None, None)])
def test_steps_lose_names_and_phones(text, masked):
    assert kuaidi100.mask_step(text) == masked
