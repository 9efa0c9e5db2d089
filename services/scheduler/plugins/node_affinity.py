"""NodeAffinity: spec.nodeSelector and required node affinity as a filter; preferred node
affinity as a score (the sum of the weights of the matching terms, normalized)."""

from __future__ import annotations

from collections.abc import Sequence

from navarch.v1 import core_pb2
from services.controllers.nodefit import fits_node_affinity, node_selector_term_matches

from ..framework import CycleState, NodeInfo, PodInfo, Status, default_normalize

__all__ = ["NodeAffinity"]

REASON = "node(s) didn't match Pod's node affinity/selector"


def _preferred(pod: PodInfo) -> list[core_pb2.PreferredSchedulingTerm]:
    spec = pod.pod.spec
    if not spec.HasField("affinity") or not spec.affinity.HasField("node_affinity"):
        return []
    return list(spec.affinity.node_affinity
                .preferred_during_scheduling_ignored_during_execution)


class NodeAffinity:
    """Filter (UnschedulableAndUnresolvable) and score (weight 2)."""

    name = "NodeAffinity"
    weight = 2

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        spec = pod.pod.spec
        return bool(spec.node_selector) or (
            spec.HasField("affinity") and spec.affinity.node_affinity.HasField(
                "required_during_scheduling_ignored_during_execution"))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.node is not None and fits_node_affinity(pod.pod.spec, node.node):
            return None
        return Status.unresolvable(self.name, REASON)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        terms = _preferred(pod)
        state[self.name] = terms
        return bool(terms)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if node.node is None:
            return 0
        return sum(t.weight for t in state[self.name]
                   if t.weight and node_selector_term_matches(t.preference, node.node))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)
