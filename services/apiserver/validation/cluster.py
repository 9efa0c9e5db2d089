"""Namespaces, Nodes, PersistentVolumes, PersistentVolumeClaims and Events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import (
    FieldViolation,
    duplicate,
    forbidden,
    immutable,
    invalid,
    not_supported,
    required,
    too_long,
)
from .common import (
    Errors,
    changed_fields,
    check_label_selector,
    check_names,
    check_nonnegative,
    check_quantity,
    check_value,
    key,
    parse_quantity,
)
from .meta import check_finalizer_name, check_object_meta
from .scheduling import TAINT_EFFECTS, check_node_selector
from .volumes import check_host_path, check_nfs

__all__ = [
    "validate_event", "validate_namespace", "validate_node", "validate_node_update",
    "validate_persistent_volume", "validate_persistent_volume_claim",
    "validate_persistent_volume_claim_update", "validate_persistent_volume_update",
]

_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
_VOLUME_MODES = ("Block", "Filesystem")
_ADDRESS_TYPES = ("Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS")
_EVENT_TYPES = ("Normal", "Warning")
_PV_SOURCES = (("host_path", "hostPath"), ("nfs", "nfs"), ("local", "local"))
_MAX_REASON = 128
_MAX_NOTE = 1024


# --- Namespace ----------------------------------------------------------------------------

def validate_namespace(ns: core_pb2.Namespace) -> Errors:
    """A DNS-1123 label name; spec.finalizers standard or domain-qualified."""
    errors = check_object_meta("Namespace", ns.metadata)
    for i, name in enumerate(ns.spec.finalizers):
        errors += check_finalizer_name(f"spec.finalizers[{i}]", name)
    errors += check_value("status.phase", ns.status.phase, ("Active", "Terminating"),
                          optional=True)
    return errors


# --- Node ---------------------------------------------------------------------------------

def validate_node(node: core_pb2.Node) -> Errors:
    """Taints, pod CIDRs, and well-formed status quantities and addresses."""
    errors = check_object_meta("Node", node.metadata)
    errors += _check_taints(node.spec.taints)
    spec = node.spec
    if spec.pod_cidr:
        errors += check_names("spec.podCIDR", spec.pod_cidr, _names.cidr)
    for i, cidr in enumerate(spec.pod_cidrs):
        errors += check_names(f"spec.podCIDRs[{i}]", cidr, _names.cidr)
    if len(spec.pod_cidrs) > 2:
        errors.append(invalid("spec.podCIDRs", ",".join(spec.pod_cidrs),
                              "may specify no more than one CIDR for each IP family"))
    if spec.pod_cidr and spec.pod_cidrs and spec.pod_cidrs[0] != spec.pod_cidr:
        errors.append(invalid("spec.podCIDRs", ",".join(spec.pod_cidrs),
                              "the first element must match `podCIDR`"))
    errors += _check_quantities("status.capacity", node.status.capacity)
    errors += _check_quantities("status.allocatable", node.status.allocatable)
    for i, addr in enumerate(node.status.addresses):
        errors += check_value(f"status.addresses[{i}].type", addr.type, _ADDRESS_TYPES)
    return errors


def _check_quantities(path: str, values: Mapping[str, str]) -> Errors:
    errors: Errors = []
    for name in sorted(values):
        errors += check_quantity(key(path, name), values[name])
    return errors


def _check_taints(taints: Iterable[core_pb2.Taint]) -> Errors:
    errors: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        at = f"spec.taints[{i}]"
        if not taint.key:
            errors.append(required(f"{at}.key"))
        else:
            errors += check_names(f"{at}.key", taint.key, _names.qualified_name)
        errors += check_names(f"{at}.value", taint.value, _names.label_value)
        errors += check_value(f"{at}.effect", taint.effect, TAINT_EFFECTS)
        if (taint.key, taint.effect) in seen:
            errors.append(duplicate(at, f"{taint.key}:{taint.effect}"))
        seen.add((taint.key, taint.effect))
    return errors


def validate_node_update(new: core_pb2.Node, old: core_pb2.Node) -> Errors:
    """podCIDR(s) and providerID may only go from unset to set."""
    errors: list[FieldViolation] = []
    a, b = new.spec, old.spec
    if (b.pod_cidr and a.pod_cidr != b.pod_cidr) or (b.pod_cidrs and a.pod_cidrs != b.pod_cidrs):
        errors.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except '
                                'from "" to a valid value'))
    if b.provider_id and a.provider_id != b.provider_id:
        errors.append(forbidden("spec.providerID", 'node updates may not change providerID '
                                'except from "" to a valid value'))
    return errors


# --- PersistentVolume ---------------------------------------------------------------------

def _check_access_modes(path: str, modes: Iterable[str], what: str) -> Errors:
    listed = list(modes)
    if not listed:
        return [required(path, f"at least 1 access mode is required for a {what}")]
    errors = [not_supported(f"{path}[{i}]", m, _ACCESS_MODES)
              for i, m in enumerate(listed) if m not in _ACCESS_MODES]
    if "ReadWriteOncePod" in listed and len(listed) > 1:
        errors.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errors


def validate_persistent_volume(pv: core_pb2.PersistentVolume) -> Errors:
    """Capacity (storage only), access modes, reclaim policy, exactly one source."""
    spec = pv.spec
    errors = check_object_meta("PersistentVolume", pv.metadata)
    if not spec.capacity:
        errors.append(required("spec.capacity"))
    elif set(spec.capacity) != {"storage"}:
        errors.append(not_supported("spec.capacity", ",".join(sorted(spec.capacity)),
                                    ("storage",)))
    errors += _check_quantities("spec.capacity", spec.capacity)
    errors += _check_access_modes("spec.accessModes", spec.access_modes, "persistent volume")
    errors += check_value("spec.persistentVolumeReclaimPolicy",
                          spec.persistent_volume_reclaim_policy, _RECLAIM_POLICIES)
    if spec.HasField("volume_mode"):
        errors += check_value("spec.volumeMode", spec.volume_mode, _VOLUME_MODES)
    if spec.storage_class_name:
        errors += check_names("spec.storageClassName", spec.storage_class_name,
                              _names.dns1123_subdomain)
    errors += _check_pv_source(spec)
    if spec.HasField("node_affinity"):
        if spec.node_affinity.HasField("required"):
            errors += check_node_selector("spec.nodeAffinity.required",
                                          spec.node_affinity.required)
        else:
            errors.append(required("spec.nodeAffinity.required"))
    return errors


def _check_pv_source(spec: core_pb2.PersistentVolumeSpec) -> Errors:
    present = [(n, j) for n, j in _PV_SOURCES if spec.HasField(n)]
    if not present:
        return [required("spec", "must specify a volume type")]
    errors: Errors = [forbidden(f"spec.{j}", "may not specify more than 1 volume type")
                      for _, j in present[1:]]
    if spec.HasField("host_path"):
        errors += check_host_path("spec.hostPath", spec.host_path)
    if spec.HasField("nfs"):
        errors += check_nfs("spec.nfs", spec.nfs)
    if spec.HasField("local"):
        if not spec.local.path:
            errors.append(required("spec.local.path"))
        elif not spec.local.path.startswith("/"):
            errors.append(invalid("spec.local.path", spec.local.path, "must be an absolute path"))
        if not spec.HasField("node_affinity"):
            errors.append(required("spec.nodeAffinity", "a local volume requires node affinity"))
    if spec.persistent_volume_reclaim_policy == "Recycle" and spec.HasField("local"):
        errors.append(forbidden("spec.persistentVolumeReclaimPolicy",
                                "may not be 'Recycle' for a local volume"))
    return errors


def validate_persistent_volume_update(new: core_pb2.PersistentVolume,
                                      old: core_pb2.PersistentVolume) -> Errors:
    """The volume source and volume mode are fixed; node affinity only goes from unset
    to set."""
    a, b = new.spec, old.spec
    errors: Errors = []
    for name, json in _PV_SOURCES:
        if a.HasField(name) != b.HasField(name) or getattr(a, name) != getattr(b, name):
            errors.append(forbidden(f"spec.{json}", "the volume source is immutable after "
                                    "creation"))
    if a.volume_mode != b.volume_mode:
        errors.append(immutable("spec.volumeMode", a.volume_mode))
    if b.HasField("node_affinity") and a.node_affinity != b.node_affinity:
        errors.append(immutable("spec.nodeAffinity"))
    return errors


# --- PersistentVolumeClaim ----------------------------------------------------------------

def validate_persistent_volume_claim(pvc: core_pb2.PersistentVolumeClaim) -> Errors:
    """Access modes, a positive storage request, selector, class, mode, data source."""
    errors = check_object_meta("PersistentVolumeClaim", pvc.metadata)
    return errors + check_claim_spec("spec", pvc.spec)


def check_claim_spec(path: str, spec: core_pb2.PersistentVolumeClaimSpec) -> Errors:
    """A claim's spec at ``path`` (also used for StatefulSet volumeClaimTemplates)."""
    errors = _check_access_modes(f"{path}.accessModes", spec.access_modes,
                                 "persistent volume claim")
    if spec.HasField("selector"):
        errors += check_label_selector(f"{path}.selector", spec.selector)
    requests = spec.resources.requests
    storage = key(f"{path}.resources.requests", "storage")
    if "storage" not in requests:
        errors.append(required(storage))
    for kind, values in (("requests", requests), ("limits", spec.resources.limits)):
        errors += _check_quantities(f"{path}.resources.{kind}", values)
    size = parse_quantity(requests.get("storage", ""))
    if size is not None and size.is_zero():
        errors.append(invalid(storage, requests["storage"], "must be greater than zero"))
    if spec.HasField("storage_class_name") and spec.storage_class_name:
        errors += check_names(f"{path}.storageClassName", spec.storage_class_name,
                              _names.dns1123_subdomain)
    if spec.HasField("volume_mode"):
        errors += check_value(f"{path}.volumeMode", spec.volume_mode, _VOLUME_MODES)
    if spec.HasField("data_source"):
        for name in ("kind", "name"):
            if not getattr(spec.data_source, name):
                errors.append(required(f"{path}.dataSource.{name}"))
    return errors


def validate_persistent_volume_claim_update(new: core_pb2.PersistentVolumeClaim,
                                            old: core_pb2.PersistentVolumeClaim) -> Errors:
    """Only resources.requests (storage never shrinking) and an unset volumeName (binding)
    may change."""
    probe = core_pb2.PersistentVolumeClaimSpec()
    probe.CopyFrom(new.spec)
    probe.resources.CopyFrom(old.spec.resources)
    if not old.spec.volume_name:
        probe.volume_name = ""
    errors: Errors = []
    if probe != old.spec:
        changed = ", ".join(changed_fields(probe, old.spec, "spec"))
        errors.append(forbidden("spec", "spec is immutable after creation except "
                                f"resources.requests and an unset volumeName; changed: {changed}"))
    before = parse_quantity(old.spec.resources.requests.get("storage", ""))
    after = parse_quantity(new.spec.resources.requests.get("storage", ""))
    if before is not None and after is not None and after < before:
        errors.append(forbidden(key("spec.resources.requests", "storage"),
                                "field can not be less than previous value"))
    return errors


# --- Event --------------------------------------------------------------------------------

def validate_event(ev: core_pb2.Event) -> Errors:
    """An involved object (kind, name, matching namespace), a reason, a known type; the
    reporting fields of new-style events (those with an eventTime)."""
    errors = check_object_meta("Event", ev.metadata)
    ref = ev.involved_object
    for name in ("kind", "name"):
        if not getattr(ref, name):
            errors.append(required(f"involvedObject.{name}"))
    namespace = ev.metadata.namespace
    if (ref.namespace and ref.namespace != namespace) or \
            (not ref.namespace and namespace not in ("", "default")):
        errors.append(invalid("involvedObject.namespace", ref.namespace,
                              "does not match event.namespace"))
    if not ev.reason:
        errors.append(required("reason"))
    elif len(ev.reason) > _MAX_REASON:
        errors.append(too_long("reason", _MAX_REASON))
    errors += check_value("type", ev.type, _EVENT_TYPES, optional=True)
    errors += check_nonnegative("count", ev.count)
    if ev.HasField("event_time"):
        errors += _check_reporting(ev)
    return errors


def _check_reporting(ev: core_pb2.Event) -> Errors:
    errors: Errors = []
    if not ev.reporting_component:
        errors.append(required("reportingComponent"))
    else:
        errors += check_names("reportingComponent", ev.reporting_component,
                              _names.qualified_name)
    for value, path in ((ev.reporting_instance, "reportingInstance"), (ev.action, "action")):
        if not value:
            errors.append(required(path))
        elif len(value) > _MAX_REASON:
            errors.append(too_long(path, _MAX_REASON))
    if len(ev.message) > _MAX_NOTE:
        errors.append(too_long("message", _MAX_NOTE))
    return errors
