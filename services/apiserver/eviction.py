"""pods/eviction: delete a pod only if its PodDisruptionBudget allows it (policy/v1).

An Eviction is created as the ``eviction`` subresource of a pod. What happens, as in
Kubernetes' eviction REST handler:

    read the pod ─▶ terminal, Pending or already being deleted? ──yes──▶ delete it
                     │ no
                     ▼
          the PodDisruptionBudgets of its namespace that select it
            none ─▶ delete it          several ─▶ INTERNAL (not supported)
            one  ─▶ budget_verdict(pod, budget) (pure):
                      not Ready and the policy allows it ─▶ delete, budget untouched
                      status older than the spec, or no disruption left
                                                        ─▶ RESOURCE_EXHAUSTED (429): retry
                      else ─▶ disruptionsAllowed - 1, disruptedPods[pod] = now
                              and the pod marked deleted, in ONE transaction

Kubernetes writes the budget and then deletes the pod in two requests, so a crash in
between leaves a disruption counted for a pod that stays (until the controller expires
the entry after 2 minutes). Here both writes share one store transaction that compares
the pod's and the budget's mod_revisions: two evictions racing for the last disruption
cannot both win, and nothing is half done. The pod gets the ``DisruptionTarget``
condition (reason ``EvictionByEvictionAPI``) in the same write when it is deleted
gracefully, so that Jobs' podFailurePolicy can tell an eviction from a failure.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc

from navarch._kinds import storage_kind
from navarch._pods import budget_selects, pod_ready, set_condition
from navarch.v1 import core_pb2, policy_pb2

from . import objects
from .errors import ApiError, bad_request, forbidden_request, not_supported, too_many_requests
from .objects import Obj
from .resources import Resources, Retry, check_preconditions, check_propagation, too_contended
from .storage import Put, key_at

__all__ = ["MAX_DISRUPTED_PODS", "BudgetVerdict", "budget_verdict", "can_ignore_budget",
           "evict", "selecting_budgets"]

MAX_DISRUPTED_PODS = 2000  # Kubernetes' MaxDisruptedPodSize
_MAX_RETRIES = 16
_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


@dataclass(frozen=True)
class BudgetVerdict:
    """What one budget says about evicting one pod: ``error`` refuses it; otherwise the
    pod is deleted, and ``budget`` (when set) is the budget's new status to write in the
    same transaction."""

    error: ApiError | None = None
    budget: policy_pb2.PodDisruptionBudget | None = None


def can_ignore_budget(pod: core_pb2.Pod) -> bool:
    """A pod that already stopped (Succeeded, Failed), never ran (Pending) or is being
    deleted disrupts nothing more when evicted: no budget is consulted."""
    return (pod.status.phase in ("Succeeded", "Failed", "Pending")
            or pod.metadata.HasField("deletion_timestamp"))


def selecting_budgets(pod: core_pb2.Pod, budgets: Iterable[policy_pb2.PodDisruptionBudget]
                      ) -> list[policy_pb2.PodDisruptionBudget]:
    """The budgets that cover ``pod`` (``navarch._pods.budget_selects``)."""
    return [b for b in budgets if budget_selects(b, pod.metadata.labels)]


def budget_verdict(pod: core_pb2.Pod, budget: policy_pb2.PodDisruptionBudget,
                   now: float) -> BudgetVerdict:
    """Whether ``budget`` lets ``pod`` (Running, not being deleted) go now, and the
    budget's status after it (Kubernetes' checkAndDecrement)."""
    status, name = budget.status, budget.metadata.name
    if not pod_ready(pod):
        # An unready pod is not counted as healthy: evicting it takes nothing from the
        # budget, but by default only while the application has the pods it needs.
        if budget.spec.unhealthy_pod_eviction_policy == "AlwaysAllow":
            return BudgetVerdict()
        if 0 < status.desired_healthy <= status.current_healthy:
            return BudgetVerdict()
    if status.observed_generation < budget.metadata.generation:
        return BudgetVerdict(too_many_requests(
            f"{_REFUSED} The disruption budget {name} is still being processed by the server."))
    if status.disruptions_allowed < 0:
        return BudgetVerdict(forbidden_request(
            f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions allowed is '
            "negative"))
    if len(status.disrupted_pods) > MAX_DISRUPTED_PODS:
        return BudgetVerdict(forbidden_request(
            f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - '
            "too many evictions not confirmed by PDB controller"))
    if status.disruptions_allowed == 0:
        return BudgetVerdict(too_many_requests(
            f"{_REFUSED} The disruption budget {name} needs {status.desired_healthy} healthy "
            f"pods and has {status.current_healthy} currently."))
    after = policy_pb2.PodDisruptionBudget()
    after.CopyFrom(budget)
    after.status.disruptions_allowed -= 1
    after.status.disrupted_pods[pod.metadata.name].FromSeconds(int(now))
    if after.status.disruptions_allowed == 0:
        _set_allowed_condition(after, now)
    return BudgetVerdict(budget=after)


def _set_allowed_condition(budget: policy_pb2.PodDisruptionBudget, now: float) -> None:
    """The DisruptionAllowed condition after the last disruption was taken."""
    status = budget.status
    for cond in status.conditions:
        if cond.type == "DisruptionAllowed":
            break
    else:
        cond = status.conditions.add(type="DisruptionAllowed")
    if cond.status != "False":
        cond.last_transition_time.FromSeconds(int(now))
    cond.status, cond.reason, cond.message = "False", "InsufficientPods", ""
    cond.observed_generation = status.observed_generation


def _mark_disruption(pod: Obj, now: float) -> None:
    """The DisruptionTarget condition Kubernetes sets on a pod it evicts."""
    set_condition(pod, "DisruptionTarget", "True", now, "EvictionByEvictionAPI",
                  "Eviction API: evicting")


def _dry_run(eviction: policy_pb2.Eviction, dry_run: bool) -> bool:
    values: Sequence[str] = eviction.delete_options.dry_run
    for value in values:
        if value != "All":
            raise bad_request(f'Eviction "{eviction.metadata.name}" is invalid', [
                not_supported("deleteOptions.dryRun", value, ["All"])])
    return dry_run or bool(values)


async def evict(resources: Resources, namespace: str, name: str, eviction: Obj, *,
                dry_run: bool = False) -> Obj:
    """Evict pod ``name`` of ``namespace`` if its budget allows; returns the pod's last
    state. RESOURCE_EXHAUSTED while the budget allows no disruption (retry later)."""
    if not isinstance(eviction, policy_pb2.Eviction):
        raise bad_request(f"pods/eviction takes a navarch.v1.Eviction, got "
                          f"{eviction.DESCRIPTOR.full_name}")
    if eviction.metadata.name and name and eviction.metadata.name != name:
        raise bad_request("name in URL does not match name in Eviction object")
    name = name or eviction.metadata.name
    if not name:
        raise bad_request("pods/eviction needs the pod's name")
    dry_run = _dry_run(eviction, dry_run)
    options = eviction.delete_options
    grace = options.grace_period_seconds if options.HasField("grace_period_seconds") else None
    check_propagation(options.propagation_policy)
    pods, budgets_kind = storage_kind("pods"), storage_kind("poddisruptionbudgets")
    ns = resources.namespace_of(pods, namespace, eviction.metadata.namespace)
    key = objects.object_key(pods, ns, name)
    prefix = objects.resource_prefix(budgets_kind, ns)
    for _ in range(_MAX_RETRIES):
        kv, pod = await resources.read(pods, key, name)
        check_preconditions(pods, name, kv, pod, options.preconditions.uid,
                            options.preconditions.resource_version)
        compares, ops = [], []
        if not can_ignore_budget(pod):
            page = await resources.store.page(prefix, objects.prefix_end(prefix))
            budgets = [(b, objects.decode(budgets_kind, b.value, b.mod_revision))
                       for b in page.kvs]
            chosen = selecting_budgets(pod, [budget for _, budget in budgets])
            if len(chosen) > 1:
                raise ApiError(grpc.StatusCode.INTERNAL, "This pod has more than one "
                               "PodDisruptionBudget, which the eviction subresource does not "
                               "support.", reason="InternalError")
            if chosen:
                verdict = budget_verdict(pod, chosen[0], resources.clock())
                if verdict.error is not None:
                    raise verdict.error
                if verdict.budget is not None:
                    budget_kv = next(b for b, budget in budgets if budget is chosen[0])
                    after = verdict.budget
                    after.metadata.resource_version = ""
                    compares.append(key_at(budget_kv.key, budget_kv.mod_revision))
                    ops.append(Put(budget_kv.key, objects.encode(after)))
        mark = functools.partial(_mark_disruption, now=resources.clock())
        try:
            return await resources.delete_read(
                pods, key, kv, pod, grace_period_seconds=grace,
                propagation_policy=options.propagation_policy, dry_run=dry_run,
                compares=compares, ops=ops, mark=mark)
        except Retry:
            if options.preconditions.resource_version:
                raise too_contended(pods, name) from None
    raise too_contended(pods, name)
