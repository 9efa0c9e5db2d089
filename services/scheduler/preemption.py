"""Preemption (kube-scheduler's DefaultPreemption PostFilter): when no node fits, find a
node where evicting lower-priority pods makes the pod fit, evicting as few and as
low-priority pods as possible. Pure: returns the decision; the scheduler deletes the
victims and sets status.nominatedNodeName.

Per node (only nodes whose verdict was Unschedulable: preemption cannot help the others):
remove every lower-priority pod; if the pod still does not fit, the node is out. Otherwise
*reprieve* victims, highest priority first, putting back each one whose return keeps the
pod fitting. Among candidates pick, in order: the lowest highest-victim priority, the
lowest sum of victim priorities, the fewest victims, then the first found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def _victims_on(filters: Sequence[Any], state: CycleState, pod: PodInfo,
                node: NodeInfo) -> tuple[PodInfo, ...] | None:
    lower = [p for p in node.pods.values() if p.priority < pod.priority]
    if not lower:
        return None
    trial = node.clone()
    for p in lower:
        trial.remove_pod(p.key)
    if run_filters(filters, state, pod, trial) is not None:
        return None
    victims: list[PodInfo] = []
    # Highest priority first: those are the ones most worth keeping.
    for p in sorted(lower, key=lambda p: (-p.priority, p.key)):
        trial.add_pod(p)
        if run_filters(filters, state, pod, trial) is not None:
            trial.remove_pod(p.key)
            victims.append(p)
    return tuple(victims)


def _rank(c: Candidate) -> tuple[int, int, int]:
    priorities = [v.priority for v in c.victims]
    return (max(priorities, default=-(2**31)), sum(priorities), len(priorities))


def preempt(filters: Sequence[Any], state: CycleState, pod: PodInfo,
            nodes: Mapping[str, NodeInfo], statuses: Mapping[str, Status]) -> PreemptionResult:
    """Decide a preemption for ``pod`` given each node's failed filter ``statuses``."""
    reasons: Counter[str] = Counter()
    candidates: list[Candidate] = []
    for name, status in statuses.items():
        node = nodes.get(name)
        if status.code != UNSCHEDULABLE or node is None:
            reasons[NOT_HELPFUL] += 1
            continue
        victims = _victims_on(filters, state, pod, node)
        if not victims:
            reasons[NO_VICTIMS] += 1
            continue
        candidates.append(Candidate(name, victims))
        if len(candidates) >= MAX_CANDIDATES:
            break
    if candidates:
        return PreemptionResult(min(candidates, key=_rank))
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    total = len(statuses)
    return PreemptionResult(None, f"preemption: 0/{total} nodes are available: "
                                  f"{', '.join(parts)}.")
