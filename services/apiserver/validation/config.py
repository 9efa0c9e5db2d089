"""ConfigMaps, Secrets and ServiceAccounts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from navarch import _names
from navarch.v1 import core_pb2

from ..errors import FieldViolation, forbidden, immutable, invalid, required, too_long
from .common import Errors, check_names, key
from .meta import check_object_meta

__all__ = [
    "MAX_DATA_SIZE", "validate_config_map", "validate_config_map_update", "validate_secret",
    "validate_secret_update", "validate_service_account",
]

MAX_DATA_SIZE = 1024 * 1024
"""Bytes of all values of one ConfigMap or Secret together."""

_REDACTED = "<secret contents redacted>"
_SA_NAME = "kubernetes.io/service-account.name"


def _check_keys(path: str, keys: Iterable[str]) -> Errors:
    errors: Errors = []
    for k in sorted(keys):
        errors += check_names(key(path, k), k, _names.config_map_key)
    return errors


def _sizes(*maps: Mapping[str, str] | Mapping[str, bytes]) -> int:
    total = 0
    for values in maps:
        for value in values.values():
            total += len(value.encode() if isinstance(value, str) else value)
    return total


def validate_config_map(cm: core_pb2.ConfigMap) -> Errors:
    """Keys are config-map keys unique across data and binaryData; values total ≤ 1 MiB."""
    errors = check_object_meta("ConfigMap", cm.metadata)
    errors += _check_keys("data", cm.data)
    errors += _check_keys("binaryData", cm.binary_data)
    for k in sorted(set(cm.data) & set(cm.binary_data)):
        errors.append(invalid(key("binaryData", k), k, "duplicate of key present in data"))
    if _sizes(cm.data, cm.binary_data) > MAX_DATA_SIZE:
        errors.append(too_long("data", MAX_DATA_SIZE))
    return errors


def _check_immutable(new_immutable: bool, old_immutable: bool, data_changed: bool,
                     fields: str) -> Errors:
    if not old_immutable:
        return []
    errors: Errors = []
    if not new_immutable:
        errors.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    if data_changed:
        errors.append(forbidden(fields, "field is immutable when `immutable` is set"))
    return errors


def validate_config_map_update(new: core_pb2.ConfigMap, old: core_pb2.ConfigMap) -> Errors:
    """An immutable ConfigMap keeps its data and stays immutable."""
    changed = dict(new.data) != dict(old.data) or dict(new.binary_data) != dict(old.binary_data)
    return _check_immutable(new.HasField("immutable") and new.immutable,
                            old.HasField("immutable") and old.immutable, changed, "data")


def validate_secret(secret: core_pb2.Secret) -> Errors:
    """Keys, total size, and the keys each well-known type requires."""
    errors = check_object_meta("Secret", secret.metadata)
    errors += _check_keys("data", secret.data)
    errors += _check_keys("stringData", secret.string_data)
    if _sizes(secret.data, secret.string_data) > MAX_DATA_SIZE:
        errors.append(too_long("data", MAX_DATA_SIZE))
    if not secret.type:
        errors.append(required("type"))
    else:
        errors += _TYPE_CHECKS.get(secret.type, _no_rules)(secret)
    return errors


def _no_rules(secret: core_pb2.Secret) -> Errors:
    return []


def _value(secret: core_pb2.Secret, name: str) -> bytes | None:
    if name in secret.data:
        return secret.data[name]
    if name in secret.string_data:
        return secret.string_data[name].encode()
    return None


def _needs(secret: core_pb2.Secret, *names: str) -> Errors:
    return [required(key("data", n)) for n in names if _value(secret, n) is None]


def _needs_json(secret: core_pb2.Secret, name: str) -> Errors:
    value = _value(secret, name)
    if value is None:
        return [required(key("data", name))]
    try:
        json.loads(value)
    except ValueError as exc:
        return [invalid(key("data", name), _REDACTED, f"must be valid JSON: {exc}")]
    return []


def _service_account_token(secret: core_pb2.Secret) -> Errors:
    if secret.metadata.annotations.get(_SA_NAME):
        return []
    return [required(key("metadata.annotations", _SA_NAME))]


def _basic_auth(secret: core_pb2.Secret) -> Errors:
    if _value(secret, "username") is None and _value(secret, "password") is None:
        return [required(key("data", "username"), "a basic-auth Secret needs a username, "
                         "a password or both"),
                required(key("data", "password"), "a basic-auth Secret needs a username, "
                         "a password or both")]
    return []


_TYPE_CHECKS: dict[str, Callable[[core_pb2.Secret], Errors]] = {
    "kubernetes.io/service-account-token": _service_account_token,
    "kubernetes.io/dockercfg": lambda s: _needs_json(s, ".dockercfg"),
    "kubernetes.io/dockerconfigjson": lambda s: _needs_json(s, ".dockerconfigjson"),
    "kubernetes.io/basic-auth": _basic_auth,
    "kubernetes.io/ssh-auth": lambda s: _needs(s, "ssh-privatekey"),
    "kubernetes.io/tls": lambda s: _needs(s, "tls.crt", "tls.key"),
}


def validate_secret_update(new: core_pb2.Secret, old: core_pb2.Secret) -> Errors:
    """The type never changes; an immutable Secret keeps its data and stays immutable."""
    errors: list[FieldViolation] = []
    if new.type != old.type:
        errors.append(immutable("type", new.type))
    changed = dict(new.data) != dict(old.data) or bool(new.string_data)
    errors += _check_immutable(new.HasField("immutable") and new.immutable,
                               old.HasField("immutable") and old.immutable, changed, "data")
    return errors


def validate_service_account(sa: core_pb2.ServiceAccount) -> Errors:
    """Metadata, and the names of the secrets it references."""
    errors = check_object_meta("ServiceAccount", sa.metadata)
    for i, ref in enumerate(sa.secrets):
        if not ref.name:
            errors.append(required(f"secrets[{i}].name"))
    for i, local in enumerate(sa.image_pull_secrets):
        if not local.name:
            errors.append(required(f"imagePullSecrets[{i}].name"))
    return errors
