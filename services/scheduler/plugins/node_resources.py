"""NodeResourcesFit (filter: cpu, memory, pods and extended resources against
status.allocatable; score: LeastAllocated) and NodeResourcesBalancedAllocation (score:
nodes whose cpu and memory fractions stay close), with Kubernetes' formulas.

Requests are the pod's effective requests (``PodInfo.requests``: init containers' rule).
LeastAllocated counts a container requesting nothing as 100m cpu / 200Mi memory
(``PodInfo.non_zero``); BalancedAllocation uses the real requests.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..framework import MAX_NODE_SCORE, CycleState, NodeInfo, PodInfo, Status, partition

__all__ = [
    "NodeResourcesBalancedAllocation", "NodeResourcesFit", "balanced_score", "insufficient",
    "least_allocated", "resource_scores",
]

TOO_MANY_PODS = "Too many pods"


def insufficient(pod: PodInfo, node: NodeInfo) -> tuple[list[str], bool]:
    """The reasons ``pod`` does not fit ``node``'s free resources, and whether they are
    unresolvable (the pod alone asks more than the node has: evicting cannot help)."""
    reasons: list[str] = []
    unresolvable = False
    alloc, used, want = node.allocatable, node.requested, pod.requests
    if used.pods + 1 > alloc.pods:
        reasons.append(TOO_MANY_PODS)
    if want.milli_cpu > 0 and want.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
        unresolvable |= want.milli_cpu > alloc.milli_cpu
    if want.memory > 0 and want.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
        unresolvable |= want.memory > alloc.memory
    for name, amount in want.scalar.items():
        have = alloc.scalar.get(name, 0)
        if amount > 0 and amount > have - used.scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
            unresolvable |= amount > have
    return reasons, unresolvable


def least_allocated(requested: int, allocatable: int) -> int:
    """Kubernetes' per-resource LeastAllocated score: the free share, 0..100."""
    if allocatable == 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


class NodeResourcesFit:
    """Filter (Unschedulable) and the LeastAllocated score (weight 1)."""

    name = "NodeResourcesFit"
    weight = 1

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        alloc, used, want = node.allocatable, node.requested, pod.requests
        if (used.pods < alloc.pods and want.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and want.memory <= alloc.memory - used.memory and not want.scalar):
            return None  # the common case, without building lists
        reasons, unresolvable = insufficient(pod, node)
        if not reasons:
            return None
        if unresolvable:
            return Status.unresolvable(self.name, *reasons)
        return Status.unschedulable(self.name, *reasons)

    def filter_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                     ) -> tuple[list[NodeInfo], list[tuple[NodeInfo, Status]]]:
        """``filter`` over many nodes: (passed, failed with their status)."""
        want = pod.requests
        if want.scalar:
            return partition(self, state, pod, nodes)
        cpu, mem = want.milli_cpu, want.memory
        passed = [n for n in nodes if n.requested.pods < n.allocatable.pods
                  and cpu <= n.allocatable.milli_cpu - n.requested.milli_cpu
                  and mem <= n.allocatable.memory - n.requested.memory]
        if len(passed) == len(nodes):
            return passed, []
        return partition(self, state, pod, nodes)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        return True

    def score_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                    ) -> list[int]:
        """``score`` over many nodes (shared with BalancedAllocation: one pass)."""
        return resource_scores(state, pod, nodes)[0]

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        used, want, alloc = node.non_zero_requested, pod.non_zero, node.allocatable
        cpu = least_allocated(used.milli_cpu + want.milli_cpu, alloc.milli_cpu)
        mem = least_allocated(used.memory + want.memory, alloc.memory)
        return (cpu + mem) // 2

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        return None


def balanced_score(cpu_fraction: float, memory_fraction: float) -> int:
    """Kubernetes' BalancedAllocation: (1 - standard deviation of the fractions) * 100;
    for two resources the deviation is half their difference."""
    std = abs(min(cpu_fraction, 1.0) - min(memory_fraction, 1.0)) / 2
    return int((1 - std) * MAX_NODE_SCORE)


class NodeResourcesBalancedAllocation:
    """Score (weight 1): prefer nodes whose cpu and memory would be used alike."""

    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        # Kubernetes skips best-effort pods: they change no fraction.
        return bool(pod.requests.milli_cpu or pod.requests.memory)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        used, want, alloc = node.requested, pod.requests, node.allocatable
        if not alloc.milli_cpu or not alloc.memory:
            return 0
        return balanced_score((used.milli_cpu + want.milli_cpu) / alloc.milli_cpu,
                              (used.memory + want.memory) / alloc.memory)

    def score_batch(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                    ) -> list[int]:
        """``score`` over many nodes (shared with NodeResourcesFit: one pass)."""
        return resource_scores(state, pod, nodes)[1]

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        return None


def resource_scores(state: CycleState, pod: PodInfo, nodes: list[NodeInfo]
                    ) -> tuple[list[int], list[int]]:
    """LeastAllocated and BalancedAllocation scores of ``nodes`` in one pass (the hot
    loop of a cycle: the arithmetic of ``least_allocated`` and ``balanced_score``
    inlined), memoized in ``state`` for this list of nodes."""
    key = "NodeResources/scores"
    cached = state.get(key)
    if cached is not None and cached[0] is nodes:
        return cached[1], cached[2]
    nz_cpu, nz_mem = pod.non_zero.milli_cpu, pod.non_zero.memory
    cpu, mem = pod.requests.milli_cpu, pod.requests.memory
    least: list[int] = []
    balanced: list[int] = []
    # Identical pods (a ReplicaSet's) meet mostly unchanged nodes: each node memoizes
    # its two scores for the last request shape, valid while its generation holds.
    shape = (nz_cpu, nz_mem, cpu, mem)
    for n in nodes:
        memo = n.score_memo
        if memo is not None and memo[1] == n.generation and memo[0] == shape:
            least.append(memo[2])
            balanced.append(memo[3])
            continue
        a, nz, u = n.allocatable, n.non_zero_requested, n.requested
        ac, am = a.milli_cpu, a.memory
        c, m = nz.milli_cpu + nz_cpu, nz.memory + nz_mem
        sc = (ac - c) * 100 // ac if ac and c <= ac else 0
        sm = (am - m) * 100 // am if am and m <= am else 0
        la = (sc + sm) // 2
        if not ac or not am:
            ba = 0
        else:
            fc = (u.milli_cpu + cpu) / ac
            fm = (u.memory + mem) / am
            fc = fc if fc < 1.0 else 1.0
            fm = fm if fm < 1.0 else 1.0
            d = fc - fm if fc > fm else fm - fc
            ba = int((1 - d / 2) * MAX_NODE_SCORE)
        n.score_memo = (shape, n.generation, la, ba)
        least.append(la)
        balanced.append(ba)
    state[key] = (nodes, least, balanced)
    return least, balanced
