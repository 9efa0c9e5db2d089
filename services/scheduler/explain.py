"""Explain(pod): every node's filter verdicts and scores for a pod, against the
scheduler's current cache, without assuming or binding anything.

Unlike a scheduling cycle, every node is filtered (no percentageOfNodesToScore) and
every feasible node is scored; within a node, filtering stops at the first failure, as
in a cycle. The selected node is the best total (ties: the first by name), so the answer
is deterministic; a real cycle breaks ties at random.
"""

from __future__ import annotations

from collections.abc import Sequence

from navarch.v1 import control_pb2

from .algorithm import Algorithm, fit_error_message
from .framework import SUCCESS, CycleState, NodeInfo, PodInfo, Status

__all__ = ["explain"]


def explain(algorithm: Algorithm, pod: PodInfo, nodes: Sequence[NodeInfo],
            state: CycleState | None = None) -> control_pb2.ExplainResponse:
    """The ExplainResponse for ``pod`` over ``nodes``."""
    state = state if state is not None else CycleState()
    out = control_pb2.ExplainResponse(pod=pod.key)
    filters = algorithm.pre_filter(state, pod, nodes)
    feasible: list[NodeInfo] = []
    verdicts: dict[str, control_pb2.NodeVerdict] = {}
    failures: dict[str, Status] = {}
    for node in nodes:
        verdict = control_pb2.NodeVerdict(node=node.name, feasible=True)
        for plugin in filters:
            status = plugin.filter(state, pod, node)
            if status is None or status.code == SUCCESS:
                verdict.filters.add(plugin=plugin.name, code=SUCCESS)
                continue
            verdict.filters.add(plugin=plugin.name, code=status.code,
                                reasons=list(status.reasons))
            verdict.feasible = False
            failures[node.name] = status
            break
        if verdict.feasible:
            feasible.append(node)
        verdicts[node.name] = verdict
    per_plugin: dict[str, list[int]] = {}
    totals = algorithm.score(state, pod, feasible, per_plugin) if feasible else []
    weights = {p.name: p.weight for p in algorithm.scorers}
    for i, node in enumerate(feasible):
        verdict = verdicts[node.name]
        for name, scores in per_plugin.items():
            verdict.scores.add(plugin=name, score=scores[i], weighted=scores[i] * weights[name])
        verdict.total_score = totals[i]
    ranked = sorted(verdicts.values(),
                    key=lambda v: (not v.feasible, -v.total_score, v.node))
    out.nodes.extend(ranked)
    if feasible:
        out.selected_node = ranked[0].node
    else:
        out.message = fit_error_message(len(nodes), failures)
    return out
