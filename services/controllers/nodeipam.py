"""Node IPAM: every Node gets a podCIDR carved from the cluster CIDR (kube-controller-
manager's range allocator).

Flow::

    nodes informer ──add/update──▶ podCIDR set?  yes: mark it used   no: enqueue node
                   ──delete────▶ release its podCIDR
    reconcile(node): CidrSet.allocate() ──▶ patch spec.podCIDR + spec.podCIDRs
                     (full: event CIDRNotAvailable, retry later)

Contracts:
- Every podCIDR already on a node is marked used before any allocation: the informer's
  first list calls on_add for every node before the workers start.
- One podCIDR per node, never two nodes with the same one (allocations are remembered
  until the node shows its podCIDR, and released when the write fails).
"""

from __future__ import annotations

import ipaddress

from navarch._errors import NotFound
from navarch.v1 import core_pb2

from .framework import Controller

__all__ = ["CidrSet", "NodeIpamController"]

RETRY_WHEN_FULL = 30.0


class CidrSet:
    """The /mask subnets of a cluster CIDR, which are used, and where to look next.

    Not thread-safe; one controller owns it. Allocation scans from just after the last
    allocated subnet, wrapping around, as Kubernetes' cidrset does.
    """

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        if not self.network.prefixlen <= mask_size <= self.network.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit in {cluster_cidr}")
        self.mask_size = mask_size
        self.count = 2 ** (mask_size - self.network.prefixlen)
        self._step = 2 ** (self.network.max_prefixlen - mask_size)
        self.used: set[int] = set()
        self._next = 0

    def _subnet(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def _index(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask_size \
                or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        offset = int(net.network_address) - int(self.network.network_address)
        return int(offset // self._step)

    def occupy(self, cidr: str) -> bool:
        """Mark ``cidr`` used; False when it is not one of this set's subnets."""
        index = self._index(cidr)
        if index is None:
            return False
        self.used.add(index)
        return True

    def release(self, cidr: str) -> None:
        """Mark ``cidr`` free again (no-op for a subnet not in this set)."""
        index = self._index(cidr)
        if index is not None:
            self.used.discard(index)

    def allocate(self) -> str | None:
        """The next free subnet, now marked used; None when every one is taken."""
        if len(self.used) >= self.count:
            return None
        for i in range(self.count):
            index = (self._next + i) % self.count
            if index not in self.used:
                self.used.add(index)
                self._next = (index + 1) % self.count
                return self._subnet(index)
        return None


class NodeIpamController(Controller):
    """Assigns each Node a podCIDR (spec.podCIDR and spec.podCIDRs)."""

    name = "nodeipam"
    workers = 1  # allocation order is one sequence

    async def setup(self) -> None:
        options = self.ctx.options
        self.cidrs = CidrSet(options.get("cluster_cidr", "10.244.0.0/16"),
                             int(options.get("node_cidr_mask_size", 24)))
        self.assigned: dict[str, str] = {}  # node name -> podCIDR it has or is getting
        self.nodes = self.ctx.informers.informer("nodes")
        await self.nodes.add_handlers(self._observe, lambda _o, n: self._observe(n),
                                      self._deleted)

    def _observe(self, node: core_pb2.Node) -> None:
        name = node.metadata.name
        if node.spec.pod_cidr:
            self.cidrs.occupy(node.spec.pod_cidr)
            self.assigned[name] = node.spec.pod_cidr
        else:
            self.enqueue(node)

    def _deleted(self, node: core_pb2.Node) -> None:
        cidr = self.assigned.pop(node.metadata.name, node.spec.pod_cidr)
        if cidr:
            self.cidrs.release(cidr)

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node.spec.pod_cidr:
            return
        cidr = self.assigned.get(key)
        if cidr is None:
            cidr = self.cidrs.allocate()
            if cidr is None:
                self.recorder.event(node, "Warning", "CIDRNotAvailable",
                                    f"Node {key} status is now: CIDRNotAvailable")
                self.queue.add_after(key, RETRY_WHEN_FULL)
                return
            self.assigned[key] = cidr
        try:
            await self.client.resource("nodes", "").patch(
                key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except NotFound:
            self.assigned.pop(key, None)
            self.cidrs.release(cidr)
        except Exception:
            self.assigned.pop(key, None)
            self.cidrs.release(cidr)
            raise
