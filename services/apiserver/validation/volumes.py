"""Pod volumes: unique DNS-1123 names, exactly one source each, and each source's rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import duplicate, forbidden, invalid, required
from .common import (
    Errors,
    check_names,
    check_nonnegative,
    check_quantity,
    check_relative_path,
    check_value,
)
from .containers import check_object_field_ref, check_resource_field_ref

__all__ = ["SOURCES", "check_host_path", "check_nfs", "check_volumes"]

SOURCES = (("host_path", "hostPath"), ("empty_dir", "emptyDir"), ("secret", "secret"),
           ("nfs", "nfs"), ("persistent_volume_claim", "persistentVolumeClaim"),
           ("downward_api", "downwardAPI"), ("config_map", "configMap"),
           ("projected", "projected"))
"""Volume sources: (proto field, JSON name)."""

_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                    "CharDevice", "BlockDevice")
_MEDIA = ("", "Memory", "HugePages")
_VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name",
                       "metadata.namespace", "metadata.uid")
_VOLUME_RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                     "requests.cpu", "requests.ephemeral-storage", "requests.memory")
_MAX_MODE = 0o777
_MIN_TOKEN_SECONDS = 600
_MAX_TOKEN_SECONDS = 2**32


def check_volumes(path: str, volumes: Iterable[core_pb2.Volume]) -> Errors:
    """Every problem with a pod spec's volumes (``path`` is ``spec.volumes``)."""
    errors: Errors = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        at = f"{path}[{i}]"
        if not vol.name:
            errors.append(required(f"{at}.name"))
        else:
            errors += check_names(f"{at}.name", vol.name, _names.dns1123_label)
            if vol.name in names:
                errors.append(duplicate(f"{at}.name", vol.name))
            names.add(vol.name)
        errors += _check_source(at, vol)
    return errors


def _check_source(at: str, vol: core_pb2.Volume) -> Errors:
    present = [(name, json) for name, json in SOURCES if vol.HasField(name)]
    if not present:
        return [required(at, "must specify a volume type")]
    errors: Errors = [forbidden(f"{at}.{json}", "may not specify more than 1 volume type")
                      for _, json in present[1:]]
    for name, json in present:
        errors += _SOURCE_CHECKS[name](f"{at}.{json}", getattr(vol, name))
    return errors


def check_host_path(p: str, src: core_pb2.HostPathVolumeSource) -> Errors:
    """An absolute host path without '..' and a known type."""
    errors: Errors = []
    if not src.path:
        errors.append(required(f"{p}.path"))
    elif ".." in src.path.split("/"):
        errors.append(invalid(f"{p}.path", src.path, "must not contain '..'"))
    if src.HasField("type"):
        errors += check_value(f"{p}.type", src.type, _HOST_PATH_TYPES, optional=True)
    return errors


def check_nfs(p: str, src: core_pb2.NFSVolumeSource) -> Errors:
    """A server and an absolute export path."""
    errors: Errors = []
    if not src.server:
        errors.append(required(f"{p}.server"))
    if not src.path:
        errors.append(required(f"{p}.path"))
    elif not src.path.startswith("/"):
        errors.append(invalid(f"{p}.path", src.path, "must be an absolute path"))
    return errors


def _check_empty_dir(p: str, src: core_pb2.EmptyDirVolumeSource) -> Errors:
    errors = check_value(f"{p}.medium", src.medium, _MEDIA, optional=True)
    if src.HasField("size_limit"):
        errors += check_quantity(f"{p}.sizeLimit", src.size_limit)
    return errors


def _check_mode(p: str, holder: object, field: str) -> Errors:
    if not holder.HasField(field):  # type: ignore[attr-defined]
        return []
    mode = getattr(holder, field)
    if not 0 <= mode <= _MAX_MODE:
        return [invalid(p, mode, "must be a number between 0 and 0777 (octal), both inclusive")]
    return []


def _check_items(p: str, items: Iterable[core_pb2.KeyToPath]) -> Errors:
    errors: Errors = []
    for i, item in enumerate(items):
        at = f"{p}[{i}]"
        if not item.key:
            errors.append(required(f"{at}.key"))
        errors += _check_file_path(f"{at}.path", item.path)
        errors += _check_mode(f"{at}.mode", item, "mode")
    return errors


def _check_file_path(p: str, value: str) -> Errors:
    if not value:
        return [required(p)]
    return check_relative_path(p, value)


def _check_secret(p: str, src: core_pb2.SecretVolumeSource) -> Errors:
    errors: Errors = []
    if not src.secret_name:
        errors.append(required(f"{p}.secretName"))
    else:
        errors += check_names(f"{p}.secretName", src.secret_name, _names.dns1123_subdomain)
    errors += _check_mode(f"{p}.defaultMode", src, "default_mode")
    errors += _check_items(f"{p}.items", src.items)
    return errors


def _check_config_map(p: str, src: core_pb2.ConfigMapVolumeSource) -> Errors:
    errors: Errors = []
    if not src.name:
        errors.append(required(f"{p}.name"))
    else:
        errors += check_names(f"{p}.name", src.name, _names.dns1123_subdomain)
    errors += _check_mode(f"{p}.defaultMode", src, "default_mode")
    errors += _check_items(f"{p}.items", src.items)
    return errors


def _check_claim(p: str, src: core_pb2.PersistentVolumeClaimVolumeSource) -> Errors:
    if not src.claim_name:
        return [required(f"{p}.claimName")]
    return check_names(f"{p}.claimName", src.claim_name, _names.dns1123_subdomain)


def _check_downward_files(p: str, items: Iterable[core_pb2.DownwardAPIVolumeFile]) -> Errors:
    errors: Errors = []
    for i, item in enumerate(items):
        at = f"{p}[{i}]"
        errors += _check_file_path(f"{at}.path", item.path)
        errors += _check_mode(f"{at}.mode", item, "mode")
        refs = [n for n in ("field_ref", "resource_field_ref") if item.HasField(n)]
        if len(refs) != 1:
            errors.append(invalid(at, "", "must specify exactly one of `fieldRef` or "
                                  "`resourceFieldRef`"))
        if item.HasField("field_ref"):
            errors += check_object_field_ref(f"{at}.fieldRef", item.field_ref,
                                             _VOLUME_FIELD_PATHS)
        if item.HasField("resource_field_ref"):
            errors += check_resource_field_ref(f"{at}.resourceFieldRef", item.resource_field_ref,
                                               _VOLUME_RESOURCES, container_required=True)
    return errors


def _check_downward(p: str, src: core_pb2.DownwardAPIVolumeSource) -> Errors:
    return _check_mode(f"{p}.defaultMode", src, "default_mode") + \
        _check_downward_files(f"{p}.items", src.items)


def _check_projected(p: str, src: core_pb2.ProjectedVolumeSource) -> Errors:
    errors = _check_mode(f"{p}.defaultMode", src, "default_mode")
    for i, proj in enumerate(src.sources):
        at = f"{p}.sources[{i}]"
        kinds = [(n, j) for n, j in (("secret", "secret"), ("downward_api", "downwardAPI"),
                                     ("config_map", "configMap"),
                                     ("service_account_token", "serviceAccountToken"))
                 if proj.HasField(n)]
        if not kinds:
            errors.append(required(at, "must specify one projection type"))
        errors += [forbidden(f"{at}.{j}", "may not specify more than 1 projection type")
                   for _, j in kinds[1:]]
        if proj.HasField("secret"):
            errors += [required(f"{at}.secret.name")] if not proj.secret.name else []
            errors += _check_items(f"{at}.secret.items", proj.secret.items)
        if proj.HasField("config_map"):
            errors += [required(f"{at}.configMap.name")] if not proj.config_map.name else []
            errors += _check_items(f"{at}.configMap.items", proj.config_map.items)
        if proj.HasField("downward_api"):
            errors += _check_downward_files(f"{at}.downwardAPI.items", proj.downward_api.items)
        if proj.HasField("service_account_token"):
            errors += _check_token(f"{at}.serviceAccountToken", proj.service_account_token)
    return errors


def _check_token(p: str, src: core_pb2.ServiceAccountTokenProjection) -> Errors:
    errors = _check_file_path(f"{p}.path", src.path)
    if src.HasField("expiration_seconds"):
        seconds = src.expiration_seconds
        if seconds < _MIN_TOKEN_SECONDS:
            errors.append(invalid(f"{p}.expirationSeconds", seconds,
                                  f"may not specify a duration less than {_MIN_TOKEN_SECONDS} "
                                  "seconds"))
        elif seconds > _MAX_TOKEN_SECONDS:
            errors.append(invalid(f"{p}.expirationSeconds", seconds,
                                  f"may not specify a duration larger than {_MAX_TOKEN_SECONDS} "
                                  "seconds"))
    return errors + check_nonnegative(f"{p}.expirationSeconds", src.expiration_seconds)


_SOURCE_CHECKS: dict[str, Callable[[str, Any], Errors]] = {
    "host_path": check_host_path,
    "empty_dir": _check_empty_dir,
    "secret": _check_secret,
    "nfs": check_nfs,
    "persistent_volume_claim": _check_claim,
    "downward_api": _check_downward,
    "config_map": _check_config_map,
    "projected": _check_projected,
}
