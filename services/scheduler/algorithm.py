"""One scheduling cycle's decision, kube-scheduler's ``SchedulePod``: PreFilter, then Filter
over nodes from a rotating start until enough feasible ones are found
(percentageOfNodesToScore), then PreScore/Score/NormalizeScore with weights, then the
best node (ties broken at random). No I/O; the caller assumes and binds.

Contracts: nodes are read, never changed; a cycle's cost is proportional to the nodes it
looks at, plus what PreFilter/PreScore plugins need for pods that use them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .framework import (
    SUCCESS,
    UNSCHEDULABLE,
    CycleState,
    NodeInfo,
    PodInfo,
    Status,
    filter_batch,
    score_batch,
)

__all__ = [
    "MIN_FEASIBLE_NODES_TO_FIND", "Algorithm", "FitError", "ScheduleResult",
    "fit_error_message", "num_feasible_nodes_to_find",
]

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


def num_feasible_nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for before scoring: all of them up to 100 nodes;
    otherwise ``percentage`` of them, by default Kubernetes' adaptive 50% - nodes/125
    (never under 5%), and never fewer than 100."""
    if total < MIN_FEASIBLE_NODES_TO_FIND:
        return total
    pct = percentage
    if pct <= 0:
        pct = max(50 - total // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if pct >= 100:
        return total
    return max(total * pct // 100, MIN_FEASIBLE_NODES_TO_FIND)


def fit_error_message(num_nodes: int, statuses: Mapping[str, Status],
                      post_filter: str = "") -> str:
    """kube-scheduler's FitError text: ``0/3 nodes are available: 2 Insufficient cpu, 1
    node(s) had untolerated taint {k: v}.`` — each reason counted over nodes, the
    "count reason" strings sorted, then the preemption message if any."""
    histogram: Counter[str] = Counter()
    for status in statuses.values():
        histogram.update(status.reasons)
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    message = f"0/{num_nodes} nodes are available: {', '.join(parts)}."
    if post_filter:
        message += " " + post_filter
    return message


@dataclass(frozen=True)
class ScheduleResult:
    """The chosen node, and how many nodes were looked at and found feasible."""

    node: str
    evaluated: int
    feasible: int


@dataclass(frozen=True)
class FitError:
    """No node fits: each rejected node's status (by node name)."""

    num_nodes: int
    statuses: dict[str, Status] = field(default_factory=dict)

    def message(self, post_filter: str = "") -> str:
        """The FailedScheduling message."""
        return fit_error_message(self.num_nodes, self.statuses, post_filter)


def run_filters(filters: Sequence[Any], state: CycleState, pod: PodInfo,
                node: NodeInfo) -> Status | None:
    """The first failing filter's status, or None when every one passes."""
    for plugin in filters:
        status: Status | None = plugin.filter(state, pod, node)
        if status is not None and status.code != SUCCESS:
            return status
    return None


class Algorithm:
    """Filter and score plugins plus the round-robin start of the node walk."""

    def __init__(self, filters: Sequence[Any], scorers: Sequence[Any], *,
                 percentage_of_nodes_to_score: int = 0,
                 rng: random.Random | None = None) -> None:
        self.filters = list(filters)
        self.scorers = list(scorers)
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start_node_index = 0

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: Sequence[NodeInfo]) -> list[Any]:
        """The filters that apply to ``pod`` (PreFilter may skip)."""
        return [p for p in self.filters if p.pre_filter(state, pod, nodes)]

    def schedule(self, pod: PodInfo, nodes: Sequence[NodeInfo],
                 state: CycleState | None = None) -> ScheduleResult | FitError:
        """Pick a node for ``pod`` among ``nodes``."""
        state = state if state is not None else CycleState()
        total = len(nodes)
        if total == 0:
            return FitError(0)
        filters = self.pre_filter(state, pod, nodes)
        want = num_feasible_nodes_to_find(total, self.percentage)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        start = self.next_start_node_index % total
        evaluated = 0
        # Nodes go through the filters in chunks of as many as are still wanted, each
        # plugin over a whole chunk at once: the same verdicts as node by node, with the
        # per-call overhead paid per chunk.
        while len(feasible) < want and evaluated < total:
            size = min(want - len(feasible), total - evaluated)
            first = (start + evaluated) % total
            chunk = list(nodes[first:first + size])
            if len(chunk) < size:
                chunk.extend(nodes[:size - len(chunk)])
            evaluated += size
            for plugin in filters:
                chunk, failed = filter_batch(plugin, state, pod, chunk)
                for node, status in failed:
                    statuses[node.name] = status
                if not chunk:
                    break
            nominated = state.get("nominated")
            if nominated and chunk:
                chunk = self._with_nominated(nominated, state, pod, chunk, filters, statuses)
            feasible.extend(chunk)
        self.next_start_node_index = (start + evaluated) % total
        if not feasible:
            return FitError(total, statuses)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self.score(state, pod, feasible)
        return ScheduleResult(self.select(feasible, totals), evaluated, len(feasible))

    @staticmethod
    def _with_nominated(nominated: Mapping[str, Mapping[str, PodInfo]], state: CycleState,
                        pod: PodInfo, chunk: list[NodeInfo], filters: Sequence[Any],
                        statuses: dict[str, Status]) -> list[NodeInfo]:
        """Kubernetes' nominated pods: a node where a pod of at least this priority was
        nominated (its victims are leaving) must also fit that pod, so that a lower
        pod does not take the room preemption made."""
        kept: list[NodeInfo] = []
        for node in chunk:
            ahead = [p for p in nominated.get(node.name, {}).values()
                     if p.priority >= pod.priority and p.key != pod.key]
            if ahead:
                trial = node.clone()
                for p in ahead:
                    trial.add_pod(p)
                status = run_filters(filters, state, pod, trial)
                if status is not None:
                    statuses[node.name] = status
                    continue
            kept.append(node)
        return kept

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
              per_plugin: dict[str, list[int]] | None = None) -> list[int]:
        """Each node's weighted total; ``per_plugin`` (when given) receives each
        plugin's normalized scores."""
        totals = [0] * len(nodes)
        for plugin in self.scorers:
            if not plugin.pre_score(state, pod, nodes):
                if per_plugin is not None:
                    per_plugin[plugin.name] = [0] * len(nodes)
                continue
            scores = score_batch(plugin, state, pod, nodes)
            plugin.normalize(state, pod, scores)
            if per_plugin is not None:
                per_plugin[plugin.name] = scores
            weight = plugin.weight
            totals = [t + s * weight for t, s in zip(totals, scores, strict=True)]
        return totals

    def select(self, nodes: Sequence[NodeInfo], totals: Sequence[int]) -> str:
        """The best-scored node; ties broken uniformly at random."""
        best = max(totals)
        tied = [i for i, t in enumerate(totals) if t == best]
        return nodes[tied[0] if len(tied) == 1 else self.rng.choice(tied)].name


def resolvable(status: Status) -> bool:
    """Whether evicting pods could make the node fit (code Unschedulable)."""
    return status.code == UNSCHEDULABLE
