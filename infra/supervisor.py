"""When to restart a crashed process: exponential backoff, forgiven once a process stayed up a while.

Pure bookkeeping over plain numbers (seconds on any monotonic clock); `infra.stack` does the process
handling and asks this module how long to wait and what to say.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """1 s, 2 s, 4 s, … up to 30 s between restarts; a process that ran `stable_after` seconds starts over at 1 s."""

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    stable_after: float = 60.0

    def delay(self, crashes_in_a_row: int) -> float:
        """The wait before restarting after the `crashes_in_a_row`-th crash in a row (1-based)."""
        return min(self.max_delay, self.first_delay * self.factor ** max(0, crashes_in_a_row - 1))


@dataclass(frozen=True)
class RestartState:
    """One supervised process: when its current run started and how often it crashed."""

    started_at: float
    crashes_in_a_row: int = 0
    restarts: int = 0  # since the stack started


@dataclass(frozen=True)
class Restart:
    """The decision after a crash: wait `delay` seconds, then start run number `state.restarts` + 1."""

    delay: float
    state: RestartState


def after_crash(policy: RestartPolicy, state: RestartState, exited_at: float) -> Restart:
    """The backoff after a process that started at `state.started_at` exited at `exited_at`."""
    in_a_row = 1 if exited_at - state.started_at >= policy.stable_after else state.crashes_in_a_row + 1
    return Restart(policy.delay(in_a_row), RestartState(state.started_at, in_a_row, state.restarts + 1))


def restarted(state: RestartState, now: float) -> RestartState:
    """The state of a process that was just started again."""
    return RestartState(now, state.crashes_in_a_row, state.restarts)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, …"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def restart_message(name: str, exit_code: int | None, restart: Restart) -> str:
    """The operator's log line, Chinese first, e.g. `normalizer 退出 exited (code -9), 2 s 后重启 restarting in 2s (3rd restart)`."""
    code = "?" if exit_code is None else exit_code
    return (f"{name} 退出 exited (code {code}), {restart.delay:g} s 后重启 restarting in {restart.delay:g}s "
            f"({ordinal(restart.state.restarts)} restart)")
