"""Controllers benchmark: a 1,000-replica Deployment on 100 simulated nodes.

A fresh 3-member raftstore and an API server (as bench.api starts them), then
``navarch simnodes --count 100`` (hollow nodes: pods bound to them turn Running and Ready
after ``--startup-delay``), ``navarch scheduler`` and ``navarch controllers``. Once the
nodes are registered, one Deployment of ``replicas`` pods (one container, 10m CPU
request) is created and a watch on pods and on the Deployment records, for every pod,
when it was created, bound and became Ready, and when the Deployment reported all
replicas available. The issue's target: all Available within 15 s.

Reported: seconds to all created, all bound, all Ready and the Deployment Available (from
the Deployment's create call), the rates of each stage, and the CPU used meanwhile by each
process. Results go to ``bench/results/controllers-<timestamp>.json``. ``--quick``: 10
nodes, 100 replicas.
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
from pathlib import Path
from typing import Any

import navarch
from bench import store as store_bench
from bench.api import running_apiserver
from bench.api_phases import BenchConfig as ApiBenchConfig
from bench.api_phases import cpu_seconds
from bench.store import leader_endpoint, log, running_cluster, write_report
from bench.store import run as bench_run
from navarch.v1 import apps_pb2, core_pb2
from tests.api.harness import NavarchProcess
from tests.store.cluster import REPO

RESULTS_DIR = REPO / "bench" / "results"
TARGET_S = 15.0


def deployment(ns: str, replicas: int) -> apps_pb2.Deployment:
    """The benchmark's Deployment."""
    d = apps_pb2.Deployment()
    d.metadata.name, d.metadata.namespace = "load", ns
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = "load"
    d.spec.template.metadata.labels["app"] = "load"
    c = d.spec.template.spec.containers.add()
    c.name, c.image = "app", "localhost/app:1"
    c.resources.requests.update({"cpu": "10m", "memory": "16Mi"})
    return d


def ready(p: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)


async def measure(address: str, nodes: int, replicas: int, pids: dict[str, int]
                  ) -> dict[str, Any]:
    """Create the Deployment and time every stage."""
    async with navarch.Client(address, timeout=60) as client:
        async def registered() -> int:
            listed = await client.nodes().list()
            return sum(1 for n in listed.items
                       if any(c.type == "Ready" and c.status == "True"
                              for c in n.status.conditions))
        deadline = time.monotonic() + 120
        while await registered() < nodes:
            if time.monotonic() > deadline:
                raise TimeoutError("simulated nodes did not register")
            await asyncio.sleep(0.2)
        ns = "bench-ctl"
        namespace = core_pb2.Namespace()
        namespace.metadata.name = ns
        await client.namespaces().create(namespace)
        created: dict[str, float] = {}
        bound: dict[str, float] = {}
        became_ready: dict[str, float] = {}
        available = asyncio.Event()
        available_at: list[float] = []
        rv = (await client.pods(ns).list(limit=1)).resource_version

        async def follow_pods() -> None:
            stream = client.pods(ns).watch(resource_version=rv)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    p, now = event.object, time.monotonic()
                    name = p.metadata.name
                    created.setdefault(name, now)
                    if p.spec.node_name:
                        bound.setdefault(name, now)
                    if ready(p):
                        became_ready.setdefault(name, now)

        async def follow_deployment() -> None:
            stream = client.deployments(ns).watch(resource_version=rv)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    st = event.object.status
                    if st.available_replicas >= replicas and st.updated_replicas >= replicas:
                        available_at.append(time.monotonic())
                        available.set()
                        return

        watchers = [asyncio.create_task(follow_pods()), asyncio.create_task(follow_deployment())]
        await asyncio.sleep(0.3)
        cpu_before = {k: cpu_seconds([v]) for k, v in pids.items()}
        started = time.monotonic()
        await client.deployments(ns).create(deployment(ns, replicas))
        try:
            await asyncio.wait_for(available.wait(), timeout=300)
        except TimeoutError:
            log("timed out waiting for the Deployment to be Available")
        elapsed = time.monotonic() - started
        for w in watchers:
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await w

    def last(d: dict[str, float]) -> float | None:
        return max(d.values()) - started if len(d) >= replicas else None

    return {
        "nodes": nodes, "replicas": replicas,
        "all_created_s": last(created), "all_bound_s": last(bound),
        "all_ready_s": last(became_ready),
        "available_s": available_at[0] - started if available_at else None,
        "counts": {"created": len(created), "bound": len(bound), "ready": len(became_ready)},
        "cpu_pct": {k: 100 * (cpu_seconds([v]) - cpu_before[k]) / elapsed
                    for k, v in pids.items()},
    }


def bench(nodes: int, replicas: int, workdir: Path) -> dict[str, Any]:
    """One run on a fresh cluster."""
    store_cfg = store_bench.BenchConfig(start_timeout=60)
    with running_cluster("raftstore", workdir / "store", store_cfg) as cluster:
        i, _ = leader_endpoint(cluster)
        with running_apiserver(cluster, i, workdir / "apiserver", ApiBenchConfig()) as api:
            assert api.proc is not None
            procs = {
                "simnodes": NavarchProcess(workdir, ["--server", api.address, "--count",
                                                     str(nodes)], subcommand="simnodes"),
                "scheduler": NavarchProcess(workdir, ["--server", api.address,
                                                      "--no-leader-elect"],
                                            subcommand="scheduler"),
                "controllers": NavarchProcess(workdir, ["--server", api.address,
                                                        "--no-leader-elect"],
                                              subcommand="controllers"),
            }
            try:
                for proc in procs.values():
                    proc.start(timeout=120)
                pids = {"apiserver": api.proc.pid,
                        **{k: p.proc.pid for k, p in procs.items() if p.proc is not None}}
                for j, p in enumerate(cluster.procs):
                    if p is not None:
                        pids[f"store-{j}"] = p.pid
                result = bench_run(measure(api.address, nodes, replicas, pids))
            finally:
                for proc in procs.values():
                    proc.stop()
    cpu = result["cpu_pct"]
    result["cpu_pct"] = {
        **{k: v for k, v in cpu.items() if not k.startswith("store-")},
        "store": sum(v for k, v in cpu.items() if k.startswith("store-"))}
    return result


def render(r: dict[str, Any]) -> str:
    """The table and the verdict."""
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"
    n = r["replicas"]
    rows = [("all pods created", r["all_created_s"]), ("all pods bound", r["all_bound_s"]),
            ("all pods Ready", r["all_ready_s"]), ("Deployment Available", r["available_s"])]
    lines = [f"{n} replicas on {r['nodes']} simulated nodes (from the Deployment's create):",
             "| stage | after | rate |", "|---|---|---|"]
    for label, v in rows:
        rate = f"{n / v:.0f} pods/s" if v else "-"
        lines.append(f"| {label} | {s(v)} | {rate} |")
    avail = r["available_s"]
    verdict = "met" if avail is not None and avail <= TARGET_S else "missed"
    lines.append(f"\ntarget: all Available within {TARGET_S:g} s: {verdict}")
    lines.append("CPU % of one core: " + ", ".join(f"{k} {v:.0f}"
                                                   for k, v in r["cpu_pct"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(prog="python -m bench.controllers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 nodes, 100 replicas")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    nodes, replicas = (10, 100) if args.quick else (100, 1000)
    started = time.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-controllers-") as tmp:
        result = bench(nodes, replicas, Path(tmp))
    print("\n" + render(result))
    write_report(args.results_dir, "controllers", {
        "started": started, "seconds": round(time.monotonic() - t0),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "result": result, "quick": args.quick})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
