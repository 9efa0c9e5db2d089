"""Where a pod may run: tolerations, node and pod (anti-)affinity, topology spread."""

from __future__ import annotations

from collections.abc import Iterable

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import FieldViolation, duplicate, forbidden, invalid, not_supported, required
from .common import Errors, check_label_selector, check_names, check_value

__all__ = ["TAINT_EFFECTS", "check_affinity", "check_node_selector", "check_tolerations",
           "check_topology_spread"]

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_SPREAD_ACTIONS = ("DoNotSchedule", "ScheduleAnyway")
_SPREAD_POLICIES = ("Honor", "Ignore")


# --- tolerations --------------------------------------------------------------------------

def check_tolerations(path: str, tolerations: Iterable[core_pb2.Toleration]) -> Errors:
    """Kubernetes' toleration rules: an empty key only with Exists, no value with Exists,
    tolerationSeconds only for NoExecute."""
    errors: Errors = []
    for i, tol in enumerate(tolerations):
        errors += _check_toleration(f"{path}[{i}]", tol)
    return errors


def _check_toleration(at: str, tol: core_pb2.Toleration) -> Errors:
    errors: Errors = []
    if tol.key:
        errors += check_names(f"{at}.key", tol.key, _names.qualified_name)
    elif tol.operator != "Exists":
        errors.append(invalid(f"{at}.operator", tol.operator, "operator must be Exists when "
                              '`key` is empty, which means "match all values and all keys"'))
    if tol.HasField("toleration_seconds") and tol.effect != "NoExecute":
        errors.append(invalid(f"{at}.effect", tol.effect, "effect must be 'NoExecute' when "
                              "`tolerationSeconds` is set"))
    if tol.operator in ("", "Equal"):
        errors += check_names(f"{at}.value", tol.value, _names.label_value)
    elif tol.operator == "Exists":
        if tol.value:
            errors.append(invalid(f"{at}.value", tol.value,
                                  "value must be empty when `operator` is 'Exists'"))
    else:
        errors.append(not_supported(f"{at}.operator", tol.operator, ("Equal", "Exists")))
    if tol.effect:
        errors += check_value(f"{at}.effect", tol.effect, TAINT_EFFECTS)
    return errors


# --- node affinity ------------------------------------------------------------------------

def check_node_selector(path: str, selector: core_pb2.NodeSelector) -> Errors:
    """A required node selector: at least one term, each term valid."""
    if not selector.node_selector_terms:
        return [required(f"{path}.nodeSelectorTerms",
                         "must have at least one node selector term")]
    errors: Errors = []
    for i, term in enumerate(selector.node_selector_terms):
        errors += _check_node_term(f"{path}.nodeSelectorTerms[{i}]", term)
    return errors


def _check_node_term(at: str, term: core_pb2.NodeSelectorTerm) -> Errors:
    errors: Errors = []
    for i, req in enumerate(term.match_expressions):
        errors += _check_node_requirement(f"{at}.matchExpressions[{i}]", req)
    for i, req in enumerate(term.match_fields):
        errors += _check_field_requirement(f"{at}.matchFields[{i}]", req)
    return errors


def _check_node_requirement(at: str, req: core_pb2.NodeSelectorRequirement) -> Errors:
    errors: Errors = []
    if req.operator in ("In", "NotIn"):
        if not req.values:
            errors.append(required(f"{at}.values",
                                   "must be specified when `operator` is 'In' or 'NotIn'"))
    elif req.operator in ("Exists", "DoesNotExist"):
        if req.values:
            errors.append(forbidden(f"{at}.values", "may not be specified when `operator` is "
                                    "'Exists' or 'DoesNotExist'"))
    elif req.operator in ("Gt", "Lt"):
        if len(req.values) != 1:
            errors.append(required(f"{at}.values", "must be specified single value when "
                                   "`operator` is 'Lt' or 'Gt'"))
        elif not req.values[0].lstrip("-").isdigit():
            errors.append(invalid(f"{at}.values[0]", req.values[0],
                                  "must be an integer when `operator` is 'Lt' or 'Gt'"))
    else:
        errors += check_value(f"{at}.operator", req.operator, _NODE_OPERATORS)
    errors += check_names(f"{at}.key", req.key, _names.qualified_name)
    return errors


def _check_field_requirement(at: str, req: core_pb2.NodeSelectorRequirement) -> Errors:
    errors: Errors = []
    if req.key != "metadata.name":
        errors.append(not_supported(f"{at}.key", req.key, ("metadata.name",)))
    if req.operator not in ("In", "NotIn"):
        errors.append(not_supported(f"{at}.operator", req.operator, ("In", "NotIn")))
    elif len(req.values) != 1:
        errors.append(required(f"{at}.values", "must be only one value when `operator` is "
                               "'In' or 'NotIn' for node field selector"))
    return errors


def _check_weight(p: str, weight: int) -> Errors:
    if 1 <= weight <= 100:
        return []
    return [invalid(p, weight, "must be in the range 1-100")]


def _check_node_affinity(p: str, aff: core_pb2.NodeAffinity) -> Errors:
    errors: Errors = []
    required_terms = "required_during_scheduling_ignored_during_execution"
    if aff.HasField(required_terms):
        errors += check_node_selector(f"{p}.requiredDuringSchedulingIgnoredDuringExecution",
                                      aff.required_during_scheduling_ignored_during_execution)
    for i, pref in enumerate(aff.preferred_during_scheduling_ignored_during_execution):
        at = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        errors += _check_weight(f"{at}.weight", pref.weight)
        errors += _check_node_term(f"{at}.preference", pref.preference)
    return errors


# --- pod affinity -------------------------------------------------------------------------

def _check_pod_term(at: str, term: core_pb2.PodAffinityTerm) -> Errors:
    errors: Errors = []
    if not term.topology_key:
        errors.append(required(f"{at}.topologyKey", "can not be empty"))
    else:
        errors += check_names(f"{at}.topologyKey", term.topology_key, _names.qualified_name)
    if term.HasField("label_selector"):
        errors += check_label_selector(f"{at}.labelSelector", term.label_selector)
    if term.HasField("namespace_selector"):
        errors += check_label_selector(f"{at}.namespaceSelector", term.namespace_selector)
    for i, ns in enumerate(term.namespaces):
        errors += check_names(f"{at}.namespaces[{i}]", ns, _names.dns1123_label)
    for field, json in (("match_label_keys", "matchLabelKeys"),
                        ("mismatch_label_keys", "mismatchLabelKeys")):
        for i, label_key in enumerate(getattr(term, field)):
            errors += check_names(f"{at}.{json}[{i}]", label_key, _names.qualified_name)
    return errors


def _check_pod_affinity(p: str, aff: core_pb2.PodAffinity | core_pb2.PodAntiAffinity) -> Errors:
    errors: Errors = []
    for i, term in enumerate(aff.required_during_scheduling_ignored_during_execution):
        errors += _check_pod_term(f"{p}.requiredDuringSchedulingIgnoredDuringExecution[{i}]",
                                  term)
    for i, weighted in enumerate(aff.preferred_during_scheduling_ignored_during_execution):
        at = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        errors += _check_weight(f"{at}.weight", weighted.weight)
        errors += _check_pod_term(f"{at}.podAffinityTerm", weighted.pod_affinity_term)
    return errors


def check_affinity(path: str, aff: core_pb2.Affinity) -> Errors:
    """Node affinity, pod affinity and pod anti-affinity."""
    errors: Errors = []
    if aff.HasField("node_affinity"):
        errors += _check_node_affinity(f"{path}.nodeAffinity", aff.node_affinity)
    if aff.HasField("pod_affinity"):
        errors += _check_pod_affinity(f"{path}.podAffinity", aff.pod_affinity)
    if aff.HasField("pod_anti_affinity"):
        errors += _check_pod_affinity(f"{path}.podAntiAffinity", aff.pod_anti_affinity)
    return errors


# --- topology spread ----------------------------------------------------------------------

def check_topology_spread(path: str,
                          constraints: Iterable[core_pb2.TopologySpreadConstraint]) -> Errors:
    """maxSkew > 0, a topology key, a known action, unique (topologyKey, action) pairs."""
    errors: list[FieldViolation] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints):
        at = f"{path}[{i}]"
        if c.max_skew <= 0:
            errors.append(invalid(f"{at}.maxSkew", c.max_skew, "must be greater than zero"))
        if not c.topology_key:
            errors.append(required(f"{at}.topologyKey", "can not be empty"))
        else:
            errors += check_names(f"{at}.topologyKey", c.topology_key, _names.qualified_name)
        errors += check_value(f"{at}.whenUnsatisfiable", c.when_unsatisfiable, _SPREAD_ACTIONS)
        if c.HasField("min_domains"):
            if c.min_domains <= 0:
                errors.append(invalid(f"{at}.minDomains", c.min_domains,
                                      "must be greater than 0"))
            elif c.when_unsatisfiable != "DoNotSchedule":
                errors.append(invalid(f"{at}.minDomains", c.min_domains, "can only use "
                                      "minDomains if whenUnsatisfiable=DoNotSchedule"))
        for field, json in (("node_affinity_policy", "nodeAffinityPolicy"),
                            ("node_taints_policy", "nodeTaintsPolicy")):
            if c.HasField(field):
                errors += check_value(f"{at}.{json}", getattr(c, field), _SPREAD_POLICIES)
        if c.HasField("label_selector"):
            errors += check_label_selector(f"{at}.labelSelector", c.label_selector)
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            errors.append(duplicate(f"{at}", f"{{{c.topology_key}, {c.when_unsatisfiable}}}"))
        seen.add(pair)
    return errors
