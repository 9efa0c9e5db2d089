"""The ``default/kubernetes`` Service: how pods find the API, as in Kubernetes.

Every API server keeps, every ``interval`` seconds (Kubernetes: 10):

- the Service ``default/kubernetes``: ClusterIP, the first address of the service range,
  port ``https`` 443/TCP to the servers' port, labels ``component=apiserver`` and
  ``provider=kubernetes``. Deleted, it comes back; its type and ports are put back if
  changed; the rest is the user's.
- with ``--endpoint-reconciler-type lease`` (the default), a Lease
  ``kube-system/kube-apiserver-<hash>`` (label ``apiserver.kubernetes.io/identity=
  kube-apiserver``) whose holder is the address it advertises, renewed with a
  ``lease_seconds`` duration (Kubernetes: 15), and the Endpoints ``default/kubernetes``
  listing the address of every server whose Lease is live. A server that stops deletes
  its Lease and takes its address out; one that dies drops out when its Lease runs out.
  Leases expired for an hour are deleted (Kubernetes' identity lease collection).

Agents give every pod ``KUBERNETES_SERVICE_HOST``/``_PORT`` from this Service
(node_agent/env.py), and the service proxy routes it to the Endpoints.

A server that listens only on loopback advertises nothing (Endpoints may not hold
loopback addresses); it still keeps the Service and the other servers' Endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import time
from collections.abc import Callable

import grpc
import structlog

from navarch.v1 import coordination_pb2, core_pb2, meta_pb2

from .errors import ApiError
from .objects import Obj
from .resources import Resources
from .watchcache import Predicate

__all__ = ["IDENTITY_LABEL", "KubernetesService", "first_service_ip"]

log = structlog.get_logger("navarch.apiserver.kubernetes-service")

NAME = "kubernetes"
NAMESPACE = "default"
LEASE_NAMESPACE = "kube-system"
IDENTITY_LABEL = ("apiserver.kubernetes.io/identity", "kube-apiserver")
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
PORT_NAME = "https"
SERVICE_PORT = 443
LEASE_GC_AFTER = 3600.0


def first_service_ip(cidr: str) -> str:
    """The first usable address of the service range: the ``kubernetes`` Service's."""
    return str(ipaddress.ip_network(cidr, strict=False).network_address + 1)


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _parse_address(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        return None


class KubernetesService:
    """Keeps the ``kubernetes`` Service (and, reconciling, its Endpoints) in place."""

    def __init__(self, resources: Resources, *, service_ip: str, port: int,
                 advertised: tuple[str, int] | None, reconcile_endpoints: bool = True,
                 interval: float = 10.0, lease_seconds: int = 15,
                 clock: Callable[[], float] = time.time) -> None:
        self.resources = resources
        self.service_ip = service_ip
        self.port = advertised[1] if advertised else port
        self._own = advertised
        self.advertised = _address(*advertised) if advertised else ""
        self.reconcile_endpoints = reconcile_endpoints
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.clock = clock
        digest = hashlib.sha256(self.advertised.encode()).hexdigest()[:16]
        self.lease_name = f"kube-apiserver-{digest}"
        self._last_problem = ""

    async def run(self) -> None:
        """Reconcile every ``interval`` seconds until cancelled (the server calls
        ``reconcile`` once itself before serving)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.reconcile()

    async def reconcile(self) -> None:
        """One round, whose failure is logged (once while it repeats) and not raised: a
        store outage or a conflict is retried by the next round."""
        try:
            await self.sync()
            self._last_problem = ""
        except Exception as exc:  # CancelledError is not one: cancelling still works
            problem = str(exc)
            if problem != self._last_problem:
                log.warning("kubernetes service not reconciled", error=problem)
            self._last_problem = problem

    async def sync(self) -> None:
        """One round: the Service, then this server's Lease and the Endpoints."""
        await self._ensure_service()
        if not self.reconcile_endpoints:
            return
        if self.advertised:
            await self._renew_lease()
        await self._reconcile_endpoints(include_self=True)

    async def stop(self) -> None:
        """Take this server out of the Endpoints (best effort: the Lease runs out anyway)."""
        if not (self.reconcile_endpoints and self.advertised):
            return
        with contextlib.suppress(ApiError):
            await self.resources.delete("leases", LEASE_NAMESPACE, self.lease_name)
        try:
            await self._reconcile_endpoints(include_self=False)
        except Exception as exc:
            log.info("could not take this server out of the kubernetes endpoints",
                     error=str(exc))

    # --- the Service ------------------------------------------------------------------

    def _ports(self) -> list[core_pb2.ServicePort]:
        return [core_pb2.ServicePort(name=PORT_NAME, protocol="TCP", port=SERVICE_PORT,
                                     target_port=str(self.port))]

    async def _get(self, resource: str, namespace: str, name: str) -> Obj | None:
        """The object, or None when there is none."""
        try:
            return await self.resources.get(resource, namespace, name)
        except ApiError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    async def _ensure_service(self) -> None:
        current = await self._get("services", NAMESPACE, NAME)
        if current is None:
            svc = core_pb2.Service(metadata=meta_pb2.ObjectMeta(
                name=NAME, namespace=NAMESPACE, labels=SERVICE_LABELS))
            svc.spec.type = "ClusterIP"
            svc.spec.cluster_ip = self.service_ip
            svc.spec.session_affinity = "None"
            svc.spec.ports.extend(self._ports())
            try:
                await self.resources.create("services", NAMESPACE, svc)
                log.info("created the kubernetes service", cluster_ip=self.service_ip)
            except ApiError as exc2:
                if exc2.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise
            return
        assert isinstance(current, core_pb2.Service)
        ports = [(p.name, p.protocol, p.port, p.target_port) for p in current.spec.ports]
        wanted = [(p.name, p.protocol, p.port, p.target_port) for p in self._ports()]
        if current.spec.type == "ClusterIP" and ports == wanted:
            return
        current.spec.type = "ClusterIP"
        del current.spec.ports[:]
        current.spec.ports.extend(self._ports())
        await self.resources.update("services", NAMESPACE, current)
        log.info("put the kubernetes service's type and ports back")

    # --- Leases and Endpoints ---------------------------------------------------------

    async def _renew_lease(self) -> None:
        lease = coordination_pb2.Lease(metadata=meta_pb2.ObjectMeta(
            name=self.lease_name, namespace=LEASE_NAMESPACE,
            labels=dict([IDENTITY_LABEL])))
        lease.spec.holder_identity = self.advertised
        lease.spec.lease_duration_seconds = self.lease_seconds
        lease.spec.renew_time.FromNanoseconds(int(self.clock() * 1e9))
        current = await self._get("leases", LEASE_NAMESPACE, self.lease_name)
        if current is None:
            lease.spec.acquire_time.CopyFrom(lease.spec.renew_time)
            await self.resources.create("leases", LEASE_NAMESPACE, lease)
            return
        assert isinstance(current, coordination_pb2.Lease)
        current.spec.holder_identity = self.advertised
        current.spec.lease_duration_seconds = self.lease_seconds
        current.spec.renew_time.CopyFrom(lease.spec.renew_time)
        await self.resources.update("leases", LEASE_NAMESPACE, current)

    async def _live_servers(self, include_self: bool) -> set[tuple[str, int]]:
        now = self.clock()
        cache = self.resources.caches["leases"]
        predicate = Predicate(LEASE_NAMESPACE, lambda labels: labels.get(
            IDENTITY_LABEL[0]) == IDENTITY_LABEL[1])
        live: set[tuple[str, int]] = set()
        for cached in cache.list(predicate)[1]:
            lease = cached.obj
            assert isinstance(lease, coordination_pb2.Lease)
            name = lease.metadata.name
            if name == self.lease_name:
                continue
            expires = (lease.spec.renew_time.ToNanoseconds() / 1e9
                       + lease.spec.lease_duration_seconds)
            if expires > now:
                parsed = _parse_address(lease.spec.holder_identity)
                if parsed is not None:
                    live.add(parsed)
            elif now - expires > LEASE_GC_AFTER:
                with contextlib.suppress(ApiError):
                    await self.resources.delete("leases", LEASE_NAMESPACE, name)
        if include_self and self._own is not None:
            live.add(self._own)
        return live

    async def _reconcile_endpoints(self, include_self: bool) -> None:
        servers = await self._live_servers(include_self)
        by_port: dict[int, list[str]] = {}
        for ip, port in sorted(servers):
            by_port.setdefault(port, []).append(ip)
        subsets = [core_pb2.EndpointSubset(
            addresses=[core_pb2.EndpointAddress(ip=ip) for ip in ips],
            ports=[core_pb2.EndpointPort(name=PORT_NAME, port=port, protocol="TCP")])
            for port, ips in sorted(by_port.items())]
        current = await self._get("endpoints", NAMESPACE, NAME)
        if current is None:
            endpoints = core_pb2.Endpoints(metadata=meta_pb2.ObjectMeta(
                name=NAME, namespace=NAMESPACE,
                labels={"endpointslice.kubernetes.io/skip-mirror": "true"}))
            endpoints.subsets.extend(subsets)
            with contextlib.suppress(ApiError):
                await self.resources.create("endpoints", NAMESPACE, endpoints)
            return
        assert isinstance(current, core_pb2.Endpoints)
        if list(current.subsets) == subsets:
            return
        del current.subsets[:]
        current.subsets.extend(subsets)
        await self.resources.update("endpoints", NAMESPACE, current)
