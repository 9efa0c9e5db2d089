"""The StatefulSet controller's decisions: which ordinals to create (and their claims),
which pods to delete, and the status to write (Kubernetes' ``updateStatefulSet``), as
plain data.

Rules:

- Pod ``i`` is named ``<set>-<i>`` for i in [start, start + replicas); it gets hostname
  ``<set>-<i>``, subdomain ``spec.serviceName``, the labels
  ``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``, and one
  volume per volumeClaimTemplate bound to the claim ``<template>-<set>-<i>``, which is
  created before the pod and never deleted on scale-down.
- OrderedReady: pods are created in ascending order, each only once every lower one is
  Running and Ready; scale-down deletes from the highest ordinal, one at a time, and only
  while every pod is healthy. Parallel: all missing pods are created and all condemned
  ones deleted at once. A failed or succeeded pod is deleted to be recreated.
- RollingUpdate: from the highest ordinal down to ``partition``, the first pod not at the
  update revision is deleted (it comes back at the update revision), waiting for each
  updated pod to be healthy. Ordinals below the partition are (re)created at the current
  revision. OnDelete: pods are replaced only when deleted by hand.
- Status counts the pods seen; ``currentRevision`` becomes ``updateRevision`` once every
  pod is updated and ready (RollingUpdate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from navarch.v1 import apps_pb2, core_pb2

from .workloads import (
    REVISION_LABEL,
    controller_ref,
    is_pod_available,
    is_pod_ready,
    is_pod_terminating,
    pod_ready_since,
)

__all__ = [
    "POD_INDEX_LABEL", "POD_NAME_LABEL", "NewPod", "StatefulSetPlan", "claim_name",
    "new_claim", "new_stateful_pod", "ordinal_of", "plan_statefulset",
]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


@dataclass(frozen=True)
class NewPod:
    """A pod to create: its ordinal and the revision (name) to make it from."""

    ordinal: int
    revision: str


@dataclass(frozen=True)
class StatefulSetPlan:
    """What to do for one StatefulSet, and its new status."""

    create: tuple[NewPod, ...] = ()
    claims: tuple[str, ...] = ()  # claim names to create (before the pods)
    delete: tuple[str, ...] = ()
    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0
    current_revision: str = ""
    update_revision: str = ""
    requeue_after: float | None = None
    waiting_for: str = field(default="")  # why nothing more happened (for logs/tests)


def ordinal_of(set_name: str, pod: core_pb2.Pod) -> int | None:
    """The ordinal of ``<set>-<i>``, None for a pod not named like a member."""
    match = re.fullmatch(re.escape(set_name) + r"-(\d+)", pod.metadata.name)
    return int(match.group(1)) if match else None


def claim_name(template: str, set_name: str, ordinal: int) -> str:
    """``<template>-<set>-<ordinal>``."""
    return f"{template}-{set_name}-{ordinal}"


def new_claim(sts: apps_pb2.StatefulSet, template: core_pb2.PersistentVolumeClaim,
              ordinal: int) -> core_pb2.PersistentVolumeClaim:
    """The claim of pod ``ordinal`` from ``template``; owned by the set only when the
    retention policy deletes claims with it."""
    claim = core_pb2.PersistentVolumeClaim(api_version="v1", kind="PersistentVolumeClaim")
    claim.metadata.name = claim_name(template.metadata.name, sts.metadata.name, ordinal)
    claim.metadata.namespace = sts.metadata.namespace
    claim.metadata.labels.update(template.metadata.labels)
    claim.metadata.labels.update(sts.spec.selector.match_labels)
    claim.metadata.annotations.update(template.metadata.annotations)
    claim.spec.CopyFrom(template.spec)
    if sts.spec.persistent_volume_claim_retention_policy.when_deleted == "Delete":
        ref = controller_ref(sts, "StatefulSet", "apps/v1")
        ref.controller = False
        claim.metadata.owner_references.append(ref)
    return claim


def new_stateful_pod(sts: apps_pb2.StatefulSet, template: core_pb2.PodTemplateSpec,
                     ordinal: int, revision: str) -> core_pb2.Pod:
    """Pod ``ordinal`` of ``sts`` made from ``template`` (the revision's template)."""
    name = f"{sts.metadata.name}-{ordinal}"
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name = name
    pod.metadata.namespace = sts.metadata.namespace
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.labels[POD_NAME_LABEL] = name
    pod.metadata.labels[POD_INDEX_LABEL] = str(ordinal)
    pod.metadata.labels[REVISION_LABEL] = revision
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.owner_references.append(controller_ref(sts, "StatefulSet", "apps/v1"))
    pod.spec.CopyFrom(template.spec)
    pod.spec.hostname = name
    if sts.spec.service_name:
        pod.spec.subdomain = sts.spec.service_name
    for tpl in sts.spec.volume_claim_templates:
        volume = next((v for v in pod.spec.volumes if v.name == tpl.metadata.name), None)
        if volume is None:
            volume = pod.spec.volumes.add(name=tpl.metadata.name)
        else:
            volume.Clear()
            volume.name = tpl.metadata.name
        volume.persistent_volume_claim.claim_name = claim_name(tpl.metadata.name,
                                                               sts.metadata.name, ordinal)
    return pod


def _revision(pod: core_pb2.Pod) -> str:
    return pod.metadata.labels.get(REVISION_LABEL, "")


def plan_statefulset(sts: apps_pb2.StatefulSet, pods: list[core_pb2.Pod],
                     claims: set[str], update_revision: str, current_revision: str,
                     now: float) -> StatefulSetPlan:
    """Decide what to do for ``sts`` owning ``pods``, with ``claims`` (names) existing."""
    spec = sts.spec
    name = sts.metadata.name
    replicas = spec.replicas if spec.HasField("replicas") else 1
    start = spec.ordinals.start
    min_ready = spec.min_ready_seconds
    monotonic = spec.pod_management_policy != "Parallel"
    rolling = spec.update_strategy.type in ("", "RollingUpdate")
    partition = (spec.update_strategy.rolling_update.partition
                 if spec.update_strategy.rolling_update.HasField("partition") else 0)
    current_revision = current_revision or update_revision

    slots: dict[int, core_pb2.Pod] = {}
    condemned: list[tuple[int, core_pb2.Pod]] = []
    for pod in pods:
        ordinal = ordinal_of(name, pod)
        if ordinal is None:
            continue
        if start <= ordinal < start + replicas:
            # two pods cannot share a name, but be safe: keep the first seen
            slots.setdefault(ordinal, pod)
        else:
            condemned.append((ordinal, pod))
    condemned.sort(key=lambda t: -t[0])

    def healthy(p: core_pb2.Pod) -> bool:
        return (p.status.phase == "Running" and not is_pod_terminating(p)
                and is_pod_available(p, min_ready, now))

    def revision_for(ordinal: int) -> str:
        # an unset partition counts as 0 (the API defaults it so)
        return current_revision if rolling and ordinal - start < partition else update_revision

    create: list[NewPod] = []
    delete: list[str] = []
    waiting = ""
    stopped = False
    for ordinal in range(start, start + replicas):
        member = slots.get(ordinal)
        if member is None:
            create.append(NewPod(ordinal, revision_for(ordinal)))
            if monotonic:
                stopped, waiting = True, f"creating {name}-{ordinal}"
                break
            continue
        if member.status.phase in ("Failed", "Succeeded") and not is_pod_terminating(member):
            delete.append(member.metadata.name)
            if monotonic:
                stopped, waiting = True, f"recreating {member.metadata.name}"
                break
            continue
        if monotonic and not healthy(member):
            stopped, waiting = True, f"{member.metadata.name} is not running and ready"
            break
    if not stopped:
        every = list(slots.values()) + [p for _, p in condemned]
        for _ordinal, pod in condemned:
            if is_pod_terminating(pod):
                if monotonic:
                    stopped, waiting = True, f"{pod.metadata.name} is terminating"
                    break
                continue
            if monotonic and any(not healthy(p) for p in every if p is not pod):
                stopped, waiting = True, "waiting for every pod to be healthy to scale down"
                break
            delete.append(pod.metadata.name)
            if monotonic:
                stopped = True
                break
    if not stopped and not create and rolling:
        for ordinal in range(start + replicas - 1, start + partition - 1, -1):
            member = slots.get(ordinal)
            if member is None:
                break
            if _revision(member) != update_revision and not is_pod_terminating(member):
                delete.append(member.metadata.name)
                break
            if not healthy(member):
                waiting = f"{member.metadata.name} is not healthy during the update"
                break

    missing_claims = []
    for ordinal in sorted({c.ordinal for c in create} | set(slots)):
        for tpl in spec.volume_claim_templates:
            cname = claim_name(tpl.metadata.name, name, ordinal)
            if cname not in claims:
                missing_claims.append(cname)
    return _with_status(sts, slots, condemned, StatefulSetPlan(
        create=tuple(create), claims=tuple(missing_claims), delete=tuple(dict.fromkeys(delete)),
        current_revision=current_revision, update_revision=update_revision,
        waiting_for=waiting), now)


def _with_status(sts: apps_pb2.StatefulSet, slots: dict[int, core_pb2.Pod],
                 condemned: list[tuple[int, core_pb2.Pod]], plan: StatefulSetPlan,
                 now: float) -> StatefulSetPlan:
    min_ready = sts.spec.min_ready_seconds
    members = [p for p in [*slots.values(), *(p for _, p in condemned)]
               if not is_pod_terminating(p)]
    ready = [p for p in members if p.status.phase == "Running" and is_pod_ready(p)]
    available = [p for p in ready if is_pod_available(p, min_ready, now)]
    waits = [pod_ready_since(p) + min_ready - now for p in ready if p not in available]
    current = sum(1 for p in members if _revision(p) == plan.current_revision)
    updated = sum(1 for p in members if _revision(p) == plan.update_revision)
    current_revision = plan.current_revision
    rolling = sts.spec.update_strategy.type in ("", "RollingUpdate")
    if rolling and updated == len(members) and len(ready) == len(members):
        current_revision, current = plan.update_revision, updated
    return StatefulSetPlan(
        create=plan.create, claims=plan.claims, delete=plan.delete, replicas=len(members),
        ready=len(ready), available=len(available), current=current, updated=updated,
        current_revision=current_revision, update_revision=plan.update_revision,
        requeue_after=min(waits) if waits else None, waiting_for=plan.waiting_for)
