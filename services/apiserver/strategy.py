"""Per-kind behaviour of the generic verbs: what the server sets, keeps, defaults, validates.

A ``Strategy`` is consulted by ``resources.py`` at fixed points (Kubernetes' REST
strategies play the same role):

    create: prepare_for_create → defaults.apply → validation.validate
    update: prepare_for_update (or _status_update) → defaults.apply → validate + validate_update

Every hook works on a fresh message the verb owns; none touches cached objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from navarch._kinds import Kind

from . import defaults, validation
from .errors import FieldViolation, bad_request
from .objects import Obj

__all__ = ["Strategy", "strategy_for"]

# Field selectors Kubernetes supports per kind, beyond metadata.name/metadata.namespace.
_FIELDS: dict[str, Callable[[Obj], dict[str, str]]] = {}


def _fields(kind: str) -> Callable[[Callable[[Obj], dict[str, str]]],
                                   Callable[[Obj], dict[str, str]]]:
    def register(fn: Callable[[Obj], dict[str, str]]) -> Callable[[Obj], dict[str, str]]:
        _FIELDS[kind] = fn
        return fn
    return register


def _bool(value: bool) -> str:
    return "true" if value else "false"


@_fields("Pod")
def _pod_fields(pod: Obj) -> dict[str, str]:
    spec, status = pod.spec, pod.status
    return {
        "spec.nodeName": spec.node_name,
        "spec.restartPolicy": spec.restart_policy,
        "spec.schedulerName": spec.scheduler_name,
        "spec.serviceAccountName": spec.service_account_name,
        "spec.hostNetwork": _bool(spec.host_network),
        "status.phase": status.phase,
        "status.podIP": status.pod_ip,
        "status.nominatedNodeName": status.nominated_node_name,
    }


@_fields("Node")
def _node_fields(node: Obj) -> dict[str, str]:
    return {"spec.unschedulable": _bool(node.spec.unschedulable)}


@_fields("Namespace")
def _namespace_fields(ns: Obj) -> dict[str, str]:
    return {"status.phase": ns.status.phase}


@_fields("Secret")
def _secret_fields(secret: Obj) -> dict[str, str]:
    return {"type": secret.type}


@_fields("Service")
def _service_fields(svc: Obj) -> dict[str, str]:
    spec = svc.spec
    return {"spec.clusterIP": spec.cluster_ip, "spec.type": spec.type}


@_fields("ReplicaSet")
def _replicaset_fields(rs: Obj) -> dict[str, str]:
    return {"status.replicas": str(rs.status.replicas)}


@_fields("Job")
def _job_fields(job: Obj) -> dict[str, str]:
    return {"status.successful": str(job.status.succeeded)}


@_fields("Event")
def _event_fields(ev: Obj) -> dict[str, str]:
    ref = ev.involved_object
    return {
        "involvedObject.kind": ref.kind,
        "involvedObject.namespace": ref.namespace,
        "involvedObject.name": ref.name,
        "involvedObject.uid": ref.uid,
        "involvedObject.apiVersion": ref.api_version,
        "involvedObject.resourceVersion": ref.resource_version,
        "involvedObject.fieldPath": ref.field_path,
        "reason": ev.reason,
        "reportingComponent": ev.reporting_component,
        "source": ev.source.component,
        "type": ev.type,
    }


class Strategy:
    """The hooks of one kind. Stateless; one instance per storage kind."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        fields = {f.name for f in kind.message.DESCRIPTOR.fields}
        self.has_spec = "spec" in fields
        self.has_status = "status" in kind.subresources
        self._extra_fields = _FIELDS.get(kind.kind)
        probe = self.describe(kind.message())[1]
        self.field_names = frozenset(probe)

    # --- selectors ----------------------------------------------------------------------

    def describe(self, obj: Obj) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(labels, selectable fields) of ``obj``."""
        meta = obj.metadata
        fields = {"metadata.name": meta.name, "metadata.namespace": meta.namespace}
        if self._extra_fields is not None:
            fields.update(self._extra_fields(obj))
        return meta.labels, fields

    def check_field_selector(self, names: frozenset[str]) -> None:
        """INVALID_ARGUMENT naming the first field this kind cannot be selected by."""
        unknown = sorted(names - self.field_names)
        if unknown:
            known = ", ".join(f'"{n}"' for n in sorted(self.field_names))
            raise bad_request(f'field label not supported: "{unknown[0]}" is not a known '
                              f"field selector for {self.kind.resource}: only {known}")

    # --- create -------------------------------------------------------------------------

    def prepare_for_create(self, obj: Obj) -> None:
        """Reset what users may not set on create (status, for kinds with a status
        subresource, except where the kind's creator reports it, like Node)."""
        if self.has_status and self.kind.kind not in ("Node", "PersistentVolume"):
            obj.ClearField("status")
        if self.kind.kind == "Namespace":
            obj.status.phase = "Active"
        if self.kind.kind == "Pod":
            obj.status.phase = "Pending"

    def default(self, obj: Obj) -> None:
        """Fill in defaults, as Kubernetes' defaulters do; a new Pod gets its QoS class."""
        defaults.apply(self.kind.kind, obj)
        if self.kind.kind == "Pod" and not obj.status.qos_class:
            obj.status.qos_class = qos_class(obj.spec)

    def validate(self, obj: Obj) -> list[FieldViolation]:
        """Every problem with a new object."""
        return validation.validate(self.kind.kind, obj)

    # --- update -------------------------------------------------------------------------

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Keep what the main resource may not change: the status."""
        if self.has_status:
            _copy_field(new, old, "status")

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """Keep everything but the status."""
        status = type(new.status)()
        status.CopyFrom(new.status)
        had_status = new.HasField("status")
        new.CopyFrom(old)
        if had_status:
            new.status.CopyFrom(status)
        else:
            new.ClearField("status")

    def validate_update(self, new: Obj, old: Obj) -> list[FieldViolation]:
        """Every problem with ``new`` replacing ``old`` (immutable fields included)."""
        return validation.validate_update(self.kind.kind, new, old)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """True when the desired state differs, so that generation must be bumped."""
        if not self.has_spec:
            return False
        a = new.spec.SerializeToString(deterministic=True)
        b = old.spec.SerializeToString(deterministic=True)
        return bool(a != b)

    # --- delete -------------------------------------------------------------------------

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds of graceful deletion for ``obj``: only pods bound to a node get any."""
        if self.kind.kind != "Pod":
            return 0
        spec = obj.spec
        if not spec.node_name:
            return 0  # never ran anywhere: nothing to stop
        if requested is not None:
            return max(requested, 0)
        if spec.HasField("termination_grace_period_seconds"):
            return max(int(spec.termination_grace_period_seconds), 0)
        return 30


def _copy_field(new: Obj, old: Obj, name: str) -> None:
    """Set ``new.<name>`` to ``old.<name>``, absent when it is absent there (an empty
    message that is present serializes differently from an absent one)."""
    if old.HasField(name):
        getattr(new, name).CopyFrom(getattr(old, name))
    else:
        new.ClearField(name)


def qos_class(spec: Obj) -> str:
    """Kubernetes' QoS class of a pod spec: Guaranteed when every container limits cpu
    and memory to what it requests, BestEffort when none requests or limits anything,
    else Burstable."""
    containers = [*spec.init_containers, *spec.containers]
    if not any(c.resources.requests or c.resources.limits for c in containers):
        return "BestEffort"
    for c in containers:
        requests, limits = c.resources.requests, c.resources.limits
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                return "Burstable"
    return "Guaranteed"


_STRATEGIES: dict[str, Strategy] = {}


def strategy_for(kind: Kind) -> Strategy:
    """The shared Strategy of a storage kind."""
    found = _STRATEGIES.get(kind.resource)
    if found is None:
        found = _STRATEGIES[kind.resource] = Strategy(kind)
    return found
