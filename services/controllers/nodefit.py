"""Whether a pod may run on a node by the node's own properties: nodeName, nodeSelector,
required node affinity (labels and the ``metadata.name`` field) and taints against
tolerations — the predicates Kubernetes' DaemonSet controller asks before it makes a pod
for a node. Pure functions over the API messages; nothing is mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from navarch.v1 import core_pb2

__all__ = [
    "fits_node_affinity", "node_selector_term_matches", "requirement_matches", "tolerates",
    "untolerated_taints",
]


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    """Kubernetes' ``ToleratesTaint``: effect (empty matches any), key (empty with Exists
    matches any), then Exists or Equal on the value."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key != taint.key and not (toleration.key == ""
                                            and toleration.operator == "Exists"):
        return False
    if toleration.operator == "Exists":
        return True
    return toleration.value == taint.value  # Equal, the default


def untolerated_taints(taints: Iterable[core_pb2.Taint],
                       tolerations: Sequence[core_pb2.Toleration],
                       effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
                       ) -> list[core_pb2.Taint]:
    """The taints with one of ``effects`` that no toleration tolerates."""
    return [t for t in taints if t.effect in effects
            and not any(tolerates(tol, t) for tol in tolerations)]


def requirement_matches(req: core_pb2.NodeSelectorRequirement, values: dict[str, str]) -> bool:
    """One node selector requirement against labels (or fields): In, NotIn, Exists,
    DoesNotExist, Gt, Lt."""
    present = req.key in values
    value = values.get(req.key, "")
    op = req.operator
    if op == "In":
        return present and value in req.values
    if op == "NotIn":
        return not present or value not in req.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(req.values) == 1:
        try:
            have, bound = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_selector_term_matches(term: core_pb2.NodeSelectorTerm, node: core_pb2.Node) -> bool:
    """All of a term's expressions (labels) and fields (``metadata.name``) match; an
    empty term matches nothing, as in Kubernetes."""
    if not term.match_expressions and not term.match_fields:
        return False
    labels = dict(node.metadata.labels)
    fields = {"metadata.name": node.metadata.name}
    return (all(requirement_matches(r, labels) for r in term.match_expressions)
            and all(requirement_matches(r, fields) for r in term.match_fields))


def fits_node_affinity(spec: core_pb2.PodSpec, node: core_pb2.Node) -> bool:
    """nodeSelector and required node affinity (any one term) both match ``node``."""
    labels = node.metadata.labels
    if any(labels.get(k) != v for k, v in spec.node_selector.items()):
        return False
    if not spec.HasField("affinity") or not spec.affinity.HasField("node_affinity"):
        return True
    affinity = spec.affinity.node_affinity
    if not affinity.HasField("required_during_scheduling_ignored_during_execution"):
        return True
    terms = affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    return any(node_selector_term_matches(t, node) for t in terms)
