"""Small pure helpers shared by the workload controllers (Job, CronJob, DaemonSet,
StatefulSet): pod state, owner references, template hashes, timestamps, and the
expectations that keep a controller from acting twice on a stale cache.

Contracts: every function here is pure and never mutates its arguments, except
:class:`Expectations`, which is the controller's own bookkeeping.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from navarch._clock import rfc3339 as fmt_time
from navarch._labels import SelectorError, label_selector
from navarch._workqueue import WorkQueue
from navarch.v1 import core_pb2, meta_pb2

__all__ = [
    "OWNER_INDEX",
    "REVISION_LABEL",
    "Expectations",
    "OwnedPodEvents",
    "PodCounts",
    "controller_ref",
    "controller_ref_of",
    "count_pods",
    "fmt_time",
    "int_or_percent",
    "is_pod_active",
    "is_pod_available",
    "is_pod_ready",
    "is_pod_terminating",
    "owner_key",
    "pod_finish_time",
    "pod_ready_since",
    "seconds",
    "selector_selects",
    "template_hash",
    "timestamp",
]

REVISION_LABEL = "controller-revision-hash"
# the informer index (name) of objects by their controller's uid (framework.owner_uids)
OWNER_INDEX = "controller-uid"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for names made from hashes


def seconds(ts: Timestamp) -> float:
    """A Timestamp as seconds since the epoch (0 when unset)."""
    return ts.seconds + ts.nanos / 1e9


def timestamp(when: float) -> Timestamp:
    """Seconds since the epoch as a Timestamp, truncated to the second (as the API stores
    times)."""
    ts = Timestamp()
    ts.FromSeconds(int(when))
    return ts


def is_pod_terminating(pod: core_pb2.Pod) -> bool:
    """The pod has a deletionTimestamp (it is going away)."""
    return pod.metadata.HasField("deletion_timestamp")


def is_pod_active(pod: core_pb2.Pod) -> bool:
    """Pending or running, and not terminating (Kubernetes' ``IsPodActive``)."""
    return (pod.status.phase not in ("Succeeded", "Failed")
            and not is_pod_terminating(pod))


def _ready_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for cond in pod.status.conditions:
        if cond.type == "Ready":
            return cond
    return None


def is_pod_ready(pod: core_pb2.Pod) -> bool:
    """The pod's Ready condition is True."""
    cond = _ready_condition(pod)
    return cond is not None and cond.status == "True"


def pod_ready_since(pod: core_pb2.Pod) -> float:
    """When the Ready condition last became True (0 when unknown)."""
    cond = _ready_condition(pod)
    return seconds(cond.last_transition_time) if cond is not None else 0.0


def is_pod_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (a pod without a transition time counts as
    ready since forever)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_since(pod)
    return since == 0.0 or since + min_ready_seconds <= now


def pod_finish_time(pod: core_pb2.Pod) -> float:
    """When a finished pod finished: the latest container termination, else the last
    condition transition, else its creation."""
    finished = [seconds(s.state.terminated.finished_at)
                for s in [*pod.status.init_container_statuses, *pod.status.container_statuses]
                if s.state.HasField("terminated")]
    finished = [t for t in finished if t > 0]
    if finished:
        return max(finished)
    transitions = [seconds(c.last_transition_time) for c in pod.status.conditions]
    transitions = [t for t in transitions if t > 0]
    if transitions:
        return max(transitions)
    return seconds(pod.metadata.creation_timestamp)


@dataclass(frozen=True)
class PodCounts:
    """Pods of a controller by state."""

    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0


def count_pods(pods: list[core_pb2.Pod]) -> PodCounts:
    """How many of ``pods`` are active, ready (and active), succeeded, failed, terminating."""
    active = [p for p in pods if is_pod_active(p)]
    return PodCounts(
        active=len(active), ready=sum(1 for p in active if is_pod_ready(p)),
        succeeded=sum(1 for p in pods if p.status.phase == "Succeeded"),
        failed=sum(1 for p in pods if p.status.phase == "Failed"),
        terminating=sum(1 for p in pods if is_pod_terminating(p)
                        and p.status.phase not in ("Succeeded", "Failed")))


def int_or_percent(value: str, total: int, *, round_up: bool, default: int = 0) -> int:
    """An IntOrString such as maxSurge ("2", "25%") resolved against ``total``;
    percentages rounded up or down as the caller's Kubernetes rule says; ``default`` when
    unset."""
    text = value.strip()
    if not text:
        return default
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def selector_selects(selector: meta_pb2.LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether a workload's selector selects ``labels``: an invalid or empty selector
    selects nothing (Kubernetes' controllers never adopt with one)."""
    try:
        expr = label_selector(selector)
    except SelectorError:
        return False
    return not expr.empty and expr.matches(dict(labels))


def controller_ref(owner: Message, kind: str, api_version: str) -> meta_pb2.OwnerReference:
    """The controller owner reference a controller puts on what it creates for ``owner``."""
    meta = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(api_version=api_version, kind=kind, name=meta.name,
                                   uid=meta.uid, controller=True, block_owner_deletion=True)


def controller_ref_of(obj: Message) -> meta_pb2.OwnerReference | None:
    """``obj``'s controller owner reference, if any."""
    for ref in obj.metadata.owner_references:  # type: ignore[attr-defined]
        if ref.controller:
            return ref  # type: ignore[no-any-return]
    return None


def owner_key(obj: Message, kind: str) -> str | None:
    """``namespace/name`` of ``obj``'s controller when it is a ``kind``, else None (the
    queue key of the owner an informer event concerns)."""
    ref = controller_ref_of(obj)
    if ref is None or ref.kind != kind:
        return None
    return f"{obj.metadata.namespace}/{ref.name}"  # type: ignore[attr-defined]


def template_hash(template: Message, collision_count: int = 0) -> str:
    """A stable short hash of a pod template (the controller-revision-hash): the same
    template always gives the same value, in every process."""
    data = template.SerializeToString(deterministic=True)
    digest = hashlib.sha256(data + str(collision_count).encode()).digest()
    value = int.from_bytes(digest[:8], "big")
    out = []
    for _ in range(10):
        value, rem = divmod(value, len(_SAFE))
        out.append(_SAFE[rem])
    return "".join(out)


@dataclass
class _Expected:
    adds: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """The creations and deletions a controller made and its cache has not yet shown
    (client-go's ControllerExpectations, by pod name).

    A controller records what it wrote (``expect``); its pod handlers report what the
    cache saw (``observed_add``/``observed_delete``); while anything is outstanding,
    ``satisfied`` is False and the controller must not create or delete more (its cache
    is stale). Outstanding expectations expire after ``ttl`` seconds, as in Kubernetes.
    Not thread-safe: use from the event loop only.
    """

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._by_key: dict[str, _Expected] = {}

    def expect(self, key: str, now: float, adds: Iterable[str] = (),
               deletes: Iterable[str] = ()) -> None:
        """Record names created and deleted for ``key`` (merged with what is outstanding)."""
        adds, deletes = list(adds), list(deletes)
        if not adds and not deletes:
            return
        exp = self._by_key.setdefault(key, _Expected(since=now))
        if not exp.adds and not exp.deletes:
            exp.since = now
        exp.adds.update(adds)
        exp.deletes.update(deletes)

    def observed_add(self, key: str, name: str) -> None:
        """The cache now holds ``name``."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds.discard(name)

    def observed_delete(self, key: str, name: str) -> None:
        """The cache saw ``name`` deleted or terminating."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(name)
            exp.adds.discard(name)

    def lower(self, key: str, adds: Iterable[str] = (), deletes: Iterable[str] = ()) -> None:
        """Forget expectations of writes that failed."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.adds.difference_update(adds)
            exp.deletes.difference_update(deletes)

    def satisfied(self, key: str, now: float) -> bool:
        """Nothing outstanding for ``key`` (or it has expired)."""
        exp = self._by_key.get(key)
        if exp is None or (not exp.adds and not exp.deletes):
            return True
        if now - exp.since >= self.ttl:
            self._by_key.pop(key, None)
            return True
        return False

    def forget(self, key: str) -> None:
        """Drop everything recorded for ``key`` (its owner was deleted)."""
        self._by_key.pop(key, None)


class OwnedPodEvents:
    """Pod informer handlers of a controller of ``kind``: each event settles the owning
    object's expectations (a pod seen, a pod gone or terminating) and queues its key;
    a pod whose owner changed queues the old owner too. They return the owner's key
    (None for pods of other owners) so that a controller can do more with it."""

    def __init__(self, kind: str, queue: WorkQueue[str], expectations: Expectations) -> None:
        self.kind = kind
        self.queue = queue
        self.expectations = expectations

    def added(self, pod: core_pb2.Pod) -> str | None:
        """A pod appeared in the cache."""
        key = owner_key(pod, self.kind)
        if key is not None:
            self.expectations.observed_add(key, pod.metadata.name)
            if is_pod_terminating(pod):
                self.expectations.observed_delete(key, pod.metadata.name)
            self.queue.add(key)
        return key

    def updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> str | None:
        """A cached pod changed."""
        key = owner_key(new, self.kind)
        if key is not None:
            if is_pod_terminating(new):
                self.expectations.observed_delete(key, new.metadata.name)
            self.queue.add(key)
        old_key = owner_key(old, self.kind)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        return key

    def deleted(self, pod: core_pb2.Pod) -> str | None:
        """A pod left the cache."""
        key = owner_key(pod, self.kind)
        if key is not None:
            self.expectations.observed_delete(key, pod.metadata.name)
            self.queue.add(key)
        return key
