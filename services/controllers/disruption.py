"""The disruption controller (Kubernetes' PodDisruptionBudget controller): computes each
PodDisruptionBudget's status, which the API server's pods/eviction handler reads to
allow or refuse an eviction.

Flow::

    poddisruptionbudgets informer ──▶ key of the budget (every add/update/delete)
    pods informer ──▶ keys of the budgets of the pod's namespace that select it (old and
        new labels)
    reconcile(key): budget + the namespace's pods + its ReplicaSets, Deployments and
        StatefulSets (scales) ──sync_budget (pure)──▶ BudgetSync(status, events,
        recheck_after)
        status written through the status subresource only when it changed; the budget
        requeued for when its oldest disruptedPods entry expires

Contracts (pkg/controller/disruption/disruption.go):
- The selected pods are the pods of the budget's namespace its selector matches: an
  empty selector matches all of them, an unset one none (policy/v1).
- expectedPods/desiredHealthy: with maxUnavailable, the sum of the scales of the pods'
  distinct controllers less maxUnavailable scaled to it (rounded up), never below 0; with
  an integer minAvailable, the number of selected pods and minAvailable; with a percentage
  minAvailable, the controllers' scales and the percentage of them (rounded up); with
  neither, 0 and 0. A controller's scale is its spec.replicas; a ReplicaSet controlled
  by a Deployment counts as the Deployment, once. Pods without a controller are left out
  of the scales (event UnmanagedPods); a controller that cannot be found, or whose kind
  has no scale subresource, fails the sync.
- A failed sync (also an invalid selector) sets disruptionsAllowed 0 and the
  DisruptionAllowed condition False/SyncFailed with the error, and keeps the rest of the
  status (Kubernetes' failSafe); the budget is synced again on its next event.
- currentHealthy counts the selected pods that are Ready, not being deleted and not in
  disruptedPods; disruptedPods keeps only entries of selected pods that are not yet being
  deleted and younger than DELETION_TIMEOUT (older ones: event NotDeleted on the pod).
- disruptionsAllowed = currentHealthy - desiredHealthy when positive and expectedPods > 0,
  else 0; condition DisruptionAllowed True/SufficientPods or False/InsufficientPods.
- Never mutates cached objects; a Conflict on the status write is retried by the queue.

Not done (as noted in the README): Kubernetes also resets stale DisruptionTarget pod
conditions (set by an eviction whose deletion never came) to False after 2 minutes;
ReplicationControllers and custom resources with a scale subresource are not known here.
A pod selected by several budgets wakes all of them (Kubernetes wakes one, arbitrarily,
with a MultiplePodDisruptionBudgets warning, which is not recorded here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from navarch._events import NORMAL, WARNING
from navarch._informer import Informer
from navarch._kinds import KINDS
from navarch._labels import SelectorError, label_selector
from navarch._pods import budget_selects
from navarch.v1 import apps_pb2, core_pb2, meta_pb2, policy_pb2

from .deployment_sync import replicas_of
from .framework import Controller, clone, split_key
from .workloads import (
    controller_ref_of,
    int_or_percent,
    is_pod_ready,
    is_pod_terminating,
    seconds,
    timestamp,
)

__all__ = [
    "CONDITION",
    "DELETION_TIMEOUT",
    "BudgetEvent",
    "BudgetSync",
    "ControllerScale",
    "DisruptionController",
    "Expected",
    "LiveDisruptions",
    "SyncError",
    "Workloads",
    "budget_selects",
    "controller_scale",
    "count_healthy",
    "disruptions_allowed",
    "expected_pod_count",
    "expected_scale",
    "fail_safe",
    "live_disruptions",
    "select_pods",
    "set_status_condition",
    "sync_budget",
]

# How long an entry of status.disruptedPods (an eviction the API server granted) may
# wait for its pod to be seen being deleted before it is dropped (Kubernetes'
# DeletionTimeout).
DELETION_TIMEOUT = 120.0
CONDITION = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


class SyncError(Exception):
    """The budget's status cannot be computed; the message says why (it becomes the
    SyncFailed condition's message)."""


# --- which pods ------------------------------------------------------------------------------

def select_pods(pdb: policy_pb2.PodDisruptionBudget,
                pods: Sequence[core_pb2.Pod]) -> list[core_pb2.Pod]:
    """The pods of the budget's namespace its selector matches (``pods`` may hold other
    namespaces); raises ``SelectorError`` for an invalid selector."""
    if not pdb.spec.HasField("selector"):
        return []
    expr = label_selector(pdb.spec.selector)
    namespace = pdb.metadata.namespace
    return [p for p in pods
            if p.metadata.namespace == namespace and expr.matches(dict(p.metadata.labels))]


# --- how many ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workloads:
    """The namespace's objects with a scale, by name, as the informer caches hold them."""

    replicasets: Mapping[str, apps_pb2.ReplicaSet] = field(default_factory=dict)
    deployments: Mapping[str, apps_pb2.Deployment] = field(default_factory=dict)
    statefulsets: Mapping[str, apps_pb2.StatefulSet] = field(default_factory=dict)


@dataclass(frozen=True)
class ControllerScale:
    """A controller of selected pods and the replicas it wants."""

    uid: str
    replicas: int


def _replicas(obj: apps_pb2.ReplicaSet | apps_pb2.StatefulSet) -> int:
    return obj.spec.replicas if obj.spec.HasField("replicas") else 1


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _scale_of(ref: meta_pb2.OwnerReference, obj: Any, replicas: int) -> ControllerScale | None:
    if obj is None or obj.metadata.uid != ref.uid:
        return None
    return ControllerScale(obj.metadata.uid, replicas)


def controller_scale(ref: meta_pb2.OwnerReference,
                     workloads: Workloads) -> ControllerScale | None:
    """The controller a pod's controller reference names and its scale (Kubernetes'
    finders): a ReplicaSet controlled by a Deployment counts as that Deployment (as itself
    when the Deployment is gone); a StatefulSet or Deployment as itself. None when the
    object is not found or is another object of that name. Raises ``SyncError`` when
    the kind is not served or has no scale subresource."""
    group, kind = _group(ref.api_version), ref.kind
    if kind == "ReplicaSet" and group in ("apps", "extensions"):
        rs = workloads.replicasets.get(ref.name)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        owner = controller_ref_of(rs)
        if owner is not None and owner.kind == "Deployment" \
                and _group(owner.api_version) in ("apps", "extensions"):
            deployment = workloads.deployments.get(owner.name)
            if deployment is not None and deployment.metadata.uid == owner.uid:
                return ControllerScale(owner.uid, replicas_of(deployment))
        return ControllerScale(rs.metadata.uid, _replicas(rs))
    if kind == "StatefulSet" and group == "apps":
        ss = workloads.statefulsets.get(ref.name)
        return _scale_of(ref, ss, _replicas(ss) if ss is not None else 0)
    if kind == "Deployment" and group in ("apps", "extensions"):
        d = workloads.deployments.get(ref.name)
        return _scale_of(ref, d, replicas_of(d) if d is not None else 0)
    served = [k for k in KINDS if k.kind == kind and k.group == group]
    if not served:
        raise SyncError(f'no matches for kind "{kind}" in version "{ref.api_version}"')
    if "scale" not in served[0].subresources:
        resource = f"{served[0].resource}.{group}" if group else served[0].resource
        raise SyncError(f"{resource} does not implement the scale subresource")
    return None


def expected_scale(pods: Sequence[core_pb2.Pod],
                   workloads: Workloads) -> tuple[int, tuple[str, ...]]:
    """The sum of the scales of the distinct controllers of ``pods``, and the names of the
    pods without a controller (left out). Raises ``SyncError`` when a pod's controller
    is not found (or has no scale)."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_ref_of(pod)
        if ref is None:
            unmanaged.append(pod.metadata.name)
            continue
        if ref.uid in scales:
            continue
        found = controller_scale(ref, workloads)
        if found is None:
            raise SyncError(f'found no controllers for pod "{pod.metadata.name}"')
        scales[found.uid] = found.replicas
    return sum(scales.values()), tuple(unmanaged)


@dataclass(frozen=True)
class Expected:
    """How many pods the budget counts and how many of them must stay healthy."""

    expected_pods: int
    desired_healthy: int
    unmanaged: tuple[str, ...] = ()


def _scaled(value: str, total: int, field_name: str) -> int:
    try:
        return int_or_percent(value, total, round_up=True)
    except ValueError:
        raise SyncError(f"invalid value for IntOrString {field_name}: {value!r}") from None


def expected_pod_count(spec: policy_pb2.PodDisruptionBudgetSpec,
                       pods: Sequence[core_pb2.Pod], workloads: Workloads) -> Expected:
    """Kubernetes' getExpectedPodCount over the selected ``pods``; ``SyncError`` when the
    controllers' scales are needed and cannot be found."""
    if spec.max_unavailable:
        count, unmanaged = expected_scale(pods, workloads)
        unavailable = _scaled(spec.max_unavailable, count, "maxUnavailable")
        return Expected(count, max(0, count - unavailable), unmanaged)
    if spec.min_available:
        if not spec.min_available.strip().endswith("%"):
            return Expected(len(pods), _scaled(spec.min_available, len(pods),
                                               "minAvailable"))
        count, unmanaged = expected_scale(pods, workloads)
        return Expected(count, _scaled(spec.min_available, count, "minAvailable"),
                        unmanaged)
    return Expected(0, 0)


# --- disrupted and healthy pods ----------------------------------------------------------------

@dataclass(frozen=True)
class LiveDisruptions:
    """The disruptedPods entries to keep, when to look again, and the pods whose entry
    expired without their deletion being seen."""

    pods: Mapping[str, Timestamp]
    recheck_at: float | None = None
    expired: tuple[str, ...] = ()


def live_disruptions(recorded: Mapping[str, Timestamp], pods: Sequence[core_pb2.Pod],
                     now: float) -> LiveDisruptions:
    """Kubernetes' buildDisruptedPodMap: keep the entries of selected pods not yet being
    deleted whose deadline (eviction + DELETION_TIMEOUT) has not passed; ``recheck_at``
    is the earliest deadline kept."""
    kept: dict[str, Timestamp] = {}
    expired: list[str] = []
    recheck_at: float | None = None
    for pod in pods:
        name = pod.metadata.name
        if is_pod_terminating(pod) or name not in recorded:
            continue
        deadline = seconds(recorded[name]) + DELETION_TIMEOUT
        if deadline < now:
            expired.append(name)
            continue
        kept[name] = recorded[name]
        recheck_at = deadline if recheck_at is None else min(recheck_at, deadline)
    return LiveDisruptions(kept, recheck_at, tuple(expired))


def count_healthy(pods: Sequence[core_pb2.Pod], disrupted: Mapping[str, Timestamp],
                  now: float) -> int:
    """Selected pods that are Ready, not being deleted and not disrupted (an entry whose
    deadline is still ahead)."""
    healthy = 0
    for pod in pods:
        if is_pod_terminating(pod):
            continue
        when = disrupted.get(pod.metadata.name)
        if when is not None and seconds(when) + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def disruptions_allowed(current_healthy: int, desired_healthy: int, expected_pods: int) -> int:
    """How many more pods may be evicted: none while the budget expects no pod (so that
    pods appearing before the next sync are safe), else the healthy surplus."""
    allowed = current_healthy - desired_healthy
    return allowed if expected_pods > 0 and allowed > 0 else 0


# --- status --------------------------------------------------------------------------------------

def set_status_condition(status: policy_pb2.PodDisruptionBudgetStatus, type_: str,
                         value: str, reason: str, message: str, observed_generation: int,
                         now: float) -> None:
    """Set one condition (apimeta.SetStatusCondition): its lastTransitionTime moves only
    when its status changes."""
    for cond in status.conditions:
        if cond.type == type_:
            if cond.status != value:
                cond.status = value
                cond.last_transition_time.CopyFrom(timestamp(now))
            cond.reason, cond.message = reason, message
            cond.observed_generation = observed_generation
            return
    cond = status.conditions.add(type=type_, status=value, reason=reason, message=message,
                                 observed_generation=observed_generation)
    cond.last_transition_time.CopyFrom(timestamp(now))


@dataclass(frozen=True)
class BudgetEvent:
    """An event to record: about the budget, or about the selected pod ``pod``."""

    type: str
    reason: str
    message: str
    pod: str = ""


@dataclass(frozen=True)
class BudgetSync:
    """The outcome of one sync: the status the budget should have (equal to the current
    one when nothing changed), events, and the delay after which to sync again (None:
    not before the next event)."""

    status: policy_pb2.PodDisruptionBudgetStatus
    events: tuple[BudgetEvent, ...] = ()
    recheck_after: float | None = None


def fail_safe(pdb: policy_pb2.PodDisruptionBudget, error: str, now: float,
              events: Sequence[BudgetEvent] = ()) -> BudgetSync:
    """The status after a failed sync: the current one with disruptionsAllowed 0 and the
    condition False/SyncFailed (Kubernetes' failSafe keeps the old observedGeneration)."""
    status = clone(pdb.status)
    status.disruptions_allowed = 0
    set_status_condition(status, CONDITION, "False", SYNC_FAILED, error,
                         status.observed_generation, now)
    return BudgetSync(status, tuple(events))


def _unmanaged_message(pdb: policy_pb2.PodDisruptionBudget) -> str:
    selector = str(label_selector(pdb.spec.selector))
    return (f"Pods selected by this PodDisruptionBudget (selector: {selector or '{}'}) were "
            "found to be unmanaged. As a result, the status of the PDB cannot be "
            "calculated correctly, which may result in undefined behavior. To account for "
            'these pods please set ".spec.minAvailable" field of the PDB to an integer '
            "value.")


def sync_budget(pdb: policy_pb2.PodDisruptionBudget, pods: Sequence[core_pb2.Pod],
                workloads: Workloads, now: float) -> BudgetSync:
    """The budget's status given the pods of its namespace and their controllers
    (Kubernetes' trySync, with failSafe on error)."""
    events: list[BudgetEvent] = []
    try:
        selected = select_pods(pdb, pods)
    except SelectorError as exc:
        events.append(BudgetEvent(WARNING, "NoPods", f"Failed to get pods: {exc}"))
        return fail_safe(pdb, str(exc), now, events)
    if not selected:
        events.append(BudgetEvent(NORMAL, "NoPods", "No matching pods found"))
    try:
        expected = expected_pod_count(pdb.spec, selected, workloads)
    except SyncError as exc:
        events.append(BudgetEvent(WARNING, "CalculateExpectedPodCountFailed",
                                  f"Failed to calculate the number of expected pods: {exc}"))
        return fail_safe(pdb, str(exc), now, events)
    if expected.unmanaged:
        events.append(BudgetEvent(WARNING, "UnmanagedPods", _unmanaged_message(pdb)))
    live = live_disruptions(pdb.status.disrupted_pods, selected, now)
    where = f"{pdb.metadata.namespace}/{pdb.metadata.name}"
    events += [BudgetEvent(WARNING, "NotDeleted", f"Pod was expected by PDB {where} to be "
                           "deleted but it wasn't", pod=name) for name in live.expired]
    healthy = count_healthy(selected, live.pods, now)
    allowed = disruptions_allowed(healthy, expected.desired_healthy, expected.expected_pods)
    status = policy_pb2.PodDisruptionBudgetStatus(
        observed_generation=pdb.metadata.generation, disruptions_allowed=allowed,
        current_healthy=healthy, desired_healthy=expected.desired_healthy,
        expected_pods=expected.expected_pods)
    for name, when in live.pods.items():
        status.disrupted_pods[name].CopyFrom(when)
    status.conditions.extend(pdb.status.conditions)
    if allowed > 0:
        set_status_condition(status, CONDITION, "True", SUFFICIENT_PODS, "",
                             status.observed_generation, now)
    else:
        set_status_condition(status, CONDITION, "False", INSUFFICIENT_PODS, "",
                             status.observed_generation, now)
    recheck = None if live.recheck_at is None else max(0.0, live.recheck_at - now)
    return BudgetSync(status, tuple(events), recheck)


# --- the controller -------------------------------------------------------------------------

class DisruptionController(Controller):
    """Keeps each PodDisruptionBudget's status (disruptionsAllowed above all) current."""

    name = "disruption"

    async def setup(self) -> None:
        """Watch budgets and pods; cache the workloads whose scales budgets count."""
        factory = self.ctx.informers
        self.budgets: Informer[policy_pb2.PodDisruptionBudget] = factory.informer(
            "poddisruptionbudgets")
        self.pods: Informer[core_pb2.Pod] = factory.informer("pods")
        self.replicasets: Informer[apps_pb2.ReplicaSet] = factory.informer("replicasets")
        self.deployments: Informer[apps_pb2.Deployment] = factory.informer("deployments")
        self.statefulsets: Informer[apps_pb2.StatefulSet] = factory.informer("statefulsets")
        # Every update, status included: the eviction handler's disruptedPods entries
        # must be seen.
        await self.budgets.add_handlers(self.enqueue, lambda _old, new: self.enqueue(new))
        await self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)

    def _pod_changed(self, pod: core_pb2.Pod) -> None:
        for pdb in self.budgets.list(pod.metadata.namespace):
            if budget_selects(pdb, pod.metadata.labels):
                self.enqueue(pdb)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self._pod_changed(new)
        if old.metadata.labels != new.metadata.labels:
            self._pod_changed(old)

    def _workloads(self, namespace: str) -> Workloads:
        return Workloads(
            {o.metadata.name: o for o in self.replicasets.list(namespace)},
            {o.metadata.name: o for o in self.deployments.list(namespace)},
            {o.metadata.name: o for o in self.statefulsets.list(namespace)})

    async def reconcile(self, key: str) -> None:
        """Compute the budget's status and write it when it changed."""
        namespace, name = split_key(key)
        pdb = self.budgets.get(name, namespace)
        if pdb is None:
            return
        pods = self.pods.list(namespace)
        result = sync_budget(pdb, pods, self._workloads(namespace), self.clock.now())
        by_name = {p.metadata.name: p for p in pods}
        for ev in result.events:
            target = by_name.get(ev.pod) if ev.pod else pdb
            if target is not None:
                self.recorder.event(target, ev.type, ev.reason, ev.message)
        if result.status != pdb.status:
            new = clone(pdb)
            new.status.CopyFrom(result.status)
            await self.client.resource("poddisruptionbudgets", namespace).update_status(new)
        if result.recheck_after is not None:
            self.queue.add_after(key, result.recheck_after + 0.01)
