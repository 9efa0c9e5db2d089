"""Service proxy benchmarks (issue 6): rule sync time, network programming latency and
connection latency, each against a reference measured in the same run.

1. **Sync time** for 1k, 5k and 10k Services with 2 endpoints each (every 5th one a
   NodePort): the project's programmer (``netproxy.programmer.Programmer.full_sync``:
   encoding plus the kernel's commit, one netlink transaction) into an empty network
   namespace, against ``nft -f`` of the same ruleset as text (``ruleset_text``) into
   another empty one. Also timed: computing the rules from the Service model, a second
   full sync over the programmed table (the periodic repair) and an incremental sync of
   one changed Service. Targets: 10k fully programmed ≤ 2 s and ≤ 2x ``nft -f``.
2. **Network programming latency**: a real API server, ``navarch proxy`` in a node
   namespace and two endpoint namespaces (tests/netproxy's bed), ``--background``
   Services besides; the probe Service's Endpoints are switched between the two
   endpoints, and a prober in the node namespace opens fresh connections to the ClusterIP
   until the new endpoint answers. Latency = acknowledged Endpoints write → first answer
   from the new endpoint. Target: p99 ≤ 1 s (Kubernetes' SLO is 30 s at p99).
3. **Connection latency** to a ClusterIP (connect + answer) from a pod namespace, with one
   Service programmed and then with 10k more. Target: ratio ≤ 1.2.

Results: a table on stdout and ``bench/results/proxy-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.store import log, percentile, write_report
from bench.store import run as bench_run
from deploy.nodeenv import NetworkPlan
from tests.store.cluster import REPO

RESULTS_DIR = REPO / "bench" / "results"
PLAN = NetworkPlan(prefix="nvx", subnet="172.31.231.0/24", registry_port=5081)
SIZES = (1000, 5000, 10000)
TARGET_10K_S = 2.0
TARGET_RATIO = 2.0
TARGET_LATENCY_P99_S = 1.0
TARGET_CONN_RATIO = 1.2
PROBE = REPO / "bench" / "proxy_probe.py"


def synthetic(count: int, node: str = "node-1") -> dict[str, Any]:
    """``count`` Services with 2 endpoints each, as the programmer takes them."""
    from netproxy.ruleset import service_rules

    return {key: service_rules(sp, node, "10.244.0.0/16")
            for key, sp in synthetic_ports(count, node).items()}


def synthetic_ports(count: int, node: str = "node-1") -> dict[str, Any]:
    """The service ports of ``synthetic``: what the proxy has read from the API."""
    from netproxy.ruleset import Endpoint, ServicePort

    vip = int(ipaddress.IPv4Address("10.100.0.0"))
    pod = int(ipaddress.IPv4Address("10.200.0.0"))
    out = {}
    for i in range(count):
        eps = tuple(Endpoint(str(ipaddress.IPv4Address(pod + 2 * i + k)), 8080, node)
                    for k in (2, 3))
        node_port = 30000 + i // 5 if i % 5 == 0 and i // 5 < 2768 else 0
        out[f"bench/svc-{i}"] = ServicePort(
            "bench", f"svc-{i}", "http", "tcp", str(ipaddress.IPv4Address(vip + i)), 80,
            node_port, False, 0, eps)
    return out


# --- part 1: sync time ------------------------------------------------------------------

def worker_sync(count: int) -> dict[str, float]:
    """Inside a fresh namespace: time the rules, a full sync, a resync, a one-Service sync."""
    from netproxy.programmer import Programmer
    from netproxy.ruleset import Endpoint, ServicePort, service_rules

    ports = synthetic_ports(count)
    t0 = time.perf_counter()
    desired = {key: service_rules(sp, "node-1", "10.244.0.0/16") for key, sp in ports.items()}
    t1 = time.perf_counter()
    prog = Programmer(cluster_cidr="10.244.0.0/16")
    first = prog.full_sync(desired)
    t2 = time.perf_counter()
    prog.full_sync(desired)
    t3 = time.perf_counter()
    sp = ServicePort("bench", "svc-0", "http", "tcp", "10.100.0.0", 80, 30000, False, 0,
                     (Endpoint("10.200.0.2", 8080, "node-1"), Endpoint("10.250.0.9", 8080)))
    one = prog.sync({"bench/svc-0": service_rules(sp, "node-1", "10.244.0.0/16")})
    t4 = time.perf_counter()
    prog.cleanup()
    return {"rules_s": t1 - t0, "full_s": t2 - t1, "encode_s": first.encode_seconds,
            "commit_s": first.commit_seconds, "messages": first.messages, "resync_s": t3 - t2,
            "one_service_s": t4 - t3, "one_service_messages": one.messages}


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)


def _netns_del(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False)


def sync_times(count: int) -> dict[str, Any]:
    from netproxy.programmer import ruleset_text

    ours, ref = f"{PLAN.prefix}-sync-ours", f"{PLAN.prefix}-sync-nft"
    _netns(ours)
    _netns(ref)
    try:
        out = subprocess.run(["nsenter", f"--net=/var/run/netns/{ours}", sys.executable, "-m",
                              "bench.proxy", "--worker-sync", str(count)], cwd=REPO,
                             capture_output=True, text=True, check=True, timeout=600)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
            f.write(ruleset_text(synthetic(count), cluster_cidr="10.244.0.0/16"))
        try:
            t0 = time.perf_counter()
            subprocess.run(["nsenter", f"--net=/var/run/netns/{ref}", "nft", "-f", f.name],
                           check=True, timeout=600)
            result["nft_f_s"] = time.perf_counter() - t0
        finally:
            os.unlink(f.name)
    finally:
        _netns_del(ours)
        _netns_del(ref)
    return result


# --- parts 2 and 3: a real proxy and real traffic ----------------------------------------

class Prober:
    """bench/proxy_probe.py in a namespace, driven line by line over stdin/stdout."""

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(PROBE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, line: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


async def programming_latency(bed: Any, background: int, changes: int) -> dict[str, Any]:
    import navarch
    from tests.netproxy.test_proxy import make_service, set_endpoints

    async with navarch.Client(bed.api.address) as client:
        log(f"creating {background} background Services with 2 endpoints each")
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await make_service(client, f"bg-{i}", ["pa", "pb"])
        await asyncio.gather(*(one(i) for i in range(background)))
        svc = await make_service(client, "probe", ["pa"])
        vip = svc.spec.cluster_ip
        prober = Prober(bed.node1.netns)
        try:
            first = prober.ask(f"until {vip} 80 pa 30")
            assert first["ok"], first
            samples = []
            target = "pa"
            for _ in range(changes):
                target = "pb" if target == "pa" else "pa"
                await set_endpoints(client, "probe", [target])
                acked = time.monotonic()
                got = prober.ask(f"until {vip} 80 {target} 10")
                assert got["ok"], got
                samples.append(got["at"] - acked)
        finally:
            prober.close()
    return {"background_services": background, "changes": changes,
            "p50_s": percentile(samples, 50), "p99_s": percentile(samples, 99),
            "max_s": max(samples)}


def connection_latency(bed: Any, extra: int, connections: int, rounds: int = 10
                       ) -> dict[str, Any]:
    """The programmer directly (no proxy): one Service, then ``extra`` more, alternating
    over ``rounds`` so that both sides see the same machine (this one's jitter drifts)."""
    bed.proxy.kill()
    prober = Prober(bed.pod_netns("pb"))
    worker = ["nsenter", f"--net={bed.node1.netns_path}", sys.executable, "-m", "bench.proxy"]
    samples: dict[str, list[float]] = {"one": [], "many": []}
    per_round: dict[str, list[float]] = {"one": [], "many": []}
    errors = {"one": 0, "many": 0}
    try:
        for _ in range(rounds):
            for label, n in (("one", 0), ("many", extra)):
                subprocess.run([*worker, "--worker-program", str(n)], cwd=REPO, check=True,
                               timeout=600, capture_output=True)
                assert prober.ask("until 10.99.0.1 80 pa 10")["ok"]
                got = prober.ask(f"time 10.99.0.1 80 {connections // rounds}")
                samples[label].extend(got["samples"])
                per_round[label].append(round(percentile(got["samples"], 99) * 1e3, 3))
                errors[label] += got["errors"]
        subprocess.run([*worker, "--worker-cleanup"], cwd=REPO, check=True, timeout=60)
    finally:
        prober.close()
    out: dict[str, Any] = {}
    for label, n in (("one", 0), ("many", extra)):
        out[label] = {"services": n + 1, "p50_ms": percentile(samples[label], 50) * 1e3,
                      "p99_ms": percentile(samples[label], 99) * 1e3,
                      "connections": len(samples[label]), "errors": errors[label],
                      "p99_ms_per_round": per_round[label]}
    out["p50_ratio"] = out["many"]["p50_ms"] / out["one"]["p50_ms"]
    out["p99_ratio"] = out["many"]["p99_ms"] / out["one"]["p99_ms"]
    return out


def worker_program(extra: int) -> None:
    """Inside the node namespace: the probe Service (10.99.0.1:80 → pa) plus ``extra``."""
    from netproxy.programmer import Programmer
    from netproxy.ruleset import Endpoint, ServicePort, service_rules

    desired = synthetic(extra) if extra else {}
    sp = ServicePort("bench", "probe", "", "tcp", "10.99.0.1", 80, 0, False, 0,
                     (Endpoint("10.251.1.2", 8080, "node-1"),))
    desired["bench/probe"] = service_rules(sp, "node-1", "10.251.0.0/16")
    prog = Programmer(cluster_cidr="10.251.0.0/16")
    if extra == 0:
        prog.cleanup()  # from 10k back to one: a clean table, as on a fresh node
    prog.full_sync(desired)


def worker_cleanup() -> None:
    from netproxy.programmer import Programmer

    Programmer().cleanup()


# --- main -------------------------------------------------------------------------------

def print_table(report: dict[str, Any]) -> None:
    print("\nSync time: project programmer vs nft -f of the same ruleset (same run)")
    print(f"{'services':>9} {'rules':>7} {'encode':>7} {'commit':>7} {'ours':>7} "
          f"{'nft -f':>7} {'ratio':>6} {'resync':>7} {'1 svc':>7} {'messages':>9}")
    for n, r in report["sync"].items():
        print(f"{n:>9} {r['rules_s']:7.3f} {r['encode_s']:7.3f} {r['commit_s']:7.3f} "
              f"{r['full_s']:7.3f} {r['nft_f_s']:7.3f} {r['full_s'] / r['nft_f_s']:6.2f} "
              f"{r['resync_s']:7.3f} {r['one_service_s']:7.4f} {r['messages']:>9}")
    top = report["sync"].get(str(max(SIZES)))
    if top:
        print(f"10k services: {top['full_s']:.2f} s (target ≤ {TARGET_10K_S} s), "
              f"{top['full_s'] / top['nft_f_s']:.2f}x nft -f (target ≤ {TARGET_RATIO}x); "
              f"with the rules computed: {top['full_s'] + top['rules_s']:.2f} s")
    lat = report.get("latency")
    if lat:
        print(f"\nNetwork programming latency ({lat['changes']} endpoint changes, "
              f"{lat['background_services']} other Services): p50 {lat['p50_s']:.3f} s, "
              f"p99 {lat['p99_s']:.3f} s, max {lat['max_s']:.3f} s "
              f"(target p99 ≤ {TARGET_LATENCY_P99_S} s; SLO 30 s)")
    conn = report.get("connection")
    if conn:
        print(f"\nConnection latency to a ClusterIP: 1 Service p50 {conn['one']['p50_ms']:.3f} "
              f"ms p99 {conn['one']['p99_ms']:.3f} ms; {conn['many']['services']} Services "
              f"p50 {conn['many']['p50_ms']:.3f} ms p99 {conn['many']['p99_ms']:.3f} ms; "
              f"ratio p50 {conn['p50_ratio']:.2f}, p99 {conn['p99_ratio']:.2f} "
              f"(target ≤ {TARGET_CONN_RATIO})")
        for label in ("one", "many"):
            print(f"  p99 of each round, {conn[label]['services']} Service(s): "
                  f"{conn[label]['p99_ms_per_round']} ms")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--background", type=int, default=1000,
                   help="other Services while the programming latency is measured")
    p.add_argument("--changes", type=int, default=50, help="endpoint changes timed")
    p.add_argument("--connections", type=int, default=5000,
                   help="connections timed per configuration (over 10 alternating rounds)")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the proxy's log into DIR")
    p.add_argument("--worker-sync", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker-program", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker-cleanup", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker_sync is not None:
        print(json.dumps(worker_sync(args.worker_sync)))
        return 0
    if args.worker_program is not None:
        worker_program(args.worker_program)
        return 0
    if args.worker_cleanup:
        worker_cleanup()
        return 0
    if os.geteuid() != 0:
        raise SystemExit("bench.proxy needs root (network namespaces, nftables)")
    started = time.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    report: dict[str, Any] = {"started": started, "host": platform.node(),
                              "cpus": os.cpu_count(), "sync": {}}
    for n in (int(x) for x in args.sizes.split(",")):
        log(f"sync time: {n} services")
        report["sync"][str(n)] = sync_times(n)
    if not args.skip_latency:
        from tests.netproxy.test_proxy import ProxyBed

        with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
            bed = ProxyBed(Path(tmp), PLAN)
            try:
                log("starting a store, an API server, a node with navarch proxy, endpoints")
                bed.start()
                bed.start_proxy()
                report["latency"] = bench_run(
                    programming_latency(bed, args.background, args.changes))
                log("connection latency: 1 service, then 10k more")
                report["connection"] = connection_latency(bed, max(SIZES), args.connections)
            finally:
                if args.keep_logs and bed.proxy is not None:
                    import shutil

                    shutil.copy(bed.proxy.log_path, Path(args.keep_logs) / "proxy.log")
                bed.destroy()
    report["seconds"] = round(time.monotonic() - t0, 1)
    print_table(report)
    write_report(RESULTS_DIR, "proxy", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
