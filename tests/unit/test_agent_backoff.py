"""CrashBackoff: kubelet's flowcontrol.Backoff as the agent uses it (CrashLoopBackOff,
ImagePullBackOff). Pure; the tests pass the time."""

from __future__ import annotations

import pytest

from node_agent.backoff import CrashBackoff

KEY = ("uid-1", "web")


def crash_loop(runs: list[float]) -> list[float]:
    """Waits between each crash and the next start for a container that runs ``runs[i]``
    seconds on its i-th start, as the pod worker drives the back-off (start at 0)."""
    backoff = CrashBackoff()
    waits, now = [], 0.0
    for run in runs:
        finished = now + run
        wait = backoff.in_backoff(KEY, finished, since=finished)
        waits.append(wait)
        now = finished + wait
        assert backoff.in_backoff(KEY, now, since=finished) == 0.0
        backoff.record_failure(KEY, now, since=finished)
    return waits


@pytest.mark.parametrize(("runs", "waits"), [
    pytest.param([1.0] * 9, [0, 10, 20, 40, 80, 160, 300, 300, 300],
                 id="immediate crashes: 0 then 10 s doubling to the 300 s cap"),
    pytest.param([1.0, 1.0, 1.0, 601.0, 1.0], [0, 10, 20, 0, 10],
                 id="a run over 10 minutes is forgiven: start over"),
    pytest.param([1.0, 1.0, 1.0, 600.0, 1.0], [0, 10, 20, 40, 80],
                 id="exactly 10 minutes is not (kubelet: strictly more than 2x the cap)"),
    pytest.param([1.0, 15.0, 1.0], [0, 10, 20],
                 id="the wait counts from the crash, however long the run was"),
])
def test_crash_loop_waits(runs: list[float], waits: list[float]) -> None:
    assert crash_loop(runs) == waits


@pytest.mark.parametrize(("failures", "now", "remaining"), [
    pytest.param([], 0.0, 0.0, id="unknown key: go"),
    pytest.param([0.0], 4.0, 6.0, id="first failure: 10 s from the update"),
    pytest.param([0.0], 10.0, 0.0, id="waited out"),
    pytest.param([0.0, 10.0], 25.0, 5.0, id="second failure doubles to 20 s"),
    pytest.param([0.0, 10.0], 700.0, 0.0, id="idle past reset_after: expired"),
])
def test_image_pull_style_backoff_counts_from_the_last_update(
        failures: list[float], now: float, remaining: float) -> None:
    backoff = CrashBackoff()
    for at in failures:
        backoff.record_failure("img", at)
    assert backoff.in_backoff("img", now) == remaining


def test_record_failure_returns_the_next_delay_and_delay_reads_it() -> None:
    backoff = CrashBackoff(initial=1.0, cap=4.0, reset_after=8.0)
    assert [backoff.record_failure(KEY, t) for t in (0, 1, 2, 3)] == [1.0, 2.0, 4.0, 4.0]
    assert backoff.delay(KEY) == 4.0
    assert backoff.delay("other") == 0.0
    assert backoff.record_failure(KEY, 12.0) == 1.0, "more than reset_after since: start over"


def test_forget_and_gc() -> None:
    backoff = CrashBackoff()
    backoff.record_failure("old", 0.0)
    backoff.record_failure("new", 500.0)
    backoff.record_failure("gone", 500.0)
    backoff.forget("gone")
    backoff.forget("never there")
    backoff.gc(600.0)
    assert sorted(backoff.keys()) == ["new", "old"], "600 s is not more than reset_after"
    backoff.gc(601.0)
    assert list(backoff.keys()) == ["new"]
    assert backoff.in_backoff("old", 601.0) == 0.0
