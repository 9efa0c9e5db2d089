"""The agent's Node: registration, Lease heartbeats, status reports, the pod network config.

Flow::

    register: create Node (or take over the one of an earlier run: status written again)
    lease:    renew kube-node-lease/<node> every --heartbeat-interval (kubelet: 10 s)
    status:   Ready (from CRI's RuntimeReady and NetworkReady), capacity, images; every
              --status-interval, and at once when readiness or the image list changes
    podCIDR:  the Node's spec.podCIDR (from node IPAM) or --pod-cidr ─▶ CNI conflist

``node_object`` and ``runtime_not_ready`` are pure; ``NodeReporter`` is the thin loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from cri_api.v1 import api_pb2

from navarch._clock import Clock, RealClock
from navarch._errors import AlreadyExists, ApiError, Conflict, NotFound
from navarch._nodes import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    LEASE_NAMESPACE,
    OS_LABEL,
    build_lease,
    heartbeat_node,
    node_conditions,
    renewed_lease,
)
from navarch.v1 import coordination_pb2, core_pb2, meta_pb2

from . import cni
from .config import AgentConfig
from .cri import CriClient

__all__ = ["AGENT_VERSION", "NodeReporter", "host_capacity", "node_object",
           "runtime_not_ready"]

log = structlog.get_logger("navarch.agent.node")

AGENT_VERSION = "v1.31.0-navarch"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def host_capacity(root_dir: Path) -> dict[str, str]:
    """What this machine has: cpus, memory (MemTotal), disk of ``root_dir``."""
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    disk = os.statvfs(root_dir)
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki",
            "ephemeral-storage": f"{disk.f_blocks * disk.f_frsize // 1024}Ki"}


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def node_object(cfg: AgentConfig, capacity: dict[str, str], runtime_version: str,
                images: Sequence[api_pb2.Image], now: float, not_ready: str = ""
                ) -> core_pb2.Node:
    """The Node this agent registers: labels, taints, capacity, addresses, endpoints,
    nodeInfo, images and conditions."""
    node = core_pb2.Node(api_version="v1", kind="Node")
    node.metadata.name = cfg.node_name
    arch = _ARCH.get(platform.machine(), platform.machine())
    node.metadata.labels.update({**dict(cfg.labels), HOSTNAME_LABEL: cfg.node_name,
                                 OS_LABEL: "linux", ARCH_LABEL: arch})
    for t in cfg.taints:
        node.spec.taints.add(key=t.key, value=t.value, effect=t.effect)
    if cfg.pod_cidr:
        node.spec.pod_cidr = cfg.pod_cidr
        node.spec.pod_cidrs.append(cfg.pod_cidr)
    resources = dict(capacity)
    if cfg.cpu:
        resources["cpu"] = cfg.cpu
    if cfg.memory:
        resources["memory"] = cfg.memory
    resources["pods"] = str(cfg.max_pods)
    node.status.capacity.update(resources)
    node.status.allocatable.update(resources)
    node.status.conditions.extend(node_conditions(now, not_ready=not_ready))
    node.status.addresses.add(type="InternalIP", address=cfg.node_ip)
    node.status.addresses.add(type="Hostname", address=cfg.node_name)
    node.status.daemon_endpoints.kubelet_endpoint.port = cfg.listen_port
    info = node.status.node_info
    machine_id = _read("/etc/machine-id") or hashlib.sha256(
        cfg.node_name.encode()).hexdigest()[:32]
    # nodes sharing one machine still get distinct ids
    info.machine_id = hashlib.sha256(f"{machine_id}/{cfg.node_name}".encode()).hexdigest()[:32]
    info.system_uuid = info.machine_id
    info.boot_id = _read("/proc/sys/kernel/random/boot_id")
    info.kernel_version = platform.release()
    info.os_image = _os_image()
    info.container_runtime_version = runtime_version
    info.kubelet_version = AGENT_VERSION
    info.kube_proxy_version = AGENT_VERSION
    info.operating_system = "linux"
    info.architecture = arch
    node.status.images.extend(node_images(images))
    return node


def node_images(images: Sequence[api_pb2.Image]) -> list[core_pb2.ContainerImage]:
    """CRI's images as the Node reports them (names: digests and tags), largest first."""
    out = []
    for image in sorted(images, key=lambda i: -i.size):
        names = [*image.repo_digests, *image.repo_tags]
        if names:
            out.append(core_pb2.ContainerImage(names=names, size_bytes=image.size))
    return out[:50]  # kubelet's --node-status-max-images


def runtime_not_ready(status: api_pb2.RuntimeStatus | None) -> str:
    """Why the node is not Ready, in kubelet's words; "" when CRI is ready."""
    if status is None:
        return "container runtime is down"
    problems = []
    for cond in status.conditions:
        if cond.type in ("RuntimeReady", "NetworkReady") and not cond.status:
            problems.append(f"{cond.type}=false reason:{cond.reason} message:{cond.message}")
    if not problems:
        return ""
    return "container runtime network not ready: " + "; ".join(problems) \
        if all(p.startswith("NetworkReady") for p in problems) \
        else "container runtime not ready: " + "; ".join(problems)


class NodeReporter:
    """Registers the node and keeps its Lease and status fresh; writes the CNI config."""

    def __init__(self, client: Any, cri: CriClient, cfg: AgentConfig,
                 clock: Clock | None = None,
                 on_pod_cidr: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.cri = cri
        self.cfg = cfg
        self.clock: Clock = clock or RealClock()
        self.node: core_pb2.Node | None = None
        self.lease: coordination_pb2.Lease | None = None
        self.pod_cidr = cfg.pod_cidr
        self.not_ready = "agent starting"
        self._images: list[api_pb2.Image] = []
        self._runtime_version = ""
        self._poke = asyncio.Event()
        self._on_pod_cidr = on_pod_cidr

    def poke(self) -> None:
        """Report status soon (something a node status shows has changed)."""
        self._poke.set()

    async def _observe_runtime(self) -> None:
        try:
            if not self._runtime_version:
                v = await self.cri.version()
                self._runtime_version = f"{v.runtime_name}://{v.runtime_version}"
            status = (await self.cri.status()).status
            self._images = await self.cri.list_images()
        except Exception as exc:  # CRI down: the node is not ready, and says why
            log.warning("container runtime unreachable", error=str(exc))
            status = None
        self.not_ready = runtime_not_ready(status)

    def _write_cni(self, node: core_pb2.Node) -> None:
        cidr = node.spec.pod_cidr or self.cfg.pod_cidr
        if not cidr:
            return
        if cni.write_conflist(self.cfg.cni_conf_dir, cidr, self.cfg.root_dir / "ipam"):
            log.info("pod network configured", pod_cidr=cidr)
            self.poke()  # NetworkReady turns true: say so without waiting a round
        if cidr != self.pod_cidr:
            self.pod_cidr = cidr
            if self._on_pod_cidr is not None:
                self._on_pod_cidr(cidr)

    async def register(self) -> core_pb2.Node:
        """Create the Node, or take over the existing one (its status written anew)."""
        await self._observe_runtime()
        capacity = host_capacity(self.cfg.root_dir)
        nodes = self.client.nodes()
        while True:
            fresh = node_object(self.cfg, capacity, self._runtime_version, self._images,
                                self.clock.now(), self.not_ready)
            try:
                self.node = await nodes.create(fresh)
                break
            except AlreadyExists:
                pass
            try:
                current = await nodes.get(self.cfg.node_name)
                merged = core_pb2.Node()
                merged.CopyFrom(current)
                merged.metadata.labels.update(fresh.metadata.labels)
                if self.cfg.pod_cidr and not merged.spec.pod_cidr:
                    merged.spec.pod_cidr = self.cfg.pod_cidr
                    merged.spec.pod_cidrs.append(self.cfg.pod_cidr)
                merged = await nodes.update(merged)
                conditions = [*fresh.status.conditions]
                merged.status.CopyFrom(fresh.status)
                del merged.status.conditions[:]
                merged.status.conditions.extend(node_conditions(
                    self.clock.now(), conditions, self.not_ready))
                self.node = await nodes.update_status(merged)
                break
            except (Conflict, NotFound):
                await self.clock.sleep(0.2)
        self._write_cni(self.node)
        log.info("node registered", node=self.cfg.node_name, not_ready=self.not_ready or None)
        return self.node

    def observe_node(self, node: core_pb2.Node) -> None:
        """The Node as the watch shows it (spec.podCIDR arrives this way)."""
        if node.metadata.name == self.cfg.node_name:
            self.node = node
            self._write_cni(node)

    async def report_status(self) -> None:
        """Write Ready, capacity and images now (a conflict re-reads the Node once)."""
        before = self.not_ready
        await self._observe_runtime()
        nodes = self.client.nodes()
        for attempt in range(2):
            try:
                current = self.node if attempt == 0 and self.node is not None else \
                    await nodes.get(self.cfg.node_name)
                out = heartbeat_node(current, self.clock.now(), self.not_ready)
                del out.status.images[:]
                out.status.images.extend(node_images(self._images))
                self.node = await nodes.update_status(out)
                break
            except Conflict:
                continue
            except NotFound:  # deleted under us: register again, as kubelet does
                await self.register()
                break
        if before != self.not_ready:
            log.info("node readiness changed", ready=not self.not_ready,
                     reason=self.not_ready or None)

    async def renew_lease(self) -> None:
        leases = self.client.leases(LEASE_NAMESPACE)
        now = self.clock.now()
        try:
            if self.lease is None:
                fresh = build_lease(self.cfg.node_name, now, self.cfg.lease_duration)
                if self.node is not None and self.node.metadata.uid:
                    fresh.metadata.owner_references.append(meta_pb2.OwnerReference(
                        api_version="v1", kind="Node", name=self.cfg.node_name,
                        uid=self.node.metadata.uid))
                try:
                    self.lease = await leases.create(fresh)
                    return
                except AlreadyExists:
                    self.lease = await leases.get(self.cfg.node_name)
            self.lease = await leases.update(renewed_lease(
                self.lease, self.cfg.node_name, now, self.cfg.lease_duration))
        except (Conflict, NotFound):
            self.lease = None

    async def run(self) -> None:
        """Lease and status loops, until cancelled."""
        await asyncio.gather(self._lease_loop(), self._status_loop())

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self.renew_lease()
            except ApiError as exc:
                log.warning("lease renewal failed", error=exc.message)
            await self.clock.sleep(self.cfg.heartbeat_interval)

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.report_status()
            except ApiError as exc:
                log.warning("node status update failed", error=exc.message)
            self._poke.clear()
            # readiness is re-checked every heartbeat; a full report when it changed,
            # when poked, or every --status-interval
            waited = 0.0
            while waited < self.cfg.status_interval and not self._poke.is_set():
                step = min(self.cfg.heartbeat_interval, self.cfg.status_interval - waited)
                try:
                    await asyncio.wait_for(self._poke.wait(), step)
                except TimeoutError:
                    pass
                waited += step
                before = self.not_ready
                await self._observe_runtime()
                if before != self.not_ready:
                    break
