"""ClusterIP and NodePort allocation, conflict-free across API servers and restarts.

Every allocated value is a key of its own in the store:

    /registry/allocations/serviceips/<ip>           → "<namespace>/<name>"
    /registry/allocations/servicenodeports/<port>   → "<namespace>/<name>"

A Service write and the allocation keys it claims or releases go into one transaction
that also requires the claimed keys to be absent. So two API servers can never hand out
the same value, a crash can never leave an allocation without its Service or the other
way round, and nothing is kept in memory across requests. When an automatically picked
value turns out taken, the caller plans again (new random picks); when a value the user
asked for is taken, the request fails naming the field.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from navarch._kinds import Kind

from . import objects
from .errors import FieldViolation, invalid
from .objects import Obj
from .storage import Compare, Delete, Put, Store, key_absent, scan

__all__ = ["IP_PREFIX", "PORT_PREFIX", "Allocations", "ServiceAllocator"]

IP_PREFIX = b"/registry/allocations/serviceips/"
PORT_PREFIX = b"/registry/allocations/servicenodeports/"
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass
class Allocations:
    """What a Service write must claim and release, as transaction parts."""

    compares: list[Compare] = field(default_factory=list)
    puts: list[Put] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    violations: list[FieldViolation] = field(default_factory=list)
    # key → (field path, value) for values the user asked for, to explain conflicts
    requested: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    owner: bytes = b""

    def claim(self, key: bytes) -> None:
        """Require ``key`` absent and create it."""
        self.compares.append(key_absent(key))
        self.puts.append(Put(key, self.owner))


def _ip_key(ip: str) -> bytes:
    return IP_PREFIX + ip.encode()


def _port_key(port: int) -> bytes:
    return PORT_PREFIX + str(port).encode()


class ServiceAllocator:
    """Plans the allocation part of Service writes. Holds no allocation state."""

    def __init__(self, store: Store, service_cidr: str, node_ports: tuple[int, int],
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        self.node_ports = node_ports
        self.rng = rng or random.SystemRandom()

    async def plan(self, kind: Kind, new: Obj, old: Obj | None) -> Allocations:
        """Fill ``new``'s clusterIP and nodePorts and return what the write must claim and
        release. ``old`` is the stored Service for updates, None for creates."""
        plan = Allocations()
        if kind.kind != "Service":
            return plan
        meta = new.metadata
        plan.owner = f"{meta.namespace}/{meta.name}".encode()
        self._plan_cluster_ip(new, old, plan)
        await self._plan_node_ports(new, old, plan)
        return plan

    def releases(self, kind: Kind, old: Obj) -> list[Delete]:
        """The allocation keys to delete with a Service."""
        if kind.kind != "Service":
            return []
        spec = old.spec
        keys = [_ip_key(ip) for ip in _allocated_ips(spec)]
        keys += [_port_key(p.node_port) for p in spec.ports if p.node_port]
        return [Delete(k) for k in dict.fromkeys(keys)]

    async def taken_requests(self, plan: Allocations) -> list[FieldViolation]:
        """Violations for requested values that someone else holds."""
        problems = []
        for key, (path, value) in plan.requested.items():
            kv = await self.store.get(key)
            if kv is not None and kv.value != plan.owner:
                what = "IP" if key.startswith(IP_PREFIX) else "port"
                shown: object = int(value) if what == "port" else value
                problems.append(invalid(path, shown, f"provided {what} is already allocated"))
        return problems

    # --- cluster IPs ------------------------------------------------------------------

    def _plan_cluster_ip(self, new: Obj, old: Obj | None, plan: Allocations) -> None:
        spec = new.spec
        before = set(_allocated_ips(old.spec)) if old is not None else set()
        if spec.type == "ExternalName":
            plan.deletes += [Delete(_ip_key(ip)) for ip in sorted(before)]
            return
        if old is not None and not spec.cluster_ip and old.spec.type != "ExternalName":
            spec.cluster_ip = old.spec.cluster_ip
            spec.cluster_ips[:] = list(old.spec.cluster_ips)
        if spec.cluster_ip == "None":
            plan.deletes += [Delete(_ip_key(ip)) for ip in sorted(before)]
            return
        if not spec.cluster_ip:
            spec.cluster_ip = self._pick_ip()
        elif spec.cluster_ip not in before:
            problem = self._check_ip(spec.cluster_ip)
            if problem is not None:
                plan.violations.append(problem)
                return
            plan.requested[_ip_key(spec.cluster_ip)] = ("spec.clusterIP", spec.cluster_ip)
        if not spec.cluster_ips:
            spec.cluster_ips.append(spec.cluster_ip)
        if spec.cluster_ip not in before:
            plan.claim(_ip_key(spec.cluster_ip))
        plan.deletes += [Delete(_ip_key(ip)) for ip in sorted(before - {spec.cluster_ip})]

    def _pick_ip(self) -> str:
        """A random address, neither the network's nor the broadcast one. As Kubernetes'
        static subrange: when the range is large enough, automatic picks stay out of its
        first min(max(16, size/16), 256) addresses, kept for addresses asked for by name
        (the first one is the ``kubernetes`` Service's)."""
        size = self.network.num_addresses
        band = min(max(16, size // 16), 256)
        low = band if size - 2 - band >= band else 1
        offset = self.rng.randrange(low, size - 1)
        return str(self.network.network_address + offset)

    def _check_ip(self, value: str) -> FieldViolation | None:
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return invalid("spec.clusterIP", value, "must be a valid IP address, "
                           '(e.g. 10.9.8.7), "None" for a headless service, or empty')
        if ip not in self.network or ip in (self.network.network_address,
                                             self.network.broadcast_address):
            return invalid("spec.clusterIP", value, "provided IP is not in the valid range. "
                           f"The range of valid IPs is {self.network}")
        return None

    # --- node ports -------------------------------------------------------------------

    async def _plan_node_ports(self, new: Obj, old: Obj | None,
                               plan: Allocations) -> None:
        spec = new.spec
        before = {p.node_port for p in old.spec.ports if p.node_port} if old is not None else set()
        if spec.type not in _NODE_PORT_TYPES:  # defaulting has cleared the ports' nodePort
            plan.deletes += [Delete(_port_key(p)) for p in sorted(before)]
            return
        if old is not None:
            self._carry_node_ports(spec, old.spec)
        low, high = self.node_ports
        wanted: set[int] = set()
        for i, port in enumerate(spec.ports):
            if not port.node_port:
                continue
            if not low <= port.node_port <= high:
                plan.violations.append(invalid(
                    f"spec.ports[{i}].nodePort", port.node_port,
                    f"provided port is not in the valid range. The range of valid ports is "
                    f"{low}-{high}"))
                continue
            if port.node_port not in before and port.node_port not in wanted:
                plan.requested[_port_key(port.node_port)] = (f"spec.ports[{i}].nodePort",
                                                             str(port.node_port))
            wanted.add(port.node_port)
        missing = [p for p in spec.ports if not p.node_port]
        if missing:
            free = await self._free_ports(len(missing), wanted | before)
            if free is None:
                plan.violations.append(FieldViolation(
                    "spec.ports", f"Internal error: failed to allocate a nodePort: the range "
                    f"{low}-{high} is full"))
                return
            for port, number in zip(missing, free, strict=True):
                port.node_port = number
                wanted.add(number)
        for number in sorted(wanted - before):
            plan.claim(_port_key(number))
        plan.deletes += [Delete(_port_key(p)) for p in sorted(before - wanted)]

    @staticmethod
    def _carry_node_ports(spec: Obj, old_spec: Obj) -> None:
        """An update that leaves nodePort empty keeps the port it had (matched by name,
        else by port number and protocol)."""
        by_name = {p.name: p.node_port for p in old_spec.ports if p.node_port and p.name}
        by_port = {(p.port, p.protocol): p.node_port for p in old_spec.ports if p.node_port}
        for port in spec.ports:
            if port.node_port:
                continue
            if port.name and port.name in by_name:
                port.node_port = by_name[port.name]
            else:
                port.node_port = by_port.get((port.port, port.protocol), 0)

    async def _free_ports(self, count: int, avoid: set[int]) -> list[int] | None:
        low, high = self.node_ports
        _, kvs = await scan(self.store, PORT_PREFIX, objects.prefix_end(PORT_PREFIX))
        taken = avoid | {int(kv.key[len(PORT_PREFIX):]) for kv in kvs}
        free = [p for p in range(low, high + 1) if p not in taken]
        if len(free) < count:
            return None
        return self.rng.sample(free, count)


def _allocated_ips(spec: Obj) -> list[str]:
    ips = [spec.cluster_ip, *spec.cluster_ips]
    return list(dict.fromkeys(ip for ip in ips if ip and ip != "None"))
