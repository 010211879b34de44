"""The simulated carriers' parcels (connectors/tracking/parcels.py): subscriptions, a parcel's life, turns."""
import json

import pytest

from connectors.tracking import kuaidi100
from connectors.tracking.parcels import LIFE, Parcels, SubscriptionError

CALLBACK = "http://127.0.0.1:8090/webhooks/kuaidi100?order_id=taobao%3Ademo%3A1"
T0 = 1_717_000_000.0


def param(number="ZT100200300", company="zhongtong", key="k", callback=CALLBACK) -> dict:
    return json.loads(kuaidi100.subscribe_form(company, number, key, callback, "salt")["param"])


@pytest.mark.parametrize("given, code", [
    (param(key="wrong"), "600"), (param(company="nobody"), "700"), (param(number="1"), "700"),
    (param(callback="ftp://x"), "700")])
def test_refused_subscriptions_say_why_in_kuaidi100_codes(given, code):
    with pytest.raises(SubscriptionError) as caught:
        Parcels("k").subscribe(given, T0, None)
    assert caught.value.code == code


def test_a_parcel_is_subscribed_once_while_it_is_tracked():
    parcels = Parcels("k")
    parcels.subscribe(param(), T0, None)
    with pytest.raises(SubscriptionError) as caught:
        parcels.subscribe(param(), T0 + 1, None)
    assert caught.value.code == "501"
    parcels.advance("ZT100200300", "delivered", T0 + 2)
    parcels.subscribe(param(), T0 + 3, None)  # tracking ended: a new subscription is taken


def test_a_demo_parcel_lives_its_life_in_seconds_and_others_in_hours():
    parcels = Parcels("k", demo=frozenset({("taobao", "demo")}), demo_pace=2.0, pace=3600.0)
    demo = parcels.subscribe(param("ZT1001"), T0, ("taobao", "demo"))
    other = parcels.subscribe(param("ZT2002"), T0, ("taobao", "elsewhere"))
    now, states = T0, []
    while not demo.done and now < T0 + 60:
        now += 0.5
        states += [(p.number, p.state) for p in parcels.tick(now)]
    assert [s for n, s in states if n == "ZT1001"] == [code for code, _word, _text in LIFE]
    assert now < T0 + 20 and other.state is None  # the other parcel has not moved yet
    push = demo.push()
    assert push["status"] == "shutdown" and push["lastResult"]["ischeck"] == "1"
    data = push["lastResult"]["data"]
    assert [d["status"] for d in data] == ["签收", "派件", "在途", "在途", "揽收"]  # newest first
    assert data[0]["ftime"] >= data[-1]["ftime"]


@pytest.mark.parametrize("turn, code, done", [("delivered", "3", True), ("exception", "2", False),
                                              ("returned", "6", True), ("refused", "14", True)])
def test_a_parcel_turns_when_told(turn, code, done):
    parcels = Parcels("k")
    parcel = parcels.subscribe(param(), T0, None)
    parcels.advance(parcel.number, turn, T0 + 1)
    assert (parcel.state, parcel.done) == (code, done)
    update = kuaidi100.tracking_update(json.dumps(parcel.push(), ensure_ascii=False))
    assert update["state"] == kuaidi100.STATES[code][0]


def test_advancing_an_unknown_parcel_or_to_an_unknown_state_is_refused():
    parcels = Parcels("k")
    with pytest.raises(KeyError):
        parcels.advance("nope", "delivered", T0)
    parcels.subscribe(param(), T0, None)
    with pytest.raises(ValueError):
        parcels.advance("ZT100200300", "lost", T0)


def test_saved_parcels_load_back_identical_and_a_damaged_file_changes_nothing():
    parcels = Parcels("k", demo=frozenset({("taobao", "demo")}), demo_pace=2.0)
    parcels.subscribe(param("ZT1001"), T0, ("taobao", "demo"))
    parcels.subscribe(param("ZT2002"), T0, None)
    parcels.tick(T0 + 5)
    parcels.advance("ZT2002", "exception", T0 + 6)
    copy = Parcels("k", demo=frozenset({("taobao", "demo")}), demo_pace=2.0)
    copy.restore(parcels.snapshot())
    assert copy.parcels == parcels.parcels and copy.changes > 0
    # the random generator continues too: the next parcel is the one the original would have made
    assert copy.subscribe(param("ZT3003"), T0 + 7, None) == parcels.subscribe(param("ZT3003"), T0 + 7, None)
    with pytest.raises(ValueError):
        copy.restore(parcels.snapshot()[:40])
    assert copy.parcels == parcels.parcels
