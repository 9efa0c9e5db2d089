"""Smoke test of the API server benchmark: a ``--quick`` run over raftstore, with the
do-nothing server column, produces every metric, every target's verdict and the table.

The figures themselves are never asserted (DESIGN.md: benchmarks are not timed tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.api import CPU_PARTIES, FLOOR, METRICS, PHASES, QUICK, TARGETS
from tests.store.cluster import REPO

pytestmark = pytest.mark.slow


def test_quick_run_against_raftstore_reports_every_metric(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.api", "--quick", "--backends", "raftstore",
         "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    (path,) = tmp_path.glob("api-*.json")
    report = json.loads(path.read_text())
    assert report["benchmark"] == "api" and report["quick"] is True
    assert list(report["backends"]) == ["raftstore", FLOOR]
    for server, r in report["backends"].items():
        metrics = r["metrics"]
        for m in METRICS:
            value = metrics.get(m.key)
            assert isinstance(value, float), (server, m.key, value)
            assert value >= 0 if m.key == "update_conflicts" else value > 0, (m.key, value)
        for verb in ("create", "get", "update", "watch"):
            assert metrics[f"{verb}_p50_ms"] <= metrics[f"{verb}_p99_ms"], (server, verb)
        details = r["details"]
        assert details["watch"]["pairs"] == QUICK.watchers * QUICK.watch_events
        for phase in PHASES:
            for who in CPU_PARTIES:
                assert details[phase][f"{who}_cpu_pct"] >= 0, (server, phase, who)
        for listing in ("list_ns", "list_ns_paged", "list_all", "list_all_paged"):
            assert len(details[listing]["runs_ms"]) == QUICK.list_runs, (server, listing)
    assert report["backends"][FLOOR]["metrics"]["update_conflicts"] == 0
    assert report["ratios"] == {}  # etcd did not run

    assert len(report["targets"]) == len(TARGETS)
    for t, target in zip(report["targets"], TARGETS, strict=True):
        for server, r in report["backends"].items():
            values = [r["metrics"][k] for k in target.metrics]
            worst = min(values) if target.at_least else max(values)
            assert t["value"][server] == worst, (server, t)
            met = worst >= target.limit if target.at_least else worst <= target.limit
            assert t["met"][server] is met, (server, t)

    for m in METRICS:
        label = m.label.format(**report["config"])
        assert label in proc.stdout, f"no row for {m.key} in the table"
    for t in report["targets"]:
        assert t["target"] in proc.stdout, f"no line for target {t['target']}"
    assert "Python gRPC server that keeps objects in a dict" in proc.stdout
    assert str(path) in proc.stdout
