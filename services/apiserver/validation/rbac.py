"""rbac.authorization.k8s.io/v1: Roles, ClusterRoles, RoleBindings, ClusterRoleBindings.

Kubernetes' rules (pkg/apis/rbac/validation): names only need to be usable as a URL path
segment (``system:node`` is a valid name); every rule has a verb and either resources
(with API groups) or, in ClusterRoles only, non-resource URLs, never both; an
aggregationRule has at least one valid selector; a binding's roleRef names a Role (in
RoleBindings) or a ClusterRole of rbac.authorization.k8s.io and never changes; subjects
are Users and Groups of rbac.authorization.k8s.io or ServiceAccounts of the core group.

Defaults come first (defaults.py, Kubernetes' rbac/v1 defaulters): roleRef.apiGroup and
the apiGroup of User and Group subjects are filled in when left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from navarch import _names
from navarch.v1 import rbac_pb2

from ..errors import invalid, not_supported, required
from .common import Errors, check_label_selector, check_names
from .meta import check_object_meta, path_segment_name

__all__ = [
    "RBAC_GROUP", "ROLE_REF_KINDS", "SUBJECT_KINDS", "check_policy_rule",
    "validate_cluster_role", "validate_cluster_role_binding",
    "validate_cluster_role_binding_update", "validate_role", "validate_role_binding",
    "validate_role_binding_update",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
"""The API group of roles and bindings, and of User and Group subjects."""
ROLE_REF_KINDS = ("Role", "ClusterRole")
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


# --- roles -----------------------------------------------------------------------------

def check_policy_rule(path: str, rule: rbac_pb2.PolicyRule, *, namespaced: bool) -> Errors:
    """One rule of a Role (``namespaced``) or ClusterRole at ``path`` (``rules[0]``)."""
    errors: Errors = []
    if not rule.verbs:
        errors.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    if rule.non_resource_urls:
        urls = list(rule.non_resource_urls)
        if namespaced:
            errors.append(invalid(f"{path}.nonResourceURLs", urls,
                                  "namespaced rules cannot apply to non-resource URLs"))
        if rule.api_groups or rule.resources or rule.resource_names:
            errors.append(invalid(f"{path}.nonResourceURLs", urls, "rules cannot apply to "
                                  "both regular resources and non-resource URLs"))
        return errors
    if not rule.api_groups:
        errors.append(required(f"{path}.apiGroups",
                               "resource rules must supply at least one api group"))
    if not rule.resources:
        errors.append(required(f"{path}.resources",
                               "resource rules must supply at least one resource"))
    return errors


def _check_rules(rules: Iterable[rbac_pb2.PolicyRule], *, namespaced: bool) -> Errors:
    errors: Errors = []
    for i, rule in enumerate(rules):
        errors += check_policy_rule(f"rules[{i}]", rule, namespaced=namespaced)
    return errors


def validate_role(role: rbac_pb2.Role) -> Errors:
    """Metadata and rules (no non-resource URLs in a namespace)."""
    return (check_object_meta("Role", role.metadata)
            + _check_rules(role.rules, namespaced=True))


def validate_cluster_role(role: rbac_pb2.ClusterRole) -> Errors:
    """Metadata, rules, and the aggregationRule's selectors when it has one."""
    errors = check_object_meta("ClusterRole", role.metadata)
    errors += _check_rules(role.rules, namespaced=False)
    if role.HasField("aggregation_rule"):
        path = "aggregationRule.clusterRoleSelectors"
        selectors = role.aggregation_rule.cluster_role_selectors
        if not selectors:
            errors.append(required(path, "at least one clusterRoleSelector required if "
                                   "aggregationRule is non-nil"))
        for i, selector in enumerate(selectors):
            errors += check_label_selector(f"{path}[{i}]", selector)
    return errors


# --- bindings --------------------------------------------------------------------------

def _check_role_ref(ref: rbac_pb2.RoleRef, kinds: tuple[str, ...]) -> Errors:
    errors: Errors = []
    if ref.api_group != RBAC_GROUP:
        errors.append(not_supported("roleRef.apiGroup", ref.api_group, (RBAC_GROUP,)))
    if ref.kind not in kinds:
        errors.append(not_supported("roleRef.kind", ref.kind, kinds))
    if not ref.name:
        errors.append(required("roleRef.name"))
    else:
        errors += check_names("roleRef.name", ref.name, path_segment_name)
    return errors


def _check_subject(path: str, subject: rbac_pb2.Subject, *, namespaced: bool) -> Errors:
    """A RoleBinding's (``namespaced``) ServiceAccount subject may leave its namespace out:
    the authorizer reads it as the binding's own."""
    errors: Errors = []
    if not subject.name:
        errors.append(required(f"{path}.name"))
    if subject.kind == "ServiceAccount":
        if subject.name:
            errors += check_names(f"{path}.name", subject.name, _names.dns1123_subdomain)
        if subject.api_group:
            errors.append(not_supported(f"{path}.apiGroup", subject.api_group, ("",)))
        if not namespaced and not subject.namespace:
            errors.append(required(f"{path}.namespace"))
    elif subject.kind in ("User", "Group"):
        if subject.api_group != RBAC_GROUP:
            errors.append(not_supported(f"{path}.apiGroup", subject.api_group, (RBAC_GROUP,)))
    else:
        errors.append(not_supported(f"{path}.kind", subject.kind, SUBJECT_KINDS))
    return errors


def _check_binding(ref: rbac_pb2.RoleRef, subjects: Iterable[rbac_pb2.Subject], *,
                   namespaced: bool) -> Errors:
    errors = _check_role_ref(ref, ROLE_REF_KINDS if namespaced else ("ClusterRole",))
    for i, subject in enumerate(subjects):
        errors += _check_subject(f"subjects[{i}]", subject, namespaced=namespaced)
    return errors


def validate_role_binding(binding: rbac_pb2.RoleBinding) -> Errors:
    """Metadata, a roleRef to a Role or ClusterRole, valid subjects."""
    return (check_object_meta("RoleBinding", binding.metadata)
            + _check_binding(binding.role_ref, binding.subjects, namespaced=True))


def validate_cluster_role_binding(binding: rbac_pb2.ClusterRoleBinding) -> Errors:
    """Metadata, a roleRef to a ClusterRole, valid subjects (ServiceAccounts with their
    namespace)."""
    return (check_object_meta("ClusterRoleBinding", binding.metadata)
            + _check_binding(binding.role_ref, binding.subjects, namespaced=False))


def _check_role_ref_kept(new: rbac_pb2.RoleRef, old: rbac_pb2.RoleRef) -> Errors:
    if new == old:
        return []
    shown = {"apiGroup": new.api_group, "kind": new.kind, "name": new.name}
    return [invalid("roleRef", shown, "cannot change roleRef")]


def validate_role_binding_update(new: rbac_pb2.RoleBinding,
                                 old: rbac_pb2.RoleBinding) -> Errors:
    """The roleRef never changes (delete and recreate the binding instead)."""
    return _check_role_ref_kept(new.role_ref, old.role_ref)


def validate_cluster_role_binding_update(new: rbac_pb2.ClusterRoleBinding,
                                         old: rbac_pb2.ClusterRoleBinding) -> Errors:
    """The roleRef never changes (delete and recreate the binding instead)."""
    return _check_role_ref_kept(new.role_ref, old.role_ref)
