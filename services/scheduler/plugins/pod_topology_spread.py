"""PodTopologySpread: topologySpreadConstraints. DoNotSchedule constraints filter nodes
whose domain would exceed maxSkew over the least loaded eligible domain; ScheduleAnyway
constraints score nodes with fewer matching pods higher.

Eligible domains are those of nodes matching the pod's nodeSelector/required node
affinity (nodeAffinityPolicy Honor, the default) and carrying every topology key.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from navarch._labels import LabelSelectorExpr, label_selector
from navarch.v1 import core_pb2
from services.controllers.nodefit import fits_node_affinity

from ..framework import MAX_NODE_SCORE, CycleState, NodeInfo, PodInfo, Status

__all__ = ["Constraint", "PodTopologySpread"]

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


@dataclass(frozen=True, slots=True)
class Constraint:
    """One compiled constraint."""

    max_skew: int
    topology_key: str
    selector: LabelSelectorExpr
    min_domains: int
    hard: bool  # DoNotSchedule

    @classmethod
    def of(cls, c: core_pb2.TopologySpreadConstraint) -> Constraint:
        """Compile ``c``; a missing selector selects nothing (only counts as no pods)."""
        selector = label_selector(c.label_selector) if c.HasField("label_selector") else None
        return cls(c.max_skew, c.topology_key,
                   selector if selector is not None else LabelSelectorExpr(),
                   c.min_domains if c.HasField("min_domains") else 1,
                   c.when_unsatisfiable != "ScheduleAnyway")


@dataclass(slots=True)
class _State:
    constraints: list[Constraint]
    counts: list[Counter[str]]  # per constraint: domain value → matching pods
    self_match: list[int]


def _count(pod: PodInfo, constraints: list[Constraint], nodes: Sequence[NodeInfo],
           require_all: bool = True) -> _State:
    counts: list[Counter[str]] = [Counter() for _ in constraints]
    spec = pod.pod.spec
    namespace = pod.pod.metadata.namespace
    for node in nodes:
        if node.node is None or not fits_node_affinity(spec, node.node):
            continue
        labels = node.labels
        if require_all and any(c.topology_key not in labels for c in constraints):
            continue
        for i, c in enumerate(constraints):
            if c.topology_key not in labels:
                continue
            value = labels[c.topology_key]
            n = sum(1 for other in node.pods.values()
                    if other.pod.metadata.namespace == namespace
                    and not other.pod.metadata.HasField("deletion_timestamp")
                    and c.selector.matches(other.pod.metadata.labels))
            counts[i][value] += n
    self_match = [int(c.selector.matches(pod.pod.metadata.labels)) for c in constraints]
    return _State(constraints, counts, self_match)


HOSTNAME_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"
_SPREAD_OWNERS = ("ReplicaSet", "StatefulSet", "ReplicationController")


def system_default_constraints(pod: core_pb2.Pod) -> list[Constraint]:
    """kube-scheduler's default constraints (defaultingType System) for a pod without
    its own: ScheduleAnyway, maxSkew 3 over hostnames and 5 over zones, counting the pods
    of the same controller. Kubernetes selects them with the selectors of the Services
    and controllers that select the pod; the pod's own labels (which include its
    ReplicaSet's pod-template-hash) pick the same set for controller-owned pods."""
    if pod.spec.topology_spread_constraints or not any(
            ref.controller and ref.kind in _SPREAD_OWNERS
            for ref in pod.metadata.owner_references):
        return []
    selector = label_selector(_match_labels(pod))
    return [Constraint(3, HOSTNAME_KEY, selector, 1, False),
            Constraint(5, ZONE_KEY, selector, 1, False)]


def _match_labels(pod: core_pb2.Pod) -> object:
    from navarch.v1 import meta_pb2

    sel = meta_pb2.LabelSelector()
    sel.match_labels.update(pod.metadata.labels)
    return sel


class PodTopologySpread:
    """Filter and score (weight 2)."""

    name = "PodTopologySpread"
    weight = 2

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        hard = [Constraint.of(c) for c in pod.pod.spec.topology_spread_constraints
                if c.when_unsatisfiable != "ScheduleAnyway"]
        if not hard:
            return False
        state[self.name] = _count(pod, hard, nodes)
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _State = state[self.name]
        labels = node.labels
        for i, c in enumerate(s.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                return Status.unresolvable(self.name, MISSING_LABEL)
            counts = s.counts[i]
            least = min(counts.values(), default=0)
            if len(counts) < c.min_domains:
                least = 0
            if counts.get(value, 0) + s.self_match[i] - least > c.max_skew:
                return Status.unschedulable(self.name, REASON)
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        soft = [Constraint.of(c) for c in pod.pod.spec.topology_spread_constraints
                if c.when_unsatisfiable == "ScheduleAnyway"]
        defaulted = False
        if not pod.pod.spec.topology_spread_constraints:
            soft, defaulted = system_default_constraints(pod.pod), True
        if not soft:
            return False
        s = _count(pod, soft, nodes, require_all=not defaulted)
        state[self.name + "/score"] = (s, [math.log(len(c) + 2) for c in s.counts],
                                       defaulted)
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        s, weights, defaulted = state[self.name + "/score"]
        total = 0.0
        for i, c in enumerate(s.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                if defaulted:
                    continue  # system defaults do not require every key on every node
                return -1  # ignored: scores 0 after normalizing
            total += s.counts[i].get(value, 0) * weights[i] + (c.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        if not valid:
            return
        low, high = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif high == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (high + low - s) // high
