"""Smoke test of the store benchmark: a ``--quick`` run against etcd produces every metric.

The figures themselves are never asserted (DESIGN.md: benchmarks are not timed tests).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.store import FLOOR, METRICS, TARGETS
from tests.store.cluster import REPO

pytestmark = pytest.mark.slow


def test_quick_run_against_etcd_reports_every_metric(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.store", "--quick", "--backends", "etcd",
         "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    (path,) = tmp_path.glob("store-*.json")
    report = json.loads(path.read_text())
    assert list(report["backends"]) == ["etcd", FLOOR]
    floor = report["backends"][FLOOR]
    assert set(floor["servers"]) == {"aio", "threads"}
    for key in ("put_ops", "range_linearizable_ops", "range_serializable_ops"):
        measured = [server[key] for server in floor["servers"].values()]
        assert all(isinstance(v, float) and v > 0 for v in measured), (key, floor)
        assert floor["metrics"][key] == max(measured), (key, floor)
    assert "python gRPC ceiling" in proc.stdout
    etcd = report["backends"]["etcd"]
    for m in METRICS:
        value = etcd["metrics"].get(m.key)
        assert isinstance(value, float) and value > 0, (m.key, value)
    assert etcd["metrics"]["put_seq_p50_ms"] <= etcd["metrics"]["put_seq_p99_ms"]
    assert etcd["metrics"]["rss_max_mib"] <= etcd["metrics"]["rss_sum_mib"]
    assert re.fullmatch(r"s[123] 127\.0\.0\.1:\d+", etcd["leader"]), etcd["leader"]
    assert report["connected_to"] == "leader"
    assert report["ratios"] == {}  # raftstore did not run
    assert [t["met"] for t in report["targets"]] == [None] * len(TARGETS)

    assert "clients connected to the leader endpoint" in proc.stdout
    for m in METRICS:
        label = m.label.format(**report["config"])
        assert label in proc.stdout, f"no row for {m.key} in the table"
    assert str(path) in proc.stdout
