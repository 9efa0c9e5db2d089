"""The scheduling queue, kube-scheduler's PriorityQueue: three places a pending pod waits.

    add ──▶ activeQ (heap: priority desc, then time queued) ──pop──▶ scheduling cycle
               ▲                          ▲                              │ failed
               │ backoff over             │ cluster event that may help  ▼
           backoffQ (1s·2^(attempts-1), ≤10s) ◀── unschedulablePods (or 60 s passed)

Contracts:
- Keys are ``namespace/name``; one entry per pod across the three places.
- Cluster events move unschedulable pods only when the event concerns a plugin that
  rejected them (``unschedulable_plugins``; an empty set means any event).
- If an event arrives while a pod is being scheduled, a failure of that cycle sends the
  pod to backoff instead of unschedulablePods (the move-request cycle), so it is not
  stranded by a change it could not see.
- Time comes from the injected Clock; ``flush()`` does the periodic moves and ``run()``
  calls it every second.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

from navarch._clock import Clock, RealClock
from navarch.v1 import core_pb2

from .framework import pod_key, pod_priority

__all__ = [
    "ASSIGNED_POD_ADD", "ASSIGNED_POD_DELETE", "ASSIGNED_POD_UPDATE", "NODE_ADD",
    "NODE_UPDATE", "QueuedPod", "SchedulingQueue",
]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_TIMEOUT = 60.0

# Cluster events and the plugins whose verdict they may change (None: every plugin).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
EVENT_PLUGINS: dict[str, frozenset[str] | None] = {
    NODE_ADD: None,
    NODE_UPDATE: None,
    ASSIGNED_POD_ADD: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    ASSIGNED_POD_UPDATE: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    ASSIGNED_POD_DELETE: frozenset({"NodeResourcesFit", "NodePorts", "InterPodAffinity",
                                    "PodTopologySpread"}),
}


@dataclass
class QueuedPod:
    """A pending pod and its scheduling history."""

    pod: core_pb2.Pod
    timestamp: float  # when it last entered the queue
    attempts: int = 0
    initial_attempt: float = 0.0
    unschedulable_plugins: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return pod_key(self.pod)


class SchedulingQueue:
    """activeQ, backoffQ and unschedulablePods."""

    def __init__(self, clock: Clock | None = None, *, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF,
                 unschedulable_timeout: float = UNSCHEDULABLE_TIMEOUT) -> None:
        self.clock: Clock = clock or RealClock()
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._active_keys: set[str] = set()
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_keys: set[str] = set()
        self.unschedulable: dict[str, float] = {}  # key → when it became unschedulable
        self.in_flight: set[str] = set()
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self.closed = False

    # --- sizes ------------------------------------------------------------------------------

    @property
    def active_count(self) -> int:
        """Pods ready to be scheduled."""
        return len(self._active_keys)

    @property
    def backoff_count(self) -> int:
        """Pods waiting out a backoff."""
        return len(self._backoff_keys)

    @property
    def unschedulable_count(self) -> int:
        """Pods waiting for a cluster event."""
        return len(self.unschedulable)

    def __len__(self) -> int:
        return len(self.pods)

    # --- informer side ----------------------------------------------------------------------

    def add(self, pod: core_pb2.Pod) -> None:
        """A new pending pod: to activeQ (or an update if already queued)."""
        key = pod_key(pod)
        if key in self.pods:
            self.update(pod)
            return
        now = self.clock.monotonic()
        self.pods[key] = QueuedPod(pod, now, initial_attempt=now)
        self._push_active(key)

    def update(self, pod: core_pb2.Pod) -> None:
        """A queued pod changed: keep the newest object; an unschedulable one may now fit,
        so it moves (to backoff if its backoff has not passed)."""
        key = pod_key(pod)
        queued = self.pods.get(key)
        if queued is None:
            if key not in self.in_flight:
                self.add(pod)
            return
        old = queued.pod
        queued.pod = pod
        if key in self.unschedulable and (
                old.spec != pod.spec or old.metadata.labels != pod.metadata.labels):
            del self.unschedulable[key]
            self._requeue(queued)

    def delete(self, key: str) -> None:
        """The pod is gone or no longer pending: drop it everywhere."""
        self.pods.pop(key, None)
        self._active_keys.discard(key)
        self._backoff_keys.discard(key)
        self.unschedulable.pop(key, None)

    def move_all(self, event: str) -> int:
        """A cluster event: unschedulable pods a plugin of ``event`` rejected move to
        activeQ (or backoffQ); how many moved."""
        plugins = EVENT_PLUGINS.get(event)
        moved = 0
        for key in list(self.unschedulable):
            queued = self.pods.get(key)
            if queued is None:
                del self.unschedulable[key]
                continue
            if plugins is not None and queued.unschedulable_plugins and not (
                    queued.unschedulable_plugins & plugins):
                continue
            del self.unschedulable[key]
            self._requeue(queued)
            moved += 1
        self.move_request_cycle = self.scheduling_cycle
        return moved

    # --- scheduler side ---------------------------------------------------------------------

    async def pop(self) -> QueuedPod:
        """The highest-priority, oldest active pod; waits while activeQ is empty."""
        while True:
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if key not in self._active_keys:
                    continue  # stale heap entry
                self._active_keys.discard(key)
                queued = self.pods.get(key)
                if queued is None:
                    continue
                queued.attempts += 1
                self.scheduling_cycle += 1
                self.in_flight.add(key)
                return queued
            if self.closed:
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The cycle of ``key`` finished (scheduled: the pod leaves the queue)."""
        self.in_flight.discard(key)
        self.pods.pop(key, None)

    def add_unschedulable(self, queued: QueuedPod, cycle: int,
                          plugins: set[str] | None = None) -> None:
        """The cycle ``cycle`` found no node: wait for an event, or back off if one came
        during the cycle."""
        key = queued.key
        self.in_flight.discard(key)
        if key not in self.pods:
            return  # deleted meanwhile
        queued.unschedulable_plugins = set(plugins or ())
        queued.timestamp = self.clock.monotonic()
        if self.move_request_cycle >= cycle:
            self._push_backoff(queued)
        else:
            self.unschedulable[key] = queued.timestamp

    def add_backoff(self, queued: QueuedPod) -> None:
        """An error (not a verdict) ended the cycle: retry after the pod's backoff."""
        self.in_flight.discard(queued.key)
        if queued.key in self.pods:
            queued.timestamp = self.clock.monotonic()
            self._push_backoff(queued)

    def backoff_duration(self, queued: QueuedPod) -> float:
        """1 s doubled per failed attempt, at most 10 s."""
        exponent = max(queued.attempts - 1, 0)
        return float(min(self.initial_backoff * 2 ** min(exponent, 32), self.max_backoff))

    def flush(self) -> None:
        """Backed-off pods whose time came → activeQ; pods unschedulable for 60 s → moved."""
        now = self.clock.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if key in self._backoff_keys:
                self._backoff_keys.discard(key)
                self._push_active(key)
        for key, since in list(self.unschedulable.items()):
            if now - since >= self.unschedulable_timeout:
                del self.unschedulable[key]
                queued = self.pods.get(key)
                if queued is not None:
                    self._requeue(queued)

    async def run(self, period: float = 1.0) -> None:
        """Call ``flush`` every ``period`` seconds of the clock, until cancelled."""
        while True:
            await self.clock.sleep(period)
            self.flush()

    def close(self) -> None:
        """Wake ``pop`` waiters with CancelledError once activeQ is empty."""
        self.closed = True
        self._wakeup.set()

    # --- internals --------------------------------------------------------------------------

    def _requeue(self, queued: QueuedPod) -> None:
        if self.clock.monotonic() < queued.timestamp + self.backoff_duration(queued):
            self._push_backoff(queued)
        else:
            self._push_active(queued.key)

    def _push_active(self, key: str) -> None:
        queued = self.pods[key]
        self._backoff_keys.discard(key)
        if key in self._active_keys:
            return
        self._active_keys.add(key)
        heapq.heappush(self._active, (-pod_priority(queued.pod), queued.timestamp,
                                      next(self._seq), key))
        self._wakeup.set()

    def _push_backoff(self, queued: QueuedPod) -> None:
        key = queued.key
        if key in self._active_keys or key in self._backoff_keys:
            return
        self._backoff_keys.add(key)
        ready = queued.timestamp + self.backoff_duration(queued)
        heapq.heappush(self._backoff, (ready, next(self._seq), key))
