"""Ship-back under `tonglu up`: a shipment posted to the API reaches the platform simulator, the order turns
SHIPPED because the platform says so on its next poll or push, and the tracker follows the parcel the
shipper reported UPLOADED to the door; `tonglu sim order` drives one order."""
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.helpers import TONGLU, get_json, running_stack, wait_until

pytestmark = pytest.mark.e2e


def _cli(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run(TONGLU + list(args), env=stack["env"], capture_output=True, text=True, timeout=60, check=False)


def _post(stack, path: str, body: dict) -> tuple[int, dict]:
    token = (Path(stack["env"]["TONGLU_DATA_DIR"]) / "admin.token").read_text().strip()
    request = urllib.request.Request(f"{stack['base']}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def _order(stack, order_id: str) -> dict | None:
    try:
        return get_json(f"{stack['base']}/api/orders/{urllib.request.quote(order_id, safe='')}")[1]
    except OSError:
        return None


def test_a_posted_shipment_reaches_the_platform_and_comes_back_as_shipped(tmp_path_factory):
    with running_stack(tmp_path_factory, demo_rate=0) as stack:
        made = {}
        for platform, shop, carrier in (("taobao", "e2e-ship", "中通快递"), ("shopify", "e2e-ship-us", "UPS")):
            done = _cli(stack, "sim", "orders", "--platform", platform, "--shop", shop, "--count", "1")
            assert done.returncode == 0, done.stderr
            made[json.loads(done.stdout)[0]] = carrier
        for order_id in made:
            wait_until(lambda oid=order_id: (o := _order(stack, oid)) and o["status"] == "PAID", 90,
                       f"{order_id} did not reach the API as PAID")
        for n, (order_id, carrier) in enumerate(made.items()):
            status, body = _post(stack, f"/api/orders/{order_id}/shipments",
                                 {"carrier": carrier, "tracking_no": f"E2E770000{n}"})
            assert status == 202 and body["status"] == "PENDING" and set(body) == {"shipment_id", "status"}
        for n, order_id in enumerate(made):
            shipped = wait_until(lambda oid=order_id: (o := _order(stack, oid)) and o["status"] == "SHIPPED" and o,
                                 90, f"{order_id} did not turn SHIPPED")
            assert [s["tracking_no"] for s in shipped["shipments"]] == [f"E2E770000{n}"]
        # the loop goes on from the shipper's UPLOADED: the tracker subscribes the parcel, the carrier (told
        # to skip ahead) signs it, and the order shows it delivered
        taobao_id = next(iter(made))
        tracking = stack["env"]["TONGLU_TRACKING_SIM_HTTP"]
        wait_until(lambda: get_json(f"{tracking}/_sim/parcels?tracking_no=E2E7700000")[1]["parcels"], 60,
                   "the uploaded parcel was not subscribed")
        request = urllib.request.Request(f"{tracking}/_sim/advance", method="POST", data=json.dumps(
            {"tracking_no": "E2E7700000", "state": "delivered"}).encode(), headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
        delivered = wait_until(lambda: (o := _order(stack, taobao_id)) and o["shipments"][0].get(
            "tracking_state") == "DELIVERED" and o, 60, "the signed parcel did not reach the order")
        assert any(t["kind"] == "shipment" and t["status"] == "UPLOADED" for t in delivered["timeline"])
        # the platform's own status after an act, printed by the CLI
        done = _cli(stack, "sim", "order", taobao_id, "--do", "request-refund")
        assert done.returncode == 0 and done.stdout.strip() == "WAIT_BUYER_CONFIRM_GOODS", done.stderr
