"""The scheduler's cache: nodes and the pods on them, including *assumed* pods.

Lifecycle of a pod the scheduler places (kube-scheduler's cache state machine)::

    assume(pod, node) ──▶ assumed (counted on the node at once)
        │  bind succeeded, informer shows it bound ──▶ confirm (add_pod) ──▶ bound
        └─ bind failed ──▶ forget(pod) ──▶ gone from the node

Contracts:
- Single-threaded (one asyncio loop): the scheduling cycle reads NodeInfos directly,
  without a snapshot, because nothing changes them between its awaits.
- ``add_pod`` of an assumed pod confirms it (on the node the API says, which wins).
- Pods on nodes not (yet) known are kept on placeholder NodeInfos, so the aggregates are
  right whenever the Node arrives.
- Terminal pods (Succeeded/Failed) hold no resources and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable

from navarch.v1 import core_pb2

from .framework import CycleState, NodeInfo, PodInfo, pod_key

__all__ = ["SchedulerCache"]


def _terminal(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


class SchedulerCache:
    """Nodes by name with their pods; which pods are assumed."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._node_list: list[NodeInfo] | None = None
        self.pod_nodes: dict[str, str] = {}  # pod key → node name
        self.assumed: set[str] = set()
        self.image_nodes: dict[str, int] = {}  # image → nodes holding it
        self.affinity_nodes: dict[str, NodeInfo] = {}  # nodes with pods with affinity
        self.tainted_nodes = 0  # nodes with taints (filters skip the check when none)
        self.unschedulable_nodes = 0  # cordoned nodes

    # --- nodes ------------------------------------------------------------------------------

    def add_node(self, node: core_pb2.Node) -> NodeInfo:
        """Add or update a node."""
        name = node.metadata.name
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(name=name)
            self.nodes[name] = info
            self._node_list = None
        elif info.node is None:
            self._node_list = None
        self._count(info, -1)
        info.set_node(node)
        self._count(info, 1)
        return info

    update_node = add_node

    def remove_node(self, name: str) -> None:
        """Forget a node; its pods stay counted on a placeholder until they go."""
        info = self.nodes.get(name)
        if info is None:
            return
        self._count(info, -1)
        self._node_list = None
        if info.pods:
            info.node = None
            info.images, info.taints, info.unschedulable = {}, (), False
        else:
            del self.nodes[name]
            self.affinity_nodes.pop(name, None)

    def node_list(self) -> list[NodeInfo]:
        """Nodes with a Node object, in a stable order (by name)."""
        if self._node_list is None:
            self._node_list = [self.nodes[n] for n in sorted(self.nodes)
                               if self.nodes[n].node is not None]
        return self._node_list

    def _count(self, info: NodeInfo, sign: int) -> None:
        if info.node is None:
            return
        self.tainted_nodes += sign * bool(info.taints)
        self.unschedulable_nodes += sign * info.unschedulable
        for image in info.images:
            left = self.image_nodes.get(image, 0) + sign
            if left > 0:
                self.image_nodes[image] = left
            else:
                self.image_nodes.pop(image, None)

    def cycle_state(self) -> CycleState:
        """A fresh CycleState with what plugins read about the whole cluster."""
        return CycleState(image_nodes=self.image_nodes, total_nodes=len(self.node_list()),
                          affinity_nodes=list(self.affinity_nodes.values()),
                          tainted_nodes=self.tainted_nodes,
                          unschedulable_nodes=self.unschedulable_nodes)

    # --- pods -------------------------------------------------------------------------------

    def assume(self, info: PodInfo, node: str) -> None:
        """Count ``info`` on ``node`` now, before the binding is confirmed."""
        self._place(info, node)
        self.assumed.add(info.key)

    def forget(self, key: str) -> None:
        """Undo ``assume`` (binding failed)."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        """Whether ``key`` is assumed and not yet confirmed."""
        return key in self.assumed

    def add_pod(self, pod: core_pb2.Pod, info: PodInfo | None = None) -> None:
        """A bound pod seen by the informer (add or update): count it on its node;
        confirms an assumed pod. Terminal pods are removed instead."""
        key = pod_key(pod)
        if _terminal(pod) or not pod.spec.node_name:
            self.remove_pod(key)
            return
        if key in self.assumed:
            self.assumed.discard(key)
            if self.pod_nodes.get(key) == pod.spec.node_name:
                # Confirmed where assumed: reuse the parsed PodInfo, aggregates unchanged
                # (binding changes nothing but spec.nodeName).
                placed = self.nodes[pod.spec.node_name].pods.get(key)
                if placed is not None:
                    placed.pod = pod
                    return
        self._place(info or PodInfo.of(pod), pod.spec.node_name)

    update_pod = add_pod

    def remove_pod(self, key: str) -> None:
        """A pod deleted (or finished): stop counting it."""
        self.assumed.discard(key)
        self._unplace(key)

    def pod_count(self) -> int:
        """Pods counted on nodes (bound and assumed)."""
        return len(self.pod_nodes)

    def _place(self, info: PodInfo, node: str) -> None:
        old = self.pod_nodes.get(info.key)
        if old is not None and old != node:
            self._unplace(info.key)
        target = self.nodes.get(node)
        if target is None:
            target = self.nodes[node] = NodeInfo(name=node)
        target.add_pod(info)
        self.pod_nodes[info.key] = node
        self._track_affinity(target)

    def _unplace(self, key: str) -> None:
        node = self.pod_nodes.pop(key, None)
        if node is None:
            return
        info = self.nodes.get(node)
        if info is None:
            return
        info.remove_pod(key)
        self._track_affinity(info)
        if info.node is None and not info.pods:
            del self.nodes[node]

    def _track_affinity(self, info: NodeInfo) -> None:
        if info.pods_with_affinity:
            self.affinity_nodes[info.name] = info
        else:
            self.affinity_nodes.pop(info.name, None)

    def pods_on(self, node: str) -> Iterable[PodInfo]:
        """The pods counted on ``node``."""
        info = self.nodes.get(node)
        return list(info.pods.values()) if info is not None else []
