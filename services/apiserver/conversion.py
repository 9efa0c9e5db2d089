"""Conversions between the forms a kind is written in and the form it is stored in.

- ``to_storage``: the object a request carries, as a fresh message of the storage kind
  (autoscaling/v1 HorizontalPodAutoscalers become autoscaling/v2 ones, as Kubernetes
  stores them). Never mutates its argument.
- ``served_kind`` / ``from_storage``: the Kind a request's apiVersion selects, and a
  stored object in that version (autoscaling/v2 HPAs read as autoscaling/v1), so that a
  client reads, patches and re-applies an object in the version it wrote it in.
- ``scale_of``: the autoscaling/v1 Scale view of a Deployment, ReplicaSet or StatefulSet.
"""

from __future__ import annotations

from typing import Any

from navarch import _codec, _labels
from navarch._kinds import KINDS, Kind
from navarch.v1 import autoscaling_pb2, meta_pb2

from .errors import bad_request
from .objects import Obj

__all__ = ["from_storage", "scale_of", "served_kind", "to_storage"]


def to_storage(kind: Kind, obj: Obj) -> Obj:
    """A copy of ``obj`` as the storage message of ``kind``; INVALID_ARGUMENT when ``obj``
    is not a form of that kind."""
    name = obj.DESCRIPTOR.full_name
    if name == kind.message_type:
        out = kind.message()
        out.CopyFrom(obj)
        return out
    for other in KINDS:
        if other.resource == kind.resource and other.message_type == name:
            converter = _CONVERTERS[(other.message_type, kind.message_type)]
            return converter(obj)
    raise bad_request(f"the object is a {name}, but resource {kind.resource} holds "
                      f"{kind.message_type}")


def _hpa_v1_to_v2(obj: Obj) -> Obj:
    doc: dict[str, Any] = _codec.to_dict(obj)
    doc["apiVersion"] = "autoscaling/v2"
    spec = doc.get("spec", {})
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
    status = doc.pop("status", None) or {}
    current = status.pop("currentCPUUtilizationPercentage", None)
    if current is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]
    if status:
        doc["status"] = status
    return _codec.from_dict(doc, autoscaling_pb2.HorizontalPodAutoscaler)


def _cpu_utilization(metrics: list[Any], field: str) -> int | None:
    for metric in metrics:
        resource = metric.get("resource", {}) if metric.get("type") == "Resource" else {}
        if resource.get("name") == "cpu":
            value = resource.get(field, {}).get("averageUtilization")
            return int(value) if value is not None else None
    return None


def _hpa_v2_to_v1(obj: Obj) -> Obj:
    doc: dict[str, Any] = _codec.to_dict(obj)
    doc["apiVersion"] = "autoscaling/v1"
    spec = doc.get("spec", {})
    target = _cpu_utilization(spec.pop("metrics", []), "target")
    spec.pop("behavior", None)
    if target is not None:
        spec["targetCPUUtilizationPercentage"] = target
    status = doc.get("status", {})
    current = _cpu_utilization(status.pop("currentMetrics", []), "current")
    status.pop("conditions", None)
    if current is not None:
        status["currentCPUUtilizationPercentage"] = current
    return _codec.from_dict(doc, autoscaling_pb2.HorizontalPodAutoscalerV1)


_CONVERTERS = {
    ("navarch.v1.HorizontalPodAutoscalerV1", "navarch.v1.HorizontalPodAutoscaler"): _hpa_v1_to_v2,
    ("navarch.v1.HorizontalPodAutoscaler", "navarch.v1.HorizontalPodAutoscalerV1"): _hpa_v2_to_v1,
}


def served_kind(kind: Kind, api_version: str) -> Kind:
    """The Kind of ``kind``'s resource in ``api_version`` ("" = the stored one);
    INVALID_ARGUMENT naming the served versions otherwise."""
    if not api_version or api_version == kind.api_version:
        return kind
    versions = [k for k in KINDS if k.resource == kind.resource]
    for other in versions:
        if other.api_version == api_version:
            return other
    served = ", ".join(k.api_version for k in versions)
    raise bad_request(f'apiVersion "{api_version}" is not served for {kind.resource}: '
                      f"served versions are {served}")


def from_storage(obj: Obj, version: Kind) -> Obj:
    """A stored object as ``version``'s message (the object itself when it already is)."""
    name = obj.DESCRIPTOR.full_name
    if name == version.message_type:
        return obj
    return _CONVERTERS[(name, version.message_type)](obj)


def scale_of(obj: Obj) -> autoscaling_pb2.Scale:
    """The Scale subresource of a scalable object (spec.replicas, status.replicas, selector)."""
    meta = obj.metadata
    spec, status = obj.spec, obj.status
    selector = ""
    if spec.HasField("selector"):
        selector = str(_labels.label_selector(spec.selector))
    scale = autoscaling_pb2.Scale(
        api_version="autoscaling/v1", kind="Scale",
        metadata=meta_pb2.ObjectMeta(
            name=meta.name, namespace=meta.namespace, uid=meta.uid,
            resource_version=meta.resource_version,
            creation_timestamp=meta.creation_timestamp),
    )
    scale.spec.replicas = spec.replicas
    scale.status.replicas = status.replicas
    scale.status.selector = selector
    return scale
