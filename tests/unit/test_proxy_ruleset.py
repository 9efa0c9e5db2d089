"""The service proxy's pure parts: Services to rules (netproxy.ruleset), rules to netlink
bytes and nft text (netproxy.nftnl), and the order of an incremental transaction
(netproxy.programmer with a socket that records instead of sending)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch.v1 import core_pb2
from netproxy import nftnl
from netproxy.programmer import Programmer, ruleset_text
from netproxy.ruleset import (
    CLUSTER_IPS,
    DEFAULT_AFFINITY_TIMEOUT,
    NO_EP_NODEPORTS,
    NO_EP_SERVICES,
    REJECT_CHAIN,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    Endpoint,
    ServicePort,
    endpoint_chain,
    external_chain,
    service_chain,
    service_ports,
    service_rules,
)

CIDR = "10.244.0.0/16"
A, B, C = Endpoint("10.244.1.2", 8080, "n1"), Endpoint("10.244.2.2", 8080, "n2"), \
    Endpoint("10.244.3.2", 8080, "n3")


def sp(**kw: Any) -> ServicePort:
    base: dict[str, Any] = dict(namespace="ns", name="web", port_name="http", protocol="tcp",
                                cluster_ip="10.96.0.5", port=80)
    base.update(kw)
    return ServicePort(**base)


# --- Services and Endpoints to service ports -------------------------------------------

def service(**spec: Any) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.namespace, svc.metadata.name = "ns", "web"
    svc.spec.cluster_ip = spec.pop("cluster_ip", "10.96.0.5")
    ports = spec.pop("ports", [dict(name="http", port=80, protocol="TCP", node_port=30080)])
    for p in ports:
        svc.spec.ports.add(**p)
    for k, v in spec.items():
        setattr(svc.spec, k, v)
    return svc


def endpoints(*addresses: tuple[str, str], ports: Any = (("http", 8080, "TCP"),)
              ) -> core_pb2.Endpoints:
    ep = core_pb2.Endpoints()
    subset = ep.subsets.add()
    for ip, node in addresses:
        subset.addresses.add(ip=ip, node_name=node)
    subset.not_ready_addresses.add(ip="10.244.9.9")
    for name, port, proto in ports:
        subset.ports.add(name=name, port=port, protocol=proto)
    return ep


@pytest.mark.parametrize(("svc", "expected"), [
    pytest.param(service(cluster_ip="None"), [], id="headless"),
    pytest.param(service(cluster_ip=""), [], id="no cluster IP"),
    pytest.param(service(type="ExternalName", external_name="x.example"), [],
                 id="ExternalName"),
    pytest.param(service(cluster_ip="fd00::1"), [], id="IPv6 is not programmed"),
])
def test_services_without_a_virtual_ip_get_no_rules(svc: core_pb2.Service,
                                                    expected: list[Any]) -> None:
    assert service_ports(svc, endpoints(("10.244.1.2", "n1"))) == expected


def test_ready_addresses_only_matched_by_port_name_and_protocol() -> None:
    svc = service(type="NodePort", ports=[
        dict(name="http", port=80, protocol="TCP", node_port=30080),
        dict(name="dns", port=53, protocol="UDP")])
    eps = endpoints(("10.244.2.2", "n2"), ("10.244.1.2", "n1"), ("10.244.1.2", "n1"),
                    ports=(("http", 8080, "TCP"), ("dns", 5353, "UDP"), ("dns", 5354, "TCP")))
    http, dns = service_ports(svc, eps)
    assert http.endpoints == (Endpoint("10.244.1.2", 8080, "n1"),
                              Endpoint("10.244.2.2", 8080, "n2"))  # sorted, deduplicated
    assert http.node_port == 30080 and http.protocol == "tcp"
    assert dns.protocol == "udp" and {e.port for e in dns.endpoints} == {5353}
    assert all(e.ip != "10.244.9.9" for e in http.endpoints)  # not ready


@pytest.mark.parametrize(("spec", "node_port", "local", "affinity"), [
    (dict(), 0, False, 0),  # ClusterIP ignores a nodePort field
    (dict(type="NodePort"), 30080, False, 0),
    (dict(type="LoadBalancer", external_traffic_policy="Local"), 30080, True, 0),
    (dict(external_traffic_policy="Local"), 0, False, 0),  # Local only matters externally
    (dict(session_affinity="ClientIP"), 0, False, DEFAULT_AFFINITY_TIMEOUT),
])
def test_service_type_policy_and_affinity(spec: dict[str, Any], node_port: int, local: bool,
                                          affinity: int) -> None:
    (port,) = service_ports(service(**spec), None)
    assert (port.node_port, port.local_only, port.affinity_timeout, port.endpoints) == \
        (node_port, local, affinity, ())


def test_affinity_timeout_from_the_service() -> None:
    svc = service(session_affinity="ClientIP")
    svc.spec.session_affinity_config.client_ip.timeout_seconds = 60
    assert service_ports(svc, None)[0].affinity_timeout == 60


# --- service ports to rules -------------------------------------------------------------

def test_no_endpoints_rejects_instead_of_black_holing() -> None:
    rules = service_rules(sp(node_port=30080), "n1", CIDR)
    assert rules.chains == {}
    assert rules.elements == {
        CLUSTER_IPS: {("10.96.0.5",): None},
        NO_EP_SERVICES: {("10.96.0.5", "tcp", 80): REJECT_CHAIN},
        NO_EP_NODEPORTS: {("tcp", 30080): REJECT_CHAIN},
    }


@pytest.mark.parametrize("eps", [(A,), (A, B), (A, B, C)])
def test_uniform_balancing_over_endpoint_chains(eps: tuple[Endpoint, ...]) -> None:
    port = sp(endpoints=eps)
    rules = service_rules(port, "n1", CIDR)
    picks = rules.chains[service_chain(port)]
    n = len(eps)
    for i, (rule, ep) in enumerate(zip(picks, eps, strict=True)):
        target = ("goto", endpoint_chain(port, ep))
        # rule i picks with probability 1/(n-i) among those left: uniform overall
        assert rule == ((target,) if i == n - 1 else (("numgen", n - i, 0), target))
    for ep in eps:
        assert rules.chains[endpoint_chain(port, ep)] == (
            (("saddr", ep.ip), ("jump", "mark-for-masquerade")),
            (("dnat", "tcp", ep.ip, 8080),))
    assert rules.elements[SERVICE_IPS] == {("10.96.0.5", "tcp", 80): service_chain(port)}
    assert NO_EP_SERVICES not in rules.elements


def test_traffic_from_outside_the_cluster_cidr_is_masqueraded_once_for_all() -> None:
    from netproxy.ruleset import BASE_CHAINS, base_chains

    services = dict((name, rules) for name, _, rules in base_chains(CIDR))["services"]
    assert services[0] == (("daddr_in", CLUSTER_IPS), ("saddr_not_in", CIDR),
                           ("jump", "mark-for-masquerade"))
    assert services[1:] == dict((n, r) for n, _, r in BASE_CHAINS)["services"]
    assert base_chains(None) == BASE_CHAINS  # no CIDR: nothing is masqueraded for it


def test_pods_reaching_an_endpoint_off_the_pod_network_are_masqueraded() -> None:
    """The kubernetes Service's endpoint is the API server's address, outside the
    cluster CIDR: pods' packets to it leave from the node's address. Endpoints inside the
    CIDR keep the pod's source (only the hairpin rule)."""
    api = Endpoint("172.30.0.1", 6443)
    port = sp(endpoints=(A, api), port=443, cluster_ip="10.96.0.1")
    rules = service_rules(port, "n1", CIDR)
    hairpin = (("jump", "mark-for-masquerade"),)
    assert rules.chains[endpoint_chain(port, api)] == (
        (("saddr", "172.30.0.1"), *hairpin),
        (("saddr_in_cidr", CIDR), *hairpin),
        (("dnat", "tcp", "172.30.0.1", 6443),))
    assert rules.chains[endpoint_chain(port, A)] == (
        (("saddr", A.ip), *hairpin), (("dnat", "tcp", A.ip, 8080),))
    # without a cluster CIDR the proxy cannot tell pods apart: nothing is added
    assert len(service_rules(port, "n1", None).chains[endpoint_chain(port, api)]) == 2


def test_node_port_cluster_policy_masquerades() -> None:
    port = sp(endpoints=(A, B), node_port=30080)
    rules = service_rules(port, "n1", CIDR)
    assert rules.chains[external_chain(port)] == (
        (("jump", "mark-for-masquerade"),), (("goto", service_chain(port)),))
    assert rules.elements[SERVICE_NODEPORTS] == {("tcp", 30080): external_chain(port)}


@pytest.mark.parametrize(("node", "last"), [
    ("n1", (("goto", "A"),)),  # a local endpoint: only it, unmasqueraded
    ("n3", (("drop",),)),  # none here: dropped, as kube-proxy does
])
def test_node_port_local_policy(node: str, last: tuple[Any, ...]) -> None:
    port = sp(endpoints=(A, B), node_port=30080, local_only=True)
    ext = service_rules(port, node, CIDR).chains[external_chain(port)]
    svc = ("goto", service_chain(port))
    assert ext[:3] == ((("saddr_in_cidr", CIDR), svc),
                       (("fib_saddr_local",), ("jump", "mark-for-masquerade")),
                       (("fib_saddr_local",), svc))
    want = ((("goto", endpoint_chain(port, A)),),) if last == (("goto", "A"),) else (last,)
    assert ext[3:] == want


def test_session_affinity_sets_and_lookups() -> None:
    port = sp(endpoints=(A, B), affinity_timeout=100)
    rules = service_rules(port, "n1", CIDR)
    assert set(rules.affinity_sets.values()) == {100_000}
    svc = rules.chains[service_chain(port)]
    sets = sorted(rules.affinity_sets)
    assert {r[0][1] for r in svc[0:2]} == set(sets)  # ip saddr @aff-… goto ep-…
    for ep in (A, B):
        chain = rules.chains[endpoint_chain(port, ep)]
        assert chain[1][0][0] == "update_saddr"


def test_chain_names_are_stable_and_readable() -> None:
    port = sp(endpoints=(A,))
    assert service_chain(port) == service_chain(sp(endpoints=(B,)))
    assert service_chain(port).endswith("-ns/web/tcp/http")
    assert endpoint_chain(port, A).endswith("ns/web/tcp/http__10.244.1.2/8080")
    assert len(endpoint_chain(sp(namespace="n" * 63, name="s" * 63, port_name="p" * 15),
                              A)) < 256


# --- netlink bytes and text --------------------------------------------------------------

ips = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
ports = st.integers(1, 65535)
names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-/._", min_size=1, max_size=200)


@given(ips, ports, names, st.sampled_from(["tcp", "udp", "sctp"]))
def test_fast_paths_encode_like_the_generic_encoder(ip: str, port: int, chain: str,
                                                    proto: str) -> None:
    for stmt in (("daddr", ip), ("saddr", ip), ("dport", port), ("dnat", proto, ip, port),
                 ("goto", chain), ("jump", chain)):
        assert nftnl.stmt_exprs(stmt) == nftnl._stmt_exprs(stmt)


def _decoded_rule(rule: tuple[Any, ...]) -> Any:
    from pyroute2.netlink.nfnetlink.nftsocket import nft_rule_msg

    b = nftnl.Batch("navarch")
    b.add_rule("svc-x", rule)
    data, _ = b.encode()
    length = struct.unpack_from("=I", data, 20)[0]  # the message after batch begin
    msg = nft_rule_msg(data[20:20 + length])
    msg.decode()
    return msg


@pytest.mark.parametrize(("rule", "names"), [
    ((("numgen", 2, 0), ("goto", "ep-a")), ["numgen", "cmp", "immediate"]),
    ((("dnat", "tcp", "10.244.1.2", 8080),), ["meta", "cmp", "immediate", "immediate", "nat"]),
    ((("vmap_daddr_proto_port", "service-ips"),), ["payload", "meta", "payload", "lookup"]),
    ((("update_saddr", "aff-x"),), ["payload", "dynset"]),
    ((("ct_new",), ("jump", "x")), ["ct", "bitwise", "cmp", "immediate"]),
    ((("not_loopback",), ("fib_daddr_local",), ("masquerade",)),
     ["payload", "cmp", "fib", "cmp", "masq"]),
    ((("reject",),), ["reject"]),
])
def test_pyroute2_decodes_what_the_encoder_writes(rule: tuple[Any, ...],
                                                  names: list[str]) -> None:
    msg = _decoded_rule(rule)
    assert msg.get_attr("NFTA_RULE_TABLE") == "navarch"
    assert msg.get_attr("NFTA_RULE_CHAIN") == "svc-x"
    exprs = msg.get_attr("NFTA_RULE_EXPRESSIONS")
    assert [e.get_attr("NFTA_EXPR_NAME") for e in exprs] == names


def test_pyroute2_reads_a_verdict_and_a_nat_range() -> None:
    exprs = _decoded_rule((("numgen", 3, 1), ("goto", "ep-a"))).get_attr(
        "NFTA_RULE_EXPRESSIONS")
    numgen = exprs[0].get_attr("NFTA_EXPR_DATA")
    assert numgen.get_attr("NFTA_NG_MODULUS") == 3
    assert numgen.get_attr("NFTA_NG_TYPE") == "NFT_NG_RANDOM"
    verdict = exprs[2].get_attr("NFTA_EXPR_DATA").get_attr("NFTA_IMMEDIATE_DATA") \
        .get_attr("NFTA_DATA_VERDICT")
    assert verdict.get_attr("NFTA_VERDICT_CODE") == "NFT_GOTO"
    assert verdict.get_attr("NFTA_VERDICT_CHAIN") == "ep-a"


def test_attributes_are_padded_and_nested() -> None:
    assert nftnl.s(1, "abc") == struct.pack("=HH", 8, 1) + b"abc\0"
    assert nftnl.s(1, "abcd") == struct.pack("=HH", 9, 1) + b"abcd\0" + b"\0\0\0"
    assert nftnl.nest(4, nftnl.u32(1, 7)) == struct.pack("=HHHH", 12, 0x8004, 8, 1) + \
        struct.pack(">I", 7)


def test_batch_frames_a_transaction_and_asks_one_ack() -> None:
    b = nftnl.Batch("t")
    b.add_table()
    b.add_chain("c")
    data, what = b.encode()
    msgs = []
    off = 0
    while off < len(data):
        length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data, off)
        msgs.append((mtype, flags, seq))
        off += length
    assert [m[0] for m in msgs] == [nftnl.NFNL_MSG_BATCH_BEGIN, 10 << 8 | nftnl.NEWTABLE,
                                    10 << 8 | nftnl.NEWCHAIN, nftnl.NFNL_MSG_BATCH_END]
    assert [bool(m[1] & nftnl.NLM_F_ACK) for m in msgs] == [False, False, True, False]
    assert [m[2] for m in msgs] == [1, 2, 3, 4]
    assert what == ["batch begin", "add table t", "add chain c", "batch end"]


def test_many_elements_are_split_below_the_attribute_limit() -> None:
    b = nftnl.Batch("t")
    chain = "svc-" + "x" * 100
    b.set_elements("m", [(nftnl.key_ip_proto_port("10.0.0.1", "tcp", p), chain)
                         for p in range(1, 3001)])
    data, what = b.encode()
    assert len(what) > 3  # several messages
    off = 0
    while off < len(data):
        length = struct.unpack_from("=I", data, off)[0]
        assert length < 65536
        off += length


@pytest.mark.parametrize(("stmt", "text"), [
    (("daddr", "10.96.0.1"), "ip daddr 10.96.0.1"),
    (("saddr_not_in", CIDR), f"ip saddr != {CIDR}"),
    (("saddr_in_cidr", CIDR), f"ip saddr {CIDR}"),
    (("numgen", 3, 0), "numgen random mod 3 0"),
    (("dnat", "udp", "10.244.1.2", 53), "meta l4proto udp dnat to 10.244.1.2:53"),
    (("update_saddr", "aff-X"), "update @aff-X { ip saddr }"),
    (("mark_or", 0x4000), "meta mark set meta mark | 0x4000"),
    (("fib_saddr_local",), "fib saddr type local"),
    (("vmap_proto_port", "m"), "meta l4proto . th dport vmap @m"),
])
def test_statement_text(stmt: tuple[Any, ...], text: str) -> None:
    assert nftnl.rule_text((stmt,)) == text


def test_unknown_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown nftables statement"):
        nftnl._stmt_exprs(("frobnicate",))


# --- the order of an incremental transaction ----------------------------------------------

class RecordingSocket:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def commit(self, batch: nftnl.Batch) -> int:
        self.batches.append(batch.encode()[1][1:-1])
        return len(batch)

    def generation(self) -> int:
        return len(self.batches)


def test_incremental_transaction_order() -> None:
    sock = RecordingSocket()
    prog = Programmer(sock)  # type: ignore[arg-type]
    old = sp(endpoints=(A, B), affinity_timeout=10)
    new = sp(endpoints=(B, C))
    prog.applied = {"ns/web": service_rules(old, "n1", CIDR)}
    prog.sync({"ns/web": service_rules(new, "n1", CIDR)})
    (what,) = sock.batches

    def first(prefix: str) -> int:
        return next(i for i, w in enumerate(what) if w.startswith(prefix))

    def last(prefix: str) -> int:
        return max(i for i, w in enumerate(what) if w.startswith(prefix))
    # C's chain exists before a rule jumps to it; A's goes after nothing refers to it
    assert first(f"add chain {endpoint_chain(new, C)}") < first("add rule")
    assert last("flush chain") < first("add rule")
    assert first(f"delete chain {endpoint_chain(old, A)}") > last("add rule")
    assert last("delete set aff-") > first(f"delete chain {endpoint_chain(old, A)}")
    assert f"add chain {endpoint_chain(new, B)}" not in what  # B's chain is unchanged...
    assert f"flush chain {endpoint_chain(new, B)}" in what  # ...but loses its affinity rule
    # nothing changed, nothing sent
    prog.sync({"ns/web": service_rules(new, "n1", CIDR)})
    assert len(sock.batches) == 1


def test_ruleset_text_names_every_chain_and_element() -> None:
    port = sp(endpoints=(A,), node_port=30080)
    text = ruleset_text({"ns/web": service_rules(port, "n1", CIDR)})
    for name in (service_chain(port), endpoint_chain(port, A), external_chain(port)):
        assert f"chain {name} {{" in text
    assert f"10.96.0.5 . tcp . 80 : goto {service_chain(port)}" in text
    assert "type nat hook prerouting priority -100; policy accept;" in text


@pytest.mark.parametrize(("need_full", "pending", "since_full", "kind"), [
    (True, True, 0.0, "full"),  # start, drift or a refused transaction: at once
    (False, True, 10.0, "partial"),  # the period is over, but a change is pending
    (False, False, 10.0, "full"),  # ...and once nothing is
    (False, False, 1.0, ""),
    (False, True, 1.0, "partial"),
])
def test_periodic_full_sync_never_delays_a_change(need_full: bool, pending: bool,
                                                   since_full: float, kind: str) -> None:
    from netproxy.proxy import sync_kind

    assert sync_kind(need_full, pending, since_full, period=5.0) == kind
