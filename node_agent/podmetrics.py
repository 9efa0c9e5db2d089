"""PodMetrics of the node's running pods, from CRI's container stats (what metrics-server
gathers from every kubelet), so that a HorizontalPodAutoscaler works on real nodes.

Every ``--pod-metrics-interval`` seconds the agent lists its containers' stats, folds them
into per-container CPU rates (node_agent/server.py's ``CpuRates``) and writes one
PodMetrics per running pod whose every container has a known rate and memory working
set; like metrics-server, a pod with any container unmeasured is left out. Usage is given
as Kubernetes spells it: cpu in nanocores ("1234567n"), memory in Ki.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from cri_api.v1 import api_pb2

from navarch._podmetrics import PodMetricsWriter, pod_metrics_supported
from navarch.v1 import core_pb2, metrics_pb2

from . import cri
from .server import CpuRates

__all__ = ["ContainerUsage", "PodMetricsPublisher", "pod_metrics"]

log = structlog.get_logger("navarch.agent.metrics")

ContainerUsage = tuple[int, int]  # (nanocores, memory working set bytes)


def pod_metrics(pod: core_pb2.Pod, usage: Mapping[str, ContainerUsage], now: float,
                window: float) -> metrics_pb2.PodMetrics | None:
    """The PodMetrics of ``pod`` from its containers' usage (by container name), or None
    if one of its containers has none."""
    if any(c.name not in usage for c in pod.spec.containers) or not pod.spec.containers:
        return None
    out = metrics_pb2.PodMetrics(api_version="metrics.k8s.io/v1beta1", kind="PodMetrics")
    out.metadata.name = pod.metadata.name
    out.metadata.namespace = pod.metadata.namespace
    out.metadata.labels.update(dict(pod.metadata.labels))
    out.timestamp.FromSeconds(int(now))
    out.window.FromMilliseconds(int(window * 1000))
    for c in pod.spec.containers:
        nano, memory = usage[c.name]
        out.containers.add(name=c.name, usage={"cpu": f"{nano}n", "memory": f"{memory // 1024}Ki"})
    return out


def usage_by_pod(stats: Iterable[api_pb2.ContainerStats], rates: CpuRates
                 ) -> dict[str, dict[str, ContainerUsage]]:
    """Pod uid -> container name -> usage, for the containers with a known CPU rate."""
    out: dict[str, dict[str, ContainerUsage]] = {}
    for s in stats:
        nano = rates.nano_cores(s)
        if nano is None or not s.HasField("memory"):
            continue
        labels = s.attributes.labels
        name = labels.get(cri.CONTAINER_NAME, s.attributes.metadata.name)
        out.setdefault(labels.get(cri.POD_UID, ""), {})[name] = (
            max(0, nano), s.memory.working_set_bytes.value)
    return out


class PodMetricsPublisher:
    """Publishes the PodMetrics of ``pods()`` (the node's pods) every ``interval`` s."""

    def __init__(self, client: Any, cri_client: cri.CriClient,
                 pods: Callable[[], Iterable[core_pb2.Pod]], interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.cri = cri_client
        self.pods = pods
        self.interval = interval
        self.clock = clock
        self.rates = CpuRates()
        self.writer = PodMetricsWriter(client)
        self.client = client

    def forget(self, pod: core_pb2.Pod) -> None:
        self.writer.forget(pod)

    async def publish_once(self) -> int:
        """One round; how many PodMetrics were written."""
        stats = [s for s in await self.cri.list_container_stats() if s.HasField("cpu")]
        self.rates.observe(stats)
        self.rates.keep_only({s.attributes.id for s in stats})
        usage = usage_by_pod(stats, self.rates)
        now = self.clock()
        written = 0
        for pod in list(self.pods()):
            if pod.status.phase != "Running" or pod.metadata.HasField("deletion_timestamp"):
                continue
            metrics = pod_metrics(pod, usage.get(pod.metadata.uid, {}), now, self.interval)
            if metrics is not None and await self.writer.write(pod, metrics):
                written += 1
        return written

    async def run(self) -> None:
        if not await pod_metrics_supported(self.client):
            log.info("the API server has no PodMetrics; pod metrics are not published")
            return
        while True:
            try:
                await self.publish_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # CRI unavailable for a moment: the next round
                log.warning("pod metrics round failed", error=str(exc))
            await asyncio.sleep(self.interval)
