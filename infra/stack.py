"""`tonglu up`: the whole local stack in the foreground, supervised, stopped cleanly by Ctrl-C.

A worker that exits is started again after a backoff (`infra.supervisor`); the local broker too, after
which its topics are created again and what it lost is rebuilt (`infra.replay`).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from infra.broker import broker_answers, ensure_topics, spawn_broker, wait_for_broker
from infra.config import Settings, local_alert_secrets, local_erp_secrets
from infra.raw_keys import local_keys_env
from infra.replay import rebuild_after_broker_loss
from infra.sms_local import local_sms_env
from infra.supervisor import RestartPolicy, RestartState, after_crash, restart_message, restarted
from streams.sms.templates import SmsConfigError, load_sms_config

# start order; stopped in reverse
PROCESSES = ["projector", "normalizer", "detector", "alerter", "simulators", "connectors", "tracker", "erp", "shipper",
             "notifier", "sender"]
# Stopped when the local broker dies and started afresh once it is back with its topics. Their clients
# would reconnect by themselves, but their read positions belong to the lost topics (a consumer past
# the new end of a partition skips what is written below its old position; the projector's lag counter
# never recovers), and a group member that rejoins the new Tansu and is stopped mid-join wedged its
# group there: the projector's group never got partitions again. Started afresh on the new broker they
# find no committed offsets and read from the earliest, which is safe (every sink is idempotent).
# The connectors stop too: the rebuild republishes the raw archive only onto an empty raw.orders, so
# nothing may publish before it (whatever they were sending is archived first, so nothing is lost).
# The simulators are the platforms: they keep going.
RESTART_AFTER_BROKER_LOSS = ("projector", "normalizer", "detector", "alerter", "connectors", "tracker", "erp", "shipper",
                             "notifier", "sender")
TICK = 0.5  # seconds between looks at the children
STATS_EVERY = 5.0


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, b""):
        text = _ANSI.sub("", line.decode(errors="replace")).rstrip()
        if text:
            sys.stdout.write(f"[{name:<10}] {text}\n")
        sys.stdout.flush()


def port_in_use(url: str) -> bool:
    host, _, port = url.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def _say(text: str) -> None:
    print(f"[tonglu    ] {text}", flush=True)


@dataclass
class Child:
    """A supervised process: the current run, its restart bookkeeping, and when it is due again."""

    name: str
    proc: subprocess.Popen
    state: RestartState
    restart_at: float | None = None  # set while it waits for its restart


class Stack:
    def __init__(self, settings: Settings, own_broker: bool, demo_rate: float,
                 policy: RestartPolicy = RestartPolicy()):
        self.settings, self.own_broker, self.demo_rate, self.policy = settings, own_broker, demo_rate, policy
        self.children: dict[str, Child] = {}
        self.broker: Child | None = None
        self.broker_proc: subprocess.Popen | None = None  # the newest local broker, even while it starts
        self._env: dict[str, str] = {}
        self._broker_up = True  # an external broker, as last seen

    def start(self) -> None:
        s = self.settings
        busy = [url for url in (f"tcp://{s.kafka_bootstrap}" if self.own_broker else None, s.http, s.webhook_http,
                                s.erp_sim_http) if url and port_in_use(url)]
        if busy:
            raise SystemExit(f"error: {', '.join(busy)} already in use — is another Tonglu stack running?")
        s.data_dir.mkdir(parents=True, exist_ok=True)  # kept across runs
        if self.own_broker:
            self.broker = Child("broker", self._spawn_broker(), RestartState(time.monotonic()))
            _say(f"broker (Tansu, memory) on {s.kafka_bootstrap}")
        else:
            wait_for_broker(s.kafka_bootstrap)
            _say(f"using Kafka at {s.kafka_bootstrap}")
        self._prepare_topics()
        from projections.access import Role
        from projections.tokens import TokenStore, ensure_local_token, local_admin

        _say(local_admin(s.tokens_path, s.admin_token_path, s.http))  # API access: the local admin token
        # the ERP simulator's warehouse posts shipments as an operator
        ensure_local_token(TokenStore(s.tokens_path), s.erp_sim_token_path, "erp-simulator", Role.OPERATOR)
        self._env = {**local_alert_secrets(), **local_erp_secrets(), **os.environ,
                     "TONGLU_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                     "TONGLU_DEMO_RATE": str(self.demo_rate), "PYTHONUNBUFFERED": "1"}
        keys_env, keys_note = local_keys_env(s.data_dir)
        self._env.update(keys_env)
        _say(keys_note)
        try:
            self._env.update(local_sms_env(s.data_dir, load_sms_config(s.sms_config)))
        except SmsConfigError as exc:
            raise SystemExit(f"错误 error: {exc}") from None
        for name in PROCESSES:
            self.children[name] = Child(name, self._spawn(name), RestartState(time.monotonic()))
        _say(f"HTTP API and status page on {s.http}/  (Ctrl-C stops everything)")

    def _spawn_broker(self) -> subprocess.Popen:
        port = int(self.settings.kafka_bootstrap.rsplit(":", 1)[1])
        proc = spawn_broker(port, self.settings.data_dir / "broker.log")
        self.broker_proc = proc  # held before waiting, so Ctrl-C meanwhile still stops it
        wait_for_broker(self.settings.kafka_bootstrap, proc=proc)
        return proc

    def _prepare_topics(self) -> None:
        """Topics first, then what a fresh broker lacks, before any connector publishes."""
        s = self.settings
        ensure_topics(s.kafka(), s.topics.specs(), s.partitions)
        _say(f"topics ready: {', '.join(t.name for t in s.topics.specs())} ({s.partitions} partitions)")
        rebuilt = rebuild_after_broker_loss(s)
        if rebuilt:
            _say(f"重建 rebuilt {rebuilt} records on the broker")

    def _spawn(self, name: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", name], env=self._env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()
        return proc

    def watch(self) -> None:
        last_stats, last = time.monotonic(), None
        while True:
            time.sleep(TICK)
            self._watch_broker()
            for child in self.children.values():
                self._supervise(child)
            if time.monotonic() - last_stats >= STATS_EVERY:
                last_stats = time.monotonic()
                last = self._report(last)

    def _supervise(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is None:
            code = child.proc.poll()
            if code is None:
                return
            decision = after_crash(self.policy, child.state, now)
            _say(restart_message(child.name, code, decision))
            child.state, child.restart_at = decision.state, now + decision.delay
        elif now >= child.restart_at:
            child.proc, child.state, child.restart_at = self._spawn(child.name), restarted(child.state, now), None

    def _watch_broker(self) -> None:
        if self.broker is None or self.broker.proc.poll() is None:
            return
        broker, now = self.broker, time.monotonic()
        decision = after_crash(self.policy, broker.state, now)
        _say(restart_message(f"broker 消息代理 ({self.settings.kafka_bootstrap})", broker.proc.returncode, decision)
             + f" — 内存中的主题已丢失 its in-memory topics are lost; 停止消费者 stopping its consumers until it is "
               f"back: {', '.join(RESTART_AFTER_BROKER_LOSS)}")
        self._stop_children([self.children[name] for name in RESTART_AFTER_BROKER_LOSS], grace=3.0)
        time.sleep(max(0.0, now + decision.delay - time.monotonic()))
        broker.proc, broker.state = self._spawn_broker(), restarted(decision.state, time.monotonic())
        self._prepare_topics()
        now = time.monotonic()
        for name in RESTART_AFTER_BROKER_LOSS:
            child = self.children[name]
            child.proc, child.state, child.restart_at = self._spawn(name), restarted(child.state, now), None
        _say(f"broker 消息代理已恢复 is back on {self.settings.kafka_bootstrap}; 消费者已重启 consumers started "
             "afresh, reading the new topics from the start")

    def _report(self, last: tuple[int, float] | None) -> tuple[int, float] | None:
        if not self.own_broker:
            up = broker_answers(self.settings.kafka(), timeout=2.0)
            if up != self._broker_up:
                _say(f"消息代理{'已恢复' if up else '不可用'} broker at {self.settings.kafka_bootstrap} is "
                     f"{'back' if up else 'DOWN (not restarted: it is not ours)'}")
                self._broker_up = up
        stats = self._stats()
        if not stats:
            return last
        total = stats.get("total_events", 0)
        rate = (total - last[0]) / (time.time() - last[1]) if last else 0.0
        down = [name for name, stage in (stats.get("stages") or {}).items() if not stage.get("ok")]
        _say(f"订单 orders {stats.get('total_orders', 0)} · 事件 events {total} ({rate:.0f}/s) · "
             f"raw pages {stats.get('raw_records', 0)} · 延迟 lag {stats.get('lag_total', '?')} · "
             f"死信 dead letters {stats.get('dlq_count', 0)}"
             + (f" · 故障 down: {', '.join(down)}" if down else ""))
        return total, time.time()

    def _stats(self) -> dict | None:
        try:
            token = self.settings.api_token()
            request = urllib.request.Request(f"{self.settings.http}/api/stats",
                                             headers={"Authorization": f"Bearer {token}"} if token else {})
            with urllib.request.urlopen(request, timeout=2) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _terminate(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:  # it exited just now
                pass

    def _stop_children(self, children: list[Child], grace: float = 6.0) -> None:
        """SIGTERM, then SIGKILL to whoever is still there after `grace` seconds."""
        for child in children:
            self._terminate(child.proc)
        deadline = time.time() + grace
        for child in children:
            try:
                child.proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()  # reaped here, so nothing outlives the stack

    def stop(self) -> None:
        self._stop_children(list(reversed(self.children.values())))
        broker = self.broker_proc
        if broker is not None and broker.poll() is None:
            broker.terminate()
            try:
                broker.wait(3)
            except subprocess.TimeoutExpired:
                broker.kill()
                broker.wait()
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
        # a second Ctrl-C or SIGTERM (a terminal, make, a supervisor passing it on) must not cut the stop short
        # and leave the workers running: stop() itself kills whoever does not stop within its grace
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
