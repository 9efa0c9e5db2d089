"""Pure builders of what a hollow kubelet writes about its node: the Node object, its
heartbeat, its Lease, and the simulated addresses of the node and its pods.

Contracts: every function returns a new message and never mutates its arguments (the
arguments may be informer-cached objects). Addresses are simulated (never routed):
node ``i`` has InternalIP 172.30.0.0 + i + 1 (172.30.0.0/15), and its pods take
addresses from the node's spec.podCIDR when node IPAM gave it one, else from the /24
number ``i`` of 10.128.0.0/9.
"""

from __future__ import annotations

import hashlib
import ipaddress

from navarch._nodes import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    KUBELET_PORT,
    LEASE_NAMESPACE,
    OS_LABEL,
    ZONE_LABEL,
    build_lease,
    heartbeat_node,
    node_conditions,
    renewed_lease,
    set_time,
)
from navarch.v1 import core_pb2

from .config import SimConfig

__all__ = ["HOSTNAME_LABEL", "LEASE_NAMESPACE", "OS_LABEL", "ZONE_LABEL", "build_lease",
           "build_node", "heartbeat_node", "host_ip", "node_conditions", "pod_ip",
           "renewed_lease", "set_time"]

KUBELET_VERSION = "v1.31.0-navarch-sim"
_HOST_NET = ipaddress.IPv4Network("172.30.0.0/15")
_FALLBACK_POD_NET = ipaddress.IPv4Network("10.128.0.0/9")


def host_ip(index: int) -> str:
    """The simulated InternalIP of node ``index``."""
    return str(_HOST_NET.network_address + (index % (_HOST_NET.num_addresses - 2)) + 1)


def pod_ip(pod_cidr: str, index: int, seq: int) -> str:
    """The ``seq``-th pod address of node ``index``: from ``pod_cidr`` when set, else from
    the node's simulated /24; addresses wrap around after the range is used up."""
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    try:
        net = ipaddress.ip_network(pod_cidr) if pod_cidr else _fallback_cidr(index)
    except ValueError:
        net = _fallback_cidr(index)
    usable = max(net.num_addresses - 2, 1)
    return str(net.network_address + 1 + seq % usable)


def _fallback_cidr(index: int) -> ipaddress.IPv4Network:
    count = 1 << (24 - _FALLBACK_POD_NET.prefixlen)
    base = int(_FALLBACK_POD_NET.network_address) + (index % count) * 256
    return ipaddress.IPv4Network((base, 24))


def build_node(cfg: SimConfig, index: int, now: float) -> core_pb2.Node:
    """The Node that node ``index`` registers: labels, taints, capacity, conditions,
    addresses, nodeInfo, daemonEndpoints and images."""
    name = cfg.node_name(index)
    node = core_pb2.Node(api_version="v1", kind="Node")
    node.metadata.name = name
    labels = node.metadata.labels
    labels.update(dict(cfg.labels))
    labels[HOSTNAME_LABEL] = name
    labels[OS_LABEL] = "linux"
    labels[ARCH_LABEL] = "amd64"
    labels[ZONE_LABEL] = f"zone-{index % cfg.zones}"
    for t in cfg.taints:
        node.spec.taints.add(key=t.key, value=t.value, effect=t.effect)
    node.spec.provider_id = f"simnodes://{name}"
    resources = {"cpu": cfg.cpu, "memory": cfg.memory, "pods": str(cfg.pods),
                 "ephemeral-storage": "100Gi"}
    node.status.capacity.update(resources)
    node.status.allocatable.update(resources)
    node.status.conditions.extend(node_conditions(now))
    node.status.addresses.add(type="InternalIP", address=host_ip(index))
    node.status.addresses.add(type="Hostname", address=name)
    node.status.daemon_endpoints.kubelet_endpoint.port = KUBELET_PORT
    digest = hashlib.sha256(name.encode()).hexdigest()
    info = node.status.node_info
    info.machine_id = digest[:32]
    info.system_uuid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-" \
                       f"{digest[20:32]}"
    info.boot_id = digest[32:64]
    info.kernel_version = "6.1.0-simulated"
    info.os_image = "Navarch simulated node"
    info.container_runtime_version = "simnodes://0.1"
    info.kubelet_version = KUBELET_VERSION
    info.kube_proxy_version = KUBELET_VERSION
    info.operating_system = "linux"
    info.architecture = "amd64"
    for image in cfg.images:
        node.status.images.add(names=[image], size_bytes=_image_size(image))
    return node


def _image_size(image: str) -> int:
    # a stable, plausible size (10-500 MB) so that ImageLocality has something to weigh
    h = int(hashlib.sha256(image.encode()).hexdigest()[:8], 16)
    return (10 + h % 490) * 1_000_000
