"""NodePorts: a pod asking for a hostPort fits only nodes where no pod holds the same
(protocol, port) on an overlapping host IP (0.0.0.0 overlaps every IP)."""

from __future__ import annotations

from collections.abc import Sequence

from ..framework import CycleState, NodeInfo, PodInfo, Status

__all__ = ["NodePorts", "ports_conflict"]

REASON = "node(s) didn't have free ports for the requested pod ports"


def ports_conflict(want: Sequence[tuple[str, str, int]],
                   used: dict[tuple[str, str, int], int]) -> bool:
    """Whether any wanted (hostIP, protocol, port) collides with a used one."""
    if not used:
        return False
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if uport == port and uproto == proto and (
                    ip == uip or ip == "0.0.0.0" or uip == "0.0.0.0"):
                return True
    return False


class NodePorts:
    """Filter (Unschedulable)."""

    name = "NodePorts"

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        return bool(pod.host_ports)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if ports_conflict(pod.host_ports, node.used_ports):
            return Status.unschedulable(self.name, REASON)
        return None
