"""The default plugins, in kube-scheduler's order, with its default score weights."""

from __future__ import annotations

from typing import Any

from .image_locality import ImageLocality
from .inter_pod_affinity import InterPodAffinity
from .node_affinity import NodeAffinity
from .node_name import NodeName
from .node_ports import NodePorts
from .node_resources import NodeResourcesBalancedAllocation, NodeResourcesFit
from .node_unschedulable import NodeUnschedulable
from .pod_topology_spread import PodTopologySpread
from .taint_toleration import TaintToleration

__all__ = ["default_filters", "default_scorers"]


def default_filters() -> list[Any]:
    """Filter plugins in the order kube-scheduler's default profile runs them."""
    return [NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodePorts(),
            NodeResourcesFit(), PodTopologySpread(), InterPodAffinity()]


def default_scorers() -> list[Any]:
    """Score plugins with kube-scheduler's default weights (each plugin's ``weight``):
    TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2,
    NodeResourcesFit 1, NodeResourcesBalancedAllocation 1, ImageLocality 1."""
    return [TaintToleration(), NodeAffinity(), NodeResourcesFit(), PodTopologySpread(),
            InterPodAffinity(), NodeResourcesBalancedAllocation(), ImageLocality()]
