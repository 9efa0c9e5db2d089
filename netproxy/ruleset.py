"""What the service proxy wants in the kernel: pure functions from Services and Endpoints.

The layout follows kube-proxy's nftables mode, in one table ``ip navarch``::

    nat-prerouting / nat-output (dstnat)  ─ jump services
    services:   ip daddr . meta l4proto . th dport vmap @service-ips
                ip daddr != 127.0.0.0/8 fib daddr type local
                    meta l4proto . th dport vmap @service-nodeports
    (services first: ip daddr @cluster-ips ip saddr != CLUSTER-CIDR jump mark-for-masquerade)
    svc-<hash>-<ns>/<name>/<proto>/<port>          one per service port with endpoints
        [ip saddr @aff-<ep> goto ep-…]             sessionAffinity ClientIP
        numgen random mod N 0 goto ep-…  …  goto ep-…    uniform over ready endpoints
    ep-<hash>-<ns>/<name>/<proto>/<port>__<ip>/<port>
        ip saddr EP jump mark-for-masquerade       hairpin: a pod reaching itself
        [ip saddr CLUSTER-CIDR jump mark-for-masquerade]   EP off the pod network
        [update @aff-<ep> { ip saddr }]
        meta l4proto P dnat to EP:PORT
    ext-<hash>-…                                   a NodePort's entry
        Cluster policy: jump mark-for-masquerade; goto svc-…
        Local policy:   pods and the node itself go cluster-wide; others only to
                        this node's endpoints, unmasqueraded (drop if it has none)
    nat-postrouting ─ jump masquerading: masquerade what was marked 0x4000
    filter-* (ct state new): a service port with no ready endpoint is in
        @no-endpoint-services / @no-endpoint-nodeports and rejected (ICMP port
        unreachable, so clients fail at once); other ports of a ClusterIP are rejected
        after DNAT through @cluster-ips.

Load balancing: ``numgen random mod (N-i)`` in rule ``i`` picks endpoint ``i`` with
probability 1/(N-i) among those left, which is uniform overall and needs no anonymous
set. Every rule is a tuple of statements (``netproxy.nftnl``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from navarch.v1 import core_pb2

TABLE = "navarch"
MASQ_CHAIN = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_EP_SERVICES = "no-endpoint-services"
NO_EP_NODEPORTS = "no-endpoint-nodeports"
CLUSTER_IPS = "cluster-ips"
MARK_MASQ = 0x4000
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds: Kubernetes' default for ClientIP affinity

# (name, key types, verdict map)
MAPS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (SERVICE_IPS, ("ipv4_addr", "inet_proto", "inet_service"), True),
    (SERVICE_NODEPORTS, ("inet_proto", "inet_service"), True),
    (NO_EP_SERVICES, ("ipv4_addr", "inet_proto", "inet_service"), True),
    (NO_EP_NODEPORTS, ("inet_proto", "inet_service"), True),
    (CLUSTER_IPS, ("ipv4_addr",), False),
)

Key = tuple[Any, ...]  # a map element's key: (ip, proto, port), (proto, port) or (ip,)
Rule = tuple[tuple[Any, ...], ...]

# (chain, (type, hook, priority) or None, rules)
BaseChains = tuple[tuple[str, tuple[str, str, int] | None, tuple[Rule, ...]], ...]
BASE_CHAINS: BaseChains = (
    ("filter-input", ("filter", "input", -110), (
        (("ct_new",), ("jump", "nodeport-endpoints-check")),
        (("ct_new",), ("jump", "service-endpoints-check")))),
    ("filter-forward", ("filter", "forward", -110), (
        (("ct_new",), ("jump", "service-endpoints-check")),)),
    ("filter-output", ("filter", "output", -110), (
        (("ct_new",), ("jump", "service-endpoints-check")),)),
    ("filter-forward-post-dnat", ("filter", "forward", -90), (
        (("ct_new",), ("jump", "cluster-ips-check")),)),
    ("filter-output-post-dnat", ("filter", "output", -90), (
        (("ct_new",), ("jump", "cluster-ips-check")),)),
    ("nat-prerouting", ("nat", "prerouting", -100), ((("jump", "services"),),)),
    ("nat-output", ("nat", "output", -100), ((("jump", "services"),),)),
    ("nat-postrouting", ("nat", "postrouting", 100), ((("jump", "masquerading"),),)),
    (REJECT_CHAIN, None, ((("reject",),),)),
    ("nodeport-endpoints-check", None, (
        (("not_loopback",), ("fib_daddr_local",), ("vmap_proto_port", NO_EP_NODEPORTS)),)),
    ("service-endpoints-check", None, (
        (("vmap_daddr_proto_port", NO_EP_SERVICES),),)),
    ("cluster-ips-check", None, ((("daddr_in", CLUSTER_IPS), ("reject",)),)),
    (MASQ_CHAIN, None, ((("mark_or", MARK_MASQ),),)),
    ("masquerading", None, (
        (("mark_unset_return", MARK_MASQ),),
        (("mark_xor", MARK_MASQ),),
        (("masquerade",),))),
    ("services", None, (
        (("vmap_daddr_proto_port", SERVICE_IPS),),
        (("not_loopback",), ("fib_daddr_local",), ("vmap_proto_port", SERVICE_NODEPORTS)))),
)
BASE_CHAIN_NAMES = frozenset(name for name, _, _ in BASE_CHAINS)


def base_chains(cluster_cidr: str | None) -> BaseChains:
    """The fixed chains; with a cluster CIDR, ``services`` first marks for masquerading
    whatever reaches a ClusterIP from outside it (the node itself, another network): one
    rule for all Services where kube-proxy writes one per Service."""
    if not cluster_cidr:
        return BASE_CHAINS
    masq: Rule = (("daddr_in", CLUSTER_IPS), ("saddr_not_in", cluster_cidr),
                  ("jump", MASQ_CHAIN))
    return tuple((name, hook, (masq, *rules) if name == "services" else rules)
                 for name, hook, rules in BASE_CHAINS)


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with its ready endpoints: the unit the rules are made of."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int = 0
    local_only: bool = False  # externalTrafficPolicy Local
    affinity_timeout: int = 0  # seconds; 0: no session affinity
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def ident(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"


@dataclass
class ServiceRules:
    """Everything one Service contributes: its chains, map elements and affinity sets."""

    chains: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    # map name -> {key: goto chain (None for a plain set)}
    elements: dict[str, dict[Key, str | None]] = field(default_factory=dict)
    affinity_sets: dict[str, int] = field(default_factory=dict)  # name -> timeout (ms)

    def element(self, map_name: str, key: Key, chain: str | None) -> None:
        self.elements.setdefault(map_name, {})[key] = chain


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SHIFTS = (35, 30, 25, 20, 15, 10, 5, 0)


def _hash(text: str) -> str:
    """The first 40 bits of SHA-256 in base32: 8 characters (what base64.b32encode gives
    for them, without its slow generic loop)."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:5], "big")
    return "".join([_B32[(n >> shift) & 31] for shift in _SHIFTS])


@lru_cache(maxsize=1 << 17)
def _name(prefix: str, tail: str, readable: bool = True) -> str:
    """``<prefix>-<hash of tail>[-<tail>]``, cached: a full sync names every chain again."""
    return f"{prefix}-{_hash(tail)}-{tail}" if readable else f"{prefix}-{_hash(tail)}"


def service_chain(sp: ServicePort) -> str:
    return _name("svc", sp.ident)


def external_chain(sp: ServicePort) -> str:
    return _name("ext", sp.ident)


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return _name("ep", f"{sp.ident}__{ep.ip}/{ep.port}")


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return _name("aff", f"{sp.ident}__{ep.ip}/{ep.port}", readable=False)


def _balance(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[Rule]:
    rules: list[Rule] = []
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        target = ("goto", endpoint_chain(sp, ep))
        rules.append((target,) if i == n - 1 else (("numgen", n - i, 0), target))
    return rules


def service_rules(sp: ServicePort, node_name: str, cluster_cidr: str | None) -> ServiceRules:
    """The chains and elements of one service port (pure; see the module docstring)."""
    out = ServiceRules()
    proto = sp.protocol
    vip_key = (sp.cluster_ip, proto, sp.port)
    out.element(CLUSTER_IPS, (sp.cluster_ip,), None)
    if not sp.endpoints:
        out.element(NO_EP_SERVICES, vip_key, REJECT_CHAIN)
        if sp.node_port:
            out.element(NO_EP_NODEPORTS, (proto, sp.node_port), REJECT_CHAIN)
        return out
    svc = service_chain(sp)
    rules: list[Rule] = []
    if sp.affinity_timeout:
        for ep in sp.endpoints:
            rules.append((("saddr_in", affinity_set(sp, ep)),
                          ("goto", endpoint_chain(sp, ep))))
    rules.extend(_balance(sp, sp.endpoints))
    out.chains[svc] = tuple(rules)
    for ep in sp.endpoints:
        ep_rules: list[Rule] = [(("saddr", ep.ip), ("jump", MASQ_CHAIN))]
        if cluster_cidr and not _in_cidr(ep.ip, cluster_cidr):
            # an endpoint off the pod network (the API server's address for the
            # kubernetes Service, a host-network server): pod addresses are routed only
            # between nodes, so a pod's traffic to it leaves from the node's address
            ep_rules.append((("saddr_in_cidr", cluster_cidr), ("jump", MASQ_CHAIN)))
        if sp.affinity_timeout:
            name = affinity_set(sp, ep)
            out.affinity_sets[name] = sp.affinity_timeout * 1000
            ep_rules.append((("update_saddr", name),))
        ep_rules.append((("dnat", proto, ep.ip, ep.port),))
        out.chains[endpoint_chain(sp, ep)] = tuple(ep_rules)
    out.element(SERVICE_IPS, vip_key, svc)
    if sp.node_port:
        ext = external_chain(sp)
        if sp.local_only:
            local = tuple(ep for ep in sp.endpoints if ep.node_name == node_name)
            ext_rules: list[Rule] = []
            if cluster_cidr:
                ext_rules.append((("saddr_in_cidr", cluster_cidr), ("goto", svc)))
            ext_rules.append((("fib_saddr_local",), ("jump", MASQ_CHAIN)))
            ext_rules.append((("fib_saddr_local",), ("goto", svc)))
            ext_rules.extend(_balance(sp, local) if local else [(("drop",),)])
            out.chains[ext] = tuple(ext_rules)
        else:
            out.chains[ext] = ((("jump", MASQ_CHAIN),), (("goto", svc),))
        out.element(SERVICE_NODEPORTS, (proto, sp.node_port), ext)
    return out


@lru_cache(maxsize=64)
def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr, strict=False)


def _in_cidr(ip: str, cidr: str) -> bool:
    return ipaddress.IPv4Address(ip) in _network(cidr)


# --- from API objects ------------------------------------------------------------------------

def _protocol(value: str) -> str:
    return (value or "TCP").lower()


def service_ports(svc: core_pb2.Service, endpoints: core_pb2.Endpoints | None
                  ) -> list[ServicePort]:
    """The service ports the proxy programs; none for headless, ExternalName or IP-less."""
    spec = svc.spec
    ip = spec.cluster_ip
    if spec.type == "ExternalName" or not ip or ip == "None":
        return []
    try:
        if ipaddress.ip_address(ip).version != 4:
            return []
    except ValueError:
        return []
    affinity = 0
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip
        affinity = cfg.timeout_seconds if cfg.HasField("timeout_seconds") else \
            DEFAULT_AFFINITY_TIMEOUT
    local = spec.external_traffic_policy == "Local" and spec.type in ("NodePort", "LoadBalancer")
    out = []
    for port in spec.ports:
        proto = _protocol(port.protocol)
        eps: list[Endpoint] = []
        if endpoints is not None:
            for subset in endpoints.subsets:
                match = [p for p in subset.ports
                         if p.name == port.name and _protocol(p.protocol) == proto]
                if not match:
                    continue
                for addr in subset.addresses:
                    eps.append(Endpoint(addr.ip, match[0].port, addr.node_name))
        node_port = port.node_port if spec.type in ("NodePort", "LoadBalancer") else 0
        out.append(ServicePort(
            svc.metadata.namespace, svc.metadata.name, port.name, proto, ip, port.port,
            node_port, local, affinity, tuple(sorted(set(eps), key=_ep_order))))
    return out


def _ep_order(ep: Endpoint) -> tuple[int, int]:
    return int(ipaddress.IPv4Address(ep.ip)), ep.port


def merge(parts: Iterable[ServiceRules]) -> ServiceRules:
    out = ServiceRules()
    for part in parts:
        out.chains.update(part.chains)
        for name, elems in part.elements.items():
            out.elements.setdefault(name, {}).update(elems)
        out.affinity_sets.update(part.affinity_sets)
    return out


def rules_for(ports: Sequence[ServicePort], node_name: str, cluster_cidr: str | None
              ) -> ServiceRules:
    """The rules of one Service: those of each of its ports."""
    return merge(service_rules(sp, node_name, cluster_cidr) for sp in ports)
