"""Store benchmark: raftstore against a real etcd, same client, same machine, same run.

For each backend this starts a 3-member cluster on loopback (tests/store/cluster.py), connects
one ``aetcd`` asyncio client to the *leader's* endpoint and measures, one backend after the
other:

  a. sequential put latency (one put in flight),
  b. put throughput with ``concurrency`` puts in flight,
  c. linearizable and d. serializable single-key get throughput (``concurrency`` in flight),
  e. watch delivery latency: from just before the put call to the watcher receiving the event,
  f. member RSS (VmRSS of each member and its children) after loading ``keys`` 1 KiB keys into
     a second, fresh cluster, so that the history left by the timed phases, which differs
     between backends, does not weigh on it.

It prints a table with the ratio raftstore/etcd and the issue's targets, and writes the
results to ``bench/results/store-<timestamp>.json``. Run ``python -m bench.store --help``.
The figures are never asserted by the test suite (tests/store/test_bench_smoke.py only checks
that a ``--quick`` run produces every metric).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aetcd

from bench import grpc_floor
from tests.store.cluster import BACKENDS, REPO, StoreCluster, free_ports, wait_for

T = TypeVar("T")

RESULTS_DIR = REPO / "bench" / "results"
REFERENCE = "etcd"
FLOOR = "python-grpc-floor"  # bench/grpc_floor.py: the ceiling of any Python gRPC server
CANDIDATE = "raftstore"


@dataclass(frozen=True)
class BenchConfig:
    """How much work each phase does. Immutable; ``--quick`` swaps in :data:`QUICK`."""

    seq_puts: int = 2000
    value_size: int = 256
    concurrency: int = 64
    phase_seconds: float = 5.0  # each throughput phase, after its warm-up
    warmup_seconds: float = 1.0
    read_keys: int = 1000  # keys the get phases read at random
    watch_events: int = 1000
    keys: int = 100_000  # loaded before measuring RSS
    key_value_size: int = 1024
    load_concurrency: int = 64
    start_timeout: float = 60.0


QUICK = BenchConfig(seq_puts=100, phase_seconds=1.0, warmup_seconds=0.2, read_keys=100,
                    watch_events=50, keys=2000)


@dataclass(frozen=True)
class Metric:
    """One row of the table; ``label`` may use the fields of :class:`BenchConfig`."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


METRICS: tuple[Metric, ...] = (
    Metric("put_seq_p50_ms", "sequential put p50", "ms", False),
    Metric("put_seq_p99_ms", "sequential put p99", "ms", False),
    Metric("put_ops", "put throughput, {concurrency} in flight", "ops/s", True),
    Metric("put_p99_ms", "put p99, {concurrency} in flight", "ms", False),
    Metric("range_linearizable_ops", "linearizable get throughput, {concurrency} in flight",
           "ops/s", True),
    Metric("range_serializable_ops", "serializable get throughput, {concurrency} in flight",
           "ops/s", True),
    Metric("watch_p50_ms", "watch delivery p50 (put call -> event)", "ms", False),
    Metric("watch_p99_ms", "watch delivery p99 (put call -> event)", "ms", False),
    Metric("load_ops", "load {keys} keys of {key_value_size} B, {load_concurrency} in flight",
           "ops/s", True),
    Metric("rss_idle_sum_mib", "RSS of 3 members, idle after start", "MiB", False),
    Metric("rss_sum_mib", "RSS of 3 members at {keys} keys", "MiB", False),
    Metric("rss_max_mib", "RSS of largest member at {keys} keys", "MiB", False),
)


@dataclass(frozen=True)
class Target:
    """A goal from the raftstore issue: ``metric`` compared with ``limit``.

    ``relative`` targets compare the ratio raftstore/etcd, the others raftstore's own value.
    """

    description: str
    metric: str
    limit: float
    at_least: bool
    relative: bool


TARGETS: tuple[Target, ...] = (
    Target("put throughput >= 0.7x etcd", "put_ops", 0.7, True, True),
    Target("linearizable get throughput >= 0.7x etcd", "range_linearizable_ops", 0.7, True, True),
    Target("serializable get throughput >= 0.7x etcd", "range_serializable_ops", 0.7, True, True),
    Target("sequential put p50 <= 5 ms", "put_seq_p50_ms", 5.0, False, False),
    Target("RSS at {keys} keys <= 2x etcd", "rss_sum_mib", 2.0, False, True),
)


def log(msg: str) -> None:
    """Progress on stderr; the table and the JSON path go to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- member processes ----------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB (0 for a process that is gone)."""
    children, total, todo = _children(), 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def member_rss_mib(cluster: StoreCluster) -> list[float]:
    """RSS of each member in MiB, in member order."""
    out = []
    for proc in cluster.procs:
        assert proc is not None and proc.poll() is None, "a member is not running"
        out.append(rss_kib(proc.pid) / 1024)
    return out


@contextlib.contextmanager
def running_cluster(backend: str, workdir: Path, cfg: BenchConfig) -> Iterator[StoreCluster]:
    """A started 3-member cluster, destroyed (processes killed, data removed) on exit."""
    workdir.mkdir(parents=True)
    cluster = BACKENDS[backend](workdir)
    try:
        started = time.monotonic()
        try:
            cluster.start(timeout=cfg.start_timeout)
        except BaseException:
            for i in range(cluster.size):
                print(f"--- {backend} {cluster.names[i]} log ---\n{cluster.log_tail(i)}",
                      file=sys.stderr)
            raise
        log(f"{backend}: 3 members up in {time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        cluster.destroy()


def leader_endpoint(cluster: StoreCluster) -> tuple[int, str]:
    """(index, ``name endpoint``) of the member that leads and commits writes."""
    i = cluster.wait_leader()
    return i, f"{cluster.names[i]} {cluster.endpoints[i]}"


def wait_converged(cluster: StoreCluster, timeout: float = 120.0) -> int:
    """Wait until every member reports the same revision (followers applied the load)."""
    def same() -> int | None:
        revisions = {cluster.status(i, timeout=5.0).header.revision for i in range(cluster.size)}
        return revisions.pop() if len(revisions) == 1 else None
    return wait_for(same, timeout, "members to apply the same revision", interval=0.2)


# -- the timed phases ----------------------------------------------------------------------


_RUNNER = asyncio.Runner()
atexit.register(_RUNNER.close)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the one event loop every benchmark of this process uses. grpc.aio
    stays bound to the loop it first ran on: after a second ``asyncio.run`` its poller
    posts completions to the closed first loop ("Event loop is closed")."""
    return _RUNNER.run(coro)


def client_for(endpoint: str) -> aetcd.Client:
    host, port = endpoint.rsplit(":", 1)
    return aetcd.Client(host=host, port=int(port), timeout=30)


async def run_for(seconds: float, concurrency: int,
                  op: Callable[[int, int], Awaitable[object]]) -> dict[str, float]:
    """Run ``op(worker, n)`` in ``concurrency`` loops for ``seconds``; ops/s and latencies."""
    stop = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker(w: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await op(w, n)
            latencies.append(time.perf_counter() - t)
            n += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - t0
    return {
        "ops": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "client_cpu_pct": 100 * (time.process_time() - cpu0) / wall,
    }


async def timed(cfg: BenchConfig, op: Callable[[int, int], Awaitable[object]]
                ) -> dict[str, float]:
    """A warm-up of ``op`` then the measured run, both at ``cfg.concurrency``."""
    await run_for(cfg.warmup_seconds, cfg.concurrency, op)
    return await run_for(cfg.phase_seconds, cfg.concurrency, op)


async def sequential_puts(client: aetcd.Client, cfg: BenchConfig, prefix: bytes
                          ) -> dict[str, float]:
    value = os.urandom(cfg.value_size)
    for n in range(min(50, cfg.seq_puts)):  # warm the channel and the leader's caches
        await client.put(prefix + b"warm/%d" % n, value)
    latencies = []
    for n in range(cfg.seq_puts):
        t = time.perf_counter()
        await client.put(prefix + b"seq/%06d" % n, value)
        latencies.append(time.perf_counter() - t)
    return {"put_seq_p50_ms": percentile(latencies, 50) * 1e3,
            "put_seq_p99_ms": percentile(latencies, 99) * 1e3}


async def concurrent_puts(client: aetcd.Client, cfg: BenchConfig, prefix: bytes,
                          details: dict[str, Any]) -> dict[str, float]:
    value = os.urandom(cfg.value_size)

    async def put(w: int, n: int) -> object:
        return await client.put(prefix + b"tput/%02d/%03d" % (w, n % 100), value)

    r = await timed(cfg, put)
    details["put"] = r
    return {"put_ops": r["ops"], "put_p99_ms": r["p99_ms"]}


def _getter(client: aetcd.Client, keys: list[bytes], serializable: bool, rng: random.Random
            ) -> Callable[[int, int], Awaitable[object]]:
    async def get(w: int, n: int) -> object:
        found = await client.get(rng.choice(keys), serializable=serializable)
        assert found is not None, "a key written before the phase is missing"
        return found
    return get


async def concurrent_gets(client: aetcd.Client, cfg: BenchConfig, prefix: bytes,
                          details: dict[str, Any]) -> dict[str, float]:
    value = os.urandom(cfg.value_size)
    keys = [prefix + b"read/%06d" % n for n in range(cfg.read_keys)]
    sem = asyncio.Semaphore(cfg.concurrency)

    async def put(key: bytes) -> None:
        async with sem:
            await client.put(key, value)

    await asyncio.gather(*(put(k) for k in keys))
    out = {}
    for mode, serializable in (("linearizable", False), ("serializable", True)):
        r = await timed(cfg, _getter(client, keys, serializable, random.Random(mode)))
        details[f"range_{mode}"] = r
        out[f"range_{mode}_ops"] = r["ops"]
    return out


async def watch_latency(client: aetcd.Client, watch_client: aetcd.Client, cfg: BenchConfig,
                        prefix: bytes) -> dict[str, float]:
    """Time from just before each put call to the prefix watcher receiving its event."""
    watched = prefix + b"watch/"
    loop = asyncio.get_running_loop()
    arrivals: dict[bytes, asyncio.Future[float]] = {}
    watch = await watch_client.watch_prefix(watched)

    async def consume() -> None:
        async for event in watch:
            at = time.perf_counter()
            fut = arrivals.get(event.kv.key)
            if fut is not None and not fut.done():
                fut.set_result(at)

    consumer = asyncio.create_task(consume())
    value = os.urandom(cfg.value_size)
    latencies = []
    try:
        for n in range(-10, cfg.watch_events):  # the first ten are a warm-up
            key = watched + b"%06d" % (n + 10)
            arrival = arrivals[key] = loop.create_future()
            t = time.perf_counter()
            await client.put(key, value)
            at = await asyncio.wait_for(arrival, 30)
            del arrivals[key]
            if n >= 0:
                latencies.append(at - t)
    finally:
        await watch.cancel()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    return {"watch_p50_ms": percentile(latencies, 50) * 1e3,
            "watch_p99_ms": percentile(latencies, 99) * 1e3}


async def measure_workload(endpoint: str, cfg: BenchConfig, backend: str,
                           details: dict[str, Any]) -> dict[str, float]:
    """Phases a-e against ``endpoint``, each on its own key prefix."""
    metrics: dict[str, float] = {}
    async with client_for(endpoint) as client, client_for(endpoint) as watch_client:
        log(f"{backend}: {cfg.seq_puts} sequential puts")
        metrics.update(await sequential_puts(client, cfg, b"/bench/a/"))
        log(f"{backend}: puts, {cfg.concurrency} in flight, {cfg.phase_seconds}s")
        metrics.update(await concurrent_puts(client, cfg, b"/bench/b/", details))
        log(f"{backend}: linearizable and serializable gets, {cfg.concurrency} in flight")
        metrics.update(await concurrent_gets(client, cfg, b"/bench/c/", details))
        log(f"{backend}: watch delivery of {cfg.watch_events} puts")
        metrics.update(await watch_latency(client, watch_client, cfg, b"/bench/e/"))
    return metrics


async def load_keys(endpoint: str, cfg: BenchConfig) -> float:
    """Put ``cfg.keys`` distinct keys, ``cfg.load_concurrency`` in flight; return puts/s."""
    value = os.urandom(cfg.key_value_size)
    next_key = iter(range(cfg.keys))
    async with client_for(endpoint) as client:
        async def worker() -> None:
            for n in next_key:  # the workers share one iterator: each key is put once
                await client.put(b"/bench/f/%08d" % n, value)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(cfg.load_concurrency)))
        return cfg.keys / (time.perf_counter() - t0)


# -- one backend ---------------------------------------------------------------------------


def bench_backend(backend: str, cfg: BenchConfig, workdir: Path) -> dict[str, Any]:
    """Every metric of one backend, measured on two fresh clusters (workload, then RSS)."""
    details: dict[str, Any] = {}
    with running_cluster(backend, workdir / "workload", cfg) as cluster:
        i, leader = leader_endpoint(cluster)
        log(f"{backend}: clients connect to the leader, {leader}")
        metrics = run(measure_workload(cluster.endpoints[i], cfg, backend, details))
        leader_after = cluster.leader_index()
        if leader_after != i:
            log(f"{backend}: WARNING leadership moved during the run "
                f"({leader} -> {leader_after})")
    with running_cluster(backend, workdir / "rss", cfg) as cluster:
        j, rss_leader = leader_endpoint(cluster)
        idle = member_rss_mib(cluster)
        log(f"{backend}: loading {cfg.keys} keys through the leader, {rss_leader}")
        metrics["load_ops"] = run(load_keys(cluster.endpoints[j], cfg))
        revision = wait_converged(cluster)
        rss = member_rss_mib(cluster)
        log(f"{backend}: revision {revision} on every member; RSS "
            + ", ".join(f"{n} {m:.0f} MiB" for n, m in zip(cluster.names, rss, strict=True)))
    metrics.update(rss_idle_sum_mib=sum(idle), rss_sum_mib=sum(rss), rss_max_mib=max(rss))
    return {"leader": leader, "rss_leader": rss_leader, "leader_moved": leader_after != i,
            "metrics": metrics, "details": details,
            "member_rss_mib": {"idle": idle, "loaded": rss}}


def bench_floor(cfg: BenchConfig) -> dict[str, Any]:
    """Put and get throughput of ``bench.grpc_floor`` (a do-nothing Python gRPC server),
    once per grpcio server kind; ``metrics`` holds the better of the two for each."""
    servers = {name: _floor_server(cfg, name) for name in grpc_floor.SERVERS}
    best = {key: max(m[key] for m in servers.values()) for key in FLOOR_KEYS}
    return {"metrics": best, "servers": servers, "details": {}}


FLOOR_KEYS = ("put_ops", "range_linearizable_ops", "range_serializable_ops")
FLOOR_LABELS = {"aio": "grpc.aio on the daemons' event loop (raftstore's server)",
                "threads": f"grpc threaded server, {grpc_floor.THREADS} workers"}


def _floor_server(cfg: BenchConfig, server: str) -> dict[str, float]:
    (port,) = free_ports(1)
    proc = subprocess.Popen([sys.executable, "-m", "bench.grpc_floor", str(port),
                             "--server", server], cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        endpoint = f"127.0.0.1:{port}"

        async def measure() -> dict[str, float]:
            details: dict[str, Any] = {}
            async with client_for(endpoint) as client:
                for _ in range(200):  # until it listens
                    try:
                        await client.put(b"/floor/ready", b"1")
                        break
                    except Exception:  # not listening yet
                        await asyncio.sleep(0.05)
                out = await concurrent_puts(client, cfg, b"/bench/b/", details)
                out.update(await concurrent_gets(client, cfg, b"/bench/c/", details))
            return {key: out[key] for key in FLOOR_KEYS}

        log(f"python grpc floor ({server}): puts and gets, "
            f"{cfg.concurrency} in flight, against a do-nothing server")
        return run(measure())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- report --------------------------------------------------------------------------------


def ratios(results: dict[str, dict[str, Any]],
           metrics: tuple[Any, ...] | list[Any] | None = None) -> dict[str, float]:
    """raftstore/etcd for every metric (of ``metrics``, default this benchmark's) that
    both measured and etcd's is not 0."""
    if REFERENCE not in results or CANDIDATE not in results:
        return {}
    ref, cand = results[REFERENCE]["metrics"], results[CANDIDATE]["metrics"]
    return {m.key: cand[m.key] / ref[m.key] for m in (metrics or METRICS) if ref.get(m.key)}


def write_report(results_dir: Path, name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` as ``<results_dir>/<name>-<started>.json`` and say where."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}-{report['started']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {path} ({report['seconds']}s)")
    return path


def check_targets(results: dict[str, dict[str, Any]], cfg: BenchConfig
                  ) -> list[dict[str, Any]]:
    """Each target with the value it was judged on; ``met`` is None when not measurable."""
    rel = ratios(results)
    out = []
    for t in TARGETS:
        if t.relative:
            value = rel.get(t.metric)
        else:
            value = results.get(CANDIDATE, {}).get("metrics", {}).get(t.metric)
        met = None if value is None else (value >= t.limit if t.at_least else value <= t.limit)
        out.append({"target": t.description.format(**dataclasses.asdict(cfg)),
                    "metric": t.metric, "relative": t.relative, "value": value, "met": met})
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def render(results: dict[str, dict[str, Any]], cfg: BenchConfig,
           targets: list[dict[str, Any]]) -> str:
    rel = ratios(results)
    fields = dataclasses.asdict(cfg)
    rows = [("metric", "unit", REFERENCE, CANDIDATE, "ratio r/e", "better")]
    for m in METRICS:
        vals = [results.get(b, {}).get("metrics", {}).get(m.key) for b in (REFERENCE, CANDIDATE)]
        ratio = rel.get(m.key)
        verdict = "higher" if m.higher_is_better else "lower"
        if ratio is not None and ratio != 1:
            wins = ratio > 1 if m.higher_is_better else ratio < 1
            verdict += f"; {CANDIDATE if wins else REFERENCE} wins"
        rows.append((m.label.format(**fields), m.unit, fmt(vals[0]), fmt(vals[1]),
                     "-" if ratio is None else f"{ratio:.2f}x", verdict))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if c in (0, 1, 5) else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append("ratio r/e = raftstore / etcd; 'better' says which direction is better and, "
                 "when both ran, which backend won.")
    for b, r in results.items():
        if b == FLOOR:
            continue
        lines.append(f"{b}: clients connected to the leader endpoint ({r['leader']}; "
                     f"RSS cluster: {r['rss_leader']})"
                     + ("  WARNING: leadership moved during the run" if r["leader_moved"]
                        else ""))
        busy = [f"{phase} {d['client_cpu_pct']:.0f}%" for phase, d in r["details"].items()
                if d["client_cpu_pct"] > 90]
        if busy:
            lines.append(f"  note: the benchmark client was CPU-bound ({', '.join(busy)}): "
                         f"{b}'s throughput may be higher than measured")
    floor = results.get(FLOOR, {})
    if floor.get("servers"):
        lines.append("")
        lines.append("python gRPC ceiling: do-nothing servers with the etcd KV API "
                     "(bench/grpc_floor.py), same client, same run:")
        for server, measured in floor["servers"].items():
            lines.append(f"  {FLOOR_LABELS.get(server, server)}:")
            for key, label in (("put_ops", "puts"),
                               ("range_linearizable_ops", "linearizable gets"),
                               ("range_serializable_ops", "serializable gets")):
                ref = results.get(REFERENCE, {}).get("metrics", {}).get(key)
                cand = results.get(CANDIDATE, {}).get("metrics", {}).get(key)
                parts = [f"    {label:<17} {measured[key]:>8,.0f} ops/s"]
                if ref:
                    parts.append(f"= {measured[key] / ref:.2f}x etcd")
                if cand:
                    parts.append(f"raftstore reaches {cand / measured[key]:.0%} of it")
                lines.append("  ".join(parts))
    lines.append("")
    lines.append("targets (raftstore):")
    for t in targets:
        shown = "-" if t["value"] is None else (
            f"{t['value']:.2f}x" if t["relative"] else f"{t['value']:.2f}")
        status = {True: "MET", False: "MISSED", None: "n/a (needs raftstore"
                  + (" and etcd" if t["relative"] else "") + ")"}[t["met"]]
        lines.append(f"  {t['target']:<45} {shown:>8}  {status}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=f"{REFERENCE},{CANDIDATE}",
                        help="comma-separated, measured in this order (default: %(default)s)")
    parser.add_argument("--keys", type=int, default=None,
                        help=f"keys loaded before measuring RSS (default {BenchConfig.keys}, "
                             f"{QUICK.keys} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small counts and 1 s phases: a smoke run of every phase")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the do-nothing Python gRPC server (the ceiling) column")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where store-<timestamp>.json goes (default bench/results)")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown or not args.backends:
        parser.error(f"--backends: {unknown or 'nothing'} is not one of {sorted(BACKENDS)}")
    if args.keys is not None and args.keys < 1:
        parser.error("--keys: must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else BenchConfig()
    if args.keys is not None:
        cfg = dataclasses.replace(cfg, keys=args.keys)
    started = time.time()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="navarch-bench-") as tmp:
        for backend in args.backends:
            results[backend] = bench_backend(backend, cfg, Path(tmp) / backend)
        if args.floor:
            results[FLOOR] = bench_floor(cfg)
    targets = check_targets(results, cfg)
    print(render(results, cfg, targets))

    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(started))
    report = {
        "benchmark": "store", "started": stamp, "seconds": round(time.time() - started, 1),
        "quick": args.quick, "config": dataclasses.asdict(cfg),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "platform": platform.platform()},
        "client": f"aetcd {aetcd.__version__}" if hasattr(aetcd, "__version__") else "aetcd",
        "connected_to": "leader",
        "metrics": [dataclasses.asdict(m) for m in METRICS],
        "backends": results, "ratios": ratios(results), "targets": targets,
    }
    write_report(args.results_dir, "store", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
