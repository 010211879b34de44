"""A platform is one folder: a copy of the Taobao folder under a new code, kept outside the package
and named only by TONGLU_PLATFORM_PATH, is picked up by `tonglu normalize`, the conformance suite
and the local stack, with no edit anywhere else."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from connectors import platforms
from infra.broker import free_port
from infra.config import write_local_routing
from tests.e2e.helpers import get_json, health
from tests.e2e.helpers import wait_until as _wait

REPO = Path(__file__).parents[2]
TONGLU = [sys.executable, "-m", "infra.cli"]
CODE = "taobaocopy"


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    """The Taobao folder copied as `taobaocopy`, its manifest given its own names, port and demo shop."""
    root = tmp_path_factory.mktemp("platforms")
    folder = root / CODE
    shutil.copytree(platforms.get("taobao").folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = folder / "manifest.toml"
    text = manifest.read_text(encoding="utf-8")
    text = re.sub(r"(?s)\[aliases\.tmall\].*?\n\n", "", text)  # the copy is not Tmall
    text = text.replace('zh = "淘宝/天猫"\nen = "Taobao/Tmall"', 'zh = "淘宝副本"\nen = "Taobao copy"')
    port = free_port()
    text = re.sub(r"(?m)^sim_port = \d+", f"sim_port = {port}", text)
    text = re.sub(r"(?m)^demo_shops = .*$", 'demo_shops = ["copy-demo"]', text)
    manifest.write_text(text, encoding="utf-8")
    for expected in (folder / "samples").glob("*.expected.json"):  # its canonical orders carry its own code
        body = expected.read_text(encoding="utf-8")
        expected.write_text(body.replace('"taobao:', f'"{CODE}:').replace('"platform": "taobao"',
                                                                          f'"platform": "{CODE}"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGLU_")}
    env.update({"TONGLU_PLATFORM_PATH": str(root), "PYTHONUNBUFFERED": "1"})
    return {"folder": folder, "env": env, "sim_port": port}


def _run(args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)


def test_normalize_maps_the_copy_under_its_own_code(copied):
    sample = copied["folder"] / "samples" / "trades_sold_increment_get.json"
    done = _run(TONGLU + ["normalize", "--platform", CODE, "--shop", "s1", str(sample)], copied["env"])
    assert done.returncode == 0, done.stderr
    orders = json.loads(done.stdout)
    assert len(orders) == 3 and all(o["order_id"].startswith(f"{CODE}:s1:") and o["platform"] == CODE
                                    for o in orders)
    assert "淘宝副本 Taobao copy" in done.stderr
    unknown = _run(TONGLU + ["normalize", "--platform", CODE, "--shop", "s1", str(sample)],
                   {k: v for k, v in copied["env"].items() if k != "TONGLU_PLATFORM_PATH"})
    assert unknown.returncode != 0 and f"unknown platform '{CODE}'" in unknown.stderr  # control: path unset


def test_the_conformance_suite_runs_on_the_copy(copied):
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/conformance",
                 "-k", CODE], copied["env"], timeout=600)
    passed = re.search(r"(\d+) passed", done.stdout)
    assert done.returncode == 0 and passed and int(passed.group(1)) >= 15, done.stdout[-3000:]
    assert "failed" not in done.stdout.splitlines()[-1]


def _get(url: str):
    return get_json(url)[1]


def test_the_local_stack_runs_the_copy(copied, tmp_path):
    env = dict(copied["env"])
    script = "import json; from infra.config import Settings; print(json.dumps(Settings.from_env().simulators))"
    defaults = _run([sys.executable, "-c", script], env)
    assert json.loads(defaults.stdout)[CODE] == f"http://127.0.0.1:{copied['sim_port']}", defaults.stderr
    ports = {name: free_port() for name in ("broker", "http", "webhooks", "alerts", "smtp", "tracking", "erp", "sms",
                                            "sms_callbacks")}
    routing = write_local_routing(tmp_path / "alert_routing.toml", f"http://127.0.0.1:{ports['alerts']}",
                                  ports["smtp"])
    base = f"http://127.0.0.1:{ports['http']}"
    env.update({
        "TONGLU_LOCAL_BROKER_PORT": str(ports["broker"]), "TONGLU_HTTP": base,
        # only the copy's simulator, on the port its manifest chose (the shipped ones keep theirs free)
        "TONGLU_SIMULATORS": f"{CODE}=http://127.0.0.1:{copied['sim_port']}",
        "TONGLU_WEBHOOK_HTTP": f"http://127.0.0.1:{ports['webhooks']}",
        "TONGLU_ALERT_SIM_HTTP": f"http://127.0.0.1:{ports['alerts']}", "TONGLU_ALERT_SMTP_PORT": str(ports["smtp"]),
        "TONGLU_ALERT_ROUTING": str(routing), "TONGLU_DATA_DIR": str(tmp_path / "data"),
        "TONGLU_TRACKING_SIM_HTTP": f"http://127.0.0.1:{ports['tracking']}",
        "TONGLU_ERP_SIM_HTTP": f"http://127.0.0.1:{ports['erp']}",
        "TONGLU_SMS_SIM_HTTP": f"http://127.0.0.1:{ports['sms']}",
        "TONGLU_SMS_CALLBACK_HTTP": f"http://127.0.0.1:{ports['sms_callbacks']}",
    })
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(TONGLU + ["up", "--demo-rate", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO)
    try:
        _wait(lambda: health(base)[0] == 200, 120, "the stack did not come up healthy")
        # /healthz covers the workers, not the simulators' ports: on a loaded machine they may open a little later
        tries = []
        _wait(lambda: tries.append(_run(TONGLU + ["sim", "orders", "--platform", CODE, "--shop", "copy-shop",
                                                  "--count", "3"], env)) or tries[-1].returncode == 0, 60,
              "tonglu sim orders kept failing")
        made = tries[-1]
        assert made.returncode == 0, made.stderr
        order_ids = json.loads(made.stdout)
        assert len(order_ids) == 3 and all(oid.startswith(f"{CODE}:copy-shop:") for oid in order_ids)
        orders = _wait(lambda: [_get(f"{base}/api/orders/{urllib.request.quote(oid, safe='')}") for oid in order_ids],
                       120, "the copy's orders were not served")
        assert all(o["platform"] == CODE and o["created_at"].endswith("Z") for o in orders)
        listed = {p["code"]: p for p in _get(f"{base}/api/platforms")["platforms"]}
        assert listed[CODE]["name_zh"] == "淘宝副本" and listed[CODE]["capabilities"]["pull"] is True
        stats = _get(f"{base}/api/stats")
        assert stats["platform_names"][CODE] == {"zh": "淘宝副本", "en": "Taobao copy"}
        assert stats["orders_by_platform"].get(CODE, 0) >= 3
        assert "淘宝副本 Taobao copy 模拟器 simulator" in log.read_text(errors="replace")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
