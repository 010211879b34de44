"""`tonglu up`: the whole local stack in the foreground, stopped cleanly by Ctrl-C."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from infra.broker import ensure_topics, start_broker, wait_for_broker
from infra.config import Settings, local_alert_secrets
from infra.raw_keys import local_keys_env

# start order; stopped in reverse
PROCESSES = ["projector", "normalizer", "detector", "alerter", "simulators", "connectors"]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, b""):
        text = _ANSI.sub("", line.decode(errors="replace")).rstrip()
        if text:
            sys.stdout.write(f"[{name:<10}] {text}\n")
        sys.stdout.flush()


def _in_use(url: str) -> bool:
    host, _, port = url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def _say(text: str) -> None:
    print(f"[tonglu    ] {text}", flush=True)


class Stack:
    def __init__(self, settings: Settings, own_broker: bool, demo_rate: float):
        self.settings, self.own_broker, self.demo_rate = settings, own_broker, demo_rate
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.broker: subprocess.Popen | None = None

    def start(self) -> None:
        s = self.settings
        busy = [url for url in (f"tcp://{s.kafka_bootstrap}" if self.own_broker else None, s.http, s.webhook_http)
                if url and _in_use(url)]
        if busy:
            raise SystemExit(f"error: {', '.join(busy)} already in use — is another Tonglu stack running?")
        if self.own_broker:
            if s.data_dir.exists():  # the local broker keeps nothing across runs: start everything afresh
                shutil.rmtree(s.data_dir)
            s.data_dir.mkdir(parents=True, exist_ok=True)
            port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
            self.broker = start_broker(port, s.data_dir / "broker.log")
            _say(f"broker (Tansu, memory) on {s.kafka_bootstrap}")
        else:
            wait_for_broker(s.kafka_bootstrap)
            _say(f"using Kafka at {s.kafka_bootstrap}")
        ensure_topics(s.kafka(), s.topics.specs(), s.partitions)
        _say(f"topics ready: {', '.join(t.name for t in s.topics.specs())} ({s.partitions} partitions)")
        from projections.tokens import local_admin  # API access: the local admin token and how to use it

        _say(local_admin(s.tokens_path, s.admin_token_path, s.http))
        env = {**local_alert_secrets(), **os.environ, "TONGLU_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "TONGLU_DEMO_RATE": str(self.demo_rate),
               "PYTHONUNBUFFERED": "1"}
        keys_env, keys_note = local_keys_env(s.data_dir)
        env.update(keys_env)
        _say(keys_note)
        for name in PROCESSES:
            proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()
            self.children.append((name, proc))
        _say(f"HTTP API and status page on {s.http}/  (Ctrl-C stops everything)")

    def watch(self) -> None:
        last = None
        while True:
            time.sleep(5)
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
            stats = self._stats()
            if stats:
                total = stats.get("total_events", 0)
                rate = (total - last[0]) / (time.time() - last[1]) if last else 0.0
                last = (total, time.time())
                _say(f"订单 orders {stats.get('total_orders', 0)} · 事件 events {total} ({rate:.0f}/s) · "
                     f"raw pages {stats.get('raw_records', 0)} · 延迟 lag {stats.get('lag_total', '?')} · "
                     f"死信 dead letters {stats.get('dlq_count', 0)}")

    def _stats(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.settings.http}/api/stats", timeout=2) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 6
        for name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(2)
        if self.broker and self.broker.poll() is None:
            self.broker.terminate()
            try:
                self.broker.wait(3)
            except subprocess.TimeoutExpired:
                self.broker.kill()
        _say("stopped")


def up(settings: Settings, own_broker: bool, demo_rate: float) -> None:
    stack = Stack(settings, own_broker, demo_rate)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start()
        stack.watch()
    except KeyboardInterrupt:
        _say("stopping…")
    finally:
        stack.stop()
