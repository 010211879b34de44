"""Which shipment results are subscribed for tracking, and with what (connectors/tracking/subscriber.py)."""
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors import platforms
from connectors.tracking import kuaidi100
from connectors.tracking.subscriber import TrackingAccount, Unsubscribable, _carriers, subscription
from infra.config import Settings
from tests.samples import sample_shipment_result

ACCOUNT = TrackingAccount(poll_url="http://sim/poll", key="k", secret="s", callback="http://hooks/webhooks/kuaidi100")


def test_an_uploaded_shipment_is_subscribed_with_its_order_in_the_callback():
    result = sample_shipment_result("taobao:shop1:42", tracking_no="SF100200")
    form = subscription(result, ACCOUNT)
    param = json.loads(form["param"])
    assert (param["company"], param["number"], param["key"]) == ("shunfeng", "SF100200", "k")
    callback = param["parameters"]["callbackurl"]
    assert callback.startswith("http://hooks/webhooks/kuaidi100?")
    assert dict(parse_qsl(urlsplit(callback).query)) == {"order_id": "taobao:shop1:42"}
    assert param["parameters"]["salt"] == kuaidi100.subscription_salt("s", "taobao:shop1:42", "SF100200")


@pytest.mark.parametrize("status", ["PENDING", "FAILED", "RETRYING"])
def test_only_accepted_uploads_are_subscribed(status):
    assert subscription(sample_shipment_result(status=status), ACCOUNT) is None


def test_a_carrier_the_service_does_not_know_is_refused_with_the_reason():
    result = dict(sample_shipment_result(), carrier_code="NOBODY")
    with pytest.raises(Unsubscribable, match="NOBODY"):
        subscription(result, ACCOUNT)


def test_the_local_stack_subscribes_at_the_simulator_and_is_pushed_at_its_receiver():
    account = Settings(webhook_http="http://127.0.0.1:9190", tracking_sim_http="http://127.0.0.1:9185").tracking_account()
    assert account.poll_url == "http://127.0.0.1:9185/poll"
    assert account.callback == "http://127.0.0.1:9190/webhooks/kuaidi100"
    production = Settings(kuaidi100_url="https://poll.kuaidi100.com/poll",
                          tracking_callback="https://hooks.example.com/webhooks/kuaidi100").tracking_account()
    assert (production.poll_url, production.callback) == ("https://poll.kuaidi100.com/poll",
                                                          "https://hooks.example.com/webhooks/kuaidi100")


def test_a_platforms_own_numeric_carrier_code_is_read_through_its_carrier_table():
    result = dict(sample_shipment_result("kuaishou:shop1:42", tracking_no="ZT100200"), carrier_code="4")
    form = subscription(result, ACCOUNT, {"4": "中通快递", "1": "顺丰速运"})
    assert json.loads(form["param"])["company"] == "zhongtong"
    with pytest.raises(Unsubscribable, match="'4'"):
        subscription(result, ACCOUNT)  # without the platform's table "4" names nobody


# Shopify's table also holds cross-border carriers (4PX, YunExpress, ePacket) that the tracking table does not
# know: their shipments are refused with the reason, as any unknown carrier is
@pytest.mark.parametrize("platform", [code for code in platforms.codes() if code != "shopify"])
def test_every_carrier_a_platform_ships_with_can_be_tracked(platform):
    """Each code of every Chinese platform's carrier table, as the shipper puts it on a result, subscribes."""
    for code, name in platforms.manifest(platform).carriers.items():
        result = dict(sample_shipment_result(f"{platform}:shop1:42"), carrier_code=code)
        assert subscription(result, ACCOUNT, _carriers(result["order_id"])) is not None, (platform, code, name)
