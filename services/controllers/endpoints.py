"""The Endpoints controller: for each Service with a selector, an Endpoints object of the
same name listing the pods it selects.

Flow::

    services, pods, endpoints informers ──▶ key of the Service (namespace/name)
        reconcile: selected pods ──desired_subsets (pure)──▶ subsets
                   compare with the cached Endpoints ──▶ create / update / nothing

Contracts (Kubernetes' endpoints controller):
- Services without a selector are left alone (their Endpoints are the user's).
- A pod is listed once it has a podIP and is neither terminating nor finished; Ready pods
  (condition Ready=True) go to ``addresses``, others to ``notReadyAddresses``, unless the
  Service sets ``publishNotReadyAddresses`` (then all are ready).
- Named target ports are resolved per pod from its container ports; a pod lacking the
  name is left out of that port only. Addresses with the same set of ports share a subset.
- The Endpoints carry the Service's labels (and service.kubernetes.io/headless for a
  headless Service); they are written only when their content changed, and deleted with
  their Service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from navarch._errors import AlreadyExists, Forbidden, NotFound
from navarch._pods import pod_ready
from navarch.v1 import core_pb2

from .framework import Controller, clone, split_key

__all__ = ["EndpointsController", "desired_subsets", "pod_ready", "resolve_target_port",
           "selects"]


HEADLESS_LABEL = "service.kubernetes.io/headless"


def selects(service: core_pb2.Service, pod: core_pb2.Pod) -> bool:
    """Whether the Service's (non-empty) selector matches the pod's labels."""
    selector = service.spec.selector
    if not selector or pod.metadata.namespace != service.metadata.namespace:
        return False
    labels = pod.metadata.labels
    return all(labels.get(k) == v for k, v in selector.items())


def _listable(pod: core_pb2.Pod) -> bool:
    return bool(pod.status.pod_ip) and not pod.metadata.HasField("deletion_timestamp") \
        and pod.status.phase not in ("Succeeded", "Failed")


def resolve_target_port(port: core_pb2.ServicePort, pod: core_pb2.Pod) -> int | None:
    """The container port a Service port sends to on ``pod``: the number given, the
    Service port when none is, or the pod's container port of that name and protocol
    (None when the pod has no such port)."""
    target = port.target_port
    if not target:
        return port.port
    if target.isdigit():
        return int(target)
    protocol = port.protocol or "TCP"
    for ctr in pod.spec.containers:
        for cp in ctr.ports:
            if cp.name == target and (cp.protocol or "TCP") == protocol:
                return cp.container_port
    return None


@dataclass(frozen=True)
class _Port:
    name: str
    port: int
    protocol: str
    app_protocol: str | None


def _address(service: core_pb2.Service, pod: core_pb2.Pod) -> core_pb2.EndpointAddress:
    addr = core_pb2.EndpointAddress(ip=pod.status.pod_ip)
    if pod.spec.node_name:
        addr.node_name = pod.spec.node_name
    ref = addr.target_ref
    ref.kind, ref.namespace = "Pod", pod.metadata.namespace
    ref.name, ref.uid = pod.metadata.name, pod.metadata.uid
    if pod.spec.hostname and pod.spec.subdomain == service.metadata.name:
        addr.hostname = pod.spec.hostname
    return addr


def desired_subsets(service: core_pb2.Service, pods: list[core_pb2.Pod]
                    ) -> list[core_pb2.EndpointSubset]:
    """The subsets of the Service's Endpoints given every pod of its namespace: pods
    grouped by their resolved port set, ready and not-ready addresses sorted by IP, ports
    by name. A headless Service without ports lists its addresses with no ports."""
    headless_portless = service.spec.cluster_ip == "None" and not service.spec.ports
    groups: dict[tuple[_Port, ...], tuple[list[Any], list[Any]]] = {}
    publish = service.spec.publish_not_ready_addresses
    for pod in pods:
        if not selects(service, pod) or not _listable(pod):
            continue
        ports: list[_Port] = []
        for sp in service.spec.ports:
            number = resolve_target_port(sp, pod)
            if number is None:
                continue
            app = sp.app_protocol if sp.HasField("app_protocol") else None
            ports.append(_Port(sp.name, number, sp.protocol or "TCP", app))
        if not ports and not headless_portless:
            continue
        ready, not_ready = groups.setdefault(
            tuple(sorted(set(ports), key=lambda p: (p.name, p.port, p.protocol))), ([], []))
        (ready if publish or pod_ready(pod) else not_ready).append(_address(service, pod))
    subsets = []
    for ports_key, (ready, not_ready) in groups.items():
        subset = core_pb2.EndpointSubset()
        subset.addresses.extend(sorted(ready, key=_address_order))
        subset.not_ready_addresses.extend(sorted(not_ready, key=_address_order))
        for p in ports_key:
            ep = subset.ports.add(name=p.name, port=p.port, protocol=p.protocol)
            if p.app_protocol is not None:
                ep.app_protocol = p.app_protocol
        subsets.append(subset)
    subsets.sort(key=lambda s: [(p.name, p.port, p.protocol) for p in s.ports])
    return subsets


def _address_order(addr: core_pb2.EndpointAddress) -> tuple[str, str]:
    return (addr.ip, addr.target_ref.name)


class EndpointsController(Controller):
    """Keeps each selector Service's Endpoints equal to its selected pods."""

    name = "endpoints"

    async def setup(self) -> None:
        factory = self.ctx.informers
        self.services = factory.informer("services")
        self.pods = factory.informer("pods")
        self.endpoints = factory.informer("endpoints")
        await self.services.add_handlers(self.enqueue, lambda _o, n: self.enqueue(n),
                                         self.enqueue)
        await self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)
        # Only deletions matter (recreate them); as Kubernetes, edits by others and
        # Endpoints of selector-less Services are not reacted to.
        await self.endpoints.add_handlers(None, None, self.enqueue)

    def _pod_changed(self, pod: core_pb2.Pod) -> None:
        for svc in self.services.list(pod.metadata.namespace):
            if selects(svc, pod):
                self.enqueue(svc)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self._pod_changed(old)
        if old.metadata.labels != new.metadata.labels:
            self._pod_changed(new)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(name, namespace)
        current = self.endpoints.get(name, namespace)
        api = self.client.resource("endpoints", namespace)
        if service is None:
            if current is not None:  # Kubernetes deletes them with their Service
                try:
                    await api.delete(name, uid=current.metadata.uid)
                except NotFound:
                    pass
            return
        if not service.spec.selector:
            return
        subsets = desired_subsets(service, self.pods.list(namespace))
        labels = dict(service.metadata.labels)
        if service.spec.cluster_ip == "None":
            labels[HEADLESS_LABEL] = ""
        if current is None:
            ep = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
            ep.metadata.name, ep.metadata.namespace = name, namespace
            ep.metadata.labels.update(labels)
            ep.subsets.extend(subsets)
            try:
                await api.create(ep)
            except AlreadyExists:
                self.queue.add_rate_limited(key)  # the cache is behind: look again
            except Forbidden:
                pass  # the namespace is terminating: its Service goes too (as Kubernetes)
            return
        if list(current.subsets) == subsets and dict(current.metadata.labels) == labels:
            return
        ep = clone(current)
        del ep.subsets[:]
        ep.subsets.extend(subsets)
        ep.metadata.labels.clear()
        ep.metadata.labels.update(labels)
        await api.update(ep)
