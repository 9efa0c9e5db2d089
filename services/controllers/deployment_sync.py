"""The Deployment controller's decisions, pure (Kubernetes' deployment sync, rolling,
recreate and progress logic, in plain data).

Vocabulary: the *new* ReplicaSet is the one whose pod template equals the Deployment's
(ignoring the pod-template-hash label); every other owned ReplicaSet is *old*. Each sync
takes one step (scale the new one up within maxSurge, scale old ones down within
maxUnavailable, …) and the ReplicaSets' own status changes trigger the next.

Contracts: pure functions; nothing passed in is mutated.
"""

from __future__ import annotations

from dataclasses import dataclass

from navarch._deployments import (
    CHANGE_CAUSE,
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    revision_of,
    template_without_hash,
)
from navarch.v1 import apps_pb2, core_pb2

from .workloads import int_or_percent, seconds, template_hash

__all__ = [
    "CHANGE_CAUSE",
    "DESIRED_REPLICAS",
    "HASH_LABEL",
    "MAX_REPLICAS",
    "REVISION",
    "REVISION_HISTORY",
    "Fenceposts",
    "cleanup_victims",
    "deployment_status",
    "fenceposts",
    "find_new_rs",
    "max_revision",
    "new_rs_for",
    "new_rs_target",
    "old_scale_downs",
    "proportional_targets",
    "revision_of",
    "same_template",
]

@dataclass(frozen=True)
class Fenceposts:
    """maxSurge and maxUnavailable resolved against spec.replicas."""

    surge: int
    unavailable: int


def replicas_of(d: apps_pb2.Deployment) -> int:
    """spec.replicas (1 when unset, as defaulting does)."""
    return d.spec.replicas if d.spec.HasField("replicas") else 1


def fenceposts(d: apps_pb2.Deployment) -> Fenceposts:
    """Surge rounded up, unavailable rounded down; both zero gives unavailable 1
    (Kubernetes' ResolveFenceposts). Recreate: no surge, everything may go."""
    n = replicas_of(d)
    if d.spec.strategy.type == "Recreate":
        return Fenceposts(0, n)
    ru = d.spec.strategy.rolling_update
    surge = int_or_percent(ru.max_surge or "25%", n, round_up=True)
    unavailable = int_or_percent(ru.max_unavailable or "25%", n, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Fenceposts(surge, unavailable)


def same_template(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    """Equal pod templates, ignoring the pod-template-hash label."""
    return template_without_hash(a) == template_without_hash(b)


def max_revision(sets: list[apps_pb2.ReplicaSet]) -> int:
    """The highest revision among ``sets``."""
    return max((revision_of(rs) for rs in sets), default=0)


def find_new_rs(d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]
                ) -> apps_pb2.ReplicaSet | None:
    """The oldest owned ReplicaSet whose template is the Deployment's."""
    matching = [rs for rs in sets if same_template(rs.spec.template, d.spec.template)]
    matching.sort(key=lambda rs: (seconds(rs.metadata.creation_timestamp), rs.metadata.name))
    return matching[0] if matching else None


def pod_template_hash(d: apps_pb2.Deployment) -> str:
    """The hash naming the Deployment's current template's ReplicaSet."""
    return template_hash(template_without_hash(d.spec.template), d.status.collision_count)


def new_rs_for(d: apps_pb2.Deployment, revision: int, replicas: int) -> apps_pb2.ReplicaSet:
    """The new ReplicaSet for the Deployment's template: ``<deployment>-<hash>``, with the
    hash in its labels, selector and template, owned by the Deployment."""
    from .workloads import controller_ref

    h = pod_template_hash(d)
    rs = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    rs.metadata.name = f"{d.metadata.name}-{h}"
    rs.metadata.namespace = d.metadata.namespace
    rs.metadata.labels.update(d.spec.template.metadata.labels)
    rs.metadata.labels[HASH_LABEL] = h
    rs.metadata.owner_references.append(controller_ref(d, "Deployment", "apps/v1"))
    rs.spec.replicas = replicas
    rs.spec.min_ready_seconds = d.spec.min_ready_seconds
    rs.spec.selector.CopyFrom(d.spec.selector)
    rs.spec.selector.match_labels[HASH_LABEL] = h
    rs.spec.template.CopyFrom(d.spec.template)
    rs.spec.template.metadata.labels[HASH_LABEL] = h
    rs.metadata.annotations.update(rs_annotations(d, revision))
    return rs


def rs_annotations(d: apps_pb2.Deployment, revision: int) -> dict[str, str]:
    """The annotations the Deployment keeps on its new ReplicaSet."""
    out = {REVISION: str(revision), DESIRED_REPLICAS: str(replicas_of(d)),
           MAX_REPLICAS: str(replicas_of(d) + fenceposts(d).surge)}
    if CHANGE_CAUSE in d.metadata.annotations:
        out[CHANGE_CAUSE] = d.metadata.annotations[CHANGE_CAUSE]
    return out


def new_rs_target(d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet,
                  sets: list[apps_pb2.ReplicaSet]) -> int:
    """How many replicas the new ReplicaSet should have now (rolling update): up to
    spec.replicas, never more than spec.replicas + maxSurge pods in all."""
    want = replicas_of(d)
    if d.spec.strategy.type == "Recreate":
        return want
    if new.spec.replicas >= want:
        return want
    total = sum(rs.spec.replicas for rs in sets)
    room = want + fenceposts(d).surge - total
    if room <= 0:
        return new.spec.replicas
    return new.spec.replicas + min(room, want - new.spec.replicas)


def old_scale_downs(d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None,
                    old: list[apps_pb2.ReplicaSet]) -> dict[str, int]:
    """Old ReplicaSet name -> its new (lower) replica count, keeping at least
    spec.replicas - maxUnavailable pods available: unhealthy replicas go first, then
    available ones, oldest ReplicaSet first (Kubernetes' reconcileOldReplicaSets)."""
    old_count = sum(rs.spec.replicas for rs in old)
    if old_count == 0:
        return {}
    every = old + ([new] if new is not None else [])
    all_count = sum(rs.spec.replicas for rs in every)
    min_available = replicas_of(d) - fenceposts(d).unavailable
    new_unavailable = (new.spec.replicas - new.status.available_replicas) if new else 0
    budget = all_count - min_available - new_unavailable
    if budget <= 0:
        return {}
    targets: dict[str, int] = {}
    ordered = sorted(old, key=lambda rs: (seconds(rs.metadata.creation_timestamp),
                                          rs.metadata.name))
    for rs in ordered:  # the unhealthy replicas first
        if budget <= 0:
            break
        unhealthy = rs.spec.replicas - rs.status.available_replicas
        if unhealthy <= 0 or rs.spec.replicas == 0:
            continue
        cut = min(budget, unhealthy)
        targets[rs.metadata.name] = rs.spec.replicas - cut
        budget -= cut
    available = sum(rs.status.available_replicas for rs in every)
    # unhealthy ones removed above were not available: availability is unchanged
    spare = available - min_available
    for rs in ordered:
        if spare <= 0:
            break
        current = targets.get(rs.metadata.name, rs.spec.replicas)
        if current == 0:
            continue
        cut = min(current, spare)
        targets[rs.metadata.name] = current - cut
        spare -= cut
    return {k: v for k, v in targets.items()
            if v != next(rs.spec.replicas for rs in old if rs.metadata.name == k)}


def proportional_targets(d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                         new: apps_pb2.ReplicaSet | None) -> dict[str, int]:
    """On a scaling event (spec.replicas changed) during a rollout: each active
    ReplicaSet's new count, the difference shared in proportion to their sizes (the
    newest takes the rounding leftover when growing, the oldest when shrinking)."""
    active = [rs for rs in sets if rs.spec.replicas > 0]
    if not active:
        return {new.metadata.name: replicas_of(d)} if new is not None else {}
    if len(active) == 1:
        only = active[0]
        if new is None or only.metadata.name == new.metadata.name:
            return {only.metadata.name: replicas_of(d)}
    allowed = replicas_of(d) + (fenceposts(d).surge
                                if d.spec.strategy.type != "Recreate" else 0)
    total = sum(rs.spec.replicas for rs in active)
    to_add = allowed - total
    if to_add == 0:
        return {}
    growing = to_add > 0
    ordered = sorted(active, key=lambda rs: seconds(rs.metadata.creation_timestamp),
                     reverse=growing)
    targets: dict[str, int] = {}
    given = 0
    for rs in ordered:
        share = int(to_add * rs.spec.replicas / total)
        if not growing:
            share = max(share, -rs.spec.replicas)
        targets[rs.metadata.name] = rs.spec.replicas + share
        given += share
    leftover = to_add - given
    for rs in ordered:
        if leftover == 0:
            break
        current = targets[rs.metadata.name]
        step = leftover if growing else max(leftover, -current)
        targets[rs.metadata.name] = current + step
        leftover -= step
    return {k: v for k, v in targets.items()
            if v != next(rs.spec.replicas for rs in active if rs.metadata.name == k)}


def is_scaling_event(d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet]) -> bool:
    """spec.replicas differs from what an active ReplicaSet was last told
    (its desired-replicas annotation)."""
    for rs in sets:
        if rs.spec.replicas == 0:
            continue
        desired = rs.metadata.annotations.get(DESIRED_REPLICAS)
        if desired is not None and desired != str(replicas_of(d)):
            return True
    return False


def cleanup_victims(d: apps_pb2.Deployment, old: list[apps_pb2.ReplicaSet]) -> list[str]:
    """Old, empty ReplicaSets beyond revisionHistoryLimit, oldest revision first."""
    limit = d.spec.revision_history_limit if d.spec.HasField("revision_history_limit") else 10
    empty = [rs for rs in old if rs.spec.replicas == 0 and rs.status.replicas == 0
             and not rs.metadata.HasField("deletion_timestamp")]
    surplus = len(empty) - limit
    if surplus <= 0:
        return []
    empty.sort(key=lambda rs: (revision_of(rs), seconds(rs.metadata.creation_timestamp)))
    return [rs.metadata.name for rs in empty[:surplus]]


def _condition(status: apps_pb2.DeploymentStatus, type_: str
               ) -> apps_pb2.DeploymentCondition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def _set_condition(status: apps_pb2.DeploymentStatus, type_: str, value: str, reason: str,
                   message: str, now: float, previous: apps_pb2.DeploymentCondition | None
                   ) -> None:
    keep = [c for c in status.conditions if c.type != type_]
    del status.conditions[:]
    cond = apps_pb2.DeploymentCondition(type=type_, status=value, reason=reason,
                                        message=message)
    if previous is not None and previous.status == value:
        cond.last_transition_time.CopyFrom(previous.last_transition_time)
    else:
        cond.last_transition_time.FromSeconds(int(now))
    if previous is not None and (previous.status, previous.reason, previous.message) == (
            value, reason, message):
        cond.last_update_time.CopyFrom(previous.last_update_time)
    else:
        cond.last_update_time.FromSeconds(int(now))
    status.conditions.extend([*keep, cond])
    status.conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c.type, 2))


def deployment_status(d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None,
                      sets: list[apps_pb2.ReplicaSet], now: float, *,
                      created_new: bool = False) -> apps_pb2.DeploymentStatus:
    """The status to report: counts summed over the ReplicaSets, the Available condition,
    and the Progressing condition with Kubernetes' reasons (including
    ProgressDeadlineExceeded once spec.progressDeadlineSeconds pass without progress)."""
    old_status = d.status
    st = apps_pb2.DeploymentStatus()
    st.CopyFrom(old_status)
    st.observed_generation = d.metadata.generation
    st.replicas = sum(rs.status.replicas for rs in sets)
    st.updated_replicas = new.status.replicas if new is not None else 0
    st.ready_replicas = sum(rs.status.ready_replicas for rs in sets)
    st.available_replicas = sum(rs.status.available_replicas for rs in sets)
    want = replicas_of(d)
    st.unavailable_replicas = max(want - st.available_replicas, 0)
    minimum = want - fenceposts(d).unavailable
    if st.available_replicas >= minimum:
        _set_condition(st, "Available", "True", "MinimumReplicasAvailable",
                       "Deployment has minimum availability.", now,
                       _condition(old_status, "Available"))
    else:
        _set_condition(st, "Available", "False", "MinimumReplicasUnavailable",
                       "Deployment does not have minimum availability.", now,
                       _condition(old_status, "Available"))
    prev = _condition(old_status, "Progressing")
    name = new.metadata.name if new is not None else ""
    if d.spec.paused:
        _set_condition(st, "Progressing", "Unknown", "DeploymentPaused",
                       "Deployment is paused", now, prev)
        return st
    if prev is not None and prev.reason == "DeploymentPaused":
        _set_condition(st, "Progressing", "Unknown", "DeploymentResumed",
                       "Deployment is resumed", now, prev)
        prev = _condition(st, "Progressing")
    complete = (new is not None and st.updated_replicas == want and st.replicas == want
                and st.available_replicas == want
                and st.observed_generation >= d.metadata.generation)
    if complete:
        _set_condition(st, "Progressing", "True", "NewReplicaSetAvailable",
                       f'ReplicaSet "{name}" has successfully progressed.', now, prev)
    elif created_new:
        _set_condition(st, "Progressing", "True", "NewReplicaSetCreated",
                       f'Created new replica set "{name}"', now, prev)
    elif _progressed(old_status, st) or prev is None:
        reason = "ReplicaSetUpdated" if prev is not None else "FoundNewReplicaSet"
        message = (f'ReplicaSet "{name}" is progressing.' if prev is not None
                   else f'Found new replica set "{name}"')
        _set_condition(st, "Progressing", "True", reason, message, now, None)
    elif prev.reason != "ProgressDeadlineExceeded" and _deadline_passed(d, prev, now):
        _set_condition(st, "Progressing", "False", "ProgressDeadlineExceeded",
                       f'ReplicaSet "{name}" has timed out progressing.', now, prev)
    return st


def _progressed(old: apps_pb2.DeploymentStatus, new: apps_pb2.DeploymentStatus) -> bool:
    """Kubernetes counts progress when updated, ready or available replicas grow, or old
    ones shrink (replicas falls while updated does not)."""
    return (new.updated_replicas > old.updated_replicas
            or new.available_replicas > old.available_replicas
            or new.ready_replicas > old.ready_replicas
            or new.replicas - new.updated_replicas < old.replicas - old.updated_replicas)


def _deadline_passed(d: apps_pb2.Deployment, cond: apps_pb2.DeploymentCondition,
                     now: float) -> bool:
    if not d.spec.HasField("progress_deadline_seconds"):
        return False
    return seconds(cond.last_update_time) + d.spec.progress_deadline_seconds < now


def deadline_in(d: apps_pb2.Deployment, now: float) -> float | None:
    """Seconds until the progress deadline of an unfinished rollout, if one runs."""
    cond = _condition(d.status, "Progressing")
    if (cond is None or cond.reason in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded",
                                        "DeploymentPaused")
            or not d.spec.HasField("progress_deadline_seconds")):
        return None
    return max(0.0, seconds(cond.last_update_time) + d.spec.progress_deadline_seconds - now)
