"""The bootstrap RBAC policy (Kubernetes' bootstrappolicy), and the reconciler that keeps
it in place when an API server starts (Kubernetes' ``rbac/bootstrap-roles`` post-start
hook).

The policy, as data::

    cluster-admin            everything, bound to Group system:masters
    admin ⊇ edit ⊇ view      aggregated ClusterRoles: their rules are those of the roles
                             labelled rbac.authorization.k8s.io/aggregate-to-<name>
                             ("system:aggregate-to-*" carry the rules; the
                             clusterrole-aggregation controller fills them in;
                             system:aggregated-metrics-reader adds PodMetrics to all three)
    system:discovery         GET of the discovery paths, for system:authenticated
    system:basic-user        self access reviews, for system:authenticated
    system:public-info-viewer  health and version paths, for everyone
    system:kube-scheduler, system:kube-controller-manager, system:node,
    system:node-proxier, system:kube-dns
                             what Navarch's scheduler, controller manager, node agent,
                             service proxy and DNS server read and write

Rules name only resources Navarch serves (navarch/_kinds.py), except the self-review
rules of system:basic-user and the non-resource URL lists, which are Kubernetes' own
(the authorizer checks ``navarch.v1.Discovery`` as the URL ``/api``). Every object is
labelled ``kubernetes.io/bootstrapping: rbac-defaults`` and annotated
``rbac.authorization.kubernetes.io/autoupdate: "true"``.

Reconciling (``ensure_bootstrap_policy``), object by object, ClusterRoles first::

    absent                          ─▶ create it
    autoupdate annotation "false"   ─▶ leave it alone (logged when it lacks something)
    otherwise                       ─▶ add what is missing and write it back:
        labels and annotations (the existing values win), the expected rules the
        existing ones do not cover (rbac.uncovered, Kubernetes' Covers: a rule with "*"
        verbs covers any verb…), aggregation selectors; the subjects of a binding.
        Nothing is removed, except an aggregationRule on a role that should have none
        (its rules would otherwise be replaced by the aggregation), and a binding whose
        roleRef changed is deleted and created again (a roleRef cannot be updated).

Writes go through ``Resources`` (defaulting and validation apply) with the
resourceVersion that was read, so that two API servers starting together never undo
each other: a conflict, an AlreadyExists or a NotFound means another server moved first,
and the object is read and reconciled again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from navarch.v1 import meta_pb2, rbac_pb2

from .errors import ApiError
from .rbac import uncovered
from .resources import Resources
from .validation.rbac import RBAC_GROUP

__all__ = [
    "AUTOUPDATE_ANNOTATION", "BOOTSTRAP_LABEL", "Plan", "cluster_role_bindings",
    "cluster_roles", "ensure_bootstrap_policy", "plan_binding", "plan_cluster_role",
]

log = structlog.get_logger("navarch.apiserver.bootstrap-rbac")

AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE

CORE, APPS, BATCH, AUTOSCALING, POLICY = "", "apps", "batch", "autoscaling", "policy"
COORDINATION, METRICS = "coordination.k8s.io", "metrics.k8s.io"
AUTHORIZATION, AUTHENTICATION = "authorization.k8s.io", "authentication.k8s.io"

# Navarch's lease names (--lease-name defaults, services/daemon.py).
SCHEDULER_LEASE = "navarch-scheduler"
CONTROLLER_MANAGER_LEASE = "navarch-controller-manager"

M = TypeVar("M", bound=Message)


# --- building blocks -------------------------------------------------------------------

def _rule(verbs: Iterable[str], groups: Iterable[str], resources: Iterable[str],
          names: Iterable[str] = ()) -> rbac_pb2.PolicyRule:
    return rbac_pb2.PolicyRule(verbs=list(verbs), api_groups=list(groups),
                               resources=list(resources), resource_names=list(names))


def _urls(verbs: Iterable[str], urls: Iterable[str]) -> rbac_pb2.PolicyRule:
    return rbac_pb2.PolicyRule(verbs=list(verbs), non_resource_urls=list(urls))


def _meta(name: str, labels: dict[str, str] | None = None) -> meta_pb2.ObjectMeta:
    meta = meta_pb2.ObjectMeta(name=name, labels=dict(labels or {}))
    meta.labels[BOOTSTRAP_LABEL[0]] = BOOTSTRAP_LABEL[1]
    meta.annotations[AUTOUPDATE_ANNOTATION] = "true"
    return meta


def _role(name: str, rules: Sequence[rbac_pb2.PolicyRule] = (), *,
          aggregate_to: Sequence[str] = (), aggregates: str = "") -> rbac_pb2.ClusterRole:
    labels = {AGGREGATE_TO + target: "true" for target in aggregate_to}
    role = rbac_pb2.ClusterRole(api_version=f"{RBAC_GROUP}/v1", kind="ClusterRole",
                                metadata=_meta(name, labels), rules=list(rules))
    if aggregates:
        role.aggregation_rule.cluster_role_selectors.add().match_labels[
            AGGREGATE_TO + aggregates] = "true"
    return role


def _subject(kind: str, name: str, namespace: str = "") -> rbac_pb2.Subject:
    group = "" if kind == "ServiceAccount" else RBAC_GROUP
    return rbac_pb2.Subject(kind=kind, api_group=group, name=name, namespace=namespace)


def _binding(role: str, *subjects: rbac_pb2.Subject) -> rbac_pb2.ClusterRoleBinding:
    return rbac_pb2.ClusterRoleBinding(
        api_version=f"{RBAC_GROUP}/v1", kind="ClusterRoleBinding", metadata=_meta(role),
        role_ref=rbac_pb2.RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=role),
        subjects=list(subjects))


def _events() -> rbac_pb2.PolicyRule:
    """Kubernetes' eventsRule (the core group only: Navarch serves no events.k8s.io)."""
    return _rule(("create", "update", "patch"), [CORE], ["events"])


def _leader_election(lease: str) -> list[rbac_pb2.PolicyRule]:
    """Create the Lease, then read and renew only this one (by name, as Kubernetes)."""
    return [_rule(["create"], [COORDINATION], ["leases"]),
            _rule(("get", "update"), [COORDINATION], ["leases"], [lease])]


# --- the policy ------------------------------------------------------------------------

def _user_facing_roles() -> list[rbac_pb2.ClusterRole]:
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        _role("system:discovery", [_urls(["get"], [
            "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi",
            "/openapi/*", "/api", "/api/*", "/apis", "/apis/*"])]),
        _role("system:basic-user", [
            _rule(["create"], [AUTHORIZATION],
                  ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], [AUTHENTICATION], ["selfsubjectreviews"])]),
        _role("system:public-info-viewer", [_urls(["get"], [
            "/livez", "/readyz", "/healthz", "/version", "/version/"])]),
        _role("admin", aggregates="admin"),
        _role("edit", aggregate_to=["admin"], aggregates="edit"),
        _role("view", aggregate_to=["edit"], aggregates="view"),
        _role("system:aggregate-to-admin", aggregate_to=["admin"], rules=[
            _rule(READ_WRITE, [RBAC_GROUP], ["roles", "rolebindings"])]),
        _role("system:aggregate-to-edit", aggregate_to=["edit"], rules=[
            # read on escalating resources
            _rule(READ, [CORE], ["pods/exec", "secrets"]),
            _rule(WRITE, [CORE], ["pods", "pods/exec"]),
            _rule(["create"], [CORE], ["pods/eviction"]),
            _rule(WRITE, [CORE], ["configmaps", "events", "persistentvolumeclaims", "secrets",
                                  "serviceaccounts", "services"]),
            _rule(WRITE, [APPS], ["daemonsets", "deployments", "deployments/scale",
                                  "replicasets", "replicasets/scale", "statefulsets",
                                  "statefulsets/scale"]),
            _rule(WRITE, [AUTOSCALING], ["horizontalpodautoscalers"]),
            _rule(WRITE, [BATCH], ["cronjobs", "jobs"]),
            _rule(WRITE, [POLICY], ["poddisruptionbudgets"]),
            _rule(READ_WRITE, [COORDINATION], ["leases"])]),
        _role("system:aggregate-to-view", aggregate_to=["view"], rules=[
            _rule(READ, [CORE], ["configmaps", "endpoints", "persistentvolumeclaims",
                                 "persistentvolumeclaims/status", "pods", "serviceaccounts",
                                 "services", "services/status"]),
            _rule(READ, [CORE], ["events", "namespaces/status", "pods/log", "pods/status"]),
            # read access to namespaces at the namespace scope means you can read *this*
            # namespace: an indicator of which namespaces you have access to
            _rule(READ, [CORE], ["namespaces"]),
            _rule(READ, [APPS], ["controllerrevisions", "daemonsets", "daemonsets/status",
                                 "deployments", "deployments/scale", "deployments/status",
                                 "replicasets", "replicasets/scale", "replicasets/status",
                                 "statefulsets", "statefulsets/scale",
                                 "statefulsets/status"]),
            _rule(READ, [AUTOSCALING], ["horizontalpodautoscalers",
                                        "horizontalpodautoscalers/status"]),
            _rule(READ, [BATCH], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            _rule(READ, [POLICY], ["poddisruptionbudgets", "poddisruptionbudgets/status"])]),
        # metrics-server's role, for the PodMetrics Navarch serves itself
        _role("system:aggregated-metrics-reader", aggregate_to=["admin", "edit", "view"],
              rules=[_rule(READ, [METRICS], ["podmetrics"])]),
    ]


def _component_roles() -> list[rbac_pb2.ClusterRole]:
    return [
        # services/scheduler: pods, nodes and budgets informers; binds, status
        # conditions and nominations, preemption deletes
        _role("system:kube-scheduler", [
            _events(), *_leader_election(SCHEDULER_LEASE),
            _rule(READ, [CORE], ["nodes"]),
            _rule(("get", "list", "watch", "delete"), [CORE], ["pods"]),
            _rule(["create"], [CORE], ["pods/binding"]),
            _rule(("patch", "update"), [CORE], ["pods/status"]),
            _rule(READ, [POLICY], ["poddisruptionbudgets"])]),
        # services/controllers, one identity for every controller (Kubernetes gives each
        # its system:controller:<name> role and service account)
        _role("system:kube-controller-manager", [
            _events(), *_leader_election(CONTROLLER_MANAGER_LEASE),
            # informers of every kind; the garbage collector reads owners of any kind and
            # updates (finalizers, ownerReferences) and deletes dependents; the namespace
            # controller deletes a namespace's content and finalizes it. Status and
            # scale subresources are covered here too.
            _rule(("get", "list", "watch", "update", "patch", "delete"), ["*"], ["*"]),
            # replicaset, job, daemonset, statefulset: pods; endpoints; statefulset:
            # claims from volumeClaimTemplates
            _rule(["create"], [CORE], ["endpoints", "persistentvolumeclaims", "pods"]),
            # deployment: ReplicaSets; daemonset, statefulset: ControllerRevisions
            _rule(["create"], [APPS], ["controllerrevisions", "replicasets"]),
            # cronjob: Jobs
            _rule(["create"], [BATCH], ["jobs"]),
            # clusterrole-aggregation: writing rules it does not hold itself
            _rule(("escalate", "get", "list", "patch", "update", "watch"), [RBAC_GROUP],
                  ["clusterroles"])]),
        # node_agent: registers and heartbeats its Node and Lease, runs the pods bound
        # to it, reports their status and PodMetrics, reads what their env and volumes
        # reference
        _role("system:node", [
            _rule(("create", "get", "list", "watch"), [CORE], ["nodes"]),
            _rule(("update", "patch"), [CORE], ["nodes/status"]),
            _rule(("update", "patch"), [CORE], ["nodes"]),
            _events(),
            _rule(READ, [CORE], ["pods"]),
            _rule(["delete"], [CORE], ["pods"]),
            _rule(("update", "patch"), [CORE], ["pods/status"]),
            _rule(READ, [CORE], ["services"]),
            _rule(["get"], [CORE], ["configmaps", "secrets"]),
            _rule(("get", "create", "update"), [COORDINATION], ["leases"]),
            _rule(("get", "create", "update"), [METRICS], ["podmetrics"])]),
        # netproxy: Services and Endpoints (and Nodes, for routes) informers
        _role("system:node-proxier", [
            _rule(("list", "watch"), [CORE], ["services", "endpoints"]),
            _rule(READ, [CORE], ["nodes"]),
            _events()]),
        # services/dns: Services and Endpoints informers
        _role("system:kube-dns", [
            _rule(("list", "watch"), [CORE], ["endpoints", "services"])]),
    ]


def cluster_roles() -> list[rbac_pb2.ClusterRole]:
    """The bootstrap ClusterRoles (fresh messages: the caller may change them)."""
    return _user_facing_roles() + _component_roles()


def cluster_role_bindings() -> list[rbac_pb2.ClusterRoleBinding]:
    """The bootstrap ClusterRoleBindings (fresh messages). Kubernetes binds system:node
    to nobody since its Node authorizer (1.7); Navarch binds it to system:nodes, as
    Kubernetes did before. ``system:navarch-dns`` is Navarch's DNS server's user."""
    authenticated = _subject("Group", "system:authenticated")
    return [
        _binding("cluster-admin", _subject("Group", "system:masters")),
        _binding("system:discovery", authenticated),
        _binding("system:basic-user", authenticated),
        _binding("system:public-info-viewer", authenticated,
                 _subject("Group", "system:unauthenticated")),
        _binding("system:kube-scheduler", _subject("User", "system:kube-scheduler")),
        _binding("system:kube-controller-manager",
                 _subject("User", "system:kube-controller-manager")),
        _binding("system:node", _subject("Group", "system:nodes")),
        _binding("system:node-proxier", _subject("User", "system:kube-proxy")),
        _binding("system:kube-dns", _subject("ServiceAccount", "kube-dns", "kube-system"),
                 _subject("User", "system:navarch-dns")),
    ]


# --- reconciling: decisions ------------------------------------------------------------

Action = Literal["none", "create", "update", "recreate", "protected"]


@dataclass(frozen=True)
class Plan:
    """What reconciling one bootstrap object comes to: ``obj`` is what to write (a new
    message, for create, update and recreate) and ``missing`` describes what the
    existing object lacks (for the log)."""

    action: Action
    obj: Any = None
    missing: tuple[str, ...] = ()


def _copy(msg: M) -> M:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _protected(existing: Any) -> bool:
    """Kubernetes' reconcile protection: autoupdate "false" exactly."""
    return bool(existing.metadata.annotations.get(AUTOUPDATE_ANNOTATION) == "false")


def _merge_metadata(result: Any, expected: Any) -> list[str]:
    """Add the expected labels and annotations ``result`` lacks (its own values win)."""
    added: list[str] = []
    for field in ("labels", "annotations"):
        have = getattr(result.metadata, field)
        for key, value in getattr(expected.metadata, field).items():
            if key not in have:
                have[key] = value
                added.append(f"{field}[{key}]")
    return added


def _finish(existing: Any, result: Any, missing: list[str]) -> Plan:
    if not missing:
        return Plan("none")
    if _protected(existing):
        return Plan("protected", missing=tuple(missing))
    return Plan("update", result, tuple(missing))


def plan_cluster_role(expected: rbac_pb2.ClusterRole,
                      existing: rbac_pb2.ClusterRole | None) -> Plan:
    """Kubernetes' computeReconciledRole in its union mode: add, never take away. An
    expected rule that is not wholly covered is appended whole (Kubernetes appends only
    its uncovered single-verb parts: the grants are the same, the role reads better)."""
    if existing is None:
        return Plan("create", _copy(expected))
    result = _copy(existing)
    missing = _merge_metadata(result, expected)
    rules = uncovered(list(existing.rules), expected.rules)
    if rules:
        result.rules.extend(rules)
        missing += [f"rules: {_describe(r)}" for r in rules]
    if not expected.HasField("aggregation_rule"):
        if existing.HasField("aggregation_rule"):
            result.ClearField("aggregation_rule")
            missing.append("no aggregationRule")
    else:
        have = list(existing.aggregation_rule.cluster_role_selectors)
        for selector in expected.aggregation_rule.cluster_role_selectors:
            if selector not in have:
                result.aggregation_rule.cluster_role_selectors.add().CopyFrom(selector)
                missing.append(f"aggregationRule: {dict(selector.match_labels)}")
    return _finish(existing, result, missing)


def plan_binding(expected: Any, existing: Any | None) -> Plan:
    """Kubernetes' computeReconciledRoleBinding in its union mode, for a
    ClusterRoleBinding (or RoleBinding): add missing subjects; a changed roleRef
    means delete and create."""
    if existing is None:
        return Plan("create", _copy(expected))
    if existing.role_ref != expected.role_ref:
        if _protected(existing):
            return Plan("protected", missing=("roleRef",))
        return Plan("recreate", _copy(expected), ("roleRef",))
    result = _copy(existing)
    missing = _merge_metadata(result, expected)
    for subject in expected.subjects:
        if subject not in existing.subjects:
            result.subjects.add().CopyFrom(subject)
            missing.append(f"subjects: {subject.kind} {subject.name}")
    return _finish(existing, result, missing)


def _describe(rule: rbac_pb2.PolicyRule) -> str:
    what = list(rule.non_resource_urls) or [
        f"{g}/{r}" if g else r for g in rule.api_groups for r in rule.resources]
    names = f" {list(rule.resource_names)}" if rule.resource_names else ""
    return f"{','.join(rule.verbs)} {','.join(what)}{names}"


# --- reconciling: the writes -----------------------------------------------------------

_ATTEMPTS = 8
# Another API server wrote first (or deleted under us): read again and redo.
_RACES = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND)


async def _get(resources: Resources, resource: str, name: str) -> Any | None:
    try:
        return await resources.get(resource, "", name)
    except ApiError as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def _write(resources: Resources, resource: str, plan: Plan, existing: Any) -> None:
    if plan.action == "create":
        await resources.create(resource, "", plan.obj)
    elif plan.action == "update":
        await resources.update(resource, "", plan.obj)  # pinned to what was read
    elif plan.action == "recreate":
        await resources.delete(resource, "", existing.metadata.name,
                               precondition_uid=existing.metadata.uid)
        await resources.create(resource, "", plan.obj)


async def _reconcile_once(resources: Resources, resource: str, expected: Any,
                          plan: Callable[[Any, Any], Plan]) -> Plan:
    existing = await _get(resources, resource, expected.metadata.name)
    decided = plan(expected, existing)
    await _write(resources, resource, decided, existing)
    return decided


async def _reconcile(resources: Resources, resource: str, expected: Any,
                     plan: Callable[[Any, Any], Plan]) -> Plan:
    """Reconcile one object, reading it again after each race lost to another server."""
    for _ in range(_ATTEMPTS - 1):
        try:
            return await _reconcile_once(resources, resource, expected, plan)
        except ApiError as exc:
            if exc.code not in _RACES:
                raise
    return await _reconcile_once(resources, resource, expected, plan)


async def ensure_bootstrap_policy(resources: Resources) -> None:
    """Create the bootstrap ClusterRoles and ClusterRoleBindings that are missing and add
    to existing ones what they lack (unless annotated autoupdate "false"). Idempotent,
    safe to run from several API servers at once; raises ApiError when a write keeps
    failing."""
    steps: list[tuple[str, Any, Callable[[Any, Any], Plan]]] = [
        *(("clusterroles", role, plan_cluster_role) for role in cluster_roles()),
        *(("clusterrolebindings", b, plan_binding) for b in cluster_role_bindings())]
    done: dict[str, list[str]] = {}
    for resource, expected, planner in steps:
        decided = await _reconcile(resources, resource, expected, planner)
        name = expected.metadata.name
        done.setdefault(decided.action, []).append(f"{resource}/{name}")
        if decided.action == "protected":
            log.warning("bootstrap RBAC object not updated: autoupdate is false",
                        object=f"{resource}/{name}", missing=list(decided.missing))
        elif decided.action in ("update", "recreate"):
            log.info("bootstrap RBAC object reconciled", object=f"{resource}/{name}",
                     added=list(decided.missing), action=decided.action)
    log.info("bootstrap RBAC policy ensured",
             **{action: len(names) for action, names in sorted(done.items())})
