"""`tonglu up` as a newcomer runs it: orders flow, the CLI works against it, the page shows them,
and Ctrl-C stops every process it started."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from schemas.codec import AvroCodec
from schemas.kafka import Publisher
from tests.e2e.helpers import TONGLU, get_json, port_free, running_stack, wait_until


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory) as running:
        yield running


def _cli(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run(TONGLU + list(args), env=stack["env"], capture_output=True, text=True, timeout=60, check=False)


def test_demo_orders_flow_into_the_api(stack):
    stats = wait_until(lambda: (s := get_json(f"{stack['base']}/api/stats")[1])["total_orders"] > 0 and s, 90,
                  "no demo order reached the API")
    assert set(stats["orders_by_platform"]) <= {"taobao", "shopify"}


def test_raw_bodies_are_sealed_with_a_key_the_stack_generated(stack):
    from schemas.sealing import EnvKeyProvider
    from tests.integration.helpers import TopicReader

    keys = Path(stack["env"]["TONGLU_DATA_DIR"]) / "raw-keys"
    assert "generated a local key" in stack["log"].read_text(errors="replace")
    assert keys.stat().st_mode & 0o077 == 0
    key_id = EnvKeyProvider(keys.read_text()).current
    reader = TopicReader(f"127.0.0.1:{stack['ports']['broker']}", "raw.orders", "RawRecord")
    try:
        raws = [raw for _, raw in reader.until(3, timeout=90)]
    finally:
        reader.close()
    assert all(raw["seal"] and raw["seal"]["key_id"] == key_id for raw in raws)


@pytest.mark.parametrize("platform,shop", [("taobao", "e2e-home"), ("shopify", "e2e-us")])
def test_sim_orders_are_polled_or_pushed_and_served_masked(stack, platform, shop):
    done = _cli(stack, "sim", "orders", "--platform", platform, "--shop", shop, "--count", "4")
    assert done.returncode == 0, done.stderr
    order_ids = json.loads(done.stdout)
    assert len(order_ids) == 4 and all(oid.startswith(f"{platform}:{shop}:") for oid in order_ids)

    def served():
        out = []
        for oid in order_ids:
            try:
                _, order = get_json(f"{stack['base']}/api/orders/{urllib.request.quote(oid, safe='')}")
            except urllib.error.HTTPError:
                return None
            out.append(order)
        return out

    orders = wait_until(served, 90, f"{platform} orders were not served")
    for order in orders:
        assert order["version"] >= 1 and order["status"] in ("PAID", "PENDING_PAYMENT", "SHIPPED", "PARTIALLY_SHIPPED",
                                                             "DELIVERED", "COMPLETED", "CANCELLED")
        phone = order["receiver"]["phone_masked"]
        assert phone and "*" in phone and order["created_at"].endswith("Z")


def _order(stack, order_id: str) -> dict:
    return get_json(f"{stack['base']}/api/orders/{urllib.request.quote(order_id, safe='')}")[1]


def test_demo_orders_reach_the_erp_simulator_signed_and_its_warehouse_reaches_the_api(stack):
    from urllib.parse import quote

    erp = stack["env"]["TONGLU_ERP_SIM_HTTP"]
    received = wait_until(lambda: get_json(f"{erp}/_sim/received")[1]["received"], 90,
                          "no order event reached the ERP simulator")
    first = received[0]
    assert first["headers"]["X-Tonglu-Event-Id"] == first["body"]["event_id"]
    assert json.loads(first["raw"]) == first["body"] and first["headers"]["X-Tonglu-Signature"].startswith("sha256=")
    order_id = first["body"]["order_id"]
    _, served = wait_until(lambda: get_json(f"{stack['base']}/api/orders/{quote(order_id, safe='')}"), 60,
                           "the order in the API")
    assert served["order_id"] == order_id and served["receiver"] == first["body"]["order"]["receiver"]
    # the warehouse picks the paid orders of demo shops and posts them with the operator token `tonglu up` made
    picked = wait_until(lambda: [s for s in get_json(f"{erp}/_sim/shipments")[1]["shipments"]
                                 if s["answer"] and s["answer"]["status"]], 60, "the warehouse reaching the API")
    assert all(s["answer"]["status"] not in (401, 403) for s in picked)
    token = (Path(stack["env"]["TONGLU_DATA_DIR"]) / "erp-sim.token").read_text().strip()
    request = urllib.request.Request(f"{stack['base']}/api/tokens", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # an operator may not manage tokens
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403 and json.loads(refused.value.read())["role"] == "operator"
    assert any(r["body"]["order"]["status"] == "PAID" for r in received)
    stages = get_json(f"{stack['base']}/api/stats")[1]["stages"]
    assert stages["erp"]["ok"]


def test_defective_orders_are_held_alerted_once_and_released(stack):
    done = _cli(stack, "sim", "orders", "--platform", "taobao", "--shop", "e2e-bad", "--count", "2",
                "--anomaly", "zero_amount")
    assert done.returncode == 0, done.stderr
    order_ids = json.loads(done.stdout)

    def held():
        try:
            orders = [_order(stack, oid) for oid in order_ids]
        except urllib.error.HTTPError:
            return None
        return orders if all(o["hold"] for o in orders) else None

    try:
        orders = wait_until(held, 90, "defective orders were not held")
    except AssertionError:
        for oid in order_ids:
            print(oid, _order(stack, oid), get_json(f"{stack['base']}/api/anomalies?order_id={oid}")[1])
        raise
    assert all(o["hold_reasons"][0]["rule"] == "zero_amount" and o["hold_reasons"][0]["message_zh"]
               for o in orders)

    def alerted():
        with urllib.request.urlopen(f"{stack['alerts']}/_sim/messages?service=dingtalk", timeout=5) as resp:
            texts = [m["text"] for m in json.loads(resp.read())["messages"]]
        return texts if all(any(oid in t for t in texts) for oid in order_ids) else None

    texts = wait_until(alerted, 60, "no alert reached the DingTalk simulator")
    assert all(sum(oid in t for t in texts) == 1 for oid in order_ids), "an order was alerted twice"
    assert all("金额为 0" in t for t in texts if any(oid in t for oid in order_ids))

    release = f"{stack['base']}/api/orders/{urllib.request.quote(order_ids[0], safe='')}/release"
    anonymous = urllib.request.Request(release, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # reading is open on loopback, writing is not
        urllib.request.urlopen(anonymous, timeout=10)
    assert refused.value.code == 401
    token = (Path(stack["env"]["TONGLU_DATA_DIR"]) / "admin.token").read_text().strip()  # what `tonglu up` wrote
    request = urllib.request.Request(release, data=json.dumps({"reason": "已核实 / checked"}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
    wait_until(lambda: not _order(stack, order_ids[0])["hold"], 60, "the released order is still held")
    findings = get_json(f"{stack['base']}/api/anomalies?order_id={urllib.request.quote(order_ids[0], safe='')}")[1]
    assert findings["anomalies"][0]["state"] == "resolved"


def test_sql_for_analysts_is_read_only(stack):
    done = _cli(stack, "sql", "SELECT platform, count() AS n FROM tonglu.orders GROUP BY platform ORDER BY platform")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "platform\tn"
    refused = _cli(stack, "sql", "DROP TABLE tonglu.orders")
    assert refused.returncode != 0 and "error" in refused.stderr.lower()


def test_demo_buyers_get_their_messages_once(stack):
    def texted():
        listed = get_json(f"{stack['base']}/api/sms?limit=1000")[1]["messages"]
        return len([m for m in listed if m["status"] in ("sent", "delivered")]) >= 5 and listed

    listed = wait_until(texted, 120, "no demo buyer got a message")
    assert {m["channel"] for m in listed} <= {"gateway", "platform", "none"} and all(
        m["to_masked"] is None or "*" in m["to_masked"] for m in listed)
    received = get_json(f"http://127.0.0.1:{stack['ports']['sms']}/_sim/messages")[1]["messages"]
    out_ids = [m["out_id"] for m in received]
    assert len(out_ids) == len(set(out_ids))  # no message twice
    assert {m["key"] for m in listed if m["status"] in ("sent", "delivered")} <= set(out_ids)


def test_status_page_renders_in_headless_chromium(stack, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    wait_until(lambda: get_json(f"{stack['base']}/api/stats")[1]["total_orders"] > 0, 60, "no orders yet")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom",
                          stack["base"] + "/"], capture_output=True, text=True, timeout=90, check=False).stdout
    assert "通路 Tonglu" in dom and "今日订单" in dom
    assert "淘宝/天猫" in dom or "Shopify" in dom  # platforms by their display names, filled in by the script
    assert "✔ 正常 up · 消息代理" in dom and "标准化" in dom  # each stage with its up/down mark


def _worker_niceness(base: str) -> dict[str, int]:
    """Niceness of this stack's worker processes (found by the HTTP address in their environment)."""
    out = {}
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmd = (proc_dir / "cmdline").read_bytes().split(b"\0")
            environ = (proc_dir / "environ").read_bytes().split(b"\0")
            stat = (proc_dir / "stat").read_text()
        except OSError:
            continue
        if b"worker" in cmd and f"TONGLU_HTTP={base}".encode() in environ:
            out[cmd[cmd.index(b"worker") + 1].decode()] = int(stat.rsplit(")", 1)[1].split()[16])
    return out


def test_the_projector_yields_cpu_to_the_order_path(stack):
    nice = _worker_niceness(stack["base"])
    assert {"projector", "normalizer", "detector", "alerter"} <= set(nice)
    assert nice["projector"] - nice["normalizer"] == 5 and nice["detector"] == nice["normalizer"]


def test_an_uploaded_shipment_of_a_demo_shop_is_tracked_to_the_door(stack):
    """What the ship-back worker publishes for an upload the platform accepted is subscribed, the simulated
    carrier moves the parcel, and the order's timeline shows every step."""
    def shipped():
        orders = get_json(f"{stack['base']}/api/orders?platform=taobao&status=SHIPPED&limit=50")[1]["orders"]
        return next((o for o in orders if len(o["shipments"]) == 1), None)

    order = wait_until(shipped, 90, "no demo order shipped whole")
    number = order["shipments"][0]["tracking_no"]
    result = {"shipment_id": "e2e-1", "order_id": order["order_id"], "status": "UPLOADED", "carrier_code": "ZTO",
              "tracking_no": number, "line_ids": [], "attempt": 1, "reason": None,
              "recorded_at": int(time.time() * 1000)}
    Publisher({"bootstrap.servers": f"127.0.0.1:{stack['ports']['broker']}"}).publish(
        [("fulfillment.results", order["order_id"].encode(), AvroCodec("ShipmentResult").encode(result))])

    def signed_for():
        got = _order(stack, order["order_id"])
        return got if got["shipments"][0].get("tracking_state") == "DELIVERED" else None

    got = wait_until(signed_for, 90, "the parcel was not signed for")
    steps = [t["tracking"]["state"] for t in got["timeline"] if "tracking" in t]
    assert steps[0] == "PICKED_UP" and steps[-1] == "DELIVERED" and len(steps) >= 3
    assert any(t["kind"] == "shipment" and t["status"] == "UPLOADED" for t in got["timeline"])
    assert got["status"] in ("DELIVERED", "COMPLETED")  # the platform may have moved on by itself meanwhile
    assert get_json(f"{stack['base']}/api/stats")[1]["loop"]["parcels_delivered"] >= 1


def test_ctrl_c_stops_everything(stack):
    proc = stack["proc"]
    proc.send_signal(signal.SIGINT)
    proc.wait(25)
    assert wait_until(lambda: all(port_free(p) for p in stack["ports"].values()), 15, "ports still in use")
    assert "stopped" in stack["log"].read_text()
