"""The timed phases of ``bench.api``, each a function of the SDK clients it drives and a
:class:`BenchConfig`; bench/api.py starts the processes, runs these in order and reports.

Every phase records its figures in the ``details`` dict it is given (per-phase CPU use of
each party included) and returns the metrics it is responsible for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import navarch
from bench.store import percentile
from navarch.v1 import core_pb2


@dataclass(frozen=True)
class BenchConfig:
    """How much work each phase does. Immutable; ``--quick`` swaps in :data:`QUICK`."""

    clients: int = 50  # concurrent asyncio tasks in phases a, b and the LIST load
    clients_per_channel: int = 10  # tasks sharing one navarch.Client (one gRPC channel)
    namespaces: int = 4  # phase a spreads its pods over these
    warmup_seconds: float = 3.0
    phase_seconds: float = 20.0  # sustained creates, after the warm-up
    paced_rate: float = 300.0  # creates/s offered in the paced phase (the target)
    paced_seconds: float = 10.0
    rw_seconds: float = 10.0  # gets, then updates
    list_pods: int = 5000
    list_page: int = 500
    list_runs: int = 5
    watchers: int = 1000
    watch_channels: int = 10
    watch_events: int = 50
    watch_warmup_events: int = 4  # not timed; the first proves every stream is open
    event_timeout: float = 60.0  # the longest any watcher may take to see one event
    start_timeout: float = 60.0


QUICK = BenchConfig(warmup_seconds=0.5, phase_seconds=2.0, paced_seconds=1.0, rw_seconds=1.0,
                    list_pods=300,
                    list_page=100, list_runs=2, watchers=50, watch_channels=2,
                    watch_events=10, watch_warmup_events=2)


# -- CPU accounting ----------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids`` (0 for a process that is gone)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_seconds() -> tuple[float, float]:
    """CPU time, over every core of the machine so far, spent running processes (user,
    nice, system) and stolen by the hypervisor (a virtual machine's cores are not all its)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return sum(ticks[:3]) / hz, (ticks[7] if len(ticks) > 7 else 0) / hz


@dataclass(frozen=True)
class CpuMeter:
    """CPU use over a phase, in percent of one core: the benchmark client, the API server,
    the store members, ``other`` processes and ``steal`` (time the hypervisor gave to other
    machines). Anything above a few % in the last two means the figures are noisy."""

    apiserver: int
    members: list[int]

    def _now(self) -> tuple[float, ...]:
        return (time.perf_counter(), time.process_time(), cpu_seconds([self.apiserver]),
                cpu_seconds(self.members), *machine_seconds())

    def start(self) -> tuple[float, ...]:
        """A reading to give to :meth:`since`."""
        return self._now()

    def since(self, start: tuple[float, ...]) -> dict[str, float]:
        """CPU percent of each party since ``start``."""
        now = self._now()
        wall = now[0] - start[0]
        client, server, store, processes, steal = (
            100 * (b - a) / wall for a, b in zip(start[1:], now[1:], strict=True))
        return {"client_cpu_pct": round(client, 1), "apiserver_cpu_pct": round(server, 1),
                "store_cpu_pct": round(store, 1),
                "other_cpu_pct": round(max(0.0, processes - client - server - store), 1),
                "steal_cpu_pct": round(steal, 1)}


# -- clients and objects -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def clients(address: str, count: int) -> AsyncIterator[list[navarch.Client]]:
    """``count`` SDK clients (one gRPC channel each), closed on exit."""
    made = [navarch.Client(address, timeout=120.0) for _ in range(count)]
    try:
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made))


def pod_template() -> core_pb2.Pod:
    """The pod every phase creates: one container, labels, requests and limits."""
    doc = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"labels": {"app": "bench", "tier": "web", "track": "stable"}},
           "spec": {"containers": [{
               "name": "main", "image": "localhost/bench:1",
               "ports": [{"name": "http", "containerPort": 8080}],
               "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                             "limits": {"cpu": "200m", "memory": "128Mi"}}}]}}
    pod: core_pb2.Pod = navarch.from_dict(doc, core_pb2.Pod)
    return pod


def make_pod(template: core_pb2.Pod, namespace: str, name: str) -> core_pb2.Pod:
    """A copy of ``template`` named ``namespace/name``."""
    pod = core_pb2.Pod()
    pod.CopyFrom(template)
    pod.metadata.namespace = namespace
    pod.metadata.name = name
    return pod


async def create_namespaces(client: navarch.Client, names: list[str]) -> None:
    """Create each namespace."""
    for name in names:
        ns = core_pb2.Namespace()
        ns.metadata.name = name
        await client.namespaces().create(ns)


# -- the timed phases --------------------------------------------------------------------------


Op = Callable[[int, int], Awaitable[bool]]  # (worker, n) -> counted in the latencies?


async def run_for(seconds: float, concurrency: int, op: Op) -> dict[str, Any]:
    """Run ``op(worker, n)`` in ``concurrency`` loops for ``seconds``; ops/s and latencies.

    Calls for which ``op`` returns False (conflicts) count in ``rejected``, not in the
    latencies nor in ops/s.
    """
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    rejected = 0

    async def worker(w: int) -> None:
        nonlocal rejected
        n = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            counted = await op(w, n)
            if counted:
                latencies.append(time.perf_counter() - t)
            else:
                rejected += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"ops": len(latencies) / wall, "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3,
            "max_ms": max(latencies) * 1e3, "count": len(latencies), "rejected": rejected}


async def load_list_pods(pool: list[navarch.Client], cfg: BenchConfig, namespace: str
                         ) -> float:
    """Create ``cfg.list_pods`` pods in ``namespace`` with ``cfg.clients`` in flight; /s."""
    template = pod_template()
    next_n = iter(range(cfg.list_pods))

    async def worker(w: int) -> None:
        pods = pool[w // cfg.clients_per_channel].pods(namespace)
        for n in next_n:  # the workers share one iterator: each pod is created once
            await pods.create(make_pod(template, namespace, f"l-{n:06d}"))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(cfg.clients)))
    return cfg.list_pods / (time.perf_counter() - t0)


async def median_wall_ms(runs: int, expected: int, call: Callable[[], Awaitable[int]]
                         ) -> dict[str, Any]:
    """Median wall time of ``runs`` calls of ``call``, which returns how many items it got."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        got = await call()
        times.append((time.perf_counter() - t) * 1e3)
        if got != expected:
            raise AssertionError(f"a LIST returned {got} pods, expected {expected}")
    return {"median_ms": statistics.median(times), "runs_ms": times}


async def list_scope(pods: navarch.ResourceClient[core_pb2.Pod], cfg: BenchConfig
                     ) -> dict[str, dict[str, Any]]:
    """Full and paginated LISTs of one scope (a namespace, or all of them)."""
    async def full() -> int:
        return len((await pods.list()).items)

    async def paged() -> int:
        return len((await pods.list_all(page_size=cfg.list_page)).items)

    await full()  # warm the path and the channel once, untimed
    return {"": await median_wall_ms(cfg.list_runs, cfg.list_pods, full),
            "_paged": await median_wall_ms(cfg.list_runs, cfg.list_pods, paged)}


async def list_phase(client: navarch.Client, cfg: BenchConfig, namespace: str,
                     details: dict[str, Any]) -> dict[str, float]:
    """LISTs of one namespace, then of all namespaces."""
    out: dict[str, float] = {}
    for key, ns in (("list_ns", namespace), ("list_all", "")):
        for suffix, r in (await list_scope(client.pods(ns), cfg)).items():
            details[key + suffix] = r
            out[f"{key}{suffix}_ms"] = r["median_ms"]
    return out


async def create_phase(pool: list[navarch.Client], cfg: BenchConfig, namespaces: list[str],
                       details: dict[str, Any], cpu: CpuMeter
                       ) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Sustained pod creates after a warm-up; the metrics and every pod created."""
    template = pod_template()
    created: list[tuple[str, str]] = []

    def creator(prefix: str, keep: bool) -> Op:
        async def create(w: int, n: int) -> bool:
            ns = namespaces[(w + n) % len(namespaces)]
            name = f"{prefix}-{w:03d}-{n:06d}"
            await pool[w // cfg.clients_per_channel].pods(ns).create(
                make_pod(template, ns, name))
            if keep:
                created.append((ns, name))
            return True
        return create

    await run_for(cfg.warmup_seconds, cfg.clients, creator("warm", False))
    mark = cpu.start()
    r = await run_for(cfg.phase_seconds, cfg.clients, creator("c", True))
    details["create"] = r | cpu.since(mark)
    return ({"create_ops": r["ops"], "create_p50_ms": r["p50_ms"],
             "create_p99_ms": r["p99_ms"]}, created)


async def paced_create_phase(pool: list[navarch.Client], cfg: BenchConfig,
                             namespaces: list[str], details: dict[str, Any], cpu: CpuMeter
                             ) -> dict[str, float]:
    """Creates offered at ``cfg.paced_rate`` per second (open loop), at most ``cfg.clients``
    in flight. Each latency counts from the create's scheduled time, so a server that falls
    behind is charged for the wait as well."""
    template = pod_template()
    in_flight = asyncio.Semaphore(cfg.clients)  # FIFO: creates start in schedule order
    latencies: list[float] = []

    async def create(i: int, due: float) -> None:
        ns = namespaces[i % len(namespaces)]
        async with in_flight:
            await pool[i % len(pool)].pods(ns).create(make_pod(template, ns, f"r-{i:07d}"))
        latencies.append(time.perf_counter() - due)

    total = max(1, round(cfg.paced_rate * cfg.paced_seconds))
    mark = cpu.start()
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        due = start + i / cfg.paced_rate
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        tasks.append(asyncio.create_task(create(i, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    r = {"offered": cfg.paced_rate, "ops": total / wall, "count": total,
         "p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3,
         "max_ms": max(latencies) * 1e3}
    details["create_paced"] = r | cpu.since(mark)
    return {"create_paced_ops": r["ops"], "create_paced_p50_ms": r["p50_ms"],
            "create_paced_p99_ms": r["p99_ms"]}


async def get_update_phase(pool: list[navarch.Client], cfg: BenchConfig,
                           pods: list[tuple[str, str]], details: dict[str, Any],
                           cpu: CpuMeter) -> dict[str, float]:
    """Gets of random pods, then read-modify-write updates of a label of random pods."""
    rng = random.Random(7)
    update_ms: list[float] = []
    conflict_ms: list[float] = []

    async def get(w: int, n: int) -> bool:
        ns, name = rng.choice(pods)
        await pool[w // cfg.clients_per_channel].pods(ns).get(name)
        return True

    async def update(w: int, n: int) -> bool:
        ns, name = rng.choice(pods)
        rc = pool[w // cfg.clients_per_channel].pods(ns)
        pod = await rc.get(name)
        pod.metadata.labels["bench/touched"] = f"{w}-{n}"
        t = time.perf_counter()
        try:
            await rc.update(pod)  # carries the resourceVersion read: ABORTED if it moved
        except navarch.Conflict:
            conflict_ms.append((time.perf_counter() - t) * 1e3)
            return False
        update_ms.append((time.perf_counter() - t) * 1e3)
        return True

    mark = cpu.start()
    g = await run_for(cfg.rw_seconds, cfg.clients, get)
    details["get"] = g | cpu.since(mark)
    mark = cpu.start()
    u = await run_for(cfg.rw_seconds, cfg.clients, update)
    # u's latencies are of the whole read-modify-write; the update call's are update_ms
    details["update"] = u | cpu.since(mark) | {
        "update_call_p50_ms": percentile(update_ms, 50),
        "update_call_p99_ms": percentile(update_ms, 99), "conflict_ms": conflict_ms}
    return {"get_ops": g["ops"], "get_p50_ms": g["p50_ms"], "get_p99_ms": g["p99_ms"],
            "update_ops": u["ops"], "update_p50_ms": percentile(update_ms, 50),
            "update_p99_ms": percentile(update_ms, 99),
            "update_conflicts": float(u["rejected"])}


@dataclass
class Delivery:
    """The arrival times of one event at the watchers; ``all_in`` once every one has it."""

    expected: int
    arrivals: list[float] = dataclasses.field(default_factory=list)
    all_in: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class WatcherFleet:
    """``count`` Watch streams on the pods of ``namespace`` from ``since``, spread over the
    clients of ``pool``; records when each stream receives each :meth:`expect` -ed event."""

    def __init__(self, pool: list[navarch.Client], namespace: str, since: str,
                 count: int) -> None:
        self.namespace, self.since, self.count = namespace, since, count
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.errors: list[BaseException] = []
        self.broken = asyncio.Event()
        self.tasks = [asyncio.create_task(self._watch(pool[i % len(pool)]))
                      for i in range(count)]

    async def _watch(self, client: navarch.Client) -> None:
        try:
            async for event in client.pods(self.namespace).watch(resource_version=self.since):
                at = time.perf_counter()
                d = self.deliveries.get((event.object.metadata.name, event.type))
                if d is not None:
                    d.arrivals.append(at)
                    if len(d.arrivals) == d.expected:
                        d.all_in.set()
            raise RuntimeError("a watch stream ended")
        except Exception as exc:  # any broken stream spoils the phase: fail it at once
            self.errors.append(exc)
            self.broken.set()

    def expect(self, name: str, event_type: str) -> Delivery:
        """Start recording arrivals of the ``event_type`` event of pod ``name``."""
        d = self.deliveries[(name, event_type)] = Delivery(self.count)
        return d

    async def delivered(self, d: Delivery, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until every stream has ``d``; raise if a stream broke or ``timeout`` passed."""
        waits = [asyncio.create_task(d.all_in.wait()), asyncio.create_task(self.broken.wait())]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} watch streams broke: "
                               f"{self.errors[0]!r}") from self.errors[0]
        if not d.all_in.is_set():
            raise RuntimeError(f"an event reached {len(d.arrivals)} of {self.count} "
                               f"watchers within {timeout}s")

    async def close(self) -> None:
        """Cancel every stream."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def watch_phase(address: str, writer: navarch.Client, cfg: BenchConfig, namespace: str,
                      details: dict[str, Any], cpu: CpuMeter) -> dict[str, float]:
    """``cfg.watchers`` watches of ``namespace``; pod creates and updates, alternately and
    one at a time, each timed from just before its call to each watcher receiving it."""
    pods = writer.pods(namespace)
    since = (await pods.list()).resource_version
    template = pod_template()
    latencies: list[float] = []
    slowest: list[float] = []
    async with clients(address, cfg.watch_channels) as pool:
        fleet = WatcherFleet(pool, namespace, since, cfg.watchers)
        try:
            last = core_pb2.Pod()
            mark = cpu.start()
            for step in range(cfg.watch_warmup_events + cfg.watch_events):
                if step == cfg.watch_warmup_events:  # every stream is open: timing starts
                    mark = cpu.start()
                name = f"w-{step // 2:04d}"
                d = fleet.expect(name, "ADDED" if step % 2 == 0 else "MODIFIED")
                t = time.perf_counter()
                if step % 2 == 0:
                    last = await pods.create(make_pod(template, namespace, name))
                else:
                    last.metadata.labels["bench/step"] = str(step)
                    last = await pods.update(last)
                await fleet.delivered(d, cfg.event_timeout)
                if step >= cfg.watch_warmup_events:
                    latencies += [at - t for at in d.arrivals]
                    slowest.append(max(d.arrivals) - t)
            details["watch"] = cpu.since(mark) | {
                "pairs": len(latencies), "channels": cfg.watch_channels,
                "last_watcher_p50_ms": percentile(slowest, 50) * 1e3,
                "last_watcher_max_ms": max(slowest) * 1e3}
        finally:
            await fleet.close()
    return {"watch_p50_ms": percentile(latencies, 50) * 1e3,
            "watch_p99_ms": percentile(latencies, 99) * 1e3}
