"""TaintToleration: NoSchedule and NoExecute taints a pod does not tolerate keep it off a
node (filter); untolerated PreferNoSchedule taints make a node less attractive (score,
fewer is better)."""

from __future__ import annotations

from collections.abc import Sequence

from services.controllers.nodefit import tolerates

from ..framework import CycleState, NodeInfo, PodInfo, Status, default_normalize, partition

__all__ = ["TaintToleration", "untolerated_reason"]


def untolerated_reason(key: str, value: str) -> str:
    """Kubernetes' reason for an untolerated taint."""
    return f"node(s) had untolerated taint {{{key}: {value}}}"


class TaintToleration:
    """Filter (UnschedulableAndUnresolvable) and score (weight 3)."""

    name = "TaintToleration"
    weight = 3

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        # Skip when the cache says no node has taints (unknown: check).
        return bool(state.get("tainted_nodes", 1))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        tolerations = pod.pod.spec.tolerations
        for taint in node.taints:
            if taint.effect not in ("NoSchedule", "NoExecute"):
                continue
            if not any(tolerates(t, taint) for t in tolerations):
                return Status.unresolvable(self.name,
                                           untolerated_reason(taint.key, taint.value))
        return None

    def filter_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                     ) -> tuple[list[NodeInfo], list[tuple[NodeInfo, Status]]]:
        """``filter`` over many nodes: (passed, failed with their status)."""
        if not any(n.taints for n in nodes):
            return nodes, []
        return partition(self, state, pod, nodes)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        state[self.name] = [t for t in pod.pod.spec.tolerations
                            if t.effect in ("", "PreferNoSchedule")]
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        tolerations = state[self.name]
        return sum(1 for taint in node.taints if taint.effect == "PreferNoSchedule"
                   and not any(tolerates(t, taint) for t in tolerations))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)

    def score_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                    ) -> list[int]:
        """``score`` over many nodes."""
        if not state.get("tainted_nodes", 1) or not any(n.taints for n in nodes):
            return [0] * len(nodes)
        return [self.score(state, pod, n) for n in nodes]
