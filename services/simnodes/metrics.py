"""Simulated resource usage of running pods, as PodMetrics (metrics.k8s.io/v1beta1).

Usage of a pod: the annotation ``simnodes.navarch.io/cpu-usage`` (the whole pod's cpu,
e.g. "250m", shared evenly by its containers), else 10 % of each container's cpu request;
memory is 10 % of each container's memory request. Contract: pure, never mutates the pod.
"""

from __future__ import annotations

from navarch._quantity import QuantityError, parse_quantity
from navarch.v1 import core_pb2, metrics_pb2

from .nodes import set_time

__all__ = ["CPU_USAGE_ANNOTATION", "container_usage", "pod_metrics"]

CPU_USAGE_ANNOTATION = "simnodes.navarch.io/cpu-usage"
DEFAULT_FRACTION = 0.1


def _milli(text: str) -> int:
    try:
        return parse_quantity(text).milli_value()
    except QuantityError:
        return 0


def container_usage(pod: core_pb2.Pod) -> dict[str, dict[str, str]]:
    """Usage by container name: {"cpu": "25m", "memory": "6710886"} (memory in bytes)."""
    containers = list(pod.spec.containers)
    annotated = pod.metadata.annotations.get(CPU_USAGE_ANNOTATION)
    pod_cpu = _milli(annotated) if annotated is not None else None
    out: dict[str, dict[str, str]] = {}
    for c in containers:
        requests = c.resources.requests
        if pod_cpu is not None:
            cpu = pod_cpu // max(len(containers), 1)
        else:
            cpu = int(_milli(requests.get("cpu", "0")) * DEFAULT_FRACTION)
        memory = int(_milli(requests.get("memory", "0")) * DEFAULT_FRACTION) // 1000
        out[c.name] = {"cpu": f"{cpu}m", "memory": str(memory)}
    return out


def pod_metrics(pod: core_pb2.Pod, now: float, window: float) -> metrics_pb2.PodMetrics:
    """The PodMetrics of ``pod`` measured at ``now`` over ``window`` seconds."""
    out = metrics_pb2.PodMetrics(api_version="metrics.k8s.io/v1beta1", kind="PodMetrics")
    out.metadata.name = pod.metadata.name
    out.metadata.namespace = pod.metadata.namespace
    out.metadata.labels.update(dict(pod.metadata.labels))
    set_time(out.timestamp, now)
    out.window.FromMilliseconds(int(window * 1000))
    for name, usage in container_usage(pod).items():
        out.containers.add(name=name, usage=usage)
    return out
