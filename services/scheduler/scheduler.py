"""The scheduler's loop, kube-scheduler's ``scheduleOne``::

    informers ──▶ queue (pending pods of this schedulerName) and cache (nodes, bound pods)
    loop: pop ─▶ cycle (algorithm.schedule over the cache) ─┬─ node ─▶ assume in cache
                                                           │          ─▶ bind task (async)
                                                           └─ none ─▶ preemption?
                                                              FailedScheduling event,
                                                              PodScheduled=False, requeue

Contracts:
- The cycle is synchronous (no await between reading the cache and assuming the pod), so
  the next cycle always sees the previous pod's resources.
- Binds run as tasks, at most ``bind_concurrency`` at once; a failed bind forgets the
  assumed pod and sends it to backoff.
- Never mutates objects from the informer cache: status writes go on copies.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from navarch._clock import Clock, RealClock
from navarch._errors import ApiError, Conflict, NotFound
from navarch._events import NORMAL, WARNING, EventRecorder
from navarch._informer import InformerFactory
from navarch._pods import set_condition
from navarch.v1 import core_pb2

from . import queue as q
from .algorithm import Algorithm, FitError
from .cache import SchedulerCache
from .framework import CycleState, PodInfo, pod_key
from .plugins import default_filters, default_scorers
from .preemption import eligible, preempt

__all__ = ["Scheduler", "SchedulerOptions"]

log = structlog.get_logger("navarch.scheduler")


@dataclass(frozen=True)
class SchedulerOptions:
    """Settings of one scheduler (``navarch scheduler`` flags)."""

    scheduler_name: str = "default-scheduler"
    percentage_of_nodes_to_score: int = 0  # 0: Kubernetes' adaptive default
    bind_concurrency: int = 256  # store commits take ~0.3 s: throughput needs many in flight
    preemption: bool = True


def _copy(pod: core_pb2.Pod) -> core_pb2.Pod:
    c = core_pb2.Pod()
    c.CopyFrom(pod)
    return c


def _node_changed(old: core_pb2.Node, new: core_pb2.Node) -> bool:
    """Whether a node update may let an unschedulable pod fit."""
    return (old.spec != new.spec or old.metadata.labels != new.metadata.labels
            or old.status.allocatable != new.status.allocatable)


class Scheduler:
    """Places pending pods of one schedulerName onto nodes."""

    def __init__(self, client: Any, options: SchedulerOptions | None = None, *,
                 clock: Clock | None = None, recorder: EventRecorder | None = None,
                 algorithm: Algorithm | None = None) -> None:
        self.client = client
        self.options = options or SchedulerOptions()
        self.clock: Clock = clock or RealClock()
        self.recorder = recorder or EventRecorder(client, self.options.scheduler_name,
                                                  clock=self.clock)
        self.cache = SchedulerCache()
        self.queue = q.SchedulingQueue(self.clock)
        self.algorithm = algorithm or Algorithm(
            default_filters(), default_scorers(),
            percentage_of_nodes_to_score=self.options.percentage_of_nodes_to_score)
        self.informers = InformerFactory(client)
        self.pods = self.informers.informer("pods", "")
        self.nodes = self.informers.informer("nodes", "")
        self.budgets = self.informers.informer("poddisruptionbudgets", "")
        self.bound = 0
        # Pending pods with status.nominatedNodeName, by node: room held for them.
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}
        self._binding = asyncio.Semaphore(self.options.bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- informer handlers ------------------------------------------------------------------

    def responsible(self, pod: core_pb2.Pod) -> bool:
        """Whether this scheduler should place ``pod``: its schedulerName, no node yet,
        not being deleted."""
        return (pod.spec.scheduler_name or "default-scheduler") == (
            self.options.scheduler_name) and not pod.spec.node_name and not (
            pod.metadata.HasField("deletion_timestamp"))

    async def setup(self) -> None:
        """Register the informer handlers."""
        await self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)
        await self.nodes.add_handlers(self._node_added, self._node_updated,
                                      self._node_deleted)

    def _track_nomination(self, pod: core_pb2.Pod | None, key: str) -> None:
        old = self._nominated_node.pop(key, None)
        if old is not None:
            held = self.nominated.get(old, {})
            held.pop(key, None)
            if not held:
                self.nominated.pop(old, None)
        if pod is not None and not pod.spec.node_name and pod.status.nominated_node_name:
            node = pod.status.nominated_node_name
            self._nominated_node[key] = node
            self.nominated.setdefault(node, {})[key] = PodInfo.of(pod)

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        self._track_nomination(pod, pod_key(pod))
        if pod.spec.node_name:
            self.cache.add_pod(pod)
            self.queue.move_all(q.ASSIGNED_POD_ADD)
        elif self.responsible(pod):
            self.queue.add(pod)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        key = pod_key(new)
        if old.status.nominated_node_name or new.status.nominated_node_name:
            self._track_nomination(new, key)
        if new.spec.node_name:
            if not old.spec.node_name:
                self.queue.delete(key)  # bound (by us or by anyone)
                self.cache.add_pod(new)
                self.queue.move_all(q.ASSIGNED_POD_ADD)
            else:
                self.cache.update_pod(new)
                if old.metadata.labels != new.metadata.labels or (
                        new.status.phase != old.status.phase):
                    self.queue.move_all(q.ASSIGNED_POD_UPDATE)
                if new.status.phase in ("Succeeded", "Failed"):
                    self.queue.move_all(q.ASSIGNED_POD_DELETE)
        elif self.responsible(new):
            self.queue.update(new)
        else:
            self.queue.delete(key)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        key = pod_key(pod)
        self._track_nomination(None, key)
        if pod.spec.node_name or self.cache.is_assumed(key):
            self.cache.remove_pod(key)
            self.queue.move_all(q.ASSIGNED_POD_DELETE)
        self.queue.delete(key)

    def _node_added(self, node: core_pb2.Node) -> None:
        self.cache.add_node(node)
        self.queue.move_all(q.NODE_ADD)

    def _node_updated(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self.queue.move_all(q.NODE_UPDATE)

    def _node_deleted(self, node: core_pb2.Node) -> None:
        self.cache.remove_node(node.metadata.name)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Start informers, wait for them, schedule until cancelled."""
        await self.setup()
        self.informers.start()
        flusher = asyncio.create_task(self.queue.run(), name="scheduler-queue-flush")
        try:
            await self.informers.wait_synced()
            log.info("scheduler caches synced", nodes=len(self.cache.node_list()),
                     pending=len(self.queue))
            while True:
                await self.schedule_one()
        finally:
            flusher.cancel()
            for task in list(self._tasks):
                task.cancel()
            await self.informers.stop()
            await self.recorder.stop()

    async def schedule_one(self) -> None:
        """Pop one pod and run its cycle."""
        queued = await self.queue.pop()
        await self._binding.acquire()  # bounds binds (and status writes) in flight
        try:
            self.cycle(queued)
        finally:
            self._binding.release()
        await asyncio.sleep(0)  # let informers and binds run between cycles

    def cycle(self, queued: q.QueuedPod) -> str:
        """One scheduling cycle; the node chosen ("" when none). Binding is started as a
        task; everything else happens before returning."""
        pod = queued.pod
        key = queued.key
        cycle = self.queue.scheduling_cycle
        if not self.responsible(pod) or self.cache.is_assumed(key):
            self.queue.done(key)
            return ""
        info = PodInfo.of(pod)
        nodes = self.cache.node_list()
        state = self.cache.cycle_state()
        state["nominated"] = self.nominated
        result = self.algorithm.schedule(info, nodes, state)
        if isinstance(result, FitError):
            self._unschedulable(queued, info, result, state, cycle)
            return ""
        self.cache.assume(info, result.node)
        self._spawn(self._bind(queued, info, result.node))
        return result.node

    def _unschedulable(self, queued: q.QueuedPod, info: PodInfo, error: FitError,
                       state: CycleState, cycle: int) -> None:
        post = ""
        if self.options.preemption and error.statuses and eligible(info, self.cache.nodes):
            filters = self.algorithm.pre_filter(state, info, self.cache.node_list())
            decision = preempt(filters, state, info, self.cache.nodes, error.statuses,
                               self.budgets.list())
            if decision.candidate is not None:
                self._spawn(self._preempt(info, decision.candidate.node,
                                          decision.candidate.victims))
            post = decision.message
        message = error.message(post)
        plugins = {s.plugin for s in error.statuses.values()}
        self.recorder.event(queued.pod, WARNING, "FailedScheduling", message)
        self._spawn(self._set_condition(queued.pod, message))
        self.queue.add_unschedulable(queued, cycle, plugins)

    # --- API writes (tasks) -----------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, queued: q.QueuedPod, info: PodInfo, node: str) -> None:
        pod = queued.pod
        ns, name = pod.metadata.namespace, pod.metadata.name
        async with self._binding:
            try:
                await self.client.bind(ns, name, node)
            except (NotFound, Conflict) as exc:
                # Gone, or bound by someone else: the informer tells the rest.
                self.cache.forget(info.key)
                self.queue.done(info.key)
                log.info("binding dropped", pod=info.key, node=node, error=str(exc))
                return
            except (ApiError, OSError) as exc:
                self.cache.forget(info.key)
                self.recorder.event(pod, WARNING, "FailedScheduling",
                                    f"Binding rejected: {exc}")
                self.queue.add_backoff(queued)
                return
        self.bound += 1
        self.queue.done(info.key)
        self.recorder.event(pod, NORMAL, "Scheduled",
                            f"Successfully assigned {ns}/{name} to {node}")

    async def _set_condition(self, pod: core_pb2.Pod, message: str) -> None:
        """PodScheduled=False/Unschedulable with ``message`` (skipped when unchanged)."""
        for c in pod.status.conditions:
            if c.type == "PodScheduled" and c.status == "False" and c.message == message:
                return
        new = _copy(pod)
        set_condition(new, "PodScheduled", "False", self.clock.now(), "Unschedulable", message)
        async with self._binding:
            with contextlib.suppress(ApiError):
                await self.client.pods(pod.metadata.namespace).update_status(new)

    async def _preempt(self, preemptor: PodInfo, node: str,
                       victims: tuple[PodInfo, ...]) -> None:
        """Delete the victims with their grace period; nominate ``node`` for the
        preemptor."""
        async with self._binding:
            for victim in victims:
                pod = victim.pod
                grace = (pod.spec.termination_grace_period_seconds
                         if pod.spec.HasField("termination_grace_period_seconds") else None)
                self.recorder.event(pod, NORMAL, "Preempted",
                                    f"Preempted by pod {preemptor.pod.metadata.uid} on node "
                                    f"{node}")
                await self._mark_disruption(pod)
                with contextlib.suppress(NotFound):
                    await self.client.pods(pod.metadata.namespace).delete(
                        pod.metadata.name, grace_period_seconds=grace,
                        uid=pod.metadata.uid)
            current = self.pods.get(preemptor.pod.metadata.name,
                                    preemptor.pod.metadata.namespace)
            if current is None:
                return
            new = _copy(current)
            new.status.nominated_node_name = node
            with contextlib.suppress(ApiError):
                await self.client.pods(new.metadata.namespace).update_status(new)

    async def _mark_disruption(self, pod: core_pb2.Pod) -> None:
        """The DisruptionTarget condition kube-scheduler sets on a victim before deleting
        it, so that its Job's podFailurePolicy can tell a preemption from a failure."""
        new = _copy(pod)
        set_condition(new, "DisruptionTarget", "True", self.clock.now(), "PreemptionByScheduler",
                      f"{self.options.scheduler_name}: preempting to accommodate a higher "
                      "priority pod")
        with contextlib.suppress(ApiError):
            await self.client.pods(pod.metadata.namespace).update_status(new)

    async def drain(self) -> None:
        """Wait for every bind, status write and deletion started so far (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
