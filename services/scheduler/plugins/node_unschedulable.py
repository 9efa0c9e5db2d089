"""NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods tolerating the
``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from collections.abc import Sequence

from navarch.v1 import core_pb2
from services.controllers.nodefit import tolerates

from ..framework import CycleState, NodeInfo, PodInfo, Status, partition

__all__ = ["NodeUnschedulable"]

REASON = "node(s) were unschedulable"
_TAINT = core_pb2.Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeUnschedulable:
    """Filter: UnschedulableAndUnresolvable on cordoned nodes."""

    name = "NodeUnschedulable"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        # Skip when the cache says no node is cordoned (unknown: check).
        return bool(state.get("unschedulable_nodes", 1))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if any(tolerates(t, _TAINT) for t in pod.pod.spec.tolerations):
            return None
        return Status.unresolvable(self.name, REASON)

    def filter_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                     ) -> tuple[list[NodeInfo], list[tuple[NodeInfo, Status]]]:
        """``filter`` over many nodes: (passed, failed with their status)."""
        if not any(n.unschedulable for n in nodes):
            return nodes, []
        return partition(self, state, pod, nodes)
