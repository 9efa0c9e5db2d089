"""Pod routes: the pure plan (Node objects -> desired kernel state) and diff (desired,
observed -> ordered changes) of netproxy.routes, table-driven, no kernel."""

from __future__ import annotations

import re

import pytest

from navarch.v1 import core_pb2
from netproxy.routes import (
    VXLAN_DEVICE,
    Address,
    Change,
    Desired,
    FdbEntry,
    Mode,
    Neighbour,
    Observed,
    Route,
    RouteSyncError,
    SkippedNode,
    Underlay,
    VxlanLink,
    VxlanSpec,
    diff,
    plan,
    vtep_mac,
)

DEV = VXLAN_DEVICE


def node(name: str, ip: str = "", cidr: str = "", *, cidrs: tuple[str, ...] = (),
         hostname_only: bool = False) -> core_pb2.Node:
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name = name
    n.spec.pod_cidr = cidr
    n.spec.pod_cidrs.extend(cidrs or ((cidr,) if cidr else ()))
    n.status.addresses.add(type="Hostname", address=name)
    if ip and not hostname_only:
        n.status.addresses.add(type="InternalIP", address=ip)
    return n


A = node("a", "172.30.0.11", "10.244.1.0/24")
B = node("b", "172.30.0.12", "10.244.2.0/24")
C = node("c", "172.30.0.13", "10.244.3.0/24")
MAC_A, MAC_B, MAC_C = "0e:6e:ac:1e:00:0b", "0e:6e:ac:1e:00:0c", "0e:6e:ac:1e:00:0d"


# --- plan, host-gw ---------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "nodes", "routes", "skipped"), [
    pytest.param("a", [A, B, C],
                 [Route("10.244.2.0/24", "172.30.0.12"), Route("10.244.3.0/24", "172.30.0.13")],
                 [], id="one-route-per-other-node"),
    pytest.param("b", [C, A, B],
                 [Route("10.244.1.0/24", "172.30.0.11"), Route("10.244.3.0/24", "172.30.0.13")],
                 [], id="local-node-excluded-any-order"),
    pytest.param("a", [node("a"), B], [Route("10.244.2.0/24", "172.30.0.12")],
                 [SkippedNode("a", "no podCIDR yet")], id="local-without-podcidr-still-routes"),
    pytest.param("a", [A, node("b", "172.30.0.12"), C], [Route("10.244.3.0/24", "172.30.0.13")],
                 [SkippedNode("b", "no podCIDR yet")], id="node-without-podcidr"),
    pytest.param("a", [A, node("b", "172.30.0.12", "10.244.2.0/24", hostname_only=True)], [],
                 [SkippedNode("b", "no InternalIP address yet")], id="node-without-internalip"),
    pytest.param("a", [A, node("b", "172.30.0.12", cidrs=("10.244.2.0/24",))],
                 [Route("10.244.2.0/24", "172.30.0.12")], [], id="podcidrs-when-podcidr-empty"),
    pytest.param("a", [A, node("b", "172.30.0.12", "fd00::/64")], [],
                 [SkippedNode("b", "no IPv4 podCIDR in ['fd00::/64']")],
                 id="ipv6-only-podcidr"),
    pytest.param("a", [A, node("b", "172.30.0.12", "10.244.2.7/24")], [],
                 [SkippedNode("b", "podCIDR '10.244.2.7/24' is not a network address with a "
                                   "prefix length")], id="host-bits-set"),
    pytest.param("a", [A, node("b", "not-an-ip", "10.244.2.0/24")], [],
                 [SkippedNode("b", "InternalIP 'not-an-ip' is not an IP address")],
                 id="bad-internalip"),
    pytest.param("a", [A, B, node("c", "172.30.0.13", "10.244.2.0/24")],
                 [Route("10.244.2.0/24", "172.30.0.12")],
                 [SkippedNode("c", "podCIDR 10.244.2.0/24 overlaps 10.244.2.0/24 of node b")],
                 id="duplicate-podcidr-first-by-name-wins"),
    pytest.param("b", [A, B, node("c", "172.30.0.13", "10.244.2.128/25")],
                 [Route("10.244.1.0/24", "172.30.0.11")],
                 [SkippedNode("c", "podCIDR 10.244.2.128/25 overlaps 10.244.2.0/24 of node b")],
                 id="overlap-with-local-podcidr"),
    pytest.param("a", [A, node("b", "172.30.0.11", "10.244.2.0/24")], [],
                 [SkippedNode("b", "InternalIP 172.30.0.11 is this node's own")],
                 id="peer-with-local-ip"),
    pytest.param("a", [], [], [], id="no-nodes"),
])
def test_plan_host_gw(local: str, nodes: list[core_pb2.Node], routes: list[Route],
                      skipped: list[SkippedNode]) -> None:
    assert plan(local, nodes, "host-gw") == Desired(routes=tuple(routes), skipped=tuple(skipped))


# --- plan, vxlan -----------------------------------------------------------------------------

def vxlan_desired(local_ip: str, local_cidr_net: str, *peers: tuple[str, str, str]) -> Desired:
    """peers: (node IP, pod CIDR, VTEP IP)."""
    return Desired(
        routes=tuple(Route(cidr, vtep, DEV, onlink=True) for _, cidr, vtep in peers),
        vxlan=VxlanSpec(DEV, 1, 8472, local_ip, vtep_mac(local_ip), f"{local_cidr_net}/32"),
        neighbours=tuple(Neighbour(DEV, vtep, vtep_mac(ip)) for ip, _, vtep in peers),
        fdb=tuple(sorted(FdbEntry(DEV, vtep_mac(ip), ip) for ip, _, _ in peers)),
    )


@pytest.mark.parametrize(("local", "nodes", "want"), [
    pytest.param("a", [A, B, C], vxlan_desired(
        "172.30.0.11", "10.244.1.0", ("172.30.0.12", "10.244.2.0/24", "10.244.2.0"),
        ("172.30.0.13", "10.244.3.0/24", "10.244.3.0")), id="three-nodes"),
    pytest.param("c", [A, B, C], vxlan_desired(
        "172.30.0.13", "10.244.3.0", ("172.30.0.11", "10.244.1.0/24", "10.244.1.0"),
        ("172.30.0.12", "10.244.2.0/24", "10.244.2.0")), id="local-excluded"),
    pytest.param("a", [A], vxlan_desired("172.30.0.11", "10.244.1.0"), id="alone: device only"),
    pytest.param("a", [node("a", "172.30.0.11"), B],
                 Desired(skipped=(SkippedNode("a", "no podCIDR yet"),)),
                 id="local-without-podcidr-plans-nothing"),
    pytest.param("z", [A, B], Desired(), id="local-node-unknown-plans-nothing"),
    pytest.param("a", [A, node("b", "172.30.0.12"), C], Desired(
        routes=(Route("10.244.3.0/24", "10.244.3.0", DEV, onlink=True),),
        vxlan=VxlanSpec(DEV, 1, 8472, "172.30.0.11", MAC_A, "10.244.1.0/32"),
        neighbours=(Neighbour(DEV, "10.244.3.0", MAC_C),),
        fdb=(FdbEntry(DEV, MAC_C, "172.30.0.13"),),
        skipped=(SkippedNode("b", "no podCIDR yet"),)), id="peer-without-podcidr"),
])
def test_plan_vxlan(local: str, nodes: list[core_pb2.Node], want: Desired) -> None:
    assert plan(local, nodes, Mode.VXLAN) == want


def test_plan_rejects_unknown_mode_and_never_mutates_nodes() -> None:
    before = [n.SerializeToString() for n in (A, B)]
    plan("a", [A, B], "vxlan")
    assert [n.SerializeToString() for n in (A, B)] == before
    with pytest.raises(ValueError, match="'udp' is not a valid Mode"):
        plan("a", [A, B], "udp")


# --- VTEP MAC --------------------------------------------------------------------------------

@pytest.mark.parametrize(("ip", "mac"), [
    ("172.30.0.11", MAC_A),
    ("172.31.250.2", "0e:6e:ac:1f:fa:02"),
    ("10.0.0.1", "0e:6e:0a:00:00:01"),
    ("255.255.255.255", "0e:6e:ff:ff:ff:ff"),
    ("0.0.0.0", "0e:6e:00:00:00:00"),
])
def test_vtep_mac_is_stable_locally_administered_unicast(ip: str, mac: str) -> None:
    assert vtep_mac(ip) == mac == vtep_mac(ip)
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
    first = int(mac[:2], 16)
    assert first & 0x02, "locally administered bit set"
    assert not first & 0x01, "group (multicast) bit clear"


def test_vtep_macs_differ_per_node_ip() -> None:
    ips = [f"172.31.{a}.{b}" for a in range(4) for b in range(256)]
    assert len({vtep_mac(ip) for ip in ips}) == len(ips)
    with pytest.raises(ValueError):
        vtep_mac("fd00::1")


# --- diff ------------------------------------------------------------------------------------

UNDERLAY = Underlay("eth0", 2, 1500)
SPEC = VxlanSpec(DEV, 1, 8472, "172.30.0.11", MAC_A, "10.244.1.0/32")
LINK = VxlanLink(DEV, "vxlan", 1, 8472, "172.30.0.11", 2, learning=False, mac=MAC_A, mtu=1450,
                 up=True)
GW_B = Route("10.244.2.0/24", "172.30.0.12")
GW_C = Route("10.244.3.0/24", "172.30.0.13")
GW_B_SEEN = Route("10.244.2.0/24", "172.30.0.12", "eth0")
GW_C_SEEN = Route("10.244.3.0/24", "172.30.0.13", "eth0")
VX_B = Route("10.244.2.0/24", "10.244.2.0", DEV, onlink=True)
VX_C = Route("10.244.3.0/24", "10.244.3.0", DEV, onlink=True)
N_B, N_C = Neighbour(DEV, "10.244.2.0", MAC_B), Neighbour(DEV, "10.244.3.0", MAC_C)
F_B, F_C = FdbEntry(DEV, MAC_B, "172.30.0.12"), FdbEntry(DEV, MAC_C, "172.30.0.13")
ADDR = Address(DEV, "10.244.1.0/32")
VX_WANT = Desired(routes=(VX_B, VX_C), vxlan=SPEC, neighbours=(N_B, N_C), fdb=(F_B, F_C))
VX_HAVE = Observed(routes=(VX_B, VX_C), vxlan=LINK, addresses=(ADDR,), neighbours=(N_B, N_C),
                   fdb=(F_B, F_C), underlay=UNDERLAY)


def ch(op: str, *entries: object) -> list[Change]:
    return [Change(op, e) for e in entries]  # type: ignore[arg-type]


@pytest.mark.parametrize(("desired", "observed", "want"), [
    pytest.param(Desired(routes=(GW_B, GW_C)), Observed(), ch("add", GW_B, GW_C),
                 id="host-gw-from-nothing"),
    pytest.param(Desired(routes=(GW_B, GW_C)), Observed(routes=(GW_B_SEEN, GW_C_SEEN)), [],
                 id="host-gw-in-sync-kernel-picked-dev"),
    pytest.param(Desired(routes=(GW_B,)), Observed(routes=(GW_B_SEEN, GW_C_SEEN)),
                 ch("delete", GW_C_SEEN), id="host-gw-node-gone"),
    pytest.param(Desired(routes=(GW_B, GW_C)), Observed(routes=(GW_C_SEEN,)), ch("add", GW_B),
                 id="host-gw-route-deleted-by-hand"),
    pytest.param(Desired(routes=(GW_B,)),
                 Observed(routes=(Route(GW_B.dst, "172.30.0.99", "eth0"),)),
                 ch("replace", GW_B), id="host-gw-node-ip-changed"),
    pytest.param(Desired(routes=(GW_B, GW_C)), VX_HAVE,
                 ch("replace", GW_B, GW_C) + ch("delete", LINK), id="vxlan-to-host-gw"),
    pytest.param(VX_WANT, Observed(underlay=UNDERLAY),
                 ch("add", LINK, ADDR, F_B, F_C, N_B, N_C, VX_B, VX_C), id="vxlan-from-nothing"),
    pytest.param(VX_WANT, VX_HAVE, [], id="vxlan-in-sync"),
    pytest.param(VX_WANT, Observed(routes=(GW_B_SEEN, GW_C_SEEN), underlay=UNDERLAY),
                 ch("add", LINK, ADDR, F_B, F_C, N_B, N_C) + ch("replace", VX_B, VX_C),
                 id="host-gw-to-vxlan"),
    pytest.param(Desired(routes=(VX_B,), vxlan=SPEC, neighbours=(N_B,), fdb=(F_B,)), VX_HAVE,
                 ch("delete", F_C, N_C, VX_C), id="vxlan-node-gone"),
    pytest.param(VX_WANT, Observed(routes=(VX_B, VX_C), vxlan=LINK, addresses=(ADDR,),
                                   neighbours=(N_B,), fdb=(F_C,), underlay=UNDERLAY),
                 ch("add", F_B, N_C), id="vxlan-entries-deleted-by-hand"),
    pytest.param(VX_WANT, Observed(routes=(VX_B, VX_C), vxlan=LINK, addresses=(ADDR,),
                                   neighbours=(Neighbour(DEV, "10.244.2.0", MAC_C), N_C),
                                   fdb=(F_B, F_C, FdbEntry(DEV, MAC_B, "172.30.0.99")),
                                   underlay=UNDERLAY),
                 ch("delete", FdbEntry(DEV, MAC_B, "172.30.0.99"))
                 + ch("replace", N_B), id="vxlan-wrong-mac-and-extra-destination"),
    pytest.param(VX_WANT, Observed(routes=(VX_B, VX_C), vxlan=LINK,
                                   addresses=(Address(DEV, "10.244.9.0/32"),),
                                   neighbours=(N_B, N_C), fdb=(F_B, F_C), underlay=UNDERLAY),
                 ch("delete", Address(DEV, "10.244.9.0/32")) + ch("add", ADDR),
                 id="vxlan-wrong-address"),
    pytest.param(VX_WANT, Observed(routes=(VX_B, VX_C), vxlan=LINK, addresses=(ADDR,),
                                   neighbours=(N_B, N_C), fdb=(F_B, F_C),
                                   underlay=Underlay("eth0", 2, 9000)),
                 ch("update", VxlanLink(DEV, "vxlan", 1, 8472, "172.30.0.11", 2, learning=False,
                                        mac=MAC_A, mtu=8950, up=True)),
                 id="vxlan-underlay-mtu-changed"),
    pytest.param(VX_WANT, Observed(routes=(VX_B, VX_C), vxlan=LINK, addresses=(ADDR,),
                                   neighbours=(N_B, N_C), fdb=(F_B, F_C),
                                   underlay=Underlay("eth1", 7, 1500)),
                 ch("delete", LINK)
                 + ch("add", VxlanLink(DEV, "vxlan", 1, 8472, "172.30.0.11", 7, learning=False,
                                       mac=MAC_A, mtu=1450, up=True),
                      ADDR, F_B, F_C, N_B, N_C, VX_B, VX_C),
                 id="vxlan-node-ip-moved-recreates-device"),
    pytest.param(Desired(), VX_HAVE, ch("delete", VX_B, VX_C, LINK), id="cleanup-vxlan"),
    pytest.param(Desired(), Observed(routes=(GW_B_SEEN,)), ch("delete", GW_B_SEEN),
                 id="cleanup-host-gw"),
    pytest.param(Desired(), Observed(), [], id="cleanup-nothing"),
])
def test_diff(desired: Desired, observed: Observed, want: list[Change]) -> None:
    assert list(diff(desired, observed)) == want


def test_diff_of_a_learning_device_recreates_it() -> None:
    learning = VxlanLink(DEV, "vxlan", 1, 8472, "172.30.0.11", 2, learning=True, mac=MAC_A,
                         mtu=1450, up=True)
    got = diff(VX_WANT, Observed(vxlan=learning, underlay=UNDERLAY))
    assert got[:2] == (Change("delete", learning), Change("add", LINK))


def test_diff_vxlan_without_underlay_says_why() -> None:
    with pytest.raises(RouteSyncError, match=r"node IP 172\.30\.0\.11 is on no interface"):
        diff(VX_WANT, Observed())


def test_change_text() -> None:
    assert str(Change("add", VX_B)) == (
        "add route 10.244.2.0/24 via 10.244.2.0 dev navarch.1 onlink")
    assert str(Change("delete", F_B)) == (
        "delete fdb 0e:6e:ac:1e:00:0c dev navarch.1 dst 172.30.0.12")
    assert Change("replace", N_B).kind == "neighbour"
