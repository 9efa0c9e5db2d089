"""Cluster DNS answers (services/dns/records.py), table-driven over one index, and the pure
message handling of the daemon (errors, truncation, SERVFAIL before sync, no upstream).
Expectations follow the kubernetes/dns specification and CoreDNS where it is silent."""

from __future__ import annotations

import argparse
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import pytest

from navarch.v1 import core_pb2
from services.dns.records import ClusterIndex, Zone, answer, dashed
from services.dns.server import (
    DnsConfig,
    DnsServer,
    Pending,
    add_arguments,
    query_error,
    reply,
    to_wire,
    udp_limit,
)

ZONE = Zone.of("cluster.local", 5)


def service(name: str, *, ip: str = "", ips: tuple[str, ...] = (), type_: str = "",
            ports: tuple[tuple[str, int, str], ...] = (), external: str = "",
            publish: bool = False, annotations: dict[str, str] | None = None,
            ns: str = "default") -> core_pb2.Service:
    s = core_pb2.Service(api_version="v1", kind="Service")
    s.metadata.name, s.metadata.namespace = name, ns
    s.metadata.annotations.update(annotations or {})
    s.spec.type = type_ or ("ExternalName" if external else "ClusterIP")
    s.spec.cluster_ip = ip
    s.spec.cluster_ips.extend(ips)
    s.spec.external_name = external
    s.spec.publish_not_ready_addresses = publish
    for pname, port, proto in ports:
        s.spec.ports.add(name=pname, port=port, protocol=proto)
    return s


def endpoints(name: str, ready: list[tuple[str, str]], not_ready: list[tuple[str, str]] = (),
              ports: tuple[tuple[str, int, str], ...] = (),  # type: ignore[assignment]
              ns: str = "default") -> core_pb2.Endpoints:
    e = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
    e.metadata.name, e.metadata.namespace = name, ns
    subset = e.subsets.add()
    for ip, hostname in ready:
        subset.addresses.add(ip=ip, hostname=hostname)
    for ip, hostname in not_ready:
        subset.not_ready_addresses.add(ip=ip, hostname=hostname)
    for pname, port, proto in ports:
        subset.ports.add(name=pname, port=port, protocol=proto)
    return e


def cluster() -> ClusterIndex:
    """The index every case asks."""
    return ClusterIndex.build([
        service("web", ip="10.96.0.10", ports=(("http", 80, "TCP"), ("dns", 53, "UDP"))),
        service("single", ip="10.96.0.11", ports=(("", 8080, "TCP"),)),
        service("dual", ip="10.96.0.20", ips=("10.96.0.20", "fd00::20")),
        service("db", ip="None", ports=(("pg", 5432, "TCP"),)),
        service("pub", ip="None", publish=True),
        service("legacy", ip="None", annotations={
            "service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}),
        service("lonely", ip="None"),
        service("ext", external="www.example.com"),
        service("alias", external="web.default.svc.cluster.local"),
        service("loop-a", external="loop-b.default.svc.cluster.local"),
        service("loop-b", external="loop-a.default.svc.cluster.local"),
        service("api", ip="10.96.0.1", ports=(("https", 443, "TCP"),), ns="kube-system"),
    ], [
        endpoints("db", [("10.244.1.5", "db-0"), ("10.244.2.6", "db-1"), ("10.244.1.9", "")],
                  [("10.244.3.7", "db-2")], ports=(("pg", 5432, "TCP"),)),
        endpoints("pub", [], [("10.244.4.4", "")]),
        endpoints("legacy", [], [("10.244.4.5", "")]),
        endpoints("web", [("10.244.1.20", "")], ports=(("http", 8080, "TCP"),)),
    ])


INDEX = cluster()
SOA = "SOA"  # the authority section holds the zone's SOA (a negative answer)


def lines(rrsets: Any) -> list[str]:
    return sorted(line for rrset in rrsets for line in rrset.to_text().splitlines())


def ask(qname: str, qtype: str, index: ClusterIndex | None = None, rotation: int = 0) -> Any:
    return answer(index or INDEX, ZONE, dns.name.from_text(qname),
                  dns.rdatatype.from_text(qtype), rotation)


D = ".default.svc.cluster.local."
CASES: list[tuple[str, str, str, str, list[str], list[str]]] = [
    # (case, qname, qtype, rcode or SOA, answer lines, additional lines)
    ("clusterip A", "web" + D, "A", "NOERROR", ["web" + D + " 5 IN A 10.96.0.10"], []),
    ("clusterip other namespace", "api.kube-system.svc.cluster.local.", "A", "NOERROR",
     ["api.kube-system.svc.cluster.local. 5 IN A 10.96.0.1"], []),
    ("clusterip AAAA: NODATA", "web" + D, "AAAA", SOA, [], []),
    ("clusterip TXT: NODATA", "web" + D, "TXT", SOA, [], []),
    ("dual-stack A", "dual" + D, "A", "NOERROR", ["dual" + D + " 5 IN A 10.96.0.20"], []),
    ("dual-stack AAAA", "dual" + D, "AAAA", "NOERROR",
     ["dual" + D + " 5 IN AAAA fd00::20"], []),
    ("names are case-insensitive, the question's spelling echoed",
     "WEB.Default.SVC.Cluster.LOCAL.", "A", "NOERROR",
     ["WEB.Default.SVC.Cluster.LOCAL. 5 IN A 10.96.0.10"], []),
    ("unknown service", "nope" + D, "A", "NXDOMAIN", [], []),
    ("unknown namespace", "web.nope.svc.cluster.local.", "A", "NXDOMAIN", [], []),
    ("namespace alone", "default.svc.cluster.local.", "A", "NXDOMAIN", [], []),
    ("svc.<domain> exists", "svc.cluster.local.", "A", SOA, [], []),
    ("pod.<domain> exists", "pod.cluster.local.", "A", SOA, [], []),
    ("unknown kind", "web.default.foo.cluster.local.", "A", "NXDOMAIN", [], []),
    ("too deep", "a.b.c.web" + D, "A", "NXDOMAIN", [], []),
    ("apex SOA", "cluster.local.", "SOA", "NOERROR",
     ["cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 17 7200 1800 "
      "86400 5"], []),
    ("apex NS", "cluster.local.", "NS", "NOERROR", ["cluster.local. 5 IN NS ns.dns.cluster.local."],
     []),
    ("apex A: NODATA", "cluster.local.", "A", SOA, [], []),
    ("schema version", "dns-version.cluster.local.", "TXT", "NOERROR",
     ['dns-version.cluster.local. 5 IN TXT "1.1.0"'], []),
    # headless: ready endpoints only; NXDOMAIN without any
    ("headless A", "db" + D, "A", "NOERROR",
     ["db" + D + " 5 IN A 10.244.1.5", "db" + D + " 5 IN A 10.244.1.9",
      "db" + D + " 5 IN A 10.244.2.6"], []),
    ("headless AAAA: NODATA", "db" + D, "AAAA", SOA, [], []),
    ("headless publishNotReadyAddresses", "pub" + D, "A", "NOERROR",
     ["pub" + D + " 5 IN A 10.244.4.4"], []),
    ("headless tolerate-unready annotation", "legacy" + D, "A", "NOERROR",
     ["legacy" + D + " 5 IN A 10.244.4.5"], []),
    ("headless without endpoints", "lonely" + D, "A", "NXDOMAIN", [], []),
    ("endpoint hostname", "db-0.db" + D, "A", "NOERROR", ["db-0.db" + D + " 5 IN A 10.244.1.5"],
     []),
    ("endpoint hostname, another type", "db-1.db" + D, "AAAA", SOA, [], []),
    ("endpoint without hostname: dashed IP", "10-244-1-9.db" + D, "A", "NOERROR",
     ["10-244-1-9.db" + D + " 5 IN A 10.244.1.9"], []),
    ("not-ready endpoint", "db-2.db" + D, "A", "NXDOMAIN", [], []),
    ("endpoint names only under headless services", "10-244-1-20.web" + D, "A", "NXDOMAIN",
     [], []),
    # SRV
    ("clusterip SRV", "_http._tcp.web" + D, "SRV", "NOERROR",
     ["_http._tcp.web" + D + " 5 IN SRV 0 100 80 web" + D],
     ["web" + D + " 5 IN A 10.96.0.10"]),
    ("clusterip SRV udp", "_dns._udp.web" + D, "SRV", "NOERROR",
     ["_dns._udp.web" + D + " 5 IN SRV 0 100 53 web" + D],
     ["web" + D + " 5 IN A 10.96.0.10"]),
    ("SRV wrong protocol", "_http._udp.web" + D, "SRV", "NXDOMAIN", [], []),
    ("SRV unknown port", "_grpc._tcp.web" + D, "SRV", "NXDOMAIN", [], []),
    ("SRV unknown protocol", "_http._xyz.web" + D, "SRV", "NXDOMAIN", [], []),
    ("SRV name, A asked: NODATA", "_http._tcp.web" + D, "A", SOA, [], []),
    ("SRV case-insensitive", "_HTTP._TCP.Web" + D, "SRV", "NOERROR",
     ["_HTTP._TCP.Web" + D + " 5 IN SRV 0 100 80 web" + D],
     ["web" + D + " 5 IN A 10.96.0.10"]),
    ("SRV of the service name: every port", "web" + D, "SRV", "NOERROR",
     ["web" + D + " 5 IN SRV 0 50 53 web" + D, "web" + D + " 5 IN SRV 0 50 80 web" + D],
     ["web" + D + " 5 IN A 10.96.0.10"]),
    ("unnamed ports have no SRV name", "_._tcp.single" + D, "SRV", "NXDOMAIN", [], []),
    ("headless SRV: one per ready endpoint", "_pg._tcp.db" + D, "SRV", "NOERROR",
     ["_pg._tcp.db" + D + " 5 IN SRV 0 33 5432 10-244-1-9.db" + D,
      "_pg._tcp.db" + D + " 5 IN SRV 0 33 5432 db-0.db" + D,
      "_pg._tcp.db" + D + " 5 IN SRV 0 33 5432 db-1.db" + D],
     ["10-244-1-9.db" + D + " 5 IN A 10.244.1.9", "db-0.db" + D + " 5 IN A 10.244.1.5",
      "db-1.db" + D + " 5 IN A 10.244.2.6"]),
    ("headless SRV of a port no endpoint has", "_pg._udp.db" + D, "SRV", "NXDOMAIN", [], []),
    ("SRV of an ExternalName port", "_http._tcp.ext" + D, "SRV", "NXDOMAIN", [], []),
    # ExternalName
    ("externalname: CNAME, followed by the upstream", "ext" + D, "A", "NOERROR",
     ["ext" + D + " 5 IN CNAME www.example.com."], []),
    ("externalname CNAME asked", "ext" + D, "CNAME", "NOERROR",
     ["ext" + D + " 5 IN CNAME www.example.com."], []),
    ("externalname into the cluster: chased here", "alias" + D, "A", "NOERROR",
     ["alias" + D + " 5 IN CNAME web" + D, "web" + D + " 5 IN A 10.96.0.10"], []),
    ("externalname loop", "loop-a" + D, "A", "SERVFAIL", [], []),
    # pods ("pods insecure": the name is the address)
    ("pod A", "10-244-1-5.default.pod.cluster.local.", "A", "NOERROR",
     ["10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"], []),
    ("pod in any namespace", "10-0-0-1.other.pod.cluster.local.", "A", "NOERROR",
     ["10-0-0-1.other.pod.cluster.local. 5 IN A 10.0.0.1"], []),
    ("pod AAAA of an IPv4 pod: NODATA", "10-244-1-5.default.pod.cluster.local.", "AAAA", SOA,
     [], []),
    ("pod IPv6", "fd00--1.default.pod.cluster.local.", "AAAA", "NOERROR",
     ["fd00--1.default.pod.cluster.local. 5 IN AAAA fd00::1"], []),
    ("pod name not an address", "10-244-1.default.pod.cluster.local.", "A", "NXDOMAIN", [], []),
    ("pod octet out of range", "10-244-1-256.default.pod.cluster.local.", "A", "NXDOMAIN", [],
     []),
    ("pod namespace alone", "default.pod.cluster.local.", "A", "NXDOMAIN", [], []),
    # reverse
    ("PTR of a ClusterIP", "10.0.96.10.in-addr.arpa.", "PTR", "NOERROR",
     ["10.0.96.10.in-addr.arpa. 5 IN PTR web" + D], []),
    ("PTR of a headless endpoint with a hostname", "5.1.244.10.in-addr.arpa.", "PTR",
     "NOERROR", ["5.1.244.10.in-addr.arpa. 5 IN PTR db-0.db" + D], []),
    ("PTR of a headless endpoint without one", "9.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
     ["9.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-9.db" + D], []),
    ("PTR of an IPv6 ClusterIP", dns.reversename.from_address("fd00::20").to_text(), "PTR",
     "NOERROR", [dns.reversename.from_address("fd00::20").to_text() + " 5 IN PTR dual" + D],
     []),
    ("PTR asked in capitals", "10.0.96.10.IN-ADDR.ARPA.", "PTR", "NOERROR",
     ["10.0.96.10.IN-ADDR.ARPA. 5 IN PTR web" + D], []),
    ("known reverse name, other type: NODATA", "10.0.96.10.in-addr.arpa.", "A", "NOERROR",
     [], []),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answers", "additional"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_answers(qname: str, qtype: str, rcode: str, answers: list[str],
                 additional: list[str]) -> None:
    got = ask(qname, qtype)
    assert not got.forward
    if rcode == SOA:
        assert got.rcode == dns.rcode.NOERROR
        assert [r.rdtype for r in got.authority] == [dns.rdatatype.SOA]
    else:
        assert dns.rcode.to_text(got.rcode) == rcode
        if rcode == "NXDOMAIN":  # negative answers are cacheable: the zone's SOA
            assert [str(r.name) for r in got.authority] == ["cluster.local."]
            assert got.authority[0].ttl == 5
    assert lines(got.answer) == sorted(answers)
    assert lines(got.additional) == sorted(additional)


@pytest.mark.parametrize(("qname", "qtype"), [
    ("example.com.", "A"),
    ("www.google.com.", "AAAA"),
    ("cluster.local.example.com.", "A"),
    ("7.3.244.10.in-addr.arpa.", "PTR"),  # a not-ready endpoint's address: not published
    ("20.1.244.10.in-addr.arpa.", "PTR"),  # an endpoint of a ClusterIP Service
    ("99.99.99.10.in-addr.arpa.", "PTR"),
    ("96.10.in-addr.arpa.", "PTR"),
    ("in-addr.arpa.", "PTR"),
])
def test_other_names_are_forwarded(qname: str, qtype: str) -> None:
    got = ask(qname, qtype)
    assert got.forward and not got.answer


def test_external_name_is_chased_upstream() -> None:
    assert ask("ext" + D, "A").chase == dns.name.from_text("www.example.com.")
    assert ask("ext" + D, "CNAME").chase is None
    assert ask("alias" + D, "A").chase is None


def test_any_gathers_every_type_of_the_name() -> None:
    got = ask("web" + D, "ANY")
    assert {dns.rdatatype.to_text(r.rdtype) for r in got.answer} == {"A", "SRV"}
    assert lines(ask("ext" + D, "ANY").answer) == ["ext" + D + " 5 IN CNAME www.example.com."]


def test_rotation_spreads_clients_over_addresses() -> None:
    firsts = {ask("db" + D, "A", rotation=r).answer[0][0].address for r in range(3)}
    assert firsts == {"10.244.1.5", "10.244.2.6", "10.244.1.9"}
    assert lines(ask("db" + D, "A", rotation=1).answer) == lines(ask("db" + D, "A").answer)


def test_changes_update_names_and_reverse_names() -> None:
    index = cluster()
    serial = index.serial
    index.delete_service("default", "web")
    assert ask("web" + D, "A", index).rcode == dns.rcode.NXDOMAIN
    assert ask("10.0.96.10.in-addr.arpa.", "PTR", index).forward
    assert index.serial > serial
    index.set_service(service("web", ip="10.96.0.99"))
    assert lines(ask("web" + D, "A", index).answer) == ["web" + D + " 5 IN A 10.96.0.99"]
    assert ask("10.0.96.10.in-addr.arpa.", "PTR", index).forward
    assert not ask("99.0.96.10.in-addr.arpa.", "PTR", index).forward
    # an endpoint leaves, another becomes ready
    index.set_endpoints(endpoints("db", [("10.244.3.7", "db-2")], [("10.244.1.5", "db-0")],
                                  ports=(("pg", 5432, "TCP"),)))
    assert lines(ask("db" + D, "A", index).answer) == ["db" + D + " 5 IN A 10.244.3.7"]
    assert ask("db-0.db" + D, "A", index).rcode == dns.rcode.NXDOMAIN
    assert ask("5.1.244.10.in-addr.arpa.", "PTR", index).forward
    assert lines(ask("7.3.244.10.in-addr.arpa.", "PTR", index).answer) == [
        "7.3.244.10.in-addr.arpa. 5 IN PTR db-2.db" + D]
    index.delete_endpoints("default", "db")
    assert ask("db" + D, "A", index).rcode == dns.rcode.NXDOMAIN
    assert ask("7.3.244.10.in-addr.arpa.", "PTR", index).forward
    # a Service turning headless drops its ClusterIP's reverse name
    index.set_service(service("web", ip="None"))
    assert ask("99.0.96.10.in-addr.arpa.", "PTR", index).forward
    assert lines(ask("web" + D, "A", index).answer) == ["web" + D + " 5 IN A 10.244.1.20"]


def test_other_domain_and_ttl() -> None:
    zone = Zone.of("Example.Internal.", 30)
    got = answer(INDEX, zone, dns.name.from_text("web.default.svc.example.internal."),
                 dns.rdatatype.A)
    assert lines(got.answer) == ["web.default.svc.example.internal. 30 IN A 10.96.0.10"]
    assert answer(INDEX, zone, dns.name.from_text("web" + D), dns.rdatatype.A).forward


@pytest.mark.parametrize(("ip", "label"), [("10.244.1.5", "10-244-1-5"),
                                           ("fd00::1", "fd00--1")])
def test_dashed(ip: str, label: str) -> None:
    assert dashed(ip) == label


# --- messages --------------------------------------------------------------------------------


def query(qname: str, qtype: str = "A", **kw: Any) -> dns.message.Message:
    return dns.message.make_query(qname, qtype, **kw)


@pytest.mark.parametrize(("make", "rcode"), [
    (lambda: query("web" + D), None),
    (lambda: query("web" + D, "ANY"), None),
    (lambda: query("web" + D, use_edns=0), None),
    (lambda: query("web" + D, use_edns=1), dns.rcode.BADVERS),
    (lambda: query("web" + D, "AXFR"), dns.rcode.REFUSED),
    (lambda: query("web" + D, "IXFR"), dns.rcode.REFUSED),
    (lambda: query("version.bind.", "TXT", rdclass=dns.rdataclass.CH), dns.rcode.REFUSED),
    (lambda: query("web" + D, "OPT"), dns.rcode.FORMERR),
    (lambda: dns.message.Message(), dns.rcode.FORMERR),
])
def test_query_errors(make: Any, rcode: dns.rcode.Rcode | None) -> None:
    assert query_error(make()) == rcode


def test_notify_is_not_implemented() -> None:
    q = query("cluster.local.", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    assert query_error(q) == dns.rcode.NOTIMP


def big_index(count: int) -> ClusterIndex:
    ready = [(f"10.244.{i // 200}.{i % 200 + 1}", f"big-{i}") for i in range(count)]
    return ClusterIndex.build([service("big", ip="None", ports=(("http", 80, "TCP"),))],
                              [endpoints("big", ready, ports=(("http", 80, "TCP"),))])


@pytest.mark.parametrize(("qtype", "edns", "truncated"), [
    ("A", None, True), ("A", 4096, False), ("A", 1232, True), ("SRV", None, True),
])
def test_udp_answers_are_truncated_to_fit(qtype: str, edns: int | None,
                                          truncated: bool) -> None:
    index = big_index(100)  # 100 A records: ~1.6 kB, 100 SRV records: several kB
    q = query("big" + D, qtype, use_edns=edns is not None, payload=edns or 512)
    full = reply(q, answer(index, ZONE, q.question[0].name, q.question[0].rdtype))
    limit = udp_limit(q)
    assert limit == (edns or 512)
    wire = to_wire(full, limit)
    assert len(wire) <= limit
    got = dns.message.from_wire(wire)
    assert bool(got.flags & dns.flags.TC) == truncated
    count = sum(len(r) for r in got.answer)
    if truncated:
        assert 0 < count < 100  # as many records as fit, not an empty answer
        assert not got.additional
    else:
        assert count == 100
    tcp = dns.message.from_wire(to_wire(full))
    assert not tcp.flags & dns.flags.TC and sum(len(r) for r in tcp.answer) == 100


def test_reply_flags() -> None:
    q = query("web" + D)
    r = reply(q, ask("web" + D, "A"))
    assert r.id == q.id and r.flags & dns.flags.AA and r.flags & dns.flags.QR
    assert r.flags & dns.flags.RD and not r.flags & dns.flags.RA
    r = reply(q, dns.rcode.SERVFAIL, recursion_available=True)
    assert r.rcode() == dns.rcode.SERVFAIL and not r.flags & dns.flags.AA
    assert r.flags & dns.flags.RA


def config(*argv: str) -> DnsConfig:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return DnsConfig.from_args(p.parse_args(list(argv)))


def test_flags() -> None:
    c = config("--listen", "127.0.0.1:5353,[::1]:5353", "--domain", "Cluster.Local.",
               "--upstream", "10.0.0.1:53")
    assert c.listen == (("127.0.0.1", 5353), ("::1", 5353))
    assert c.domain == "cluster.local" and c.ttl == 5 and c.upstream == ("10.0.0.1", 53)
    assert config().listen == (("0.0.0.0", 53),)


@pytest.mark.parametrize(("argv", "flag"), [
    (["--listen", "127.0.0.1"], "--listen"),
    (["--listen", "localhost:53"], "--listen"),
    (["--listen", "127.0.0.1:0"], "--listen"),
    (["--listen", ","], "--listen"),
    (["--ttl", "-1"], "--ttl"),
    (["--ttl", "86400"], "--ttl"),
    (["--domain", "a..b"], "--domain"),
    (["--domain", "."], "--domain"),
    (["--upstream", "dns.google:53"], "--upstream"),
    (["--upstream", "8.8.8.8"], "--upstream"),
    (["--metrics-listen", "9153"], "--metrics-listen"),
])
def test_bad_flags_name_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        config(*argv)


def server(upstream: str = "", synced: bool = True) -> DnsServer:
    s = DnsServer(config("--listen", "127.0.0.1:5353", *(["--upstream", upstream]
                                                         if upstream else [])), cluster())
    s.synced = synced
    return s


def respond(s: DnsServer, q: dns.message.Message, tcp: bool = False) -> dns.message.Message:
    out = s.start(q.to_wire(), tcp)
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


def test_server_answers_from_the_index() -> None:
    r = respond(server(), query("web" + D))
    assert r.rcode() == dns.rcode.NOERROR and lines(r.answer) == [
        "web" + D + " 5 IN A 10.96.0.10"]


def test_server_fails_cluster_names_until_synced() -> None:
    s = server(synced=False)
    assert respond(s, query("web" + D)).rcode() == dns.rcode.SERVFAIL
    assert respond(s, query("10.0.96.10.in-addr.arpa.", "PTR")).rcode() == dns.rcode.SERVFAIL
    s.synced = True
    assert respond(s, query("web" + D)).rcode() == dns.rcode.NOERROR


def test_server_without_upstream_fails_other_names() -> None:
    s = server()
    r = respond(s, query("example.com."))
    assert r.rcode() == dns.rcode.SERVFAIL and not r.flags & dns.flags.RA
    # an ExternalName's CNAME is still answered; the client follows it
    r = respond(s, query("ext" + D))
    assert lines(r.answer) == ["ext" + D + " 5 IN CNAME www.example.com."]


def test_server_with_upstream_hands_other_names_over() -> None:
    s = server("127.0.0.1:5300")
    out = s.start(query("example.com.").to_wire(), False)
    assert isinstance(out, Pending) and out.partial is None
    out = s.start(query("ext" + D).to_wire(), False)
    assert isinstance(out, Pending) and out.partial is not None
    assert respond(s, query("web" + D)).flags & dns.flags.RA


def test_server_malformed_messages() -> None:
    s = server()
    q = query("web" + D).to_wire()
    formerr = s.start(q[:12] + b"\xff\xff", False)  # header, then garbage
    assert isinstance(formerr, bytes)
    got = dns.message.from_wire(formerr)
    assert got.id == int.from_bytes(q[:2], "big") and got.rcode() == dns.rcode.FORMERR
    assert s.start(b"\x00\x01", False) is None  # not even a header: dropped
    response = reply(query("web" + D), dns.rcode.NOERROR).to_wire()
    assert s.start(response, False) is None  # responses are never answered
