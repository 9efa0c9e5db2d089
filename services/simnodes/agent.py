"""The thin layer of the hollow kubelets: one ``SimNodes`` drives every node of the
process against the API server (the decisions are in nodes.py, pods.py, metrics.py).

Flow::

    register: create N Nodes (bounded concurrency; AlreadyExists: take the node over)
    leases:   create, then renew kube-node-lease/<node> every --heartbeat-interval,
              spread over it
    status:   refresh the Ready heartbeat every --status-interval, spread over it
    pods:     Informer(pods, spec.nodeName!=) ─▶ ours? ─▶ WorkQueue ─▶ workers:
              next_step(pod) due? ─ no ─▶ add_after(due)
                                  └ yes ─▶ update_status (start/exit/restart) or delete
    metrics:  (--pod-metrics, if the server has PodMetrics) usage of running pods

Contracts: cached pods and nodes are never mutated (copies are written); one
update_status per transition, and a conflict is left to the next watch event; at most
``concurrency`` writes of each loop are in flight; stopping (SIGTERM) stops every loop
and leaves the Nodes and Leases as they are, as a stopped kubelet would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from navarch._clock import Clock, RealClock
from navarch._errors import AlreadyExists, ApiError, Conflict, NotFound
from navarch._informer import Informer, object_key
from navarch._podmetrics import PodMetricsWriter, pod_metrics_supported
from navarch._workqueue import QueueShutDown, WorkQueue
from navarch.v1 import coordination_pb2, core_pb2, meta_pb2

from .config import SimConfig
from .metrics import pod_metrics
from .nodes import (
    LEASE_NAMESPACE,
    build_lease,
    build_node,
    heartbeat_node,
    host_ip,
    pod_ip,
    renewed_lease,
)
from .pods import (
    Behaviour,
    exited_status,
    next_step,
    parse_behaviour,
    restarted_status,
    started_status,
)

__all__ = ["SimNodes"]

log = structlog.get_logger("navarch.simnodes")


def _owner(kind: str, api_version: str, name: str, uid: str) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(api_version=api_version, kind=kind, name=name, uid=uid)


def _newer(a: core_pb2.Node, b: core_pb2.Node) -> bool:
    """Whether ``a`` is a later version than ``b`` (resourceVersions are revisions)."""
    va, vb = a.metadata.resource_version, b.metadata.resource_version
    return va.isdigit() and vb.isdigit() and int(va) > int(vb)


class SimNodes:
    """Every simulated node of this process: registration, heartbeats and pod lifecycle."""

    def __init__(self, client: Any, cfg: SimConfig, clock: Clock | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.clock: Clock = clock or RealClock()
        self.index = {name: i for i, name in enumerate(cfg.node_names())}
        self.nodes: dict[str, core_pb2.Node] = {}  # as last written or read (not cached)
        self.leases: dict[str, coordination_pb2.Lease] = {}
        self.gone: set[str] = set()  # our nodes deleted from the API: their pods ignored
        self.pod_cidrs: dict[str, str] = {}
        self.next_ip: dict[str, int] = {}
        self.seen: dict[str, tuple[str, float]] = {}  # pod key -> (uid, first seen)
        self.queue: WorkQueue[str] = WorkQueue("simnodes-pods", clock=self.clock)
        self.pods: Informer[core_pb2.Pod] = Informer(
            client.pods(""), field_selector="spec.nodeName!=", page_size=1000,
            on_add=self._on_pod, on_update=lambda _old, new: self._on_pod(new),
            on_delete=self._on_pod_deleted)
        self.node_informer: Informer[core_pb2.Node] = Informer(
            client.nodes(), page_size=1000, on_add=self._on_node,
            on_update=lambda _old, new: self._on_node(new), on_delete=self._on_node_deleted)
        self.registered = asyncio.Event()
        self.stats = {"status_writes": 0, "deletes": 0, "lease_renewals": 0, "errors": 0}
        self.metrics = PodMetricsWriter(self.client)
        self._warned: set[str] = set()

    # --- registration ---------------------------------------------------------------

    async def register(self) -> float:
        """Create every Node (or take over an existing one); the seconds it took. Leases
        come with the first heartbeat round, spread over an interval, so that
        registration costs one write per node (the Ready heartbeat of the Node counts as
        a heartbeat for the node lifecycle controller meanwhile)."""
        start = self.clock.monotonic()
        await self._bounded(list(self.index), self._register_one)
        self.registered.set()
        took = self.clock.monotonic() - start
        log.info("nodes registered", count=len(self.index), seconds=round(took, 2))
        return took

    async def _register_one(self, name: str) -> None:
        node = build_node(self.cfg, self.index[name], self.clock.now())
        nodes = self.client.nodes()
        for _attempt in range(5):
            try:
                self.nodes[name] = await nodes.create(node)
                return
            except AlreadyExists:
                pass
            try:  # a node of an earlier run: report Ready on it again
                current = await nodes.get(name)
                self.nodes[name] = await nodes.update_status(
                    heartbeat_node(current, self.clock.now()))
                return
            except (NotFound, Conflict):
                continue
        raise RuntimeError(f"could not register node {name}")

    async def _bounded(self, names: list[str], work: Callable[[str], Awaitable[None]],
                       interval: float = 0.0, concurrency: int = 0) -> None:
        """``work(name)`` for every name, at most ``concurrency`` (default: the
        configured one) at once, started evenly over ``interval`` seconds (at once when
        0 or when behind)."""
        sem = asyncio.Semaphore(concurrency or self.cfg.concurrency)
        start = self.clock.monotonic()
        tasks: set[asyncio.Task[None]] = set()

        async def one(name: str) -> None:
            try:
                await work(name)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self.stats["errors"] += 1
                log.warning("node write failed", node=name, error=exc.message)
            finally:
                sem.release()

        try:
            for i, name in enumerate(names):
                if interval > 0:
                    wait = start + interval * i / len(names) - self.clock.monotonic()
                    if wait > 0:
                        await self.clock.sleep(wait)
                await sem.acquire()
                task = asyncio.create_task(one(name))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    # --- heartbeats -------------------------------------------------------------------

    async def _renew_lease(self, name: str) -> None:
        if name in self.gone:
            return
        leases = self.client.leases(LEASE_NAMESPACE)
        now = self.clock.now()
        lease = self.leases.get(name)
        try:
            if lease is None:
                fresh = build_lease(name, now, self.cfg.lease_duration)
                node = self.nodes.get(name)
                if node is not None and node.metadata.uid:
                    fresh.metadata.owner_references.append(
                        _owner("Node", "v1", name, node.metadata.uid))
                try:
                    self.leases[name] = await leases.create(fresh)
                    return
                except AlreadyExists:
                    lease = await leases.get(name)
            self.leases[name] = await leases.update(
                renewed_lease(lease, name, now, self.cfg.lease_duration))
            self.stats["lease_renewals"] += 1
        except (Conflict, NotFound):
            self.leases.pop(name, None)  # read (or create) it again next time

    async def _refresh_status(self, name: str) -> None:
        if name in self.gone:
            return
        nodes = self.client.nodes()
        try:
            for attempt in range(2):  # a stale copy conflicts once: read it and retry
                node = self.nodes.get(name) if attempt == 0 else None
                if node is None:
                    node = await nodes.get(name)
                try:
                    self.nodes[name] = await nodes.update_status(
                        heartbeat_node(node, self.clock.now()))
                    return
                except Conflict:
                    self.nodes.pop(name, None)
        except NotFound:
            self.nodes.pop(name, None)

    async def _every(self, interval: float, work: Callable[[str], Awaitable[None]],
                     first_delay: float) -> None:
        """Rounds of ``work`` over every node, each spread over 90 % of ``interval``; the
        first starts ``first_delay`` seconds after registration. Half the configured
        concurrency: when the API server cannot keep up, heartbeats share it with pod
        status writes rather than crowd them out (and rounds fall behind)."""
        await self.clock.sleep(first_delay)
        while True:
            start = self.clock.monotonic()
            await self._bounded(list(self.index), work, interval * 0.9,
                                max(1, self.cfg.concurrency // 2))
            await self.clock.sleep(max(0.0, start + interval - self.clock.monotonic()))

    # --- nodes seen through the informer ------------------------------------------------

    def _on_node(self, node: core_pb2.Node) -> None:
        name = node.metadata.name
        if name in self.index:
            self.gone.discard(name)
            self.pod_cidrs[name] = node.spec.pod_cidr
            mine = self.nodes.get(name)
            if mine is None or _newer(node, mine):
                self.nodes[name] = node  # shared with the cache: heartbeat_node copies

    def _on_node_deleted(self, node: core_pb2.Node) -> None:
        name = node.metadata.name
        if name in self.index:
            self.gone.add(name)
            self.nodes.pop(name, None)
            self.leases.pop(name, None)

    # --- pods -------------------------------------------------------------------------

    def _ours(self, pod: core_pb2.Pod) -> bool:
        node = pod.spec.node_name
        return node in self.index and node not in self.gone

    def _on_pod(self, pod: core_pb2.Pod) -> None:
        if self._ours(pod):
            self.queue.add(object_key(pod))

    def _on_pod_deleted(self, pod: core_pb2.Pod) -> None:
        key = object_key(pod)
        self.seen.pop(key, None)
        self.metrics.forget(pod)

    def _behaviour(self, key: str, pod: core_pb2.Pod) -> Behaviour:
        behaviour = parse_behaviour(pod.metadata.annotations)
        if behaviour.error and key not in self._warned:
            self._warned.add(key)
            log.warning("bad simnodes annotation; the pod runs until deleted", pod=key,
                        error=behaviour.error)
        return behaviour

    def _addresses(self, key: str, pod: core_pb2.Pod) -> tuple[str, str]:
        node = pod.spec.node_name
        index = self.index[node]
        ip = pod.status.pod_ip
        if not ip:
            seq = self.next_ip.get(node, 0)
            self.next_ip[node] = seq + 1
            ip = pod_ip(self.pod_cidrs.get(node, ""), index, seq)
        return host_ip(index), ip

    async def reconcile(self, key: str) -> None:
        """Move the pod ``key`` one step along its life when that step is due."""
        pod = self.pods.cache.get(key)
        if pod is None or not self._ours(pod):
            self.seen.pop(key, None)
            return
        now = self.clock.now()
        uid = pod.metadata.uid
        seen = self.seen.get(key)
        if seen is None or seen[0] != uid:
            seen = (uid, now)
            self.seen[key] = seen
        behaviour = self._behaviour(key, pod)
        step = next_step(pod, behaviour, seen[1], self.cfg.startup_delay,
                         self.cfg.stop_delay)
        if step.action == "none":
            return
        if step.due > now:
            self.queue.add_after(key, step.due - now)
            return
        pods = self.client.pods(pod.metadata.namespace)
        try:
            if step.action == "delete":
                await pods.delete(pod.metadata.name, grace_period_seconds=0, uid=uid)
                self.stats["deletes"] += 1
                return
            host, ip = self._addresses(key, pod)
            if step.action == "restart":
                status = restarted_status(pod, host, ip, now)
            elif step.action == "exit":
                status = exited_status(pod, host, ip, now, behaviour.exit_code or 0)
            else:
                status = started_status(pod, host, ip, now)
            out = core_pb2.Pod()
            out.CopyFrom(pod)
            out.status.CopyFrom(status)
            await pods.update_status(out)
            self.stats["status_writes"] += 1
        except (NotFound, Conflict):
            pass  # gone, or changed: the watch brings the new version and requeues it

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.reconcile(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self.stats["errors"] += 1
                log.warning("pod status write failed; retrying", pod=key, error=exc.message)
                self.queue.add_rate_limited(key)
            except Exception:
                self.stats["errors"] += 1
                log.exception("pod reconcile failed", pod=key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    # --- metrics --------------------------------------------------------------------

    async def publish_metrics(self) -> None:
        """Create or update the PodMetrics of every running pod of our nodes, once."""
        window = self.cfg.pod_metrics_interval
        now = self.clock.now()
        running = [p for p in self.pods.cache.values()
                   if self._ours(p) and p.status.phase == "Running"
                   and not p.metadata.HasField("deletion_timestamp")]
        sem = asyncio.Semaphore(self.cfg.concurrency)

        async def one(pod: core_pb2.Pod) -> None:
            async with sem:
                if not await self.metrics.write(pod, pod_metrics(pod, now, window)):
                    self.stats["errors"] += 1

        await asyncio.gather(*(one(p) for p in running))

    async def _metrics_loop(self) -> None:
        if not await pod_metrics_supported(self.client):
            log.info("the API server has no PodMetrics; --pod-metrics skipped")
            return
        while True:
            await self.publish_metrics()
            await self.clock.sleep(self.cfg.pod_metrics_interval)

    # --- lifecycle --------------------------------------------------------------------

    async def run(self, on_registered: Callable[[], Awaitable[None]] | None = None) -> None:
        """Register, then heartbeat and run pods until cancelled."""
        node_task = self.node_informer.start()
        await self.register()
        if on_registered is not None:
            await on_registered()
        pod_task = self.pods.start()
        tasks = [node_task, pod_task,
                 asyncio.create_task(self._every(self.cfg.heartbeat_interval,
                                                 self._renew_lease, 0.0),
                                     name="simnodes-leases"),
                 asyncio.create_task(self._every(self.cfg.status_interval,
                                                 self._refresh_status,
                                                 self.cfg.status_interval * 0.1),
                                     name="simnodes-status")]
        tasks += [asyncio.create_task(self._worker(), name=f"simnodes-pods-{i}")
                  for i in range(self.cfg.concurrency)]
        if self.cfg.pod_metrics:
            tasks.append(asyncio.create_task(self._metrics_loop(), name="simnodes-metrics"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
