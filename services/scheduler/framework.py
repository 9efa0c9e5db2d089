"""The scheduling framework's data: what a pod asks for (``PodInfo``), what a node holds
(``NodeInfo``), a plugin's verdict (``Status``), per-cycle scratch space (``CycleState``)
and the plugin protocols (PreFilter, Filter, Score with normalize).

Contracts:
- ``PodInfo`` is computed once per pod object (requests parsed once, never per node).
- ``NodeInfo`` aggregates (requested, non-zero requested, host ports, pod count) are kept
  incrementally by ``add_pod``/``remove_pod``: a cycle never re-sums a node's pods.
- API messages held here are shared with the informer cache: never mutate them.
- Filters return ``None`` for success (the hot path allocates nothing) or a ``Status``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from navarch._quantity import parse_quantity
from navarch.v1 import core_pb2

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "ERROR",
    "MAX_NODE_SCORE",
    "SUCCESS",
    "UNSCHEDULABLE",
    "UNSCHEDULABLE_AND_UNRESOLVABLE",
    "CycleState",
    "FilterPlugin",
    "NodeInfo",
    "PodInfo",
    "Resource",
    "ScorePlugin",
    "Status",
    "default_normalize",
    "filter_batch",
    "normalized_image_name",
    "partition",
    "pod_key",
    "pod_priority",
    "quantity_milli",
    "quantity_value",
    "score_batch",
]

SUCCESS = "Success"
UNSCHEDULABLE = "Unschedulable"
UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
ERROR = "Error"
MAX_NODE_SCORE = 100
# What the scorers count for a container that requests nothing (Kubernetes' non-zero
# defaults), so that empty pods do not all pile onto one node.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


@functools.lru_cache(maxsize=4096)
def quantity_milli(text: str) -> int:
    """A quantity in thousandths ("100m" → 100, "2" → 2000); unparseable counts as 0."""
    try:
        return parse_quantity(text).milli_value()
    except ValueError:
        return 0


@functools.lru_cache(maxsize=4096)
def quantity_value(text: str) -> int:
    """A quantity as a whole number, rounded up ("64Mi" → 67108864); bad text is 0."""
    try:
        return parse_quantity(text).value()
    except ValueError:
        return 0


@dataclass(slots=True)
class Resource:
    """Amounts of the resources the scheduler fits: CPU in millicores, memory in bytes,
    pod slots, and any other (extended) resource by name in whole units."""

    milli_cpu: int = 0
    memory: int = 0
    pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_map(cls, amounts: Any) -> Resource:
        """From a resource map such as ``status.allocatable`` or container requests."""
        r = cls()
        for name, text in amounts.items():
            if name == "cpu":
                r.milli_cpu = quantity_milli(text)
            elif name == "memory":
                r.memory = quantity_value(text)
            elif name == "pods":
                r.pods = quantity_value(text)
            elif name != "ephemeral-storage":
                r.scalar[name] = quantity_value(text)
        return r

    def add(self, other: Resource, sign: int = 1) -> None:
        """Add (or with ``sign=-1`` subtract) ``other`` in place."""
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        for name, amount in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + sign * amount

    def max_with(self, other: Resource) -> None:
        """Take, per resource, the larger of self and ``other`` (init containers' rule)."""
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        for name, amount in other.scalar.items():
            self.scalar[name] = max(self.scalar.get(name, 0), amount)

    def copy(self) -> Resource:
        """An independent copy."""
        return Resource(self.milli_cpu, self.memory, self.pods, dict(self.scalar))


def normalized_image_name(name: str) -> str:
    """Kubernetes' normalisation: an image without tag or digest means ``:latest``."""
    if "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return name
    return name + ":latest"


def pod_key(pod: core_pb2.Pod) -> str:
    """``namespace/name``."""
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def pod_priority(pod: core_pb2.Pod) -> int:
    """spec.priority, 0 when unset."""
    return pod.spec.priority if pod.spec.HasField("priority") else 0


def _requests(pod: core_pb2.Pod, non_zero: bool) -> Resource:
    """Kubernetes' effective request: the sum over regular containers, raised per resource
    to the largest init container's (init containers run one at a time, before them)."""
    total = Resource()
    for c in pod.spec.containers:
        r = Resource.from_map(c.resources.requests)
        if non_zero:
            r.milli_cpu = r.milli_cpu or DEFAULT_MILLI_CPU_REQUEST
            r.memory = r.memory or DEFAULT_MEMORY_REQUEST
        total.add(r)
    for c in pod.spec.init_containers:
        r = Resource.from_map(c.resources.requests)
        if non_zero:
            r.milli_cpu = r.milli_cpu or DEFAULT_MILLI_CPU_REQUEST
            r.memory = r.memory or DEFAULT_MEMORY_REQUEST
        total.max_with(r)
    return total


@dataclass(slots=True)
class PodInfo:
    """A pod and what scheduling needs from it, computed once."""

    pod: core_pb2.Pod
    key: str
    priority: int
    requests: Resource
    non_zero: Resource  # requests with the non-zero defaults, for scoring
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, port)
    has_required_anti_affinity: bool
    has_affinity: bool  # any pod (anti-)affinity term, required or preferred
    affinity_terms: Any = None  # compiled by InterPodAffinity on first use

    @classmethod
    def of(cls, pod: core_pb2.Pod) -> PodInfo:
        """Parse ``pod`` once."""
        ports = tuple(("0.0.0.0", p.protocol or "TCP", p.host_port)
                      for c in pod.spec.containers for p in c.ports if p.host_port > 0)
        anti = any_terms = False
        if pod.spec.HasField("affinity"):
            a = pod.spec.affinity
            anti = bool(a.pod_anti_affinity.required_during_scheduling_ignored_during_execution)
            any_terms = bool(
                a.pod_affinity.required_during_scheduling_ignored_during_execution
                or a.pod_affinity.preferred_during_scheduling_ignored_during_execution
                or a.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution
                or anti)
        return cls(pod, pod_key(pod), pod_priority(pod), _requests(pod, False),
                   _requests(pod, True), ports, anti, any_terms)


class NodeInfo:
    """A node, the pods on it (bound or assumed) and their running totals."""

    __slots__ = ("allocatable", "generation", "images", "name", "node",
                 "non_zero_requested", "pods", "pods_with_affinity", "requested", "score_memo",
                 "taints", "unschedulable", "used_ports")

    def __init__(self, node: core_pb2.Node | None = None, name: str = "") -> None:
        self.node: core_pb2.Node | None = None
        self.name = name
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.allocatable = Resource()
        self.images: dict[str, int] = {}  # normalized image name → size in bytes
        self.taints: tuple[core_pb2.Taint, ...] = ()
        self.unschedulable = False
        self.generation = 0
        # (what it depends on, scores): scorers' memo, valid while generation holds.
        self.score_memo: tuple[Any, ...] | None = None
        if node is not None:
            self.set_node(node)

    def set_node(self, node: core_pb2.Node) -> None:
        """Set (or replace) the Node object."""
        self.node = node
        self.name = node.metadata.name
        self.allocatable = Resource.from_map(node.status.allocatable)
        self.images = {normalized_image_name(n): image.size_bytes
                       for image in node.status.images for n in image.names}
        self.taints = tuple(node.spec.taints)
        self.unschedulable = node.spec.unschedulable
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        """Count ``info`` on this node (idempotent per pod key: replaces the old one)."""
        if info.key in self.pods:
            self.remove_pod(info.key)
        self.pods[info.key] = info
        if info.has_affinity:
            self.pods_with_affinity[info.key] = info
        self.requested.add(info.requests)
        self.non_zero_requested.add(info.non_zero)
        self.requested.pods += 1
        for port in info.host_ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop counting the pod ``key``; the PodInfo removed, if any."""
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.pods_with_affinity.pop(key, None)
        self.requested.add(info.requests, -1)
        self.non_zero_requested.add(info.non_zero, -1)
        self.requested.pods -= 1
        for port in info.host_ports:
            left = self.used_ports.get(port, 0) - 1
            if left > 0:
                self.used_ports[port] = left
            else:
                self.used_ports.pop(port, None)
        self.generation += 1
        return info

    def clone(self) -> NodeInfo:
        """An independent copy (for preemption's what-if)."""
        c = NodeInfo(name=self.name)
        c.node = self.node
        c.allocatable = self.allocatable
        c.images = self.images
        c.taints = self.taints
        c.unschedulable = self.unschedulable
        c.pods = dict(self.pods)
        c.pods_with_affinity = dict(self.pods_with_affinity)
        c.requested = self.requested.copy()
        c.non_zero_requested = self.non_zero_requested.copy()
        c.used_ports = dict(self.used_ports)
        c.generation = self.generation
        return c

    @property
    def labels(self) -> Any:
        """The node's labels (a protobuf map: read only)."""
        return self.node.metadata.labels if self.node is not None else {}


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin's verdict: a code and, for failures, Kubernetes' reason strings."""

    code: str
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def success(self) -> bool:
        """Whether the code is Success."""
        return self.code == SUCCESS

    @classmethod
    def unschedulable(cls, plugin: str, *reasons: str) -> Status:
        """An Unschedulable verdict (preemption may help)."""
        return cls(UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, plugin: str, *reasons: str) -> Status:
        """An UnschedulableAndUnresolvable verdict (preemption cannot help)."""
        return cls(UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


class CycleState(dict[str, Any]):
    """Scratch space of one scheduling cycle, keyed by plugin name (PreFilter and PreScore
    results that Filter and Score read)."""


class FilterPlugin(Protocol):
    """PreFilter + Filter. ``pre_filter`` returns False when the plugin has nothing to
    check for this pod (Kubernetes' Skip): its ``filter`` is then not called. A plugin
    may also offer ``filter_batch(state, pod, nodes) -> (passed, failed)``, a fast path
    that must give the same verdicts as ``filter`` node by node."""

    name: str

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> bool:
        """Prepare ``state``; False to skip ``filter`` for this pod."""

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """None when ``pod`` may run on ``node``, else why not."""


class ScorePlugin(Protocol):
    """PreScore + Score + NormalizeScore; ``weight`` multiplies the normalized score.
    An optional ``score_batch(state, pod, nodes) -> list[int]`` must equal ``score``
    node by node."""

    name: str
    weight: int

    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: Sequence[NodeInfo]) -> bool:
        """Prepare ``state``; False to skip scoring (every node scores 0)."""

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """A raw score of ``node`` for ``pod``."""

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Map the raw scores onto 0..MAX_NODE_SCORE in place."""


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Kubernetes' DefaultNormalizeScore: scale so the highest is MAX_NODE_SCORE
    (reversed: the lowest raw score gets the most); all zero stays zero (or, reversed,
    all MAX_NODE_SCORE)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


def partition(plugin: Any, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
              ) -> tuple[list[NodeInfo], list[tuple[NodeInfo, Status]]]:
    """Run ``plugin.filter`` on each node: (passed, failed with their status)."""
    passed: list[NodeInfo] = []
    failed: list[tuple[NodeInfo, Status]] = []
    for node in nodes:
        status = plugin.filter(state, pod, node)
        if status is None or status.code == SUCCESS:
            passed.append(node)
        else:
            failed.append((node, status))
    return passed, failed


def filter_batch(plugin: Any, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                 ) -> tuple[list[NodeInfo], list[tuple[NodeInfo, Status]]]:
    """The plugin's ``filter_batch`` when it has one (a fast path over many nodes, with
    the same verdicts), else ``filter`` node by node."""
    batch = getattr(plugin, "filter_batch", None)
    if batch is not None:
        return batch(state, pod, nodes)  # type: ignore[no-any-return]
    return partition(plugin, state, pod, nodes)


def score_batch(plugin: Any, state: CycleState, pod: PodInfo,
                nodes: Sequence[NodeInfo]) -> list[int]:
    """The plugin's ``score_batch`` when it has one, else ``score`` node by node."""
    batch = getattr(plugin, "score_batch", None)
    if batch is not None:
        return batch(state, pod, nodes)  # type: ignore[no-any-return]
    return [plugin.score(state, pod, n) for n in nodes]
