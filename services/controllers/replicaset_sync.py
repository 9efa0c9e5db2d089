"""The ReplicaSet controller's decisions, pure: which pods to adopt, release, create and
delete, and the status to report (Kubernetes' replica_set.go, in plain data).

Contracts: pure functions of (ReplicaSet, pods, now); nothing is mutated.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from navarch.v1 import apps_pb2, core_pb2

from .workloads import (
    controller_ref,
    controller_ref_of,
    is_pod_available,
    is_pod_ready,
    is_pod_terminating,
    pod_ready_since,
    seconds,
    selector_selects,
)

__all__ = ["BURST_REPLICAS", "ReplicaSetPlan", "deletion_rank", "new_pod", "plan_replicaset",
           "replicaset_status", "selects", "slow_start_batches"]

BURST_REPLICAS = 500  # at most this many creations or deletions per sync (Kubernetes')
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ReplicaSetPlan:
    """What one sync does for one ReplicaSet."""

    adopt: tuple[str, ...] = ()  # orphan pods matching the selector: take ownership
    release: tuple[str, ...] = ()  # owned pods no longer matching: drop the owner reference
    create: int = 0
    delete: tuple[str, ...] = ()  # victims, most deletable first
    owned: tuple[core_pb2.Pod, ...] = field(default=(), repr=False)  # after adopt/release


def _phase_rank(pod: core_pb2.Pod) -> int:
    return {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.status.phase, 0)


def deletion_rank(pod: core_pb2.Pod) -> tuple[float, ...]:
    """Sort key: pods that should go first sort first (Kubernetes' ActivePods order):
    unassigned before assigned, Pending before Unknown before Running, not ready before
    ready, ready for less time before more, more restarts before fewer, newer before
    older."""
    restarts = sum(s.restart_count for s in pod.status.container_statuses)
    ready = is_pod_ready(pod)
    return (1.0 if pod.spec.node_name else 0.0, float(_phase_rank(pod)),
            1.0 if ready else 0.0, -pod_ready_since(pod) if ready else 0.0,
            -float(restarts), -seconds(pod.metadata.creation_timestamp))


def selects(rs: apps_pb2.ReplicaSet, pod: core_pb2.Pod) -> bool:
    """Whether ``rs``'s (valid, non-empty) selector selects ``pod``."""
    return selector_selects(rs.spec.selector, pod.metadata.labels)


def plan_replicaset(rs: apps_pb2.ReplicaSet, pods: list[core_pb2.Pod], *,
                    may_scale: bool = True) -> ReplicaSetPlan:
    """The plan for ``rs`` given every pod of its namespace. ``may_scale`` is False while
    earlier creations/deletions are not yet in the cache (expectations): then only
    ownership changes and status are computed."""
    uid = rs.metadata.uid
    deleting = rs.metadata.HasField("deletion_timestamp")
    adopt: list[str] = []
    release: list[str] = []
    owned: list[core_pb2.Pod] = []
    for pod in pods:
        ref = controller_ref_of(pod)
        matches = selects(rs, pod)
        if ref is not None and ref.uid == uid:
            if matches:
                owned.append(pod)
            elif not is_pod_terminating(pod):
                release.append(pod.metadata.name)
        elif ref is None and matches and not deleting and not is_pod_terminating(pod) \
                and pod.status.phase not in ("Succeeded", "Failed"):
            adopt.append(pod.metadata.name)
            owned.append(pod)
    active = [p for p in owned if not is_pod_terminating(p)
              and p.status.phase not in ("Succeeded", "Failed")]
    create = 0
    delete: tuple[str, ...] = ()
    if may_scale and not deleting:
        want = rs.spec.replicas if rs.spec.HasField("replicas") else 1
        diff = len(active) - want
        if diff < 0:
            create = min(-diff, BURST_REPLICAS)
        elif diff > 0:
            victims = sorted(active, key=deletion_rank)[:min(diff, BURST_REPLICAS)]
            delete = tuple(p.metadata.name for p in victims)
    return ReplicaSetPlan(tuple(adopt), tuple(release), create, delete, tuple(owned))


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, … summing to ``count`` (a failing batch stops the rest, so a
    broken template costs one failed create, not hundreds)."""
    batches, size = [], initial
    while count > 0:
        batches.append(min(size, count))
        count -= batches[-1]
        size *= 2
    return batches


def new_pod(rs: apps_pb2.ReplicaSet) -> core_pb2.Pod:
    """A pod from ``rs``'s template, owned by it, named ``<rs>-<5 characters>`` here (not by
    the server) so that expectations can name it before it is created."""
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    template = rs.spec.template
    meta = pod.metadata
    meta.labels.update(template.metadata.labels)
    meta.annotations.update(template.metadata.annotations)
    meta.finalizers.extend(template.metadata.finalizers)
    meta.namespace = rs.metadata.namespace
    base = rs.metadata.name[:57]
    meta.generate_name = f"{base}-"
    meta.name = f"{base}-" + "".join(secrets.choice(_ALNUM) for _ in range(5))
    meta.owner_references.append(controller_ref(rs, "ReplicaSet", "apps/v1"))
    pod.spec.CopyFrom(template.spec)
    return pod


def replicaset_status(rs: apps_pb2.ReplicaSet, owned: list[core_pb2.Pod], now: float,
                      failure: str = "") -> apps_pb2.ReplicaSetStatus:
    """The status ``rs`` should report given its pods (terminating ones do not count);
    ``failure`` (a create/delete error) sets the ReplicaFailure condition."""
    active = [p for p in owned if not is_pod_terminating(p)
              and p.status.phase not in ("Succeeded", "Failed")]
    template_labels = dict(rs.spec.template.metadata.labels)
    status = apps_pb2.ReplicaSetStatus()
    status.replicas = len(active)
    status.fully_labeled_replicas = sum(
        1 for p in active if all(p.metadata.labels.get(k) == v
                                 for k, v in template_labels.items()))
    status.ready_replicas = sum(1 for p in active if is_pod_ready(p))
    status.available_replicas = sum(
        1 for p in active if is_pod_available(p, rs.spec.min_ready_seconds, now))
    status.observed_generation = rs.metadata.generation
    kept = [c for c in rs.status.conditions if c.type != "ReplicaFailure"]
    for c in kept:
        status.conditions.add().CopyFrom(c)
    if failure:
        previous = next((c for c in rs.status.conditions if c.type == "ReplicaFailure"),
                        None)
        cond = status.conditions.add()
        cond.type, cond.status = "ReplicaFailure", "True"
        cond.reason = "FailedCreate" if "creat" in failure.lower() else "FailedDelete"
        cond.message = failure
        if previous is not None and previous.message == failure:
            cond.last_transition_time.CopyFrom(previous.last_transition_time)
        else:
            cond.last_transition_time.FromSeconds(int(now))
    return status
