"""The DaemonSet controller's decisions: on which nodes to create a pod, which pods to
delete, and the status to write (Kubernetes' ``manage``, ``rollingUpdate`` and
``updateDaemonSetStatus``), as plain data.

Rules:

- A node should run the pod when the template (with Kubernetes' default DaemonSet
  tolerations added) fits it: nodeName, nodeSelector, required node affinity, and no
  untolerated NoSchedule/NoExecute taint. An untolerated NoSchedule taint only stops new
  pods: a pod already there keeps running; an untolerated NoExecute taint removes it.
- Each eligible node gets one pod. Pods are not bound by the controller: each carries a
  required node affinity on ``metadata.name`` so that the scheduler places it there
  (Kubernetes ≥ 1.12). Failed pods are deleted and replaced; duplicates beyond the
  oldest are deleted; pods of nodes that are gone or no longer eligible are deleted. (The
  controller waits a backoff per node, 1 s doubling up to 15 min, before replacing a
  failed pod.)
- RollingUpdate replaces pods whose ``controller-revision-hash`` is not the template's:
  with maxSurge 0, old pods are deleted while fewer than maxUnavailable nodes are without
  an available pod (old pods that are not available go at once); with maxSurge > 0, a new
  pod starts beside the old one on up to maxSurge nodes and the old one is deleted once
  the new one is available. OnDelete replaces nothing by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from navarch.v1 import apps_pb2, core_pb2

from .nodefit import fits_node_affinity, untolerated_taints
from .workloads import (
    REVISION_LABEL,
    controller_ref,
    int_or_percent,
    is_pod_available,
    is_pod_ready,
    is_pod_terminating,
    pod_ready_since,
    seconds,
)

__all__ = [
    "DEFAULT_TOLERATIONS", "DaemonSetPlan", "daemon_pod_node", "new_daemon_pod",
    "node_should_run", "plan_daemonset", "with_default_tolerations",
]

# (key, effect) Kubernetes adds to every DaemonSet pod (operator Exists)
DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


@dataclass(frozen=True)
class DaemonSetPlan:
    """What to do for one DaemonSet, and its new status counts."""

    create_on: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # of ``delete``: (failed pod, its node)
    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0
    requeue_after: float | None = None


def with_default_tolerations(spec: core_pb2.PodSpec) -> core_pb2.PodSpec:
    """A copy of ``spec`` with the DaemonSet default tolerations it lacks."""
    out = core_pb2.PodSpec()
    out.CopyFrom(spec)
    wanted = list(DEFAULT_TOLERATIONS)
    if spec.host_network:
        wanted.append(NETWORK_UNAVAILABLE)
    for key, effect in wanted:
        if not any(t.key == key and t.effect == effect for t in out.tolerations):
            out.tolerations.add(key=key, operator="Exists", effect=effect)
    return out


def node_should_run(spec: core_pb2.PodSpec, node: core_pb2.Node) -> tuple[bool, bool]:
    """(should a new pod be made for ``node``, may an existing one keep running there);
    ``spec`` already holds the default tolerations."""
    if spec.node_name and spec.node_name != node.metadata.name:
        return False, False
    if not fits_node_affinity(spec, node):
        return False, False
    untolerated = untolerated_taints(node.spec.taints, spec.tolerations)
    if any(t.effect == "NoExecute" for t in untolerated):
        return False, False
    return not untolerated, True


def daemon_pod_node(pod: core_pb2.Pod) -> str:
    """The node a DaemonSet pod is for: its nodeName, else the ``metadata.name`` its
    required node affinity names."""
    if pod.spec.node_name:
        return pod.spec.node_name
    affinity = pod.spec.affinity.node_affinity
    for term in affinity.required_during_scheduling_ignored_during_execution.node_selector_terms:
        for req in term.match_fields:
            if req.key == "metadata.name" and req.operator == "In" and len(req.values) == 1:
                return req.values[0]
    return ""


def new_daemon_pod(ds: apps_pb2.DaemonSet, node_name: str, revision: str) -> core_pb2.Pod:
    """The pod ``ds`` makes for ``node_name``: the template, the revision label, default
    tolerations, and a required node affinity on that node's name."""
    template = ds.spec.template
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.namespace = ds.metadata.namespace
    pod.metadata.generate_name = f"{ds.metadata.name}-"
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.labels[REVISION_LABEL] = revision
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.owner_references.append(controller_ref(ds, "DaemonSet", "apps/v1"))
    pod.spec.CopyFrom(with_default_tolerations(template.spec))
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    field = core_pb2.NodeSelectorRequirement(key="metadata.name", operator="In",
                                             values=[node_name])
    if not required.node_selector_terms:
        required.node_selector_terms.add().match_fields.append(field)
    for term in required.node_selector_terms:
        del term.match_fields[:]
        term.match_fields.append(field)
    return pod


def _age(pod: core_pb2.Pod) -> tuple[float, str]:
    return seconds(pod.metadata.creation_timestamp), pod.metadata.name


@dataclass
class _Node:
    name: str
    should_run: bool
    keep: bool
    pods: list[core_pb2.Pod]


def plan_daemonset(ds: apps_pb2.DaemonSet, nodes: list[core_pb2.Node],
                   pods: list[core_pb2.Pod], revision: str, now: float) -> DaemonSetPlan:
    """Decide what to do for ``ds`` owning ``pods`` over ``nodes``; ``revision`` is the
    current template's hash."""
    spec = with_default_tolerations(ds.spec.template.spec)
    by_node: dict[str, list[core_pb2.Pod]] = {}
    for pod in pods:
        by_node.setdefault(daemon_pod_node(pod), []).append(pod)
    known = {n.metadata.name for n in nodes}
    create: list[str] = []
    delete: list[str] = []
    failed: list[tuple[str, str]] = []
    steady: list[_Node] = []  # nodes that manage left alone: the rolling update's
    strategy = ds.spec.update_strategy
    rolling = strategy.type in ("", "RollingUpdate")
    desired = sum(1 for n in nodes if node_should_run(spec, n)[0])
    ru = strategy.rolling_update
    surge = int_or_percent(ru.max_surge, desired, round_up=True) if rolling else 0
    unavailable = int_or_percent(ru.max_unavailable, desired, round_up=True, default=1)
    if rolling and surge == 0 and unavailable == 0:
        unavailable = 1

    for name, orphans in sorted(by_node.items()):
        if name not in known:  # the node left (or the pod names none)
            delete += [p.metadata.name for p in orphans if not is_pod_terminating(p)]
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        name = node.metadata.name
        should_run, keep = node_should_run(spec, node)
        here = by_node.get(name, [])
        live = [p for p in here if not is_pod_terminating(p)]
        if not keep:
            delete += [p.metadata.name for p in live]
            continue
        if not here:
            if should_run:
                create.append(name)
            continue
        bad = [p for p in live if p.status.phase == "Failed"]
        failed += [(p.metadata.name, name) for p in bad]
        running = sorted((p for p in live if p.status.phase != "Failed"), key=_age)
        if surge:  # one old and one new pod may share a node during a surge
            keep_pods = [p for p in running
                         if p.metadata.labels.get(REVISION_LABEL) == revision][:1]
            keep_pods += [p for p in running
                          if p.metadata.labels.get(REVISION_LABEL) != revision][:1]
        else:
            keep_pods = running[:1]
        extra = [p.metadata.name for p in running if p not in keep_pods]
        delete += extra
        if not bad and not extra:
            steady.append(_Node(name, should_run, keep, keep_pods))
    delete += [pod_name for pod_name, _ in failed]
    if rolling:
        more_create, more_delete = _rolling_update(ds, steady, revision, surge, unavailable,
                                                   now, create)
        create += more_create
        delete += more_delete
    return _with_status(ds, nodes, spec, by_node, revision, now,
                        DaemonSetPlan(create_on=tuple(create), delete=tuple(dict.fromkeys(delete)),
                                      failed=tuple(failed)))


def _rolling_update(ds: apps_pb2.DaemonSet, steady: list[_Node], revision: str, surge: int,
                    max_unavailable: int, now: float, creating: list[str]
                    ) -> tuple[list[str], list[str]]:
    min_ready = ds.spec.min_ready_seconds

    def available(p: core_pb2.Pod) -> bool:
        return is_pod_available(p, min_ready, now)

    create: list[str] = []
    delete: list[str] = []
    split: list[tuple[_Node, core_pb2.Pod | None, core_pb2.Pod | None]] = []
    for node in steady:
        updated = [p for p in node.pods if p.metadata.labels.get(REVISION_LABEL) == revision]
        outdated = [p for p in node.pods if p.metadata.labels.get(REVISION_LABEL) != revision]
        split.append((node, updated[0] if updated else None,
                      outdated[0] if outdated else None))
    if surge == 0:
        down = len(creating)  # nodes whose pod is still to be made
        candidates: list[core_pb2.Pod] = []
        for _node, new, old in split:
            if new is not None and not available(new):
                down += 1
            elif old is not None and new is None:
                if not available(old):
                    down += 1
                    delete.append(old.metadata.name)
                else:
                    candidates.append(old)
        for old in candidates:
            if down >= max_unavailable:
                break
            delete.append(old.metadata.name)
            down += 1
        return create, delete
    surging = 0
    later: list[str] = []
    for node, new, old in split:
        if new is not None and old is not None:
            if available(new):
                delete.append(old.metadata.name)
            else:
                surging += 1
        elif old is not None and new is None and node.should_run:
            if not available(old):
                create.append(node.name)
            else:
                later.append(node.name)
    create += later[:max(0, surge - surging)]
    return create, delete


def _with_status(ds: apps_pb2.DaemonSet, nodes: list[core_pb2.Node], spec: core_pb2.PodSpec,
                 by_node: dict[str, list[core_pb2.Pod]], revision: str, now: float,
                 plan: DaemonSetPlan) -> DaemonSetPlan:
    min_ready = ds.spec.min_ready_seconds
    desired = current = misscheduled = ready = available = updated = 0
    wake: float | None = None
    for node in nodes:
        should_run, _keep = node_should_run(spec, node)
        live = sorted((p for p in by_node.get(node.metadata.name, [])
                       if not is_pod_terminating(p)), key=_age)
        if not should_run:
            misscheduled += 1 if live else 0
            continue
        desired += 1
        if not live:
            continue
        current += 1
        pod = live[0]
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
            else:
                left = pod_ready_since(pod) + min_ready - now
                wake = left if wake is None else min(wake, left)
        if any(p.metadata.labels.get(REVISION_LABEL) == revision for p in live):
            updated += 1
    return DaemonSetPlan(create_on=plan.create_on, delete=plan.delete, failed=plan.failed,
                         desired=desired, current=current, misscheduled=misscheduled,
                         ready=ready, available=available, updated=updated,
                         requeue_after=wake)
