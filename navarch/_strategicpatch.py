"""Kubernetes' strategic merge patch, on objects in their JSON form.

A strategic merge patch is a JSON merge patch (objects merge member by member, a null
member deletes) except for the lists Kubernetes marks ``patchStrategy: merge``:

* a list of objects with a merge key (``MERGE_KEYS``: containers by ``name``, container
  ports by ``containerPort``, Service ports by ``port``, conditions by ``type`` …) merges
  item by item: a patch item updates the item with the same key (recursively, with the
  same rules), or is appended; ``{"name": "x", "$patch": "delete"}`` removes item x;
* a list of strings marked merge (``finalizers``, ``podCIDRs``) becomes the union;
  ``$deleteFromPrimitiveList/<field>: [...]`` removes values from it;
* every other list is replaced whole, as in a merge patch.

Directives: ``"$patch": "replace"`` in an object replaces it whole (in a list, the list);
``"$patch": "delete"`` on an object deletes it; ``$retainKeys: [...]`` keeps only those
members (and the patch's); ``$setElementOrder/<field>`` is accepted and ignored (the
order stays the target's, new items last). Which list is which is read from the protobuf
descriptors, as Kubernetes reads it from its Go types' tags.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from navarch._patch import JSONValue, PatchError

__all__ = ["MERGE_KEYS", "PRIMITIVE_MERGE", "apply_strategic_merge_patch"]

# (message, JSON field) -> the merge key of its items, from Kubernetes' patchMergeKey tags
MERGE_KEYS: dict[tuple[str, str], str] = {
    ("ObjectMeta", "ownerReferences"): "uid",
    ("PodSpec", "volumes"): "name",
    ("PodSpec", "initContainers"): "name",
    ("PodSpec", "containers"): "name",
    ("PodSpec", "imagePullSecrets"): "name",
    ("PodSpec", "hostAliases"): "ip",
    ("PodSpec", "topologySpreadConstraints"): "topologyKey",
    ("PodSpec", "schedulingGates"): "name",
    ("Container", "ports"): "containerPort",
    ("Container", "env"): "name",
    ("Container", "volumeMounts"): "mountPath",
    ("Container", "volumeDevices"): "devicePath",
    ("PodStatus", "conditions"): "type",
    ("PodStatus", "podIPs"): "ip",
    ("PodStatus", "hostIPs"): "ip",
    ("NodeStatus", "conditions"): "type",
    ("NodeStatus", "addresses"): "type",
    ("ServiceSpec", "ports"): "port",
    ("ServiceStatus", "conditions"): "type",
    ("ServiceAccount", "secrets"): "name",
    ("NamespaceStatus", "conditions"): "type",
    ("PersistentVolumeClaimStatus", "conditions"): "type",
    ("DeploymentStatus", "conditions"): "type",
    ("ReplicaSetStatus", "conditions"): "type",
    ("DaemonSetStatus", "conditions"): "type",
    ("StatefulSetStatus", "conditions"): "type",
    ("JobStatus", "conditions"): "type",
    ("HorizontalPodAutoscalerStatus", "conditions"): "type",
}
# lists of scalars whose patch strategy is merge: a patch adds to them
PRIMITIVE_MERGE: frozenset[tuple[str, str]] = frozenset({
    ("ObjectMeta", "finalizers"), ("NodeSpec", "podCIDRs"),
})

_DELETE_FROM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def _copy(value: JSONValue) -> JSONValue:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items() if not str(k).startswith("$")}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _field(descriptor: Descriptor | None, name: str) -> FieldDescriptor | None:
    if descriptor is None:
        return None
    for field in descriptor.fields:
        if field.json_name == name:
            return field
    return None


def _is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return bool(message is not None and message.GetOptions().map_entry)


def _child(field: FieldDescriptor | None) -> Descriptor | None:
    """The message type of a field's values (a map's value type for maps)."""
    if field is None or field.message_type is None:
        return None
    if _is_map(field):
        value = field.message_type.fields_by_name["value"]
        return value.message_type
    return field.message_type


def apply_strategic_merge_patch(target: JSONValue, patch: JSONValue,
                                descriptor: Descriptor) -> JSONValue:
    """``target`` (an object of ``descriptor``'s message, in JSON form) with ``patch``
    applied; neither is changed. PatchError says what in the patch is wrong."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch is a JSON object")
    return _merge_object(target if isinstance(target, dict) else {}, patch, descriptor)


def _merge_object(target: dict[str, Any], patch: dict[str, Any],
                  descriptor: Descriptor | None) -> dict[str, Any]:
    if _directive(patch) == "replace":
        return _copy(patch)  # type: ignore[no-any-return]
    result = _copy(target)
    assert isinstance(result, dict)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith(_ORDER):
            continue
        if key.startswith(_DELETE_FROM):
            name = key[len(_DELETE_FROM):]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            if isinstance(result.get(name), list):
                result[name] = [v for v in result[name] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        field = _field(descriptor, key)
        message = descriptor.name if descriptor is not None else ""
        current = result.get(key)
        if isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
                continue
            if field is not None and _is_map(field):
                result[key] = _merge_map(current if isinstance(current, dict) else {},
                                         value, _child(field))
            else:
                result[key] = _merge_object(current if isinstance(current, dict) else {},
                                            value, _child(field))
        elif isinstance(value, list):
            if (message, key) in MERGE_KEYS:
                result[key] = _merge_list(current if isinstance(current, list) else [],
                                          value, MERGE_KEYS[(message, key)], _child(field),
                                          key)
            elif (message, key) in PRIMITIVE_MERGE:
                union = list(current) if isinstance(current, list) else []
                union += [v for v in value if v not in union]
                result[key] = union
            else:
                result[key] = _copy(value)
        else:
            result[key] = value
    if isinstance(retain, list):
        keep = set(retain) | {k for k in patch if not k.startswith("$")}
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _directive(patch: dict[str, Any]) -> str | None:
    directive = patch.get("$patch")
    if directive not in (None, "replace", "merge", "delete"):
        raise PatchError(f'unknown $patch directive "{directive}": use replace, merge or '
                         "delete")
    return directive


def _merge_map(target: dict[str, Any], patch: dict[str, Any],
               values: Descriptor | None) -> dict[str, Any]:
    if _directive(patch) == "replace":
        return _copy(patch)  # type: ignore[no-any-return]
    result = _copy(target)
    assert isinstance(result, dict)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and values is not None:
            current = result.get(key)
            result[key] = _merge_object(current if isinstance(current, dict) else {}, value,
                                        values)
        else:
            result[key] = _copy(value)
    return result


def _merge_list(target: list[Any], patch: list[Any], merge_key: str,
                items: Descriptor | None, name: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_copy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = [_copy(t) for t in target]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"{name}: each item of a strategic merge patch needs its merge "
                             f'key "{merge_key}"')
        key = item[merge_key]
        index = next((i for i, t in enumerate(result)
                      if isinstance(t, dict) and t.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            result = [t for t in result if not (isinstance(t, dict)
                                                and t.get(merge_key) == key)]
        elif index is None:
            result.append(_copy(item))
        else:
            result[index] = _merge_object(result[index], item, items)
    return result
