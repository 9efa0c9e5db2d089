"""``navarch agent``: the kubelet. Wires the Node reporter, the pod informer, the relist
loop, the pod workers and the node service together.

Flow::

    register Node ─▶ informers: pods (spec.nodeName=<node>), services, own Node
    adopt: CRI sandboxes of pods still bound here are kept (nothing recreated);
           sandboxes, volumes and cgroups of pods that are gone are removed
    events ─┐
    relist ─┼─▶ WorkQueue[pod uid] ─▶ workers ─▶ PodSyncer.sync(pod) / terminate(uid)
    resync ─┘    (one uid is never synced twice at once)
    node service (logs, exec, stats) and gRPC health on --listen

Contracts: informer-cached pods are never mutated; containerd is the record of what
runs (the agent keeps no state on disk besides volumes), which is what lets a restarted
agent adopt what it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from navarch._errors import ApiError, Conflict, NotFound
from navarch._events import EventRecorder
from navarch._informer import Informer
from navarch._workqueue import QueueShutDown, WorkQueue
from navarch.v1 import core_pb2

from . import cri
from .config import AgentConfig
from .cri import CriClient
from .env import service_env
from .node import NodeReporter
from .podmetrics import PodMetricsPublisher
from .probes import ProbeManager, cri_exec
from .volumes import VolumeManager
from .worker import PodSyncer

__all__ = ["Agent", "run"]

log = structlog.get_logger("navarch.agent")


def _final(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


class Agent:
    """One node's agent against one API server and one containerd."""

    def __init__(self, client: Any, cfg: AgentConfig, cri_client: CriClient) -> None:
        self.client = client
        self.cfg = cfg
        self.cri = cri_client
        self.queue: WorkQueue[str] = WorkQueue(f"agent-{cfg.node_name}")
        self.pods_by_uid: dict[str, core_pb2.Pod] = {}
        self.recorder = EventRecorder(client, "kubelet", host=cfg.node_name)
        self.node = NodeReporter(client, cri_client, cfg)
        self.pod_informer: Informer[core_pb2.Pod] = Informer(
            client.pods(""), field_selector=f"spec.nodeName={cfg.node_name}",
            on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
            on_delete=self._on_pod_deleted)
        self.service_informer: Informer[core_pb2.Service] = Informer(client.services(""))
        self.node_informer: Informer[core_pb2.Node] = Informer(
            client.nodes(), field_selector=f"metadata.name={cfg.node_name}",
            on_add=self.node.observe_node,
            on_update=lambda _o, n: self.node.observe_node(n))
        self.probes = ProbeManager(cri_exec(cri_client), on_change=self.queue.add,
                                   recorder=self.recorder)
        self.volumes = VolumeManager(cfg.root_dir)
        self.syncer = PodSyncer(client, cri_client, cfg, self.volumes, self.probes,
                                self.recorder, self._services_env, _host_resolv())
        self._relist_seen: dict[str, tuple[int, str]] = {}  # container id -> (state, uid)
        self.metrics = PodMetricsPublisher(client, cri_client, self.pods_by_uid.values,
                                           cfg.pod_metrics_interval)
        self.synced = asyncio.Event()
        self._adopting: set[str] = set()  # uids found at start, not yet synced once

    # --- events -------------------------------------------------------------------------

    def _on_pod(self, pod: core_pb2.Pod) -> None:
        self.pods_by_uid[pod.metadata.uid] = pod
        self.queue.add(pod.metadata.uid)

    def _on_pod_deleted(self, pod: core_pb2.Pod) -> None:
        self.pods_by_uid.pop(pod.metadata.uid, None)
        self.metrics.forget(pod)
        self.queue.add(pod.metadata.uid)

    def _services_env(self, namespace: str, enable_links: bool) -> list[tuple[str, str]]:
        services = [s for s in self.service_informer.list(namespace)] if enable_links else []
        master = self.service_informer.get("kubernetes", "default")
        if master is not None and namespace != "default":
            services.append(master)
        elif master is not None and not enable_links:
            services.append(master)
        return service_env(services, True)

    # --- reconcile ----------------------------------------------------------------------

    async def reconcile(self, uid: str) -> None:
        pod = self.pods_by_uid.get(uid)
        if pod is None:  # deleted from the API (or never ours): kill what is left
            await self.syncer.terminate(uid, None, 0)
            self._adopted(uid)
            return
        if pod.metadata.HasField("deletion_timestamp"):
            grace = self.syncer._grace(pod)
            await self.syncer.terminate(uid, pod, grace)
            with contextlib.suppress(NotFound, Conflict):
                await self.client.pods(pod.metadata.namespace).delete(
                    pod.metadata.name, grace_period_seconds=0, uid=uid)
            return
        retry = await self.syncer.sync(pod)
        self._adopted(uid)
        if not _final(pod):
            self.queue.add_after(uid, min(retry or self.cfg.resync_interval,
                                          self.cfg.resync_interval))

    def _adopted(self, uid: str) -> None:
        if uid in self._adopting:
            self._adopting.discard(uid)
            if not self._adopting:
                log.info("adopted pods synced", node=self.cfg.node_name)

    async def _worker(self) -> None:
        while True:
            try:
                uid = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.reconcile(uid)
                self.queue.forget(uid)
            except asyncio.CancelledError:
                raise
            except (ApiError, grpc.aio.AioRpcError) as exc:
                message = exc.message if isinstance(exc, ApiError) else exc.details()
                log.warning("pod sync failed; retrying", uid=uid, error=message)
                self.queue.add_rate_limited(uid)
            except Exception:
                log.exception("pod sync failed", uid=uid)
                self.queue.add_rate_limited(uid)
            finally:
                self.queue.done(uid)

    # --- relist (kubelet's PLEG) --------------------------------------------------------

    async def relist(self) -> None:
        """Ask CRI what runs; queue every pod whose containers changed state, and every
        pod uid CRI knows that the API does not (to be cleaned up)."""
        containers = await self.cri.list_containers()
        seen = {c.id: (int(c.state), c.labels.get(cri.POD_UID, "")) for c in containers}
        changed = {uid for cid, (state, uid) in seen.items()
                   if self._relist_seen.get(cid, (None, ""))[0] != state}
        changed |= {uid for cid, (_, uid) in self._relist_seen.items() if cid not in seen}
        self._relist_seen = seen
        if self.synced.is_set():
            sandboxes = await self.cri.list_sandboxes()
            known = set(self.pods_by_uid)
            changed |= {s.labels.get(cri.POD_UID, "") for s in sandboxes} - known
        for uid in changed:
            if uid:
                self.queue.add(uid)

    async def _relist_loop(self) -> None:
        last_gc = time.monotonic()
        while True:
            try:
                await self.relist()
            except grpc.aio.AioRpcError as exc:
                log.warning("relist failed", error=exc.details())
            if time.monotonic() - last_gc > 60:  # back-offs idle for 10 minutes go
                last_gc = time.monotonic()
                self.syncer.crash_backoff.gc(time.time())
                self.syncer.image_backoff.gc(time.time())
            await asyncio.sleep(self.cfg.relist_interval)

    async def adopt(self) -> None:
        """After the pod list: queue every pod and every sandbox found, and remove volume
        dirs of pods that are no longer bound here."""
        found = set(self.pods_by_uid)
        for sb in await self.cri.list_sandboxes():
            found.add(sb.labels.get(cri.POD_UID, ""))
        found |= set(await asyncio.to_thread(self.volumes.orphans, set(self.pods_by_uid)))
        found.discard("")
        self._adopting = set(found)
        for uid in found:
            self.queue.add(uid)
        if not found:
            log.info("adopted pods synced", node=self.cfg.node_name)
        self.synced.set()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Register, adopt, then sync pods until cancelled."""
        await self.node.register()
        tasks = [self.node_informer.start(), self.service_informer.start(),
                 self.pod_informer.start()]
        await self.service_informer.wait_synced()
        await self.pod_informer.wait_synced()
        await self.adopt()
        tasks += [asyncio.create_task(self.node.run(), name="agent-node"),
                  asyncio.create_task(self._relist_loop(), name="agent-relist")]
        tasks += [asyncio.create_task(self._worker(), name=f"agent-pods-{i}")
                  for i in range(self.cfg.workers)]
        if self.cfg.pod_metrics_interval > 0:
            tasks.append(asyncio.create_task(self.metrics.run(), name="agent-pod-metrics"))
        log.info("agent running", node=self.cfg.node_name, pods=len(self.pods_by_uid))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.probes.stop()
            await self.recorder.stop()


def _host_resolv() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


async def serve(cfg: AgentConfig, stop: asyncio.Event) -> None:
    """Run the agent and its node service until ``stop`` is set."""
    from navarch import Client
    from services.daemon import run_until_stopped

    cfg.root_dir.mkdir(parents=True, exist_ok=True)
    cri_client = CriClient(cfg.cri_socket)
    client = Client(cfg.server) if cfg.server else Client()
    agent = Agent(client, cfg, cri_client)
    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
    try:
        from .server import NodeAgentService, add_to_server

        add_to_server(NodeAgentService(cri_client, cfg.root_dir, cfg.node_name), server)
        names.append("navarch.v1.NodeAgent")
    except ImportError:
        log.warning("node service unavailable: logs, exec and stats are not served")
    reflection.enable_server_reflection(names, server)
    server.add_insecure_port(cfg.listen)
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        await run_until_stopped(agent.run(), stop, "agent")
    finally:
        await server.stop(grace=1.0)
        await cri_client.close()
        close = getattr(client, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def run(cfg: AgentConfig) -> int:
    """Run until SIGTERM or SIGINT (pods keep running: a stopped kubelet stops nothing)."""
    from services.daemon import run_until_signal

    return run_until_signal(lambda stop: serve(cfg, stop))
