"""Pod startup latency on real containers, and the agent's idle cost.

A 3-node cluster as the agent system tests build it (tests/node/agent_cluster.py): a
3-member raftstore, an API server, scheduler and controllers, and per node a network
namespace with its own containerd and ``navarch agent``; images from a local registry.
Each node first runs one warm-up pod so that busybox is cached, as the issue asks. Then,
once per rate of ``--qps`` (default ``5,0``), ``--pods`` pods (default 30) are created at
that rate and a pod watch records, for each, when its create call was made and when the
watch first showed it Running with every container running: Kubernetes' pod startup
latency (its SLO: p99 ≤ 5 s; the issue's target on this 2-core machine: p99 ≤ 2 s).
Between phases the pods are deleted, and the next phase waits until they are gone and
the machine is idle again.

The rates: Kubernetes measures this SLO with ClusterLoader2's density test, whose
"latency pods" are created at 5 per second (its ``Uniform5qps`` tuning set), on a cluster
of 100 nodes or more; 5/s on 3 nodes is the same rate with far fewer nodes to share it.
Rate 0 creates them all at once: a burst beyond what this 2-core machine can start per
second, which shows how the latency grows when pods queue for the CPU.

Kubernetes defines the SLI from the pod's creationTimestamp, which is whole seconds (as
ours is): measured from it, every pod of a batch created within one second carries the same
extra 0-1 s, a different one each run. The targets are therefore judged from the create
call (this client's clock, just before the call, so the call itself counts); the figure
from the creationTimestamp is printed and recorded as well.

Then, with the last phase's pods running, every agent's CPU (over ``--idle-seconds``) and RSS are
sampled: the target is ≤ 2 % of a core and ≤ 100 MB.

Results: a table on stdout and ``bench/results/podstartup-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import navarch
from bench.api_phases import cpu_seconds, machine_seconds
from bench.store import log, percentile, write_report
from bench.store import run as bench_run
from deploy import nodeenv
from deploy.images import push_all
from deploy.nodeenv import NetworkPlan
from navarch.v1 import core_pb2
from tests.node.agent_cluster import AgentCluster
from tests.store.cluster import REPO

RESULTS_DIR = REPO / "bench" / "results"
SLO_P99_S = 5.0
TARGET_P99_S = 2.0
IDLE_CPU_TARGET = 0.02
IDLE_RSS_TARGET_MB = 100.0
PLAN = NetworkPlan(prefix="nvb", subnet="172.31.230.0/24", registry_port=5080)


def sleeper(name: str, ns: str, image: str, node: str = "") -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = name, ns
    pod.spec.termination_grace_period_seconds = 1
    if node:
        pod.spec.node_name = node
    c = pod.spec.containers.add(name="c", image=image, command=["sleep", "3600"])
    c.resources.requests.update({"cpu": "10m", "memory": "8Mi"})
    return pod


def is_running(p: core_pb2.Pod) -> bool:
    return p.status.phase == "Running" and bool(p.status.container_statuses) and all(
        c.state.HasField("running") for c in p.status.container_statuses)


async def wait_running(client: navarch.Client, ns: str, names: set[str],
                       timeout: float = 120.0) -> dict[str, tuple[float, float]]:  # noqa: ASYNC109
    """For each pod: when the watch first showed it Running (wall clock), and its
    creationTimestamp."""
    seen: dict[str, tuple[float, float]] = {}
    listed = await client.pods(ns).list()
    deadline = time.monotonic() + timeout
    async for ev in client.pods(ns).watch(resource_version=listed.resource_version):
        p = ev.object
        name = p.metadata.name
        if name in names and name not in seen and is_running(p):
            seen[name] = (time.time(), p.metadata.creation_timestamp.ToNanoseconds() / 1e9)
        if len(seen) == len(names) or time.monotonic() > deadline:
            break
    return seen


def process_groups(cluster: AgentCluster) -> dict[str, list[int]]:
    """Pids by role: agents, containerd with its shims and runc, the control plane."""
    groups: dict[str, list[int]] = {"agents": [], "containerd+shims": [], "control plane": []}
    for a in cluster.agents.values():
        if a.proc is not None:
            groups["agents"].append(a.proc.pid)
    roots = tuple(str(n.containerd_dir) for n in cluster.nodes)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(r in cmd for r in roots):
            groups["containerd+shims"].append(int(entry.name))
        elif "navarch" in cmd and any(w in cmd for w in (" store", "apiserver", "scheduler",
                                                             "controllers")):
            groups["control plane"].append(int(entry.name))
    return groups


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def quiet(timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait until the machine is mostly idle (under a quarter of its cores busy over a
    second): the teardown of a phase's pods must not weigh on the next phase."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before, _ = machine_seconds()
        await asyncio.sleep(1.0)
        busy, _ = machine_seconds()
        if busy - before < 0.25 * cores:
            return
    log("the machine did not settle; measuring anyway")


async def startup_phase(cluster: AgentCluster, client: navarch.Client, ns: str, image: str,
                        pods: int, qps: float, prefix: str) -> dict[str, Any]:
    """Create ``pods`` pods, ``qps`` per second (0: all at once), and time each one from
    its create call to the watch showing it Running."""
    names = [f"{prefix}-{i:03d}" for i in range(pods)]
    waiter = asyncio.create_task(wait_running(client, ns, set(names)))
    await asyncio.sleep(0.2)
    groups = process_groups(cluster)
    cpu_before = {k: cpu_seconds(v) for k, v in groups.items()}
    busy_before, steal_before = machine_seconds()
    client_before = time.process_time()
    wall = time.monotonic()
    sent: dict[str, float] = {}

    async def create(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        sent[name] = time.time()
        await client.pods(ns).create(sleeper(name, ns, image))
    await asyncio.gather(*(create(n, i / qps if qps else 0.0) for i, n in enumerate(names)))
    seen = await waiter
    # from the create call, and (Kubernetes' SLI) from the whole-second creationTimestamp
    latencies = {n: at - sent[n] for n, (at, _) in seen.items()}
    from_timestamp = {n: at - created for n, (at, created) in seen.items()}
    wall = time.monotonic() - wall
    groups = process_groups(cluster)  # shims started meanwhile count too
    startup_cpu = {k: round(cpu_seconds(v) - cpu_before.get(k, 0.0), 2)
                   for k, v in groups.items()}
    busy, steal = machine_seconds()
    # every process of the machine, the short-lived runc and CNI plugins included
    startup_cpu["machine_busy"] = round(busy - busy_before, 2)
    startup_cpu["machine_stolen"] = round(steal - steal_before, 2)
    startup_cpu["bench client"] = round(time.process_time() - client_before, 2)
    # what neither Navarch nor this client used: containerd and its shims, the
    # short-lived runc and CNI plugin processes, the kernel work they cause (and
    # anything else the machine ran meanwhile: compare runs on a quiet machine)
    startup_cpu["runtime and kernel"] = round(
        startup_cpu["machine_busy"] - startup_cpu["agents"]
        - startup_cpu["control plane"] - startup_cpu["bench client"], 2)
    startup_cpu["wall_s"] = round(wall, 2)
    if len(latencies) < pods:
        raise SystemExit(f"only {len(latencies)} of {pods} pods ran within the timeout")
    per_node: dict[str, int] = {}
    started_after: list[float] = []
    for p in (await client.pods(ns).list()).items:
        if p.metadata.name not in sent:
            continue
        per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
        started = [cs.state.running.started_at.ToNanoseconds() / 1e9
                   for cs in p.status.container_statuses if cs.state.HasField("running")]
        if started:
            started_after.append(max(started) - sent[p.metadata.name])
    values = list(latencies.values())
    stamped = list(from_timestamp.values())
    return {"qps": qps, "pods": pods, "per_node": per_node,
            "p50_s": round(percentile(values, 50), 3), "p90_s": round(percentile(values, 90), 3),
            "p99_s": round(percentile(values, 99), 3), "max_s": round(max(values), 3),
            "from_creation_timestamp": {"p50_s": round(percentile(stamped, 50), 3),
                                        "p99_s": round(percentile(stamped, 99), 3)},
            "container_started_p50_s": round(percentile(started_after, 50), 3),
            "container_started_p99_s": round(percentile(started_after, 99), 3),
            "cpu_s_during_startup": startup_cpu}


async def delete_all(client: navarch.Client, ns: str, names: list[str]) -> None:
    """Delete the pods and wait until the agents have stopped them and they are gone."""
    for name in names:
        await client.pods(ns).delete(name)
    listed = await client.pods(ns).list()
    left = {p.metadata.name for p in listed.items} & set(names)
    if left:
        async for ev in client.pods(ns).watch(resource_version=listed.resource_version):
            if ev.type == "DELETED":
                left.discard(ev.object.metadata.name)
                if not left:
                    break
    await quiet()


async def measure(cluster: AgentCluster, image: str, pods: int, idle_seconds: float,
                  rates: list[float]) -> dict[str, Any]:
    phases = []
    async with navarch.Client(cluster.api_address, timeout=30.0) as client:
        ns = "bench"
        ns_obj = core_pb2.Namespace()
        ns_obj.metadata.name = ns
        await client.namespaces().create(ns_obj)
        log("warming the image cache: one pod per node")
        warm = {f"warm-{n.name}" for n in cluster.nodes}
        waiter = asyncio.create_task(wait_running(client, ns, warm))
        await asyncio.sleep(0.2)
        for n in cluster.nodes:
            await client.pods(ns).create(sleeper(f"warm-{n.name}", ns, image, n.name))
        await waiter
        await delete_all(client, ns, sorted(warm))
        for i, qps in enumerate(rates):
            if i:
                await delete_all(client, ns, [f"p{i - 1}-{j:03d}" for j in range(pods)])
            log(f"creating {pods} pods, " + (f"{qps:g} per second" if qps else "all at once"))
            phases.append(await startup_phase(cluster, client, ns, image, pods, qps, f"p{i}"))
    log(f"sampling the agents for {idle_seconds:.0f}s")
    per_node = phases[-1]["per_node"]
    pids = {name: a.proc.pid for name, a in cluster.agents.items() if a.proc is not None}
    before = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    start = time.monotonic()
    await asyncio.sleep(idle_seconds)
    elapsed = time.monotonic() - start
    agents = {name: {"cpu_fraction": round((cpu_seconds([pid]) - before[name]) / elapsed, 4),
                     "rss_mb": round(rss_mb(pid), 1), "pods": per_node.get(name, 0)}
              for name, pid in pids.items()}
    return {"phases": phases, "agents": agents}


def rate_label(qps: float) -> str:
    return f"{qps:g} per second" if qps else "all at once"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=30)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--qps", default="5,0",
                   help="comma-separated creation rates, one phase each, in pods per second "
                        "(0: all at once); default 5 (ClusterLoader2's latency pods), then 0")
    p.add_argument("--idle-seconds", type=float, default=90.0,
                   help="the idle window; it spans a full pod resync (60 s)")
    args = p.parse_args(argv)
    try:
        rates = [float(v) for v in args.qps.split(",")]
    except ValueError:
        raise SystemExit(f"--qps {args.qps!r}: expected comma-separated numbers") from None
    if not rates or any(r < 0 for r in rates):
        raise SystemExit(f"--qps {args.qps!r}: rates are numbers ≥ 0 (0: all at once)")
    if os.geteuid() != 0:
        raise SystemExit("bench.podstartup needs root (network namespaces, containerd)")
    started = time.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="navarch-podstartup-") as tmp:
        work = Path(tmp)
        nodeenv.ensure_bridge(PLAN)
        cluster = AgentCluster(PLAN, work, node_count=args.nodes)
        try:
            nodeenv.start_registry(PLAN, work / "registry")
            refs = push_all(PLAN.registry)
            image = next(r for r in refs if "/navarch/busybox:" in r)
            log("starting the cluster")
            cluster.start()
            result = bench_run(measure(cluster, image, args.pods, args.idle_seconds, rates))
        finally:
            cluster.destroy()
            nodeenv.stop_registry(PLAN, work / "registry")
            nodeenv.remove_bridge(PLAN)
    targets = []
    for ph in result["phases"]:
        how = f"{ph['pods']} pods {rate_label(ph['qps'])}"
        targets.append({"name": f"pod startup p99, {how}, vs Kubernetes SLO (5 s)",
                        "value": ph["p99_s"], "ratio": round(ph["p99_s"] / SLO_P99_S, 3),
                        "met": ph["p99_s"] <= SLO_P99_S})
        targets.append({"name": f"pod startup p99, {how}, vs target (2 s)",
                        "value": ph["p99_s"], "ratio": round(ph["p99_s"] / TARGET_P99_S, 3),
                        "met": ph["p99_s"] <= TARGET_P99_S})
    for name, a in result["agents"].items():
        targets.append({"name": f"{name} idle cpu (≤2% of a core) with {a['pods']} pods",
                        "value": a["cpu_fraction"], "met": a["cpu_fraction"] <= IDLE_CPU_TARGET})
        targets.append({"name": f"{name} idle RSS (≤100 MB)", "value": a["rss_mb"],
                        "met": a["rss_mb"] <= IDLE_RSS_TARGET_MB})
    for ph in result["phases"]:
        print(f"\npod startup, {ph['pods']} pods created {rate_label(ph['qps'])} on "
              f"{args.nodes} nodes ({ph['per_node']})")
        stamped = ph["from_creation_timestamp"]
        print(f"  from the create call: p50 {ph['p50_s']:.3f}s  p90 {ph['p90_s']:.3f}s  "
              f"p99 {ph['p99_s']:.3f}s  max {ph['max_s']:.3f}s")
        print(f"  from the whole-second creationTimestamp: p50 {stamped['p50_s']:.3f}s  "
              f"p99 {stamped['p99_s']:.3f}s")
        print(f"  container started (from the create call): p50 "
              f"{ph['container_started_p50_s']:.3f}s  p99 {ph['container_started_p99_s']:.3f}s")
        cpu = ph["cpu_s_during_startup"]
        print(f"  CPU seconds while the pods started: {cpu} (of {os.cpu_count()} cores x wall_s)")
        print(f"  everything but Navarch and this client (the runtime, the kernel, any other "
              f"process) took {cpu['runtime and kernel']:.2f} CPU-s: "
              f"{cpu['runtime and kernel'] / (os.cpu_count() or 1):.2f} s of every core")
        print(f"  p99 / SLO 5 s = {ph['p99_s'] / SLO_P99_S:.2f}; "
              f"p99 / target 2 s = {ph['p99_s'] / TARGET_P99_S:.2f}")
    print()
    for name, a in result["agents"].items():
        print(f"  {name}: idle cpu {a['cpu_fraction'] * 100:.2f}% of a core, "
              f"RSS {a['rss_mb']:.0f} MB, {a['pods']} pods")
    report = {"benchmark": "podstartup", "started": started,
              "seconds": round(time.monotonic() - t0, 1),
              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "platform": platform.platform()},
              "result": result, "targets": targets}
    write_report(RESULTS_DIR, "podstartup", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
