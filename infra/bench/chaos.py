"""Chaos, measured (`make chaos`, and a shorter phase of `make bench`).

A whole local stack (`tonglu up`, on free ports and a fresh data directory) takes orders from the
simulators while a random worker is killed with SIGKILL every few seconds and the broker once. At the end
it prints what a brand cares about: orders created, orders in ClickHouse (lost = the difference), distinct
against total event ids on `order.events`, duplicate rows left in ClickHouse after FINAL, dead letters,
and the longest stall (pending orders, and for that long none became visible).

With `external_broker` the stack uses a broker started apart from it (as a cluster would be). A cluster
survives the loss of one broker by replication, so there the broker is not killed but frozen (SIGSTOP) for
a while: what its clients see when a cluster node fails.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from infra.broker import free_port, start_broker
from infra.config import write_local_routing

WORKERS = ("connectors", "normalizer", "projector", "detector", "alerter")
# (platform, shop) pairs the orders are spread over: Taobao polls (100 a page), Shopify polls and pushes
SHOPS = [("taobao", f"chaos-tb-{n}") for n in range(6)] + [("shopify", f"chaos-sf-{n}") for n in range(2)]


@dataclass
class Figures:
    created: int = 0
    visible: int = 0
    events_total: int = 0
    events_distinct: int = 0
    duplicate_event_rows: int = 0
    duplicate_order_rows: int = 0
    dead_letters: int = 0
    longest_stall: float = 0.0
    kills: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.created - self.visible

    def lines(self) -> list[str]:
        kinds: dict[str, int] = {}
        for _, name in self.kills:
            kinds[name] = kinds.get(name, 0) + 1
        return [
            (f"orders created          {self.created:,} in the simulators; in ClickHouse {self.visible:,} "
            f"(lost {self.lost:,}) after {self.seconds:.0f} s"),
            f"kills (SIGKILL)         {len(self.kills)}: " + ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items())),
            (f"order.events            {self.events_total:,} records, {self.events_distinct:,} distinct event ids "
            f"({self.events_total - self.events_distinct:,} repeated on the log)"),
            (f"ClickHouse after FINAL  duplicate event rows {self.duplicate_event_rows:,}, duplicate order rows "
            f"{self.duplicate_order_rows:,}"),
            f"dead letters            {self.dead_letters:,}",
            f"longest stall           {self.longest_stall:.1f} s (pending orders, none becoming visible)",
        ]


def _free_ports() -> dict[str, int]:
    return {name: free_port() for name in ("broker", "http", "taobao", "shopify", "webhooks", "alerts", "smtp",
                                           "tracking", "erp", "sms", "sms_callbacks")}


class ChaosStack:
    """`tonglu up` on free ports in its own data directory; finds its processes to kill."""

    def __init__(self, workdir: Path, external_broker: bool):
        self.workdir, self.ports = workdir, _free_ports()
        self.base = f"http://127.0.0.1:{self.ports['http']}"
        self.external: subprocess.Popen | None = None
        self.external_broker = external_broker
        env = {k: v for k, v in os.environ.items() if not k.startswith("TONGLU_")}
        routing = write_local_routing(workdir / "alert_routing.toml", f"http://127.0.0.1:{self.ports['alerts']}",
                                      self.ports["smtp"])
        env.update({
            "TONGLU_HTTP": self.base,
            "TONGLU_SIMULATORS": f"taobao=http://127.0.0.1:{self.ports['taobao']},"
                                 f"shopify=http://127.0.0.1:{self.ports['shopify']}",
            "TONGLU_WEBHOOK_HTTP": f"http://127.0.0.1:{self.ports['webhooks']}",
            "TONGLU_ALERT_SIM_HTTP": f"http://127.0.0.1:{self.ports['alerts']}",
            "TONGLU_ALERT_SMTP_PORT": str(self.ports["smtp"]), "TONGLU_ALERT_ROUTING": str(routing),
            "TONGLU_TRACKING_SIM_HTTP": f"http://127.0.0.1:{self.ports['tracking']}",
            "TONGLU_SMS_SIM_HTTP": f"http://127.0.0.1:{self.ports['sms']}",
            "TONGLU_SMS_CALLBACK_HTTP": f"http://127.0.0.1:{self.ports['sms_callbacks']}",
            "TONGLU_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1",
            "TONGLU_ERP_SIM_HTTP": f"http://127.0.0.1:{self.ports['erp']}",
        })
        if external_broker:
            self.external = start_broker(self.ports["broker"], workdir / "external-broker.log")
            env["TONGLU_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{self.ports['broker']}"
        else:
            env["TONGLU_LOCAL_BROKER_PORT"] = str(self.ports["broker"])
        self.env = env
        self.log = workdir / "up.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--demo-rate", "0"], env=self.env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tonglu up exited ({self.proc.returncode}); see {self.log}")
            if self.processes().keys() >= set(WORKERS) and self._get("/api/stats") is not None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the stack did not come up within {timeout:.0f} s; see {self.log}")

    def processes(self) -> dict[str, int]:
        """Worker name (and "broker") -> pid, for this stack's processes (matched by their environment)."""
        mark = f"TONGLU_HTTP={self.base}".encode()
        found = {}
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit():
                continue
            try:
                cmd = (proc_dir / "cmdline").read_bytes().split(b"\0")
                environ = (proc_dir / "environ").read_bytes()
            except OSError:
                continue
            if mark not in environ:
                continue
            if b"worker" in cmd and cmd.index(b"worker") + 1 < len(cmd):
                found[cmd[cmd.index(b"worker") + 1].decode()] = int(proc_dir.name)
            elif cmd and cmd[0].endswith(b"tansu"):
                found["broker"] = int(proc_dir.name)
        if self.external is not None and self.external.poll() is None:
            found["broker"] = self.external.pid
        return found

    def kill(self, name: str) -> bool:
        pid = self.processes().get(name)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def freeze_broker(self, seconds: float) -> None:
        """An external broker is frozen, not killed: a cluster keeps its data when a node fails."""
        assert self.external is not None
        os.kill(self.external.pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(self.external.pid, signal.SIGCONT)

    def _get(self, path: str):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def sql(self, query: str) -> list[list] | None:
        headers = {"Content-Type": "application/json"}
        token = Path(self.env["TONGLU_DATA_DIR"]) / "admin.token"
        if token.exists():
            headers["Authorization"] = f"Bearer {token.read_text().strip()}"
        request = urllib.request.Request(f"{self.base}/api/sql", data=json.dumps({"sql": query}).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.loads(resp.read())["rows"]
        except (OSError, ValueError, KeyError):
            return None

    def create_orders(self, platform: str, shop: str, count: int) -> list[str]:
        base = f"http://127.0.0.1:{self.ports[platform]}"
        request = urllib.request.Request(f"{base}/_sim/orders", method="POST",
                                         data=json.dumps({"shop_id": shop, "count": count, "paid": True}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            return [f"{platform}:{shop}:{ext}" for ext in json.loads(resp.read())["external_ids"]]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.external is not None:
            os.kill(self.external.pid, signal.SIGCONT)
            self.external.terminate()
            self.external.wait(10)


def _visible(stack: ChaosStack) -> int | None:
    rows = stack.sql("SELECT count() FROM tonglu.orders WHERE shop_id LIKE 'chaos-%'")
    return int(rows[0][0]) if rows else None


class StallWatch(threading.Thread):
    """Samples visible orders each second; the longest time with orders pending and none becoming visible."""

    def __init__(self, stack: ChaosStack, created: list[int]):
        super().__init__(daemon=True)
        self.stack, self.created = stack, created
        self.longest, self.last = 0.0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        since = time.time()
        while not self._stop_event.wait(1.0):
            seen = _visible(self.stack)
            now = time.time()
            if seen is not None and seen > self.last:
                self.last, since = seen, now
            elif self.last >= self.created[0]:  # nothing pending
                since = now
            self.longest = max(self.longest, now - since)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def _event_ids(stack: ChaosStack) -> tuple[int, int]:
    """Total and distinct event ids of this run's orders on order.events (read from the start)."""
    from schemas.codec import AvroCodec
    from schemas.kafka import read_to_end

    bootstrap = stack.env.get("TONGLU_KAFKA_BOOTSTRAP") or f"127.0.0.1:{stack.ports['broker']}"
    codec = AvroCodec("OrderEvent")
    total, distinct = 0, set()
    for batch in read_to_end({"bootstrap.servers": bootstrap}, ["order.events"], idle=2.0, timeout=300):
        for msg in batch:
            if msg.value() is not None and b":chaos-" in (msg.key() or b""):
                total += 1
                distinct.add(codec.decode(msg.value())["event_id"])
    return total, len(distinct)


def run_chaos(orders: int = 100_000, rate: float = 1_500.0, kill_every: float = 10.0, external_broker: bool = False,
              kill_broker: bool = True, settle_timeout: float = 600.0, seed: int = 11, say=print) -> Figures:
    """Create `orders` at `rate`/s over the chaos shops while killing a worker every `kill_every` s (each in
    turn, in a random order per round) and the broker once, halfway; wait until every order is visible (or
    `settle_timeout`), then count."""
    rng = random.Random(seed)
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="tonglu-chaos-") as tmp:
        stack = ChaosStack(Path(tmp), external_broker)
        try:
            stack.start()
            say(f"chaos: stack up on {stack.base} ({'external' if external_broker else 'its own'} broker); "
                f"{orders:,} orders at {rate:,.0f}/s, a worker killed every {kill_every:.0f} s")
            created_ids: list[str] = []
            created = [0]
            watch = StallWatch(stack, created)
            watch.start()
            t0 = time.time()
            next_kill, broker_at = t0 + kill_every, t0 + orders / rate / 2
            broker_done = not kill_broker
            tick, n = 0.5, 0
            victims: list[str] = []
            while len(created_ids) < orders:
                want = min(orders - len(created_ids), max(1, int(rate * tick)))
                platform, shop = SHOPS[n % len(SHOPS)]
                n += 1
                created_ids += stack.create_orders(platform, shop, want)
                created[0] = len(created_ids)
                now = time.time()
                if not broker_done and now >= broker_at:
                    broker_done = True
                    figures.kills.append((now - t0, "broker"))
                    if external_broker:
                        threading.Thread(target=stack.freeze_broker, args=(10.0,), daemon=True).start()
                    else:
                        stack.kill("broker")
                    say(f"chaos: {now - t0:5.1f} s broker {'frozen for 10 s' if external_broker else 'killed'}")
                elif now >= next_kill:
                    if not victims:  # every worker in turn, in a random order each round
                        victims = rng.sample(WORKERS, len(WORKERS))
                    victim = victims.pop()
                    if stack.kill(victim):
                        figures.kills.append((now - t0, victim))
                        say(f"chaos: {now - t0:5.1f} s kill -9 {victim}")
                    next_kill = now + kill_every
                time.sleep(max(0.0, t0 + len(created_ids) / rate - time.time()))
            figures.created = len(set(created_ids))
            deadline = time.time() + settle_timeout
            while time.time() < deadline:
                rows = stack.sql("SELECT uniqExact(order_id) FROM tonglu.orders WHERE shop_id LIKE 'chaos-%'")
                if rows and int(rows[0][0]) >= figures.created:
                    break
                time.sleep(2)
            watch.stop()
            figures.seconds = time.time() - t0
            figures.longest_stall = watch.longest
            figures.visible = _scalar(stack, "SELECT uniqExact(order_id) FROM tonglu.orders FINAL "
                                             "WHERE shop_id LIKE 'chaos-%'")
            figures.duplicate_event_rows = _scalar(
                stack, "SELECT count() - uniqExact(event_id) FROM tonglu.order_events FINAL "
                       "WHERE shop_id LIKE 'chaos-%'")
            figures.duplicate_order_rows = _scalar(
                stack, "SELECT count() - uniqExact(order_id) FROM tonglu.orders FINAL WHERE shop_id LIKE 'chaos-%'")
            figures.dead_letters = _scalar(stack, "SELECT count() FROM tonglu.dead_letters")
            figures.events_total, figures.events_distinct = _event_ids(stack)
        except Exception:
            say("chaos: the run failed; the stack's last log lines:\n"
                + "\n".join(stack.log.read_text(errors="replace").splitlines()[-40:]))
            raise
        finally:
            stack.stop()
            if os.environ.get("TONGLU_CHAOS_KEEP_LOG"):
                Path(os.environ["TONGLU_CHAOS_KEEP_LOG"]).write_bytes(stack.log.read_bytes())
    return figures


def _scalar(stack: ChaosStack, query: str) -> int:
    rows = stack.sql(query)
    return int(rows[0][0]) if rows else -1
