"""``create role|clusterrole|rolebinding|clusterrolebinding``: RBAC objects from flags, as
kubectl's generators (k8s.io/kubectl/pkg/cmd/create/create_role.go and its siblings) build
them. The builders are pure: flags in, an object in Kubernetes JSON form and kubectl's
warnings out; ``generators.run_generated`` creates or prints the object.

- ``create role NAME --verb=V[,V] --resource=R[,R] [--resource-name=N]...``: one rule per
  API group, groups sorted, resources in the order given. A resource is ``pods``,
  ``rs.apps`` (short names and singulars are resolved through the served kinds, so
  ``deployments`` lands in ``apps``), ``pods/log`` (a subresource, kept as written) or
  ``*``; a verb ``*`` replaces all the others; duplicates go. A verb outside kubectl's
  list is kept with ``Warning: 'V' is not a standard resource verb``; ``use``, ``bind``,
  ``escalate`` and ``impersonate`` only apply to the resources Kubernetes gives them
  (``bind`` on ``roles``/``clusterroles``...). A resource the server does not serve is
  refused (``the server doesn't have a resource type "foo"``).
- ``create clusterrole``: the same, plus ``--non-resource-url=/logs/*`` (a rule of its
  own; only the HTTP verbs; ``*`` only at the end) or ``--aggregation-rule=k=v[,k=v]``
  (with nothing else: the rules are computed by the server).
- ``create rolebinding NAME (--role=R | --clusterrole=R)`` and ``create
  clusterrolebinding NAME --clusterrole=R``: subjects from ``--user``, ``--group`` and
  ``--serviceaccount=NAMESPACE:NAME``, in that order.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from navarch._navctl.errors import NavctlError
from navarch._navctl.targets import resource_in_group
from navarch._navctl.values import Obj

__all__ = [
    "Generated", "aggregation_labels", "binding_from", "clusterrole_from", "comma_list",
    "policy_rules", "role_from",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"

# kubectl's validResourceVerbs and validNonResourceVerbs.
RESOURCE_VERBS = ("*", "get", "delete", "list", "create", "update", "patch", "watch", "proxy",
                  "deletecollection", "use", "bind", "escalate", "impersonate")
NON_RESOURCE_VERBS = ("*", "get", "post", "put", "delete", "patch", "head", "options")

# The verbs that only mean something for some resources: (group, resource) pairs.
_SPECIAL_VERBS: dict[str, tuple[tuple[str, str], ...]] = {
    "use": (("policy", "podsecuritypolicies"), ("extensions", "podsecuritypolicies")),
    "bind": ((RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles")),
    "escalate": ((RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles")),
    "impersonate": (("", "users"), ("", "serviceaccounts"), ("", "groups"),
                    ("authentication.k8s.io", "userextras")),
}


@dataclass(frozen=True)
class Generated:
    """An object built from flags, and the warnings kubectl prints (on stderr) while
    building it."""

    object: Obj
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Resource:
    resource: str
    group: str
    subresource: str


def comma_list(values: list[str]) -> list[str]:
    """The values of a repeatable, comma-separated flag (pflag's StringSlice: each value
    read as one CSV record; an empty value adds nothing)."""
    return [item for value in values if value for item in next(csv.reader([value]), [])]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _verbs(verbs: list[str]) -> list[str]:
    """Duplicates removed; ``*`` (anywhere) stands for all of them."""
    return ["*"] if "*" in verbs else _unique(verbs)


def _resources(texts: list[str]) -> list[_Resource]:
    """``resource[.group][/subresource]`` each; a bare ``*`` replaces all of them."""
    found: list[_Resource] = []
    for text in texts:
        head, _, sub = text.partition("/")
        name, _, group = head.partition(".")
        parsed = _Resource(name, group, sub)
        if name == "*" and "." not in head and "/" not in text:
            return [parsed]
        found.append(parsed)
    return found


def _served(res: _Resource) -> tuple[str, str] | None:
    """(group, plural) of a served resource, else None."""
    kind = resource_in_group(res.resource, res.group)
    return None if kind is None else (kind.group, kind.resource)


def _not_served(res: _Resource) -> str:
    if res.group:
        return (f'the server doesn\'t have a resource type "{res.resource}" in group '
                f'"{res.group}"')
    return f'the server doesn\'t have a resource type "{res.resource}"'


def _check_resources(verbs: list[str], resources: list[_Resource]) -> None:
    """kubectl's validateResource: each resource served (or one a special verb names),
    special verbs only on their resources. A ``*`` resource ends the checks."""
    for res in resources:
        if not res.resource:
            raise NavctlError("resource must be specified if apiGroup/subresource specified")
        if res.resource == "*":
            return
        served = _served(res)
        group, plural = served or (res.group, res.resource)
        problem = None if served else _not_served(res)
        for verb in verbs:
            allowed = _SPECIAL_VERBS.get(verb)
            if allowed is None:
                continue
            if (group, plural) not in allowed:
                raise NavctlError(f"can not perform '{verb}' on '{plural}' in group "
                                  f"'{group}'")
            problem = None
        if problem:
            raise NavctlError(problem)


def policy_rules(verbs: list[str], resources: list[_Resource], resource_names: list[str],
                 non_resource_urls: list[str]) -> list[Obj]:
    """kubectl's generateResourcePolicyRules: one rule per API group (sorted), the
    resources of each in the order given, then one rule for the non-resource URLs."""
    by_group: dict[str, list[str]] = {}
    for res in resources:
        group, plural = _served(res) or (res.group, res.resource)
        if res.subresource:
            plural = f"{plural}/{res.subresource}"
        listed = by_group.setdefault(group, [])
        if plural not in listed:
            listed.append(plural)
    rules: list[Obj] = []
    for group in sorted(by_group):
        rule: Obj = {"verbs": list(verbs), "apiGroups": [group],
                     "resources": by_group[group]}
        if resource_names:
            rule["resourceNames"] = list(resource_names)
        rules.append(rule)
    if non_resource_urls:
        rules.append({"verbs": list(verbs), "nonResourceURLs": list(non_resource_urls)})
    return rules


def _verb_warnings(verbs: list[str]) -> tuple[str, ...]:
    return tuple(f"Warning: '{v}' is not a standard resource verb"
                 for v in verbs if v not in RESOURCE_VERBS)


def role_from(name: str, *, verbs: list[str], resources: list[str],
              resource_names: list[str]) -> Generated:
    """The Role ``navctl create role`` makes (one rule per API group)."""
    if not name:
        raise NavctlError("name must be specified")
    verbs = _verbs(verbs)
    parsed = _resources(resources)
    names = _unique(resource_names)
    if not verbs:
        raise NavctlError("at least one verb must be specified")
    warnings = _verb_warnings(verbs)
    if not parsed:
        raise NavctlError("at least one resource must be specified")
    _check_resources(verbs, parsed)
    return Generated({"apiVersion": RBAC_VERSION, "kind": "Role", "metadata": {"name": name},
                      "rules": policy_rules(verbs, parsed, names, [])}, warnings)


def aggregation_labels(values: list[str]) -> dict[str, str]:
    """``--aggregation-rule`` values (``k=v[,k=v]``, repeatable) as one map, as pflag's
    mapStringString reads them."""
    labels: dict[str, str] = {}
    for value in values:
        for pair in value.split(","):
            pair = pair.strip()
            if not pair:
                continue
            key, sep, label = pair.partition("=")
            if not sep:
                raise NavctlError(f'invalid argument "{value}" for "--aggregation-rule" flag: '
                                  "malformed pair, expect string=string")
            labels[key.strip()] = label.strip()
    return labels


def _check_non_resource_urls(verbs: list[str], urls: list[str]) -> None:
    for verb in verbs:
        if verb not in NON_RESOURCE_VERBS:
            raise NavctlError(f"invalid verb: '{verb}' for nonResourceURL")
    for url in urls:
        if url == "*":
            continue
        if not url.startswith("/"):
            raise NavctlError("nonResourceURL should start with /")
        if "*" in url[:-1]:
            raise NavctlError("nonResourceURL only supports wildcard matches when '*' is at "
                              "the end")


def clusterrole_from(name: str, *, verbs: list[str], resources: list[str],
                     resource_names: list[str], non_resource_urls: list[str],
                     aggregation_rule: list[str]) -> Generated:
    """The ClusterRole ``navctl create clusterrole`` makes: rules as ``create role``'s,
    a rule for the non-resource URLs, or an aggregation rule alone."""
    if not name:
        raise NavctlError("name must be specified")
    urls = _unique(non_resource_urls)
    verbs = _verbs(verbs)
    parsed = _resources(resources)
    names = _unique(resource_names)
    aggregate = aggregation_labels(aggregation_rule)
    doc: Obj = {"apiVersion": RBAC_VERSION, "kind": "ClusterRole",
                "metadata": {"name": name}}
    if aggregate:
        if urls or verbs or parsed or names:
            raise NavctlError("aggregation rule must be specified without nonResourceURLs, "
                              "verbs, resources or resourceNames")
        doc["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregate}]}
        return Generated(doc)
    if not verbs:
        raise NavctlError("at least one verb must be specified")
    if not parsed and not urls:
        raise NavctlError("one of resource or nonResourceURL must be specified")
    warnings: tuple[str, ...] = ()
    if parsed:
        warnings = _verb_warnings(verbs)
        _check_resources(verbs, parsed)
    if urls:
        _check_non_resource_urls(verbs, urls)
    doc["rules"] = policy_rules(verbs, parsed, names, urls)
    return Generated(doc, warnings)


def _subjects(users: list[str], groups: list[str], service_accounts: list[str]) -> list[Obj]:
    subjects: list[Obj] = [{"kind": "User", "apiGroup": RBAC_GROUP, "name": u} for u in users]
    subjects += [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": g} for g in groups]
    for text in service_accounts:
        parts = text.split(":")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise NavctlError("serviceaccount must be <namespace>:<name>")
        subjects.append({"kind": "ServiceAccount", "namespace": parts[0], "name": parts[1]})
    return subjects


def binding_from(kind: str, name: str, *, role: str, clusterrole: str, users: list[str],
                 groups: list[str], service_accounts: list[str]) -> Obj:
    """The RoleBinding or ClusterRoleBinding (``kind``) ``navctl create rolebinding|
    clusterrolebinding`` makes."""
    if not name:
        raise NavctlError("name must be specified")
    if kind == "ClusterRoleBinding":
        if not clusterrole:
            raise NavctlError('required flag(s) "clusterrole" not set')
    elif bool(role) == bool(clusterrole):
        raise NavctlError("exactly one of clusterrole or role must be specified")
    ref = ({"apiGroup": RBAC_GROUP, "kind": "Role", "name": role} if role else
           {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": clusterrole})
    doc: Obj = {"apiVersion": RBAC_VERSION, "kind": kind, "metadata": {"name": name},
                "roleRef": ref}
    subjects = _subjects(users, groups, service_accounts)
    if subjects:
        doc["subjects"] = subjects
    return doc
