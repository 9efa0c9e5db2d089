"""rbac.authorization.k8s.io/v1 defaulting and validation: Roles, ClusterRoles,
RoleBindings, ClusterRoleBindings (Kubernetes' pkg/apis/rbac/validation and rbac/v1
defaulters)."""

from __future__ import annotations

from typing import Any

import pytest

from navarch import _codec
from services.apiserver import defaults
from tests.unit.apiserver_cases import (
    DELETE,
    assert_problems,
    build,
    load,
    mutate,
    problems,
    update_problems,
)

ROLE = load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  namespace: default
  name: pod-reader
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "watch", "list"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["my-configmap"]
  verbs: ["update", "get"]
""")

CLUSTER_ROLE = load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: secret-reader
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "watch", "list"]
- nonResourceURLs: ["/healthz", "/healthz/*"]
  verbs: ["get", "post"]
""")

AGGREGATED = load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring
aggregationRule:
  clusterRoleSelectors:
  - matchLabels:
      rbac.example.com/aggregate-to-monitoring: "true"
rules: []
""")

ROLE_BINDING = load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: default
subjects:
- kind: User
  name: jane
  apiGroup: rbac.authorization.k8s.io
- kind: ServiceAccount
  name: default
roleRef:
  kind: Role
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
""")

CLUSTER_ROLE_BINDING = load("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: read-secrets-global
subjects:
- kind: Group
  name: manager
  apiGroup: rbac.authorization.k8s.io
- kind: ServiceAccount
  name: default
  namespace: kube-system
roleRef:
  kind: ClusterRole
  name: secret-reader
  apiGroup: rbac.authorization.k8s.io
""")

BASES = {"Role": ROLE, "ClusterRole": CLUSTER_ROLE, "RoleBinding": ROLE_BINDING,
         "ClusterRoleBinding": CLUSTER_ROLE_BINDING}


@pytest.mark.parametrize(("kind", "doc"), [
    ("Role", ROLE), ("ClusterRole", CLUSTER_ROLE), ("ClusterRole", AGGREGATED),
    ("RoleBinding", ROLE_BINDING), ("ClusterRoleBinding", CLUSTER_ROLE_BINDING),
    ("RoleBinding", mutate(ROLE_BINDING, ("roleRef.kind", "ClusterRole"),
                           ("roleRef.name", "system:aggregate-to-view"))),
    ("ClusterRole", mutate(CLUSTER_ROLE, ("metadata.name", "system:controller:x"))),
    ("Role", mutate(ROLE, ("rules", []))),
], ids=["role", "cluster-role", "aggregated", "role-binding", "cluster-role-binding",
        "role-binding-to-cluster-role", "colons-in-name", "no-rules"])
def test_documentation_examples_are_valid(kind: str, doc: dict[str, Any]) -> None:
    assert problems(kind, doc) == []


# --- defaulting -------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "doc", "expected"), [
    ("RoleBinding", mutate(ROLE_BINDING, ("roleRef.apiGroup", DELETE),
                           ("subjects.0.apiGroup", DELETE)),
     {"roleRef.apiGroup": "rbac.authorization.k8s.io",
      "subjects.0.apiGroup": "rbac.authorization.k8s.io", "subjects.1.apiGroup": None}),
    ("ClusterRoleBinding", mutate(CLUSTER_ROLE_BINDING, ("roleRef.apiGroup", DELETE),
                                  ("subjects.0.apiGroup", DELETE)),
     {"roleRef.apiGroup": "rbac.authorization.k8s.io",
      "subjects.0.apiGroup": "rbac.authorization.k8s.io", "subjects.1.apiGroup": None}),
    ("RoleBinding", mutate(ROLE_BINDING, ("subjects.0.apiGroup", "example.com"),
                           ("subjects.0.kind", "Robot")),  # left alone, then refused
     {"subjects.0.apiGroup": "example.com"}),
], ids=["role-binding", "cluster-role-binding", "unknown-kind"])
def test_defaults(kind: str, doc: dict[str, Any], expected: dict[str, Any]) -> None:
    out = _codec.to_dict(build(kind, doc))
    for path, want in expected.items():
        node: Any = out
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node.get(part)
        assert node == want, path
    again = build(kind, doc)
    before = again.SerializeToString()
    defaults.apply(kind, again)
    assert again.SerializeToString() == before  # idempotent


# --- invalid objects ----------------------------------------------------------------------

R0 = "rules[0]"
CASES: list[tuple[str, str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    # names: path segments, not DNS names
    ("Role", "slash in name", [("metadata.name", "a/b")],
     [("metadata.name", "may not contain '/'")]),
    ("ClusterRole", "dot-dot name", [("metadata.name", "..")],
     [("metadata.name", "may not be '..'")]),
    ("RoleBinding", "percent in name", [("metadata.name", "a%b")],
     [("metadata.name", "may not contain '%'")]),
    ("Role", "no namespace", [("metadata.namespace", DELETE)], []),  # "default" filled in
    # rules
    ("Role", "no verbs", [("rules.0.verbs", [])],
     [(f"{R0}.verbs", "verbs must contain at least one value")]),
    ("Role", "non-resource URLs in a Role", [("rules.0", {"nonResourceURLs": ["/healthz"],
                                                          "verbs": ["get"]})],
     [(f"{R0}.nonResourceURLs", "namespaced rules cannot apply to non-resource URLs")]),
    ("ClusterRole", "URLs with resources", [("rules.1.resources", ["pods"])],
     [("rules[1].nonResourceURLs", "cannot apply to both regular resources and "
       "non-resource URLs")]),
    ("ClusterRole", "URLs with api groups", [("rules.1.apiGroups", [""])],
     [("rules[1].nonResourceURLs", "cannot apply to both")]),
    ("ClusterRole", "URLs with resource names", [("rules.1.resourceNames", ["x"])],
     [("rules[1].nonResourceURLs", "cannot apply to both")]),
    ("Role", "both, in a Role", [("rules.0.nonResourceURLs", ["/x"])],
     [(f"{R0}.nonResourceURLs", "namespaced rules cannot apply"),
      (f"{R0}.nonResourceURLs", "cannot apply to both")]),
    ("Role", "no api groups", [("rules.0.apiGroups", [])],
     [(f"{R0}.apiGroups", "resource rules must supply at least one api group")]),
    ("ClusterRole", "no resources", [("rules.0.resources", [])],
     [(f"{R0}.resources", "resource rules must supply at least one resource")]),
    ("ClusterRole", "empty rule", [("rules.1", {})],
     [("rules[1].verbs", "Required value"), ("rules[1].apiGroups", "Required value"),
      ("rules[1].resources", "Required value")]),
    # aggregation rules
    ("ClusterRole", "aggregation without selectors", [("aggregationRule", {})],
     [("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector required")]),
    ("ClusterRole", "bad selector", [("aggregationRule", {"clusterRoleSelectors": [
        {"matchLabels": {"a": "b"}},
        {"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["x"]}]}]})],
     [("aggregationRule.clusterRoleSelectors[1].matchExpressions[0].values",
       "must be empty when the operator is Exists")]),
    ("ClusterRole", "bad selector label", [("aggregationRule", {"clusterRoleSelectors": [
        {"matchLabels": {"-bad": "x"}}]})],
     [("aggregationRule.clusterRoleSelectors[0].matchLabels", "-bad")]),
    # roleRef
    ("RoleBinding", "roleRef group", [("roleRef.apiGroup", "example.com")],
     [("roleRef.apiGroup", 'Unsupported value: "example.com": supported values: '
       '"rbac.authorization.k8s.io"')]),
    ("RoleBinding", "roleRef kind", [("roleRef.kind", "Binding")],
     [("roleRef.kind", 'Unsupported value: "Binding": supported values: "Role", '
       '"ClusterRole"')]),
    ("RoleBinding", "roleRef kind missing", [("roleRef.kind", DELETE)],
     [("roleRef.kind", 'Unsupported value: ""')]),
    ("ClusterRoleBinding", "roleRef to a Role", [("roleRef.kind", "Role")],
     [("roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"')]),
    ("RoleBinding", "roleRef name missing", [("roleRef.name", DELETE)],
     [("roleRef.name", "Required value")]),
    ("ClusterRoleBinding", "roleRef name", [("roleRef.name", "a/b")],
     [("roleRef.name", "may not contain '/'")]),
    ("RoleBinding", "no roleRef", [("roleRef", DELETE)],  # apiGroup defaulted
     [("roleRef.kind", 'Unsupported value: ""'), ("roleRef.name", "Required value")]),
    # subjects
    ("RoleBinding", "subject kind", [("subjects.0.kind", "Robot")],
     [("subjects[0].kind", 'Unsupported value: "Robot": supported values: '
       '"ServiceAccount", "User", "Group"')]),
    ("RoleBinding", "subject name", [("subjects.0.name", DELETE)],
     [("subjects[0].name", "Required value")]),
    ("RoleBinding", "user group", [("subjects.0.apiGroup", "example.com")],
     [("subjects[0].apiGroup", 'Unsupported value: "example.com"')]),
    ("ClusterRoleBinding", "group subject group", [("subjects.0.apiGroup", "v1")],
     [("subjects[0].apiGroup", 'supported values: "rbac.authorization.k8s.io"')]),
    ("RoleBinding", "service account group", [("subjects.1.apiGroup",
                                               "rbac.authorization.k8s.io")],
     [("subjects[1].apiGroup", 'Unsupported value: "rbac.authorization.k8s.io": '
       'supported values: ""')]),
    ("RoleBinding", "service account name", [("subjects.1.name", "Not_A_Name")],
     [("subjects[1].name", "lowercase RFC 1123 subdomain")]),
    ("ClusterRoleBinding", "service account without namespace",
     [("subjects.1.namespace", DELETE)],
     [("subjects[1].namespace", "Required value")]),
    ("RoleBinding", "service account without namespace is the binding's", [], []),
]


@pytest.mark.parametrize(("kind", "changes", "expected"),
                         [(k, c, e) for k, _, c, e in CASES],
                         ids=[f"{k}: {n}" for k, n, _, _ in CASES])
def test_invalid(kind: str, changes: list[tuple[str, Any]],
                 expected: list[tuple[str, str]]) -> None:
    assert_problems(problems(kind, mutate(BASES[kind], *changes)), expected)


# --- updates ------------------------------------------------------------------------------

UPDATES: list[tuple[str, str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("RoleBinding", "subjects change", [("subjects.2", {"kind": "Group", "name": "ops"})], []),
    ("RoleBinding", "roleRef name", [("roleRef.name", "other")],
     [("roleRef", "cannot change roleRef")]),
    ("RoleBinding", "roleRef kind", [("roleRef.kind", "ClusterRole")],
     [("roleRef", "cannot change roleRef")]),
    ("RoleBinding", "roleRef group left out (defaulted)", [("roleRef.apiGroup", DELETE)], []),
    ("ClusterRoleBinding", "roleRef name", [("roleRef.name", "view")],
     [("roleRef", "cannot change roleRef")]),
    ("ClusterRoleBinding", "labels change", [("metadata.labels", {"a": "b"})], []),
    ("Role", "rules change", [("rules.0.verbs", ["*"])], []),
    ("ClusterRole", "rules change", [("rules", [])], []),
    ("ClusterRole", "aggregation added", [("aggregationRule", {"clusterRoleSelectors": [
        {"matchLabels": {"a": "b"}}]})], []),
    ("ClusterRole", "name", [("metadata.name", "other")],
     [("metadata.name", "field is immutable")]),
]


@pytest.mark.parametrize(("kind", "changes", "expected"),
                         [(k, c, e) for k, _, c, e in UPDATES],
                         ids=[f"{k}: {n}" for k, n, _, _ in UPDATES])
def test_updates(kind: str, changes: list[tuple[str, Any]],
                 expected: list[tuple[str, str]]) -> None:
    old = BASES[kind]
    assert_problems(update_problems(kind, old, mutate(old, *changes)), expected)
