"""Publishing PodMetrics (metrics.k8s.io/v1beta1), as metrics-server makes them available.

Both the node agent (usage measured through CRI) and the simulated nodes (usage made up)
publish one PodMetrics per running pod, owned by the pod so that the garbage collector
removes it with the pod. The HorizontalPodAutoscaler reads them.
"""

from __future__ import annotations

from typing import Any

import structlog

from navarch._errors import AlreadyExists, ApiError, NotFound
from navarch._informer import object_key
from navarch.v1 import core_pb2, meta_pb2, metrics_pb2

__all__ = ["PodMetricsWriter", "pod_metrics_supported"]

log = structlog.get_logger("navarch.podmetrics")


async def pod_metrics_supported(client: Any) -> bool:
    """Whether both this SDK and the API server know PodMetrics."""
    try:
        client.resource("podmetrics", "default")
        resources = await client.api_resources()
    except (ApiError, LookupError, AttributeError):
        return False
    return any(r.name == "podmetrics" for r in resources)


class PodMetricsWriter:
    """Creates a pod's PodMetrics, then updates it at the version it last wrote (read
    again when that is unknown). ``forget`` when the pod is gone."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.versions: dict[str, str] = {}  # pod key -> the version of its PodMetrics
        self.errors = 0

    def forget(self, pod: core_pb2.Pod) -> None:
        self.versions.pop(object_key(pod), None)

    async def write(self, pod: core_pb2.Pod, metrics: metrics_pb2.PodMetrics) -> bool:
        """Store ``metrics`` as ``pod``'s; False (and logged at debug) if the API said no."""
        metrics.metadata.owner_references.append(meta_pb2.OwnerReference(
            api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid))
        resource = self.client.resource("podmetrics", pod.metadata.namespace)
        key = object_key(pod)
        try:
            version = self.versions.get(key)
            if version is None:
                try:
                    written = await resource.create(metrics)
                except AlreadyExists:
                    version = (await resource.get(pod.metadata.name)).metadata.resource_version
            if version is not None:
                metrics.metadata.resource_version = version
                written = await resource.update(metrics)
            self.versions[key] = written.metadata.resource_version
            return True
        except (ApiError, NotFound) as exc:
            self.versions.pop(key, None)
            self.errors += 1
            log.debug("pod metrics write failed", pod=key, error=exc.message)
            return False
