"""InterPodAffinity: required pod affinity and anti-affinity (filter) and preferred ones
(score), per topology domain (the value of ``topologyKey`` on a node), both the incoming
pod's terms and the terms of pods already placed.

Contracts: PreFilter/PreScore walk the cluster's pods once per cycle, and only for pods
with terms (or when placed pods carry some); Filter and Score are dictionary lookups.
A term's namespaces default to its own pod's namespace; a namespaceSelector is honoured
only when empty (all namespaces).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from navarch._labels import LabelSelectorExpr, label_selector
from navarch.v1 import core_pb2

from ..framework import MAX_NODE_SCORE, CycleState, NodeInfo, PodInfo, Status

__all__ = ["InterPodAffinity", "Term"]

AFFINITY = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"


@dataclass(frozen=True, slots=True)
class Term:
    """One PodAffinityTerm, compiled: which pods it selects and the topology key."""

    selector: LabelSelectorExpr
    namespaces: frozenset[str]  # empty = every namespace
    topology_key: str
    weight: int = 1

    @classmethod
    def of(cls, term: core_pb2.PodAffinityTerm, owner_namespace: str,
           weight: int = 1) -> Term:
        """Compile ``term`` of a pod in ``owner_namespace``."""
        if term.namespaces:
            namespaces = frozenset(term.namespaces)
        elif term.HasField("namespace_selector"):
            namespaces = frozenset()
        else:
            namespaces = frozenset((owner_namespace,))
        selector = (label_selector(term.label_selector) if term.HasField("label_selector")
                    else LabelSelectorExpr((_NOTHING,)))
        return cls(selector, namespaces, term.topology_key, weight)

    def matches(self, pod: core_pb2.Pod) -> bool:
        """Whether ``pod`` is one of the pods this term selects."""
        if self.namespaces and pod.metadata.namespace not in self.namespaces:
            return False
        return self.selector.matches(pod.metadata.labels)


def _nothing() -> Any:
    from navarch._labels import Requirement
    return Requirement("navarch.io/no-such-label", "exists", ())


_NOTHING = _nothing()  # a nil selector selects no pod


def _terms(info: PodInfo) -> tuple[list[Term], list[Term], list[Term], list[Term]]:
    """(required affinity, required anti, preferred affinity, preferred anti), compiled
    once per PodInfo."""
    if info.affinity_terms is None:
        info.affinity_terms = _compile(info.pod)
    return info.affinity_terms  # type: ignore[no-any-return]


def _compile(pod: core_pb2.Pod) -> tuple[list[Term], list[Term], list[Term], list[Term]]:
    if not pod.spec.HasField("affinity"):
        return [], [], [], []
    a, ns = pod.spec.affinity, pod.metadata.namespace
    return ([Term.of(t, ns) for t in
             a.pod_affinity.required_during_scheduling_ignored_during_execution],
            [Term.of(t, ns) for t in
             a.pod_anti_affinity.required_during_scheduling_ignored_during_execution],
            [Term.of(w.pod_affinity_term, ns, w.weight) for w in
             a.pod_affinity.preferred_during_scheduling_ignored_during_execution],
            [Term.of(w.pod_affinity_term, ns, w.weight) for w in
             a.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution])


def _all_pods(nodes: Iterable[NodeInfo]) -> Iterable[tuple[NodeInfo, PodInfo]]:
    for node in nodes:
        for info in node.pods.values():
            yield node, info


@dataclass(slots=True)
class _FilterState:
    affinity: list[Term]
    anti: list[Term]
    affinity_counts: Counter[tuple[str, str]]  # (term index as str, domain) → pods
    anti_domains: set[tuple[str, str]]  # (topologyKey, value) the incoming pod must avoid
    existing_anti: set[tuple[str, str]]  # domains forbidden by placed pods' anti-affinity
    no_match_anywhere: bool  # no placed pod matches all affinity terms


class InterPodAffinity:
    """Filter and score (weight 2)."""

    name = "InterPodAffinity"
    weight = 2

    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        affinity, anti, _, _ = _terms(pod)
        holders = state.get("affinity_nodes", nodes)
        existing_anti: set[tuple[str, str]] = set()
        for node, other in _all_pods(holders):
            if not other.has_required_anti_affinity:
                continue
            for term in _terms(other)[1]:
                value = node.labels.get(term.topology_key)
                if value is not None and term.matches(pod.pod):
                    existing_anti.add((term.topology_key, value))
        if not affinity and not anti and not existing_anti:
            return False
        counts: Counter[tuple[str, str]] = Counter()
        anti_domains: set[tuple[str, str]] = set()
        matched_all = False
        if affinity or anti:
            for node, other in _all_pods(nodes):
                labels = node.labels
                hits = 0
                for i, term in enumerate(affinity):
                    if term.matches(other.pod):
                        hits += 1
                        value = labels.get(term.topology_key)
                        if value is not None:
                            counts[(str(i), value)] += 1
                matched_all |= bool(affinity) and hits == len(affinity)
                for term in anti:
                    value = labels.get(term.topology_key)
                    if value is not None and term.matches(other.pod):
                        anti_domains.add((term.topology_key, value))
        state[self.name] = _FilterState(affinity, anti, counts, anti_domains, existing_anti,
                                        not matched_all)
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _FilterState = state[self.name]
        labels = node.labels
        for key, value in s.existing_anti:
            if labels.get(key) == value:
                return Status.unschedulable(self.name, EXISTING_ANTI)
        for key, value in s.anti_domains:
            if labels.get(key) == value:
                return Status.unschedulable(self.name, ANTI_AFFINITY)
        if s.affinity:
            ok = all(labels.get(t.topology_key) is not None
                     and s.affinity_counts[(str(i), labels[t.topology_key])] > 0
                     for i, t in enumerate(s.affinity))
            if not ok:
                # The first pod of a group that selects itself may go anywhere its
                # topology keys exist.
                self_match = s.no_match_anywhere and all(
                    t.matches(pod.pod) and labels.get(t.topology_key) is not None
                    for t in s.affinity)
                if not self_match:
                    return Status.unresolvable(self.name, AFFINITY)
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        _, _, pref, pref_anti = _terms(pod)
        holders = list(state.get("affinity_nodes", nodes))
        if not pref and not pref_anti and not holders:
            return False
        domains: Counter[tuple[str, str]] = Counter()
        if pref or pref_anti:
            for node, other in _all_pods(nodes):
                for term, sign in ((t, 1) for t in pref):
                    value = node.labels.get(term.topology_key)
                    if value is not None and term.matches(other.pod):
                        domains[(term.topology_key, value)] += sign * term.weight
                for term in pref_anti:
                    value = node.labels.get(term.topology_key)
                    if value is not None and term.matches(other.pod):
                        domains[(term.topology_key, value)] -= term.weight
        for node, other in _all_pods(holders):
            _, _, their_pref, their_anti = _terms(other)
            for terms, sign in ((their_pref, 1), (their_anti, -1)):
                for term in terms:
                    value = node.labels.get(term.topology_key)
                    if value is not None and term.matches(pod.pod):
                        domains[(term.topology_key, value)] += sign * term.weight
        state[self.name + "/score"] = domains
        return bool(domains)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        domains: Counter[tuple[str, str]] = state[self.name + "/score"]
        labels = node.labels
        return sum(v for (key, value), v in domains.items() if labels.get(key) == value)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - low) // (high - low) if high > low else 0
