"""The kinds Navarch serves: names, API versions, scope and protobuf message of each.

This table is the single source for the SDK (typed accessors, manifest loading), navctl
(resource names and short names) and the API server (storage keys, discovery).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

# Importing the generated modules registers every kind in the default descriptor pool.
from navarch.v1 import (  # noqa: F401
    apps_pb2,
    autoscaling_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    meta_pb2,
    metrics_pb2,
    policy_pb2,
    rbac_pb2,
)

__all__ = [
    "KINDS", "Kind", "UnknownKind", "kind_for", "kind_of_message", "resource", "storage_kind",
]

_ALL_VERBS = ("create", "get", "list", "watch", "update", "patch", "delete")


class UnknownKind(LookupError):
    """No served kind matches the name or the apiVersion/kind pair."""


@dataclass(frozen=True)
class Kind:
    """One served kind.

    ``resource`` is the plural name used in requests and storage keys. Several Kinds may
    share a resource when Kubernetes serves it in several versions (HPA v1 and v2); the
    one with ``storage=True`` is the form objects are stored and returned in.
    """

    kind: str
    group: str
    version: str
    resource: str
    message_type: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    storage: bool = True

    @property
    def api_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps``, or ``pods`` for the core group: the resource as
        Kubernetes names it in errors."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def group_kind(self) -> str:
        """``Deployment.apps``, or ``Pod`` for the core group: the kind as Kubernetes
        names it in errors."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular(self) -> str:
        """The lower-case kind, e.g. ``deployment``."""
        return self.kind.lower()

    @property
    def message(self) -> type[Any]:
        """The generated message class of this kind (typed loosely: generic code reaches
        fields such as ``spec`` by name)."""
        return _message_class(self.message_type)

    def new(self) -> Any:
        """An empty object of this kind with apiVersion and kind set."""
        obj = self.message()
        obj.api_version = self.api_version
        obj.kind = self.kind
        return obj


def _core(kind: str, resource: str, *, short: tuple[str, ...] = (),
          sub: tuple[str, ...] = (), namespaced: bool = True,
          verbs: tuple[str, ...] = _ALL_VERBS) -> Kind:
    return Kind(kind, "", "v1", resource, f"navarch.v1.{kind}", namespaced, short, sub, verbs)


def _grouped(group: str, version: str, kind: str, resource: str, *,
             short: tuple[str, ...] = (), sub: tuple[str, ...] = (),
             message: str = "", storage: bool = True, namespaced: bool = True,
             verbs: tuple[str, ...] = _ALL_VERBS) -> Kind:
    return Kind(kind, group, version, resource, f"navarch.v1.{message or kind}", namespaced,
                short, sub, verbs, storage)


_RBAC = "rbac.authorization.k8s.io"


KINDS: tuple[Kind, ...] = (
    _core("Namespace", "namespaces", short=("ns",), sub=("status",), namespaced=False),
    _core("Node", "nodes", short=("no",), sub=("status",), namespaced=False),
    _core("Pod", "pods", short=("po",), sub=("status", "binding", "eviction")),
    _core("PodTemplate", "podtemplates"),
    _core("Service", "services", short=("svc",), sub=("status",)),
    _core("Endpoints", "endpoints", short=("ep",)),
    _core("ConfigMap", "configmaps", short=("cm",)),
    _core("Secret", "secrets"),
    _core("ServiceAccount", "serviceaccounts", short=("sa",)),
    _core("Event", "events", short=("ev",)),
    _core("PersistentVolume", "persistentvolumes", short=("pv",), sub=("status",),
          namespaced=False),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)),
    _grouped("apps", "v1", "Deployment", "deployments", short=("deploy",),
             sub=("status", "scale")),
    _grouped("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), sub=("status", "scale")),
    _grouped("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), sub=("status",)),
    _grouped("apps", "v1", "StatefulSet", "statefulsets", short=("sts",),
             sub=("status", "scale")),
    _grouped("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _grouped("batch", "v1", "Job", "jobs", sub=("status",)),
    _grouped("batch", "v1", "CronJob", "cronjobs", short=("cj",), sub=("status",)),
    _grouped("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             short=("hpa",), sub=("status",)),
    _grouped("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             short=("hpa",), sub=("status",), message="HorizontalPodAutoscalerV1",
             storage=False),
    _grouped("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",),
             sub=("status",)),
    _grouped(_RBAC, "v1", "Role", "roles"),
    _grouped(_RBAC, "v1", "ClusterRole", "clusterroles", namespaced=False),
    _grouped(_RBAC, "v1", "RoleBinding", "rolebindings"),
    _grouped(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _grouped("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
             "selfsubjectaccessreviews", namespaced=False, verbs=("create",)),
    _grouped("coordination.k8s.io", "v1", "Lease", "leases"),
    _grouped("metrics.k8s.io", "v1beta1", "PodMetrics", "podmetrics"),
)


@functools.cache
def _message_class(full_name: str) -> type[Message]:
    desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    cls: type[Message] = message_factory.GetMessageClass(desc)
    return cls


@functools.cache
def _by_api_version() -> dict[tuple[str, str], Kind]:
    return {(k.api_version, k.kind): k for k in KINDS}


@functools.cache
def _by_name() -> dict[str, Kind]:
    names: dict[str, Kind] = {}
    for k in KINDS:
        if not k.storage:
            continue
        for name in (k.resource, k.singular, *k.short_names):
            names[name] = k
        if k.group:
            names[f"{k.resource}.{k.group}"] = k
    return names


@functools.cache
def _by_message() -> dict[str, Kind]:
    return {k.message_type: k for k in KINDS}


def kind_for(api_version: str, kind: str) -> Kind:
    """The Kind a manifest's ``apiVersion`` and ``kind`` select."""
    found = _by_api_version().get((api_version, kind))
    if found is not None:
        return found
    versions = sorted(k.api_version for k in KINDS if k.kind == kind)
    if versions:
        raise UnknownKind(f'no kind "{kind}" in apiVersion "{api_version}"; '
                          f"served versions: {', '.join(versions)}")
    raise UnknownKind(f'no kind "{kind}" is served (see `navctl api-resources`)')


def resource(name: str) -> Kind:
    """The storage Kind for a resource name as users type it: plural, singular, short
    name, ``resource.group`` or the kind itself (``pods``, ``pod``, ``po``, ``Pod``)."""
    key = name.lower()
    found = _by_name().get(key)  # the singular is the lower-case kind
    if found is None:
        raise UnknownKind(f'the server doesn\'t have a resource type "{name}"')
    return found


def storage_kind(resource_name: str) -> Kind:
    """The storage Kind of a plural resource name (exact, as in requests)."""
    for k in KINDS:
        if k.resource == resource_name and k.storage:
            return k
    raise UnknownKind(f'the server doesn\'t have a resource type "{resource_name}"')


def kind_of_message(msg: Message) -> Kind:
    """The Kind whose message ``msg`` is."""
    found = _by_message().get(msg.DESCRIPTOR.full_name)
    if found is None:
        raise UnknownKind(f"{msg.DESCRIPTOR.full_name} is not a served kind")
    return found
