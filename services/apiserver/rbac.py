"""Kubernetes' RBAC authorizer (rbac.authorization.k8s.io/v1), over the watch caches.

    request (user, verb, group, resource[/subresource], namespace, name)
      ─▶ ClusterRoleBindings naming the user (directly, by group, or as a service
         account) ─▶ their ClusterRoles' rules
      ─▶ RoleBindings of the request's namespace naming the user ─▶ the rules of the Role
         (same namespace) or ClusterRole they reference
      ─▶ allowed as soon as one rule matches (RBAC has no deny rules)

Rule matching (``rule_allows``): a verb, an API group and a resource equal to the rule's
or ``*``; ``pods/log`` is matched by ``pods/log``, ``*/log`` or ``*`` (not by ``pods``);
``resourceNames`` limits the names (a rule with names never matches a list or create,
which carry none); non-resource URLs match exactly or by a trailing ``*``.

Escalation prevention (``EscalationCheck``, on create and update of roles and bindings,
Kubernetes' policy-based storage): a user may write a Role or ClusterRole only with
rules they already hold where it applies (or with the ``escalate`` verb on it), and a
RoleBinding or ClusterRoleBinding only to a role whose rules they hold (or with ``bind``
on it). ``system:masters`` may do both. Covering is checked rule by rule, each broken
into single (verb, group, resource, name) grants (``uncovered``).

The objects come from the API server's watch caches (``CacheSource``): a decision reads
memory only, and a binding written through this server is seen by the next request once
the cache has it (the usual few milliseconds; Kubernetes' informers lag the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from navarch._kinds import Kind, storage_kind
from navarch.v1 import rbac_pb2

from . import objects
from .auth import CURRENT_USER, MASTERS, Attributes, Decision, UserInfo
from .errors import forbidden_request
from .validation.rbac import RBAC_GROUP

__all__ = [
    "CacheSource", "EscalationCheck", "RBACAuthorizer", "RBACSource", "rule_allows",
    "subject_matches", "uncovered",
]

_SA_PREFIX = "system:serviceaccount:"


class RBACSource(Protocol):
    """Where the authorizer reads roles and bindings."""

    def cluster_role_bindings(self) -> Iterable[rbac_pb2.ClusterRoleBinding]:
        """Every ClusterRoleBinding."""

    def role_bindings(self, namespace: str) -> Iterable[rbac_pb2.RoleBinding]:
        """The RoleBindings of ``namespace``."""

    def cluster_role(self, name: str) -> rbac_pb2.ClusterRole | None:
        """The ClusterRole ``name``."""

    def role(self, namespace: str, name: str) -> rbac_pb2.Role | None:
        """The Role ``name`` of ``namespace``."""


# --- matching --------------------------------------------------------------------------------

def subject_matches(subject: rbac_pb2.Subject, user: UserInfo, binding_namespace: str) -> bool:
    """Whether the binding's ``subject`` names ``user``."""
    if subject.kind == "User":
        return subject.name == user.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        namespace = subject.namespace or binding_namespace
        return user.name == f"{_SA_PREFIX}{namespace}:{subject.name}"
    return False


def _resource_matches(rule_resources: Sequence[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for ruled in rule_resources:
        if ruled in ("*", combined):
            return True
        if subresource and ruled == f"*/{subresource}":
            return True
    return False


def _url_matches(rule_urls: Sequence[str], path: str) -> bool:
    for url in rule_urls:
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: rbac_pb2.PolicyRule, attrs: Attributes) -> bool:
    """Whether ``rule`` grants the request ``attrs`` (Kubernetes' RuleAllows)."""
    if "*" not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if not attrs.resource_request:
        return _url_matches(rule.non_resource_urls, attrs.path)
    if "*" not in rule.api_groups and attrs.api_group not in rule.api_groups:
        return False
    if not _resource_matches(rule.resources, attrs.resource, attrs.subresource):
        return False
    return not rule.resource_names or attrs.name in rule.resource_names


# --- the authorizer --------------------------------------------------------------------------

class RBACAuthorizer:
    """Allows what the user's roles grant; otherwise no opinion (a denial)."""

    def __init__(self, source: RBACSource) -> None:
        self.source = source

    def rules_for(self, user: UserInfo, namespace: str) -> Iterator[rbac_pb2.PolicyRule]:
        """Every rule that applies to ``user`` in ``namespace`` ("" : cluster-wide)."""
        for crb in self.source.cluster_role_bindings():
            if any(subject_matches(s, user, "") for s in crb.subjects):
                role = self.source.cluster_role(crb.role_ref.name)
                if role is not None and crb.role_ref.kind == "ClusterRole":
                    yield from role.rules
        if not namespace:
            return
        for rb in self.source.role_bindings(namespace):
            if not any(subject_matches(s, user, namespace) for s in rb.subjects):
                continue
            ref = rb.role_ref
            found: Any = (self.source.cluster_role(ref.name) if ref.kind == "ClusterRole"
                          else self.source.role(namespace, ref.name))
            if found is not None:
                yield from found.rules

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Allowed when a rule of the user's roles matches the request."""
        for rule in self.rules_for(user, attributes.namespace):
            if rule_allows(rule, attributes):
                return Decision(True)
        return Decision(False)


# --- escalation --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Grant:
    verb: str
    group: str
    resource: str
    name: str
    url: str


def _grants(rule: rbac_pb2.PolicyRule) -> Iterator[_Grant]:
    """The single grants ``rule`` stands for (Kubernetes' BreakdownRule)."""
    for verb in rule.verbs:
        for group in rule.api_groups:
            for resource in rule.resources:
                if rule.resource_names:
                    for name in rule.resource_names:
                        yield _Grant(verb, group, resource, name, "")
                else:
                    yield _Grant(verb, group, resource, "", "")
        for url in rule.non_resource_urls:
            yield _Grant(verb, "", "", "", url)


def _covers_resource(owned: Sequence[str], resource: str) -> bool:
    if "*" in owned or resource in owned:
        return True
    head, slash, sub = resource.partition("/")
    if not slash:
        return False
    return f"{head}/*" in owned or f"*/{sub}" in owned


def _rule_covers(owner: rbac_pb2.PolicyRule, grant: _Grant) -> bool:
    if "*" not in owner.verbs and grant.verb not in owner.verbs:
        return False
    if grant.url:
        return _url_matches(owner.non_resource_urls, grant.url)
    if "*" not in owner.api_groups and grant.group not in owner.api_groups:
        return False
    if not _covers_resource(owner.resources, grant.resource):
        return False
    return not owner.resource_names or (bool(grant.name) and grant.name in owner.resource_names)


def uncovered(owned: Sequence[rbac_pb2.PolicyRule],
              wanted: Iterable[rbac_pb2.PolicyRule]) -> list[rbac_pb2.PolicyRule]:
    """The rules of ``wanted`` that ``owned`` does not cover entirely (Kubernetes'
    Covers): each is checked grant by grant."""
    missing = []
    for rule in wanted:
        if not all(any(_rule_covers(o, g) for o in owned) for g in _grants(rule)):
            missing.append(rule)
    return missing


def _describe_rule(rule: rbac_pb2.PolicyRule) -> str:
    parts = []
    for label, values in (("APIGroups", rule.api_groups), ("Resources", rule.resources),
                          ("ResourceNames", rule.resource_names),
                          ("NonResourceURLs", rule.non_resource_urls), ("Verbs", rule.verbs)):
        if values:
            parts.append(f"{label}:[" + " ".join(f'"{v}"' for v in values) + "]")
    return "{" + ", ".join(parts) + "}"


_ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}


class EscalationCheck:
    """The admission step for writes of roles and bindings (``Resources.admission``)."""

    def __init__(self, authorizer: RBACAuthorizer,
                 allowed: Callable[[UserInfo, Attributes], Decision]) -> None:
        self.authorizer = authorizer
        self.allowed = allowed  # the server's whole authorizer (escalate / bind verbs)

    def __call__(self, kind: Kind, obj: Any) -> None:
        """Refuse (Forbidden) a role or binding that grants more than its writer holds."""
        if kind.group != RBAC_GROUP:
            return
        user = CURRENT_USER.get()
        if user is None or MASTERS in user.groups:
            return
        namespace = obj.metadata.namespace if kind.namespaced else ""
        if kind.kind in _ROLE_KINDS:
            special = Attributes("escalate", kind.resource, "", namespace, obj.metadata.name,
                                 RBAC_GROUP)
            if self.allowed(user, special).allowed:
                return
            self._confirm(user, namespace, obj.rules, kind, obj.metadata.name)
            return
        ref = obj.role_ref
        resource = _ROLE_KINDS.get(ref.kind)
        if resource is None:
            return  # validation reports it
        special = Attributes("bind", resource, "", namespace, ref.name, RBAC_GROUP)
        if self.allowed(user, special).allowed:
            return
        role = (self.authorizer.source.role(namespace, ref.name) if ref.kind == "Role"
                else self.authorizer.source.cluster_role(ref.name))
        if role is None:
            raise forbidden_request(
                f'{kind.group_resource} "{obj.metadata.name}" is forbidden: '
                f'{ref.kind.lower()}s.{RBAC_GROUP} "{ref.name}" not found')
        self._confirm(user, namespace, role.rules, kind, obj.metadata.name)

    def _confirm(self, user: UserInfo, namespace: str, wanted: Sequence[rbac_pb2.PolicyRule],
                 kind: Kind, name: str) -> None:
        owned = list(self.authorizer.rules_for(user, namespace))
        missing = uncovered(owned, wanted)
        if missing:
            groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
            listed = "\n".join(_describe_rule(r) for r in missing)
            raise forbidden_request(
                f'{kind.group_resource} "{name}" is forbidden: user "{user.name}" '
                f"(groups={groups}) is attempting to grant RBAC permissions not currently "
                f"held:\n{listed}")


# --- the objects, from the watch caches --------------------------------------------------------

class CacheSource:
    """Roles and bindings as the API server's watch caches hold them (decoded once per
    change: ``CachedObject.obj`` keeps the decoded message)."""

    def __init__(self, caches: Any) -> None:
        self.caches = caches
        self._kinds = {r: storage_kind(r) for r in
                       ("roles", "clusterroles", "rolebindings", "clusterrolebindings")}

    def _all(self, resource: str, namespace: str = "") -> Iterator[Any]:
        cache = self.caches[resource]
        if not namespace:
            for cached in list(cache.objects.values()):
                yield cached.obj
            return
        prefix = objects.resource_prefix(self._kinds[resource], namespace)
        for key, cached in list(cache.objects.items()):
            if key.startswith(prefix):
                yield cached.obj

    def _one(self, resource: str, namespace: str, name: str) -> Any:
        key = objects.object_key(self._kinds[resource], namespace, name)
        cached = self.caches[resource].get(key)
        return None if cached is None else cached.obj

    def cluster_role_bindings(self) -> Iterable[rbac_pb2.ClusterRoleBinding]:
        """Every ClusterRoleBinding."""
        return self._all("clusterrolebindings")

    def role_bindings(self, namespace: str) -> Iterable[rbac_pb2.RoleBinding]:
        """The RoleBindings of ``namespace``."""
        return self._all("rolebindings", namespace)

    def cluster_role(self, name: str) -> rbac_pb2.ClusterRole | None:
        """The ClusterRole ``name``."""
        found: rbac_pb2.ClusterRole | None = self._one("clusterroles", "", name)
        return found

    def role(self, namespace: str, name: str) -> rbac_pb2.Role | None:
        """The Role ``name`` of ``namespace``."""
        found: rbac_pb2.Role | None = self._one("roles", namespace, name)
        return found
