"""Scheduler benchmark: SchedulingBasic as Kubernetes' scheduler_perf defines it.

For each node count (default 500, then 5000), in one run: a fresh 3-member raftstore and
an API server over it (as bench.api starts them), then

  1. ``nodes`` Node objects (scheduler_perf's node template: 4 CPUs, 32 GiB, 110 pods,
     Ready), created through the SDK, 64 at a time;
  2. ``init_pods`` pods bound at creation (spec.nodeName set, spread round-robin): the
     cluster is not empty when measuring, as in scheduler_perf;
  3. ``pods`` pending pods (scheduler_perf's pod template: one container requesting
     100m CPU and 500Mi), all created before the scheduler starts;
  4. ``navarch scheduler --no-leader-elect`` is started; a watch on every pod records when
     each one gets its node.

Reported per node count: pods bound per second from the first bind to the last (the
scheduler's throughput: scheduler_perf's SchedulingThroughput average), the time from the
scheduler's start to its first bind (listing and cache warm-up) and to the last, and the
CPU used by the scheduler, the API server and the store meanwhile. The issue's targets
(≥ 300 pods/s at 5,000 nodes, ≥ 500 pods/s at 500 nodes) and Kubernetes' CI floor for
kube-scheduler on this workload (680 pods/s at 5,000 nodes) are printed beside them.
Results go to ``bench/results/scheduler-<timestamp>.json``. ``--quick``: 50 nodes, 200 pods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import navarch
from bench import store as store_bench
from bench.api import running_apiserver
from bench.api_phases import BenchConfig as ApiBenchConfig
from bench.api_phases import cpu_seconds
from bench.store import leader_endpoint, log, running_cluster, write_report
from bench.store import run as bench_run
from navarch.v1 import core_pb2
from tests.api.harness import NavarchProcess
from tests.store.cluster import REPO

RESULTS_DIR = REPO / "bench" / "results"
TARGETS = {500: 500.0, 5000: 300.0}  # the pods/s per node count
K8S_CI_FLOOR = 680.0  # kube-scheduler, SchedulingBasic 5000 nodes (scheduler_perf CI)


@dataclass(frozen=True)
class Workload:
    """One SchedulingBasic size."""

    nodes: int
    init_pods: int
    pods: int


FULL = (Workload(500, 500, 5000), Workload(5000, 1000, 10000))
QUICK = (Workload(50, 20, 200),)


def node(name: str) -> core_pb2.Node:
    """scheduler_perf's node template."""
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name,
                              "kubernetes.io/os": "linux"})
    for field in (n.status.capacity, n.status.allocatable):
        field.update({"cpu": "4", "memory": "32Gi", "pods": "110"})
    cond = n.status.conditions.add()
    cond.type, cond.status, cond.reason = "Ready", "True", "KubeletReady"
    return n


def pod(namespace: str, name: str, node_name: str = "") -> core_pb2.Pod:
    """scheduler_perf's pod template (pod-default.yaml)."""
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, namespace
    c = p.spec.containers.add()
    c.name, c.image = "pause", "registry.k8s.io/pause:3.10"
    c.resources.requests.update({"cpu": "100m", "memory": "500Mi"})
    c.resources.limits.update({"cpu": "100m", "memory": "500Mi"})
    if node_name:
        p.spec.node_name = node_name
    return p


async def create_all(make: Any, count: int, concurrency: int = 64) -> float:
    """Create ``count`` objects (``make(i)`` → (resource client, object)); seconds taken."""
    started = time.monotonic()
    it = iter(range(count))

    async def worker() -> None:
        for i in it:
            resource, obj = make(i)
            await resource.create(obj)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


@contextlib.contextmanager
def running_scheduler(address: str, workdir: Path) -> Iterator[NavarchProcess]:
    """``navarch scheduler`` without leader election, stopped on exit."""
    proc = NavarchProcess(workdir, ["--server", address, "--no-leader-elect"],
                          subcommand="scheduler")
    try:
        proc.start(timeout=120)
        yield proc
    finally:
        proc.stop()


async def measure(address: str, w: Workload, workdir: Path, pids: list[int]
                  ) -> dict[str, Any]:
    """Load the cluster, start the scheduler, time every bind."""
    async with navarch.Client(address, timeout=60) as client:
        ns = "bench-sched"
        namespace = core_pb2.Namespace()
        namespace.metadata.name = ns
        await client.namespaces().create(namespace)
        names = [f"node-{i:05d}" for i in range(w.nodes)]
        t = await create_all(lambda i: (client.nodes(), node(names[i])), w.nodes)
        log(f"{w.nodes} nodes created in {t:.1f}s")
        pods = client.pods(ns)
        t = await create_all(lambda i: (pods, pod(ns, f"init-{i:05d}", names[i % w.nodes])),
                             w.init_pods)
        log(f"{w.init_pods} bound pods created in {t:.1f}s")
        t = await create_all(lambda i: (pods, pod(ns, f"pod-{i:05d}")), w.pods)
        log(f"{w.pods} pending pods created in {t:.1f}s ({w.pods / t:.0f}/s)")
        listed = await pods.list(limit=1)
        bound: dict[str, float] = {}
        done = asyncio.Event()

        async def follow() -> None:
            stream = pods.watch(resource_version=listed.resource_version)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    p = event.object
                    if (p.metadata.name.startswith("pod-") and p.spec.node_name
                            and p.metadata.name not in bound):
                        bound[p.metadata.name] = time.monotonic()
                        if len(bound) == w.pods:
                            done.set()
                            return

        watcher = asyncio.create_task(follow())
        await asyncio.sleep(0.5)  # the watch is open before the scheduler starts
        cpu_before = {pid: cpu_seconds([pid]) for pid in pids}
        started = time.monotonic()
        with running_scheduler(address, workdir) as sched:
            assert sched.proc is not None
            sched_pid = sched.proc.pid
            try:
                await asyncio.wait_for(done.wait(), timeout=max(120.0, w.pods / 20))
            except TimeoutError:
                log(f"timed out: {len(bound)} of {w.pods} bound")
            sched_cpu = cpu_seconds([sched_pid])
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    times = sorted(bound.values())
    if len(times) < 2:
        raise RuntimeError("the scheduler bound fewer than 2 pods")
    span = times[-1] - times[0]
    elapsed = times[-1] - started
    api_pid, *store_pids = pids
    return {
        "nodes": w.nodes, "pods": w.pods, "init_pods": w.init_pods, "bound": len(bound),
        "pods_per_s": (len(times) - 1) / span if span > 0 else 0.0,
        "first_bind_s": times[0] - started, "last_bind_s": elapsed,
        "cpu_pct": {
            "scheduler": 100 * sched_cpu / elapsed,
            "apiserver": 100 * (cpu_seconds([api_pid]) - cpu_before[api_pid]) / elapsed,
            "store": 100 * sum(cpu_seconds([p]) - cpu_before[p] for p in store_pids) / elapsed,
        },
    }


def bench_workload(w: Workload, workdir: Path) -> dict[str, Any]:
    """One node count on a fresh store and API server."""
    store_cfg = store_bench.BenchConfig(start_timeout=60)
    with running_cluster("raftstore", workdir / "store", store_cfg) as cluster:
        i, _ = leader_endpoint(cluster)
        with running_apiserver(cluster, i, workdir / "apiserver", ApiBenchConfig()) as api:
            assert api.proc is not None
            pids = [api.proc.pid] + [p.pid for p in cluster.procs if p is not None]
            return bench_run(measure(api.address, w, workdir / "scheduler", pids))


def render(results: list[dict[str, Any]]) -> str:
    """The table and the verdicts."""
    lines = ["| nodes | pods | pods bound/s | first bind | last bind | CPU % scheduler / "
             "API server / store | target | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        target = TARGETS.get(r["nodes"])
        verdict = "" if target is None else ("met" if r["pods_per_s"] >= target else "missed")
        cpu = r["cpu_pct"]
        lines.append(
            f"| {r['nodes']} | {r['pods']} | {r['pods_per_s']:.0f} | {r['first_bind_s']:.1f} s"
            f" | {r['last_bind_s']:.1f} s | {cpu['scheduler']:.0f} / {cpu['apiserver']:.0f} /"
            f" {cpu['store']:.0f} | {f'≥ {target:g}' if target else '-'} | {verdict} |")
    lines.append(f"\nKubernetes' CI floor for kube-scheduler, SchedulingBasic 5000 nodes: "
                 f"{K8S_CI_FLOOR:g} pods/s (Go, on bigger machines).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50 nodes, 200 pods: a smoke run")
    p.add_argument("--nodes", type=int, action="append",
                   help="only these node counts of the full run (repeatable)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    workloads = QUICK if args.quick else tuple(
        w for w in FULL if not args.nodes or w.nodes in args.nodes)
    started = time.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        for w in workloads:
            log(f"SchedulingBasic: {w.nodes} nodes, {w.init_pods} bound pods, "
                f"{w.pods} to schedule")
            results.append(bench_workload(w, Path(tmp) / f"n{w.nodes}"))
            r = results[-1]
            log(f"{w.nodes} nodes: {r['pods_per_s']:.0f} pods bound/s")
    table = render(results)
    print("\n" + table)
    write_report(args.results_dir, "scheduler", {
        "started": started, "seconds": round(time.monotonic() - t0),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "results": results, "quick": args.quick})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
