"""Preemption (kube-scheduler's DefaultPreemption PostFilter): when no node fits, find a
node where evicting lower-priority pods makes the pod fit, evicting as few and as
low-priority pods as possible. Pure: returns the decision; the scheduler deletes the
victims and sets status.nominatedNodeName.

Per node (only nodes whose verdict was Unschedulable: preemption cannot help the others):
remove every lower-priority pod; if the pod still does not fit, the node is out. Otherwise
*reprieve* victims, highest priority first, putting back each one whose return keeps the
pod fitting. PodDisruptionBudgets count as in kube-scheduler: the lower pods that taking
would exceed a budget's disruptionsAllowed (the pods its disruptedPods already lists
excepted; budgets with an empty selector ignored) are reprieved first, so that they are
evicted only when nothing else makes room. A budget is a preference here, never a veto.
Among candidates pick, in order: the fewest budget violations, the lowest highest-victim
priority, the lowest sum of victim priorities, the fewest victims, then the first found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from navarch import _labels

from .algorithm import run_filters
from .framework import UNSCHEDULABLE, CycleState, NodeInfo, PodInfo, Status

__all__ = ["Candidate", "PreemptionResult", "eligible", "preempt"]

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MAX_CANDIDATES = 100


@dataclass(frozen=True)
class Candidate:
    """A node and the pods to evict from it."""

    node: str
    victims: tuple[PodInfo, ...]
    violations: int = 0


@dataclass(frozen=True)
class PreemptionResult:
    """The chosen candidate, or None with the message kube-scheduler appends to the
    FailedScheduling event (``preemption: 0/3 nodes are available: …``)."""

    candidate: Candidate | None
    message: str = ""


def eligible(pod: PodInfo, nodes: Mapping[str, NodeInfo]) -> bool:
    """Whether ``pod`` may preempt: not with preemptionPolicy Never, and not while the
    victims of an earlier preemption on its nominated node are still terminating."""
    spec = pod.pod.spec
    if spec.HasField("preemption_policy") and spec.preemption_policy == "Never":
        return False
    nominated = pod.pod.status.nominated_node_name
    if nominated and nominated in nodes:
        for other in nodes[nominated].pods.values():
            if other.priority < pod.priority and other.pod.metadata.HasField(
                    "deletion_timestamp"):
                return False
    return True


def _violating(pods: Sequence[PodInfo], budgets: Sequence[Any]) -> set[str]:
    """The keys of the pods (most important first) whose eviction, after the ones before
    them, would exceed a budget's disruptionsAllowed (kube-scheduler's
    filterPodsWithPDBViolation)."""
    allowed: list[int] = []
    selectors: list[tuple[str, _labels.LabelSelectorExpr, Any]] = []
    for budget in budgets:
        try:
            selector = _labels.label_selector(budget.spec.selector)
        except _labels.SelectorError:
            continue
        if selector.empty:
            continue
        selectors.append((budget.metadata.namespace, selector, budget.status.disrupted_pods))
        allowed.append(budget.status.disruptions_allowed)
    violating: set[str] = set()
    for p in pods:
        meta = p.pod.metadata
        for i, (namespace, selector, disrupted) in enumerate(selectors):
            if namespace != meta.namespace or not selector.matches(meta.labels):
                continue
            if meta.name in disrupted:
                continue  # already counted as disrupted
            allowed[i] -= 1
            if allowed[i] < 0:
                violating.add(p.key)
    return violating


def _victims_on(filters: Sequence[Any], state: CycleState, pod: PodInfo,
                node: NodeInfo, budgets: Sequence[Any] = ()) -> Candidate | None:
    lower = [p for p in node.pods.values() if p.priority < pod.priority]
    if not lower:
        return None
    trial = node.clone()
    for p in lower:
        trial.remove_pod(p.key)
    if run_filters(filters, state, pod, trial) is not None:
        return None
    # Highest priority first: those are the ones most worth keeping.
    lower.sort(key=lambda p: (-p.priority, p.key))
    violating = _violating(lower, budgets) if budgets else set()
    victims: list[PodInfo] = []
    violations = 0
    for p in [*(p for p in lower if p.key in violating),
              *(p for p in lower if p.key not in violating)]:
        trial.add_pod(p)
        if run_filters(filters, state, pod, trial) is not None:
            trial.remove_pod(p.key)
            victims.append(p)
            violations += p.key in violating
    if not victims:
        return None
    return Candidate(node.name, tuple(victims), violations)


def _rank(c: Candidate) -> tuple[int, int, int, int]:
    priorities = [v.priority for v in c.victims]
    return (c.violations, max(priorities, default=-(2**31)), sum(priorities), len(priorities))


def preempt(filters: Sequence[Any], state: CycleState, pod: PodInfo,
            nodes: Mapping[str, NodeInfo], statuses: Mapping[str, Status],
            budgets: Sequence[Any] = ()) -> PreemptionResult:
    """Decide a preemption for ``pod`` given each node's failed filter ``statuses`` and
    the cluster's PodDisruptionBudgets."""
    reasons: Counter[str] = Counter()
    candidates: list[Candidate] = []
    for name, status in statuses.items():
        node = nodes.get(name)
        if status.code != UNSCHEDULABLE or node is None:
            reasons[NOT_HELPFUL] += 1
            continue
        candidate = _victims_on(filters, state, pod, node, budgets)
        if candidate is None:
            reasons[NO_VICTIMS] += 1
            continue
        candidates.append(candidate)
        if len(candidates) >= MAX_CANDIDATES:
            break
    if candidates:
        return PreemptionResult(min(candidates, key=_rank))
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    total = len(statuses)
    return PreemptionResult(None, f"preemption: 0/{total} nodes are available: "
                                  f"{', '.join(parts)}.")
