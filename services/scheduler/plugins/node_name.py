"""NodeName: a pod naming a node (spec.nodeName) fits only that node (what-if pods of
Explain; the scheduler never queues pods that already have a node)."""

from __future__ import annotations

from collections.abc import Sequence

from ..framework import CycleState, NodeInfo, PodInfo, Status

__all__ = ["NodeName"]

REASON = "node(s) didn't match the requested node name"


class NodeName:
    """Filter: UnschedulableAndUnresolvable on every node but the named one."""

    name = "NodeName"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        return bool(pod.pod.spec.node_name)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if pod.pod.spec.node_name == node.name:
            return None
        return Status.unresolvable(self.name, REASON)
