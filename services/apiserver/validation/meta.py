"""ObjectMeta: names, namespace, labels, annotations, owner references, finalizers.

The name rule depends on the kind (Kubernetes' per-kind name validators): most names are
DNS-1123 subdomains; Namespaces and StatefulSets (whose pods take the name as their host
name) DNS-1123 labels; Services DNS-1035 labels (they become DNS names that must not
start with a digit); HorizontalPodAutoscalers and RBAC roles and bindings
(``system:node``) only need to be usable in a URL path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from navarch import _names
from navarch._kinds import KINDS, Kind
from navarch.v1 import meta_pb2

from ..errors import FieldViolation, forbidden, immutable, invalid, required, too_long
from .common import Errors, NameCheck, check_labels, check_names, check_nonnegative

__all__ = [
    "STANDARD_FINALIZERS", "check_annotations", "check_finalizer_name", "check_object_meta",
    "check_object_meta_update", "name_rule", "path_segment_name",
]

STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
"""Finalizers the system itself uses; every other finalizer must be domain-qualified."""

_GENERATED_SUFFIX = 5  # random characters the server appends to generateName


def path_segment_name(value: str) -> list[str]:
    """Problems with ``value`` as a name that appears in a URL path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{ch}'" for ch in ("/", "%") if ch in value]


_NAME_RULES: dict[str, NameCheck] = {
    "Namespace": _names.dns1123_label,
    "Service": _names.dns1035_label,
    "StatefulSet": _names.dns1123_label,
    "HorizontalPodAutoscaler": path_segment_name,
    "Role": path_segment_name,
    "ClusterRole": path_segment_name,
    "RoleBinding": path_segment_name,
    "ClusterRoleBinding": path_segment_name,
}


def name_rule(kind: str) -> NameCheck:
    """The validator of ``kind``'s object names (DNS-1123 subdomain unless stated)."""
    return _NAME_RULES.get(kind, _names.dns1123_subdomain)


@functools.cache
def _kinds() -> dict[str, Kind]:
    return {k.kind: k for k in KINDS if k.storage}


def _check_generate_name(prefix: str, rule: NameCheck) -> Errors:
    """A generateName is valid when the name it produces would be: a trailing '-' is
    fine because the random suffix follows it."""
    sample = prefix + "x" * _GENERATED_SUFFIX
    return [invalid("metadata.generateName", prefix, msg) for msg in rule(sample)]


def check_object_meta(kind: str, meta: meta_pb2.ObjectMeta) -> Errors:
    """Every problem with the metadata of a ``kind`` object."""
    rule = name_rule(kind)
    errors: Errors = []
    if meta.generate_name:
        errors += _check_generate_name(meta.generate_name, rule)
    if not meta.name:
        errors.append(required("metadata.name", "name or generateName is required"))
    else:
        errors += check_names("metadata.name", meta.name, rule)
    errors += _check_namespace(kind, meta.namespace)
    errors += check_nonnegative("metadata.generation", meta.generation)
    errors += check_labels("metadata.labels", meta.labels)
    errors += check_annotations("metadata.annotations", meta.annotations)
    errors += _check_owner_references(meta.owner_references)
    errors += _check_finalizers(meta.finalizers)
    return errors


def _check_namespace(kind: str, namespace: str) -> Errors:
    found = _kinds().get(kind)
    if found is None or found.namespaced:
        if not namespace:
            return [required("metadata.namespace")]
        return check_names("metadata.namespace", namespace, _names.dns1123_label)
    if namespace:
        return [forbidden("metadata.namespace", "not allowed on this type: "
                          f"{kind} is cluster-scoped")]
    return []


def check_annotations(path: str, annotations: Mapping[str, str]) -> Errors:
    """Keys are qualified names (any case); keys and values total at most 256 KiB."""
    pairs = dict(annotations)
    errors: Errors = []
    for k in sorted(pairs):
        errors += check_names(path, k, _names.annotation_key)
    if _names.annotations_size(pairs):
        errors.append(too_long(path, _names.ANNOTATIONS_SIZE_LIMIT))
    return errors


def _check_owner_references(refs: Iterable[meta_pb2.OwnerReference]) -> Errors:
    errors: Errors = []
    controllers: list[str] = []
    for i, ref in enumerate(refs):
        at = f"metadata.ownerReferences[{i}]"
        for field, json in (("api_version", "apiVersion"), ("kind", "kind"),
                            ("name", "name"), ("uid", "uid")):
            if not getattr(ref, field):
                errors.append(required(f"{at}.{json}"))
        if ref.api_version and ref.api_version.count("/") > 1:
            errors.append(invalid(f"{at}.apiVersion", ref.api_version,
                                  "must be a version (v1) or a group/version (apps/v1)"))
        if ref.HasField("controller") and ref.controller:
            controllers.append(f"{ref.kind}/{ref.name}")
    if len(controllers) > 1:
        errors.append(invalid("metadata.ownerReferences", ", ".join(controllers),
                              "only one reference can have controller set to true"))
    return errors


def check_finalizer_name(path: str, name: str) -> Errors:
    """A qualified name; one without a domain must be a standard finalizer."""
    errors = check_names(path, name, _names.qualified_name)
    if not errors and "/" not in name and name not in STANDARD_FINALIZERS:
        errors.append(invalid(path, name, "name is neither a standard finalizer name ("
                              + ", ".join(STANDARD_FINALIZERS) + ") nor fully qualified "
                              "(example.com/name)"))
    return errors


def _check_finalizers(finalizers: Iterable[str]) -> Errors:
    names = list(finalizers)
    errors: Errors = []
    for i, name in enumerate(names):
        errors += check_names(f"metadata.finalizers[{i}]", name, _names.qualified_name)
    if "orphan" in names and "foregroundDeletion" in names:
        errors.append(invalid("metadata.finalizers", ", ".join(names),
                              "finalizers 'orphan' and 'foregroundDeletion' cannot both be "
                              "set"))
    return errors


def check_object_meta_update(new: meta_pb2.ObjectMeta, old: meta_pb2.ObjectMeta) -> Errors:
    """Identity fields do not change: name, namespace (uid and creationTimestamp are
    carried by the server)."""
    errors: list[FieldViolation] = []
    if new.name != old.name:
        errors.append(immutable("metadata.name", new.name))
    if new.namespace != old.namespace:
        errors.append(immutable("metadata.namespace", new.namespace))
    return errors
