"""Cluster DNS records: an in-memory index of Services and Endpoints, and the answer to one
DNS question from it — Kubernetes' DNS-based service discovery schema as CoreDNS's
kubernetes plugin serves it ("pods insecure", no wildcards).

Names answered (``<domain>`` is the cluster domain, ``cluster.local`` by default)::

    <domain>                                   SOA, NS
    dns-version.<domain>                       TXT "1.1.0"
    svc.<domain>, pod.<domain>                 exist, hold nothing (NODATA)
    <svc>.<ns>.svc.<domain>                    A/AAAA: the ClusterIPs; headless: every ready
                                               endpoint address; ExternalName: CNAME
                                               SRV: one per port (per endpoint when headless)
    <ep>.<svc>.<ns>.svc.<domain>               A/AAAA of a headless Service's ready endpoint,
                                               <ep> its hostname, else its dashed IP
    _<port>._<proto>.<svc>.<ns>.svc.<domain>   SRV of a named port, A/AAAA of the targets in
                                               the additional section
    <a-b-c-d>.<ns>.pod.<domain>                A a.b.c.d (AAAA for a dashed IPv6 address)
    <reversed IP>.in-addr.arpa / .ip6.arpa     PTR of ClusterIPs and headless endpoints

Anything else under ``<domain>`` is NXDOMAIN (``<ns>.svc.<domain>`` included); negative
answers carry the zone's SOA so that resolvers cache them for ``ttl`` seconds. Names outside
the domain (and reverse names that are not ours) are marked ``forward``: the daemon asks its
upstream, or answers SERVFAIL.

Contracts: everything here is pure — no I/O, no clock, no randomness (the daemon passes a
``rotation`` counter to spread clients over A/AAAA records). ``ClusterIndex`` is mutated only
through its ``set_*``/``delete_*`` methods and is not thread-safe: the daemon updates and
reads it from one event loop, so a question sees each object either before or after a
change, never half of it. Index entries are built from, never keep, the API objects.
Lookups are case-insensitive; answers echo the question's spelling of the name asked.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

from navarch.v1 import core_pb2

__all__ = [
    "SCHEMA_VERSION", "Answer", "ClusterIndex", "EndpointAddress", "EndpointsEntry", "Port",
    "ServiceEntry", "Zone", "answer", "dashed",
]

SCHEMA_VERSION = "1.1.0"  # the kubernetes/dns schema served (dns-version.<domain> TXT)
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
MAX_CNAME_CHAIN = 8

IN = dns.rdataclass.IN
RdataType = dns.rdatatype.RdataType
A, AAAA, CNAME, SRV = RdataType.A, RdataType.AAAA, RdataType.CNAME, RdataType.SRV
PTR, SOA, NS, TXT, ANY = RdataType.PTR, RdataType.SOA, RdataType.NS, RdataType.TXT, RdataType.ANY
_ANY_TYPES = (SOA, NS, TXT, CNAME, A, AAAA, SRV)
_PROTOCOLS = ("tcp", "udp", "sctp")

Key = tuple[str, str]  # (namespace, name), lowercase

# dnspython's rdata constructors are unannotated; these typed names keep mypy --strict quiet
_RdataFactory = Callable[..., dns.rdata.Rdata]
_A_RD: _RdataFactory = dns.rdtypes.IN.A.A
_AAAA_RD: _RdataFactory = dns.rdtypes.IN.AAAA.AAAA
_SRV_RD: _RdataFactory = dns.rdtypes.IN.SRV.SRV
_CNAME_RD: _RdataFactory = dns.rdtypes.ANY.CNAME.CNAME
_PTR_RD: _RdataFactory = dns.rdtypes.ANY.PTR.PTR
_NS_RD: _RdataFactory = dns.rdtypes.ANY.NS.NS
_SOA_RD: _RdataFactory = dns.rdtypes.ANY.SOA.SOA


# --- the index -----------------------------------------------------------------------------


def _ip(text: str) -> str | None:
    """The canonical spelling of an IP address, None when ``text`` is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def dashed(ip: str) -> str:
    """An address as one DNS label: ``10.244.1.5`` → ``10-244-1-5``, ``fd00::1`` →
    ``fd00--1`` (CoreDNS's spelling for endpoints and pods)."""
    return ip.replace(".", "-").replace(":", "-")


def _undashed(label: str) -> str | None:
    """The address a dashed label names (the inverse of ``dashed``), None if none."""
    if label.count("-") == 3 and "--" not in label:
        return _ip(label.replace("-", "."))
    return _ip(label.replace("-", ":")) if "-" in label else None


@dataclass(frozen=True)
class Port:
    """One port: its name (may be empty), protocol (lowercase) and number."""

    name: str
    protocol: str
    port: int

    def matches(self, name: str, protocol: str) -> bool:
        """Whether this is the port ``_<name>._<protocol>`` asks for (lowercase both)."""
        return bool(self.name) and self.name == name and self.protocol == protocol


def _ports(ports: Iterable[core_pb2.ServicePort | core_pb2.EndpointPort]) -> tuple[Port, ...]:
    return tuple(Port(p.name.lower(), (p.protocol or "TCP").lower(), p.port) for p in ports)


@dataclass(frozen=True)
class ServiceEntry:
    """What DNS needs of a Service."""

    namespace: str
    name: str
    type: str  # ClusterIP (any proxied type), Headless or ExternalName
    cluster_ips: tuple[str, ...] = ()
    external_name: dns.name.Name | None = None
    ports: tuple[Port, ...] = ()
    publish_not_ready: bool = False

    @classmethod
    def of(cls, svc: core_pb2.Service) -> ServiceEntry:
        """The entry of a Service object (which is only read)."""
        spec, meta = svc.spec, svc.metadata
        publish = (spec.publish_not_ready_addresses
                   or meta.annotations.get(TOLERATE_UNREADY, "").lower() == "true")
        kind, ips = "ClusterIP", tuple[str, ...]()
        target: dns.name.Name | None = None
        if spec.type == "ExternalName":
            kind = "ExternalName"
            try:
                target = dns.name.from_text(spec.external_name.lower().rstrip(".") or ".")
            except dns.exception.DNSException:
                target = None  # the API validates it; a bad one is a name with no records
        elif spec.cluster_ip == "None":
            kind = "Headless"
        else:
            found = (_ip(i) for i in (spec.cluster_ips or [spec.cluster_ip]) if i)
            ips = tuple(i for i in found if i)
        return cls(meta.namespace.lower(), meta.name.lower(), kind, ips, target,
                   _ports(spec.ports), publish)

    @property
    def key(self) -> Key:
        """(namespace, name)."""
        return (self.namespace, self.name)


@dataclass(frozen=True)
class EndpointAddress:
    """One address of an Endpoints subset, with the ports of its subset."""

    ip: str
    hostname: str
    ready: bool
    ports: tuple[Port, ...] = ()

    @property
    def label(self) -> str:
        """Its name under the Service: the hostname, else the dashed IP."""
        return self.hostname or dashed(self.ip)


@dataclass(frozen=True)
class EndpointsEntry:
    """What DNS needs of an Endpoints object: its addresses, flattened over subsets."""

    namespace: str
    name: str
    addresses: tuple[EndpointAddress, ...] = ()

    @classmethod
    def of(cls, ep: core_pb2.Endpoints) -> EndpointsEntry:
        """The entry of an Endpoints object (which is only read)."""
        out: list[EndpointAddress] = []
        for subset in ep.subsets:
            ports = _ports(subset.ports)
            for ready, addrs in ((True, subset.addresses), (False, subset.not_ready_addresses)):
                for a in addrs:
                    ip = _ip(a.ip)
                    if ip is not None:
                        out.append(EndpointAddress(ip, a.hostname.lower(), ready, ports))
        return cls(ep.metadata.namespace.lower(), ep.metadata.name.lower(), tuple(out))

    @property
    def key(self) -> Key:
        """(namespace, name)."""
        return (self.namespace, self.name)


class ClusterIndex:
    """Services and Endpoints by (namespace, name), and both by IP for reverse lookups.

    Single-threaded; see the module's contracts. ``serial`` (the SOA serial) grows with
    every change, from ``serial_base``."""

    def __init__(self, serial_base: int = 1) -> None:
        self.services: dict[Key, ServiceEntry] = {}
        self.endpoints: dict[Key, EndpointsEntry] = {}
        self._by_cluster_ip: dict[str, set[Key]] = {}
        self._by_endpoint_ip: dict[str, set[Key]] = {}
        self._serial_base = serial_base
        self.changes = 0

    @classmethod
    def build(cls, services: Iterable[core_pb2.Service],
              endpoints: Iterable[core_pb2.Endpoints], serial_base: int = 1) -> ClusterIndex:
        """An index holding these objects."""
        index = cls(serial_base)
        for svc in services:
            index.set_service(svc)
        for ep in endpoints:
            index.set_endpoints(ep)
        return index

    @property
    def serial(self) -> int:
        """The zone's SOA serial."""
        return (self._serial_base + self.changes) & 0xFFFFFFFF

    # --- changes --------------------------------------------------------------------------

    def set_service(self, svc: core_pb2.Service) -> None:
        """Add or replace a Service (idempotent)."""
        entry = ServiceEntry.of(svc)
        self._drop(self._by_cluster_ip, self.services.pop(entry.key, None))
        self.services[entry.key] = entry
        for ip in entry.cluster_ips:
            self._by_cluster_ip.setdefault(ip, set()).add(entry.key)
        self.changes += 1

    def delete_service(self, namespace: str, name: str) -> None:
        """Forget a Service (no-op when unknown)."""
        self._drop(self._by_cluster_ip,
                   self.services.pop((namespace.lower(), name.lower()), None))
        self.changes += 1

    def set_endpoints(self, ep: core_pb2.Endpoints) -> None:
        """Add or replace an Endpoints object (idempotent)."""
        entry = EndpointsEntry.of(ep)
        self._drop(self._by_endpoint_ip, self.endpoints.pop(entry.key, None))
        self.endpoints[entry.key] = entry
        for addr in entry.addresses:
            self._by_endpoint_ip.setdefault(addr.ip, set()).add(entry.key)
        self.changes += 1

    def delete_endpoints(self, namespace: str, name: str) -> None:
        """Forget an Endpoints object (no-op when unknown)."""
        self._drop(self._by_endpoint_ip,
                   self.endpoints.pop((namespace.lower(), name.lower()), None))
        self.changes += 1

    @staticmethod
    def _drop(by_ip: dict[str, set[Key]], old: ServiceEntry | EndpointsEntry | None) -> None:
        if old is None:
            return
        ips = (old.cluster_ips if isinstance(old, ServiceEntry)
               else {a.ip for a in old.addresses})
        for ip in ips:
            keys = by_ip.get(ip)
            if keys is not None:
                keys.discard(old.key)
                if not keys:
                    del by_ip[ip]

    # --- reads ----------------------------------------------------------------------------

    def service(self, namespace: str, name: str) -> ServiceEntry | None:
        """The Service entry (lowercase names)."""
        return self.services.get((namespace, name))

    def published(self, svc: ServiceEntry) -> list[EndpointAddress]:
        """The addresses DNS publishes for a Service: the ready ones, and the not-ready
        ones too when the Service publishes them."""
        ep = self.endpoints.get(svc.key)
        if ep is None:
            return []
        return [a for a in ep.addresses if a.ready or svc.publish_not_ready]

    def names_of(self, ip: str) -> list[tuple[str, ...]]:
        """The names (relative labels under the domain) whose address is ``ip``: the
        Services holding it as a ClusterIP, the headless endpoints holding it."""
        out: list[tuple[str, ...]] = []
        for key in sorted(self._by_cluster_ip.get(ip, ())):
            svc = self.services[key]
            out.append((svc.name, svc.namespace, "svc"))
        for key in sorted(self._by_endpoint_ip.get(ip, ())):
            headless = self.services.get(key)
            if headless is None or headless.type != "Headless":
                continue
            for label in dict.fromkeys(a.label for a in self.published(headless) if a.ip == ip):
                out.append((label, headless.name, headless.namespace, "svc"))
        return out


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Zone:
    """What answers depend on besides the index: the cluster domain and the TTL of every
    record (and of negative answers)."""

    domain: dns.name.Name
    ttl: int = 5

    @classmethod
    def of(cls, domain: str = "cluster.local", ttl: int = 5) -> Zone:
        """The zone of a domain written as text (``cluster.local``)."""
        return cls(dns.name.from_text(domain.lower().rstrip(".")), ttl)

    def name(self, labels: Sequence[str]) -> dns.name.Name:
        """``labels`` under the domain, as a name."""
        return _absolute(tuple(labels), self.domain)

    def soa(self, serial: int) -> dns.rrset.RRset:
        """The zone's SOA record (shared between answers: never mutate it)."""
        return _soa(self, serial)


@functools.lru_cache(maxsize=65536)
def _absolute(labels: tuple[str, ...], domain: dns.name.Name) -> dns.name.Name:
    # names are immutable: one object per name serves every answer naming it
    return dns.name.Name([label.encode() for label in labels] + list(domain.labels))


@functools.lru_cache(maxsize=4)
def _soa(zone: Zone, serial: int) -> dns.rrset.RRset:
    rdata = _SOA_RD(IN, SOA, zone.name(("ns", "dns")), zone.name(("hostmaster",)), serial,
                    7200, 1800, 86400, zone.ttl)
    return _rrset(zone.domain, zone.ttl, [rdata])


@dataclass(frozen=True)
class Answer:
    """The answer to one question, as plain data (the daemon makes it a message).

    ``forward``: the name is not the cluster's; the upstream answers it (SERVFAIL without
    one). ``chase``: the answer ends in a CNAME to a name outside the domain, which the
    upstream may resolve further."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    forward: bool = False
    chase: dns.name.Name | None = None


@dataclass
class _Found:
    """The records of one existing name, of the type asked (CNAME for an alias)."""

    rdatas: list[dns.rdata.Rdata] = field(default_factory=list)
    additional: list[tuple[dns.name.Name, str]] = field(default_factory=list)  # (name, ip)


def _rrset(name: dns.name.Name, ttl: int, rdatas: Iterable[dns.rdata.Rdata]
           ) -> dns.rrset.RRset:
    rdatas = list(rdatas)
    rrset = dns.rrset.RRset(name, IN, rdatas[0].rdtype)
    for rd in rdatas:
        rrset.add(rd, ttl)
    return rrset


def _addresses(ips: Iterable[str], rdtype: RdataType) -> list[dns.rdata.Rdata]:
    """The A (or AAAA) records of the IPv4 (or IPv6) addresses among ``ips``."""
    v6 = rdtype == AAAA
    return [_address(ip) for ip in dict.fromkeys(ips) if (":" in ip) == v6]


@functools.lru_cache(maxsize=65536)
def _address(ip: str) -> dns.rdata.Rdata:
    # rdata are immutable: one object per address serves every answer holding it
    return _AAAA_RD(IN, AAAA, ip) if ":" in ip else _A_RD(IN, A, ip)


def _srv(targets: Sequence[tuple[int, dns.name.Name]]) -> list[dns.rdata.Rdata]:
    """SRV records of equal priority sharing the weight 100 (CoreDNS's spread)."""
    unique = list(dict.fromkeys(targets))
    weight = 100 // len(unique) if unique else 0
    return [_SRV_RD(IN, SRV, 0, weight, port, target)
            for port, target in unique]


def _service(index: ClusterIndex, zone: Zone, svc: ServiceEntry, rdtype: RdataType
             ) -> _Found | None:
    name = zone.name((svc.name, svc.namespace, "svc"))
    if svc.type == "ExternalName":
        if svc.external_name is None:
            return _Found()
        return _Found([_CNAME_RD(IN, CNAME, svc.external_name)])
    if svc.type == "ClusterIP":
        if rdtype in (A, AAAA):
            return _Found(_addresses(svc.cluster_ips, rdtype))
        if rdtype == SRV:
            return _Found(_srv([(p.port, name) for p in svc.ports]),
                          [(name, ip) for ip in svc.cluster_ips] if svc.ports else [])
        return _Found()
    published = index.published(svc)
    if not published:
        return None  # a headless Service without ready endpoints: NXDOMAIN (the spec)
    if rdtype in (A, AAAA):
        return _Found(_addresses((a.ip for a in published), rdtype))
    if rdtype == SRV:
        return _headless_srv(zone, svc, [(a, p) for a in published for p in a.ports])
    return _Found()


def _headless_srv(zone: Zone, svc: ServiceEntry,
                  pairs: Sequence[tuple[EndpointAddress, Port]]) -> _Found:
    targets, additional = [], []
    for addr, port in pairs:
        target = zone.name((addr.label, svc.name, svc.namespace, "svc"))
        targets.append((port.port, target))
        additional.append((target, addr.ip))
    return _Found(_srv(targets), additional)


def _endpoint(index: ClusterIndex, svc: ServiceEntry, label: str, rdtype: RdataType
              ) -> _Found | None:
    if svc.type != "Headless":
        return None
    ips = [a.ip for a in index.published(svc) if a.label == label]
    if not ips:
        return None
    return _Found(_addresses(ips, rdtype) if rdtype in (A, AAAA) else [])


def _port(index: ClusterIndex, zone: Zone, svc: ServiceEntry, port: str, protocol: str,
          rdtype: RdataType) -> _Found | None:
    if svc.type == "ClusterIP":
        ports = [p for p in svc.ports if p.matches(port, protocol)]
        if not ports:
            return None
        if rdtype != SRV:
            return _Found()
        name = zone.name((svc.name, svc.namespace, "svc"))
        return _Found(_srv([(p.port, name) for p in ports]),
                      [(name, ip) for ip in svc.cluster_ips])
    if svc.type != "Headless":
        return None
    pairs = [(a, p) for a in index.published(svc) for p in a.ports if p.matches(port, protocol)]
    if not pairs:
        return None
    return _headless_srv(zone, svc, pairs) if rdtype == SRV else _Found()


def _pod(label: str, rdtype: RdataType) -> _Found | None:
    ip = _undashed(label)
    if ip is None:
        return None
    return _Found(_addresses([ip], rdtype) if rdtype in (A, AAAA) else [])


def _under_svc(index: ClusterIndex, zone: Zone, labels: tuple[str, ...], rdtype: RdataType
               ) -> _Found | None:
    """Names ending in ``<svc>.<ns>.svc``."""
    svc = index.service(labels[-2], labels[-3])
    if svc is None:
        return None
    rest = labels[:-3]
    if not rest:
        return _service(index, zone, svc, rdtype)
    if len(rest) == 1 and not rest[0].startswith("_"):
        return _endpoint(index, svc, rest[0], rdtype)
    if len(rest) == 2 and all(r.startswith("_") and len(r) > 1 for r in rest):
        port, protocol = rest[0][1:], rest[1][1:]
        if protocol in _PROTOCOLS:
            return _port(index, zone, svc, port, protocol, rdtype)
    return None


def _lookup(index: ClusterIndex, zone: Zone, labels: tuple[str, ...], rdtype: RdataType
            ) -> _Found | None:
    """The records of type ``rdtype`` of the name ``labels`` under the domain (lowercase);
    None when the name does not exist."""
    if not labels:
        if rdtype == SOA:
            return _Found(list(zone.soa(index.serial)))
        if rdtype == NS:
            return _Found([_NS_RD(IN, NS, zone.name(("ns", "dns")))])
        return _Found()
    if labels == ("dns-version",):
        return _Found([dns.rdtypes.ANY.TXT.TXT(IN, TXT, [SCHEMA_VERSION])] if rdtype == TXT
                      else [])
    if labels in (("svc",), ("pod",)):
        return _Found()
    if len(labels) >= 3 and labels[-1] == "svc":
        return _under_svc(index, zone, labels, rdtype)
    if len(labels) == 3 and labels[-1] == "pod":
        return _pod(labels[0], rdtype)
    return None


def _relative(zone: Zone, qname: dns.name.Name) -> tuple[str, ...]:
    """The labels of a name under the domain, lowercase (DNS compares ASCII letters
    case-insensitively; other bytes never match an index entry)."""
    return tuple(label.lower().decode("latin-1")
                 for label in qname.relativize(zone.domain).labels)


def _rotate(rdatas: list[dns.rdata.Rdata], rotation: int) -> list[dns.rdata.Rdata]:
    if len(rdatas) < 2:
        return rdatas
    k = rotation % len(rdatas)
    return rdatas[k:] + rdatas[:k]


def _cluster_answer(index: ClusterIndex, zone: Zone, qname: dns.name.Name, qtype: RdataType,
                    rotation: int) -> Answer:
    chain: list[dns.rrset.RRset] = []
    name = qname
    for _ in range(MAX_CNAME_CHAIN):
        labels = _relative(zone, name)
        types = _ANY_TYPES if qtype == ANY else (qtype,)
        found = [(t, _lookup(index, zone, labels, t)) for t in types]
        if found[0][1] is None:
            return Answer(dns.rcode.NXDOMAIN, tuple(chain), (zone.soa(index.serial),))
        rrsets: list[dns.rrset.RRset] = []
        additional: dict[tuple[dns.name.Name, RdataType], list[dns.rdata.Rdata]] = {}
        for _t, f in found:
            assert f is not None
            if not f.rdatas:
                continue
            alias = f.rdatas[0]
            if isinstance(alias, dns.rdtypes.ANY.CNAME.CNAME):
                if any(r.rdtype == CNAME for r in rrsets):
                    continue  # ANY: the alias once
                if qtype not in (CNAME, ANY):
                    target = alias.target
                    chain.append(_rrset(name, zone.ttl, f.rdatas))
                    if target.is_subdomain(zone.domain):
                        name = target
                        break
                    return Answer(answer=tuple(chain), chase=target)
            rdatas = _rotate(f.rdatas, rotation) if f.rdatas[0].rdtype in (A, AAAA) \
                else f.rdatas
            rrsets.append(_rrset(name, zone.ttl, rdatas))
            for target, ip in f.additional:
                rdtype = AAAA if ":" in ip else A
                additional.setdefault((target, rdtype), []).extend(_addresses([ip], rdtype))
        else:
            extra = tuple(_rrset(n, zone.ttl, rds) for (n, _), rds in additional.items() if rds)
            if not rrsets:
                return Answer(answer=tuple(chain), authority=(zone.soa(index.serial),))
            return Answer(answer=(*chain, *rrsets), additional=extra)
    return Answer(dns.rcode.SERVFAIL)  # aliases in a loop (or too long a chain)


def _reverse_ip(qname: dns.name.Name) -> str | None:
    """The address a full reverse name stands for, None for any other name."""
    labels = [label.decode("latin-1") for label in qname.labels[:-1]]  # without the root
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        return _ip(".".join(reversed(labels[:4])))
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        if all(len(n) == 1 for n in labels[:32]):
            return _ip(":".join(nibbles[i:i + 4] for i in range(0, 32, 4)))
    return None


def _reverse_answer(index: ClusterIndex, zone: Zone, qname: dns.name.Name,
                    qtype: RdataType) -> Answer:
    ip = _reverse_ip(dns.name.Name([label.lower() for label in qname.labels]))
    names = index.names_of(ip) if ip is not None else []
    if not names:
        return Answer(forward=True)
    if qtype not in (PTR, ANY):
        return Answer()
    return Answer(answer=(_rrset(qname, zone.ttl, [
        _PTR_RD(IN, PTR, zone.name(n)) for n in names]),))


def answer(index: ClusterIndex, zone: Zone, qname: dns.name.Name, qtype: RdataType,
           rotation: int = 0) -> Answer:
    """The answer to the question (``qname``, IN, ``qtype``) from the index.

    ``rotation`` rotates multi-address A/AAAA answers (round robin across queries)."""
    if qname.is_subdomain(zone.domain):
        return _cluster_answer(index, zone, qname, qtype, rotation)
    return _reverse_answer(index, zone, qname, qtype)
