"""The restart policy of `tonglu up`: backoff, its cap, forgiveness after a stable run, the log line."""
from infra.supervisor import RestartPolicy, RestartState, after_crash, ordinal, restart_message, restarted

POLICY = RestartPolicy(first_delay=1.0, factor=2.0, max_delay=30.0, stable_after=60.0)


def _crash_loop(times: int, run_seconds: float) -> list[float]:
    """Delays of a process that crashes `times` times, each run lasting `run_seconds`."""
    state, now, delays = RestartState(started_at=0.0), 0.0, []
    for _ in range(times):
        now += run_seconds
        decision = after_crash(POLICY, state, now)
        delays.append(decision.delay)
        now += decision.delay
        state = restarted(decision.state, now)
    return delays


def test_quick_crashes_double_the_wait_up_to_the_cap():
    assert _crash_loop(8, run_seconds=0.5) == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_process_that_stayed_up_long_enough_starts_over_at_the_first_delay():
    state = RestartState(started_at=0.0)
    for now in (1.0, 4.0, 9.0):  # three quick crashes: 1, 2, 4 s
        decision = after_crash(POLICY, state, now)
        state = restarted(decision.state, now + decision.delay)
    assert decision.delay == 4 and state.crashes_in_a_row == 3
    stable = after_crash(POLICY, state, state.started_at + 60.0)
    assert stable.delay == 1 and stable.state.crashes_in_a_row == 1
    assert stable.state.restarts == 4  # the total keeps counting


def test_just_short_of_stable_still_backs_off():
    state = restarted(after_crash(POLICY, RestartState(0.0), 1.0).state, 2.0)
    assert after_crash(POLICY, state, 2.0 + 59.9).delay == 2


def test_the_log_line_says_who_how_and_when_chinese_first():
    decision = after_crash(POLICY, RestartState(0.0, crashes_in_a_row=1, restarts=2), exited_at=3.0)
    assert restart_message("normalizer", -9, decision) == (
        "normalizer 退出 exited (code -9), 2 s 后重启 restarting in 2s (3rd restart)")


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
