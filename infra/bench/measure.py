"""Small measuring tools for the benchmark: the event-header reader, CPU and RSS per process,
percentiles, HTTP counts."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    """An Avro string at `pos`: (text, the position after it)."""
    length, pos = _varint(data, pos)
    return data[pos:pos + length].decode(), pos + length


def event_raw_record_id(value: bytes) -> str | None:
    """The raw_record_id of an OrderEvent, read from its Avro head without decoding the order snapshot."""
    pos = 10
    for _ in range(3):  # event_id, event_type, order_id
        _, pos = read_string(value, pos)
    for _ in range(4):  # version, seq, occurred_at, recorded_at
        _, pos = _varint(value, pos)
    while True:  # changed_fields: array blocks
        count, pos = _varint(value, pos)
        if count == 0:
            break
        if count < 0:
            _, pos = _varint(value, pos)
            count = -count
        for _ in range(count):
            _, pos = read_string(value, pos)
    branch, pos = _varint(value, pos)
    return read_string(value, pos)[0] if branch == 1 else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far, all its threads together."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def wait_quiet(pid: int, deadline: float, below: float = 0.1, window: float = 2.0) -> bool:
    """Until a process uses less than `below` of a core over `window` seconds (nothing left to do)."""
    while time.time() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < below * window:
            return True
    return False


class CpuMeter:
    """CPU per unit of work of each process over a phase, less what it burns while idle (measured
    first, over `idle_seconds`, with nothing flowing): polling and heartbeats are not per-order cost."""

    def __init__(self, pids: dict[str, int], idle_seconds: float = 5.0):
        self.pids = pids
        before = self._now()
        time.sleep(idle_seconds)
        self.idle = {name: (used - before[name]) / idle_seconds for name, used in self._now().items()}
        self._start, self._started = self._now(), time.time()

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def per_unit(self, units: int) -> dict[str, float]:
        """CPU seconds per unit of each process since the meter was made (after its idle measurement)."""
        elapsed = time.time() - self._started
        return {name: max(0.0, used - self._start[name] - self.idle[name] * elapsed) / units
                for name, used in self._now().items()}


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop_processes(procs: dict, timeout: float = 15.0) -> dict[str, float]:
    """Terminate every process of `procs` (name -> Popen), killing those still there after `timeout`
    seconds; their peak RSS in MB, read before they go."""
    import subprocess

    rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return rss


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def http_status(url: str) -> int | None:
    """The HTTP status a GET of `url` answers (errors included), None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def sql_count(http: str, query: str, token: str) -> int:
    request = urllib.request.Request(f"{http}/api/sql", data=json.dumps({"sql": query}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(json.loads(resp.read())["rows"][0][0])
    except (OSError, ValueError, KeyError, IndexError):
        return -1
