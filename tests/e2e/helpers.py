"""Running `tonglu up` for end-to-end tests: free ports, a temporary data directory, HTTP helpers."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from infra.broker import free_port
from infra.config import write_local_routing

TONGLU = [sys.executable, "-m", "infra.cli"]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def health(base: str) -> tuple[int, dict]:
    """/healthz's status code and body, 503 included."""
    try:
        return get_json(f"{base}/healthz")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout:.0f}s")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@contextlib.contextmanager
def running_stack(tmp_path_factory, demo_rate: float = 2, **extra_env):
    """`tonglu up` on free ports with a temporary data directory, once /healthz answers 200; stopped with
    SIGINT (as Ctrl-C) at the end if a test has not stopped it."""
    ports = {name: free_port() for name in ("broker", "http", "taobao", "shopify", "webhooks", "alerts", "smtp",
                                            "tracking", "erp", "sms", "sms_callbacks")}
    routing = write_local_routing(tmp_path_factory.mktemp("config") / "alert_routing.toml",
                                  f"http://127.0.0.1:{ports['alerts']}", ports["smtp"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGLU_")}
    env.update({
        "TONGLU_LOCAL_BROKER_PORT": str(ports["broker"]), "TONGLU_HTTP": f"http://127.0.0.1:{ports['http']}",
        "TONGLU_SIMULATORS": f"taobao=http://127.0.0.1:{ports['taobao']},shopify=http://127.0.0.1:{ports['shopify']}",
        "TONGLU_WEBHOOK_HTTP": f"http://127.0.0.1:{ports['webhooks']}",
        "TONGLU_ALERT_SIM_HTTP": f"http://127.0.0.1:{ports['alerts']}", "TONGLU_ALERT_SMTP_PORT": str(ports["smtp"]),
        "TONGLU_ALERT_ROUTING": str(routing), "TONGLU_TRACKING_SIM_HTTP": f"http://127.0.0.1:{ports['tracking']}",
        "TONGLU_ERP_SIM_HTTP": f"http://127.0.0.1:{ports['erp']}", "TONGLU_SMS_SIM_HTTP": f"http://127.0.0.1:{ports['sms']}",
        "TONGLU_SMS_CALLBACK_HTTP": f"http://127.0.0.1:{ports['sms_callbacks']}",
        "TONGLU_DATA_DIR": str(tmp_path_factory.mktemp("stack") / "data"), "PYTHONUNBUFFERED": "1",
        **{k: str(v) for k, v in extra_env.items()},
    })
    log = tmp_path_factory.mktemp("logs") / "up.log"
    proc = subprocess.Popen(TONGLU + ["up", "--demo-rate", str(demo_rate)], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    base = env["TONGLU_HTTP"]
    try:
        wait_until(lambda: health(base)[0] == 200, 90, "the API did not answer 200 on /healthz")
        yield {"proc": proc, "env": env, "base": base, "ports": ports, "log": log,
               "alerts": f"http://127.0.0.1:{ports['alerts']}"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
