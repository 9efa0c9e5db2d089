"""Pod routes between nodes: every pod reaches every other pod by its own IP, with no NAT.

Each node owns one pod CIDR (``spec.podCIDR``, e.g. 10.244.1.0/24) and is reached at its
InternalIP. Pods on one node are wired to that node by the CNI plugin (the local pod CIDR is
a connected route there); this module adds what a node needs to reach the *other* nodes'
pods, from the Node objects alone, in one of two modes:

``host-gw`` — the nodes share a link (one L2 segment), so each node is the gateway of its
own pods::

    10.244.2.0/24 via 172.30.0.12 proto 110          (one route per other node)

``vxlan`` — the nodes may not share a link, so pod traffic is wrapped in UDP between the
nodes' own addresses. Flannel's layout, with nothing to publish: every value a peer needs
is computed from its Node object::

    navarch.1   vxlan id 1 dstport 8472 local <node IP> dev <iface holding the node IP>
                nolearning, mtu = that iface's MTU - 50 (outer IPv4 + UDP + VXLAN + Ethernet)
                MAC = vtep_mac(node IP), address = <local podCIDR network address>/32
    per other node (VTEP IP = its podCIDR's network address, VTEP MAC = vtep_mac(its IP)):
        neighbour  10.244.2.0 lladdr 0e:6e:ac:1e:00:0c dev navarch.1 PERMANENT
        fdb        0e:6e:ac:1e:00:0c dev navarch.1 dst 172.30.0.12 self permanent
        route      10.244.2.0/24 via 10.244.2.0 dev navarch.1 onlink proto 110

The route sends a packet for a remote pod to the remote VTEP IP on the VXLAN device; the
permanent neighbour entry gives that IP the remote device's MAC without ARP; the FDB entry
tells the device which node's address to send frames for that MAC to. The receiving
device owns that MAC, decapsulates, and the node forwards the packet to its pod. Source
and destination stay pod IPs end to end.

The VTEP MAC is ``0e:6e`` followed by the four octets of the node's IPv4 InternalIP:
0x0e has the locally-administered bit (0x02) set and the group bit (0x01) clear, so it is
a valid unicast address that no vendor assigns, and distinct node IPs give distinct MACs.

Ownership. Every route this module installs carries the route protocol number
``ROUTE_PROTO`` = 110 (``ip route show proto 110``; iproute2 prints it by name once a line
``110 navarch`` is in ``/etc/iproute2/rt_protos.d/navarch.conf``). 110 is none of the
kernel's ``RTPROT_*`` values nor of iproute2's reserved list (routing daemons use 8-18,
42, 99 and 186-192). A sync reads the routes of the main table that carry it and deletes
those the plan no longer wants — never a route someone else made (but a foreign route
to a pod CIDR the plan routes is replaced by ours: routes are keyed by destination).
Everything on the ``navarch.1`` device (address, neighbours, FDB) is ours by
construction. Switching modes is therefore just another sync: the other mode's routes
are ours and unwanted, and in host-gw mode the plan has no device, so it is deleted.

Structure, in the way of the rest of Navarch: ``plan()`` turns Node objects into the
``Desired`` state, ``diff()`` compares it with the ``Observed`` kernel state and returns the
``Change`` list to apply — both pure, no I/O. ``RouteSyncer`` is the thin layer that reads
the kernel over netlink, calls them, and applies the changes. It works in the network
namespace it runs in (``navarch proxy`` is started inside its node's namespace with
nsenter), or in a named one (``/var/run/netns/<name>``) for tests.

Notes on pyroute2 0.9.7, found while writing this:

- ``AsyncIPRoute`` works on its own asyncio core. Dumps are awaited and return async
  generators (``async for m in await ipr.route("dump")``); other requests return lists.
  The synchronous ``IPRoute`` now wraps that core with its own event loop, so calling it
  from a coroutine fails with "This event loop is already running": in a daemon, use the
  async class (or push the sync one onto a thread).
- ``netns=<name>`` opens the netlink socket inside that namespace through a short-lived
  helper process that hands the socket back; its default ``flags=O_CREAT`` silently
  *creates* a missing namespace, so this module passes ``flags=0`` (a wrong name then
  fails with FileNotFoundError).
- Sockets join the link/address/route multicast groups by default; a socket that never
  reads notifications should pass ``groups=0`` so they do not pile up in its buffer.
- ``fdb("add"|"append"|"del")`` fills in NUD_NOARP|NUD_PERMANENT and NTF_SELF, but
  ``fdb("replace")`` does not, and the kernel then rejects the request with EOPNOTSUPP:
  pass ``state`` and ``flags`` explicitly.
- In a dump, only ``family`` (and a few flag arguments) reach the kernel; every other
  keyword is matched in Python against the replies of a full dump. It saves nothing, so
  this module dumps by family and picks table, protocol and device from the replies.
- The kernel reports the onlink flag of a route in ``flags`` (RTNH_F_ONLINK = 4) and the
  VXLAN attributes nested under IFLA_LINKINFO/IFLA_INFO_DATA (``get_nested``).

Contracts: ``sync`` and ``cleanup`` are idempotent and serialized by a lock; a sync applies
only the differences it observed, so a second one with the same nodes changes nothing.
Nothing here sets sysctls: the node's ``net.ipv4.ip_forward`` must be on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import errno
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from navarch.v1 import core_pb2

log = structlog.get_logger("navarch.proxy.routes")

ROUTE_PROTO = 110
"""Route protocol number that marks the routes this module owns (see the module docstring)."""
MAIN_TABLE = 254
VXLAN_DEVICE = "navarch.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50
"""Bytes VXLAN adds over IPv4: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14."""
VTEP_MAC_PREFIX = "0e:6e"

_NUD_NOARP = 0x40
_NUD_PERMANENT = 0x80
_NTF_SELF = 0x02
_RTNH_F_ONLINK = 4
_IFF_UP = 0x1
_GONE = frozenset({errno.ESRCH, errno.ENOENT, errno.ENODEV, errno.EADDRNOTAVAIL})


class Mode(enum.StrEnum):
    """How packets for other nodes' pods leave this node."""

    HOST_GW = "host-gw"
    VXLAN = "vxlan"


class RouteSyncError(Exception):
    """The kernel state cannot be brought to the plan; the message says why. ``applied``
    holds the changes that were made all the same, ``failed`` those that were refused."""

    def __init__(self, message: str, applied: tuple[Change, ...] = (),
                 failed: tuple[Change, ...] = ()) -> None:
        super().__init__(message)
        self.applied = applied
        self.failed = failed


# --- entries: plain values, one per kernel object -------------------------------------------


@dataclass(frozen=True, order=True)
class Route:
    """A route of the main table. ``dev`` None: the kernel picks the device (host-gw)."""

    dst: str
    gateway: str
    dev: str | None = None
    onlink: bool = False

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        dev = f" dev {self.dev}" if self.dev else ""
        return f"{self.dst}{via}{dev}{' onlink' if self.onlink else ''}"


@dataclass(frozen=True, order=True)
class Neighbour:
    """A permanent ARP entry: ``ip`` answers at ``mac`` on ``dev``."""

    dev: str
    ip: str
    mac: str

    def __str__(self) -> str:
        return f"{self.ip} lladdr {self.mac} dev {self.dev}"


@dataclass(frozen=True, order=True)
class FdbEntry:
    """A VXLAN forwarding entry: frames for ``mac`` go to the node at ``dst``."""

    dev: str
    mac: str
    dst: str

    def __str__(self) -> str:
        return f"{self.mac} dev {self.dev} dst {self.dst}"


@dataclass(frozen=True, order=True)
class Address:
    """An IPv4 address (``cidr`` with its prefix length) on ``dev``."""

    dev: str
    cidr: str

    def __str__(self) -> str:
        return f"{self.cidr} dev {self.dev}"


@dataclass(frozen=True)
class VxlanLink:
    """The VXLAN device, as wanted (from a spec and the underlay) or as found."""

    name: str
    kind: str
    vni: int
    port: int
    local: str
    underlay_index: int
    learning: bool
    mac: str
    mtu: int
    up: bool

    def config(self) -> tuple[object, ...]:
        """What can only be changed by recreating the device."""
        return (self.kind, self.vni, self.port, self.local, self.underlay_index, self.learning)

    def __str__(self) -> str:
        return (f"{self.name} {self.kind} id {self.vni} dstport {self.port} local {self.local}"
                f" link {self.underlay_index} mtu {self.mtu} address {self.mac}")


Entry = Route | Neighbour | FdbEntry | Address | VxlanLink
Op = Literal["add", "replace", "update", "delete"]
_KINDS: dict[type, str] = {Route: "route", Neighbour: "neighbour", FdbEntry: "fdb",
                           Address: "address", VxlanLink: "link"}


@dataclass(frozen=True)
class Change:
    """One kernel change: add (absent before), replace (same key, other value), update
    (the device's MAC, MTU or state), delete."""

    op: Op
    entry: Entry

    @property
    def kind(self) -> str:
        """route, neighbour, fdb, address or link."""
        return _KINDS[type(self.entry)]

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.entry}"


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VxlanSpec:
    """The VXLAN device the plan wants; the syncer adds the underlay device and MTU."""

    name: str
    vni: int
    port: int
    local: str
    mac: str
    address: str


@dataclass(frozen=True)
class SkippedNode:
    """A node the plan left out, and why (for logs)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Desired:
    """What this node's kernel should hold, entries sorted."""

    routes: tuple[Route, ...] = ()
    vxlan: VxlanSpec | None = None
    neighbours: tuple[Neighbour, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    skipped: tuple[SkippedNode, ...] = ()


@dataclass(frozen=True)
class _Peer:
    name: str
    ip: ipaddress.IPv4Address
    cidr: ipaddress.IPv4Network


def vtep_mac(node_ip: str) -> str:
    """The VXLAN device MAC of the node at ``node_ip`` (IPv4): 0e:6e + its four octets."""
    octets = ipaddress.IPv4Address(node_ip).packed
    return VTEP_MAC_PREFIX + "".join(f":{b:02x}" for b in octets)


def _peer(node: core_pb2.Node) -> _Peer | str:
    """The node's IPv4 InternalIP and pod CIDR, or the reason it has none usable."""
    cidrs = [c for c in dict.fromkeys((node.spec.pod_cidr, *node.spec.pod_cidrs)) if c]
    if not cidrs:
        return "no podCIDR yet"
    cidr: ipaddress.IPv4Network | None = None
    for text in cidrs:
        try:
            net = ipaddress.ip_network(text)
        except ValueError:
            return f"podCIDR {text!r} is not a network address with a prefix length"
        if isinstance(net, ipaddress.IPv4Network):
            cidr = net
            break
    if cidr is None:
        return f"no IPv4 podCIDR in {cidrs}"
    internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    for text in internal:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return f"InternalIP {text!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv4Address):
            return _Peer(node.metadata.name, ip, cidr)
    return f"no IPv4 InternalIP in {internal}" if internal else "no InternalIP address yet"


def plan(local_node_name: str, nodes: Iterable[core_pb2.Node], mode: Mode | str) -> Desired:
    """The routes (host-gw) or VXLAN entries (vxlan) that let this node reach every other
    node's pods. Pure. Nodes without a usable podCIDR or InternalIP are skipped, and so is
    a node whose podCIDR overlaps one already taken (this node's first, then by name); in
    vxlan mode nothing is planned until this node itself has both."""
    mode = Mode(mode)
    skipped: list[SkippedNode] = []
    local: _Peer | None = None
    remotes: list[_Peer] = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        found = _peer(node)
        if isinstance(found, str):
            skipped.append(SkippedNode(node.metadata.name, found))
        elif found.name == local_node_name:
            local = found
        else:
            remotes.append(found)
    taken: list[_Peer] = [local] if local else []
    accepted: list[_Peer] = []
    for peer in remotes:
        clash = next((t for t in taken if t.cidr.overlaps(peer.cidr)), None)
        if local is not None and peer.ip == local.ip:
            skipped.append(SkippedNode(peer.name, f"InternalIP {peer.ip} is this node's own"))
        elif clash is not None:
            skipped.append(SkippedNode(
                peer.name, f"podCIDR {peer.cidr} overlaps {clash.cidr} of node {clash.name}"))
        else:
            taken.append(peer)
            accepted.append(peer)
    if mode is Mode.HOST_GW:
        routes = tuple(sorted(Route(str(p.cidr), str(p.ip)) for p in accepted))
        return Desired(routes=routes, skipped=tuple(skipped))
    if local is None:
        return Desired(skipped=tuple(skipped))
    spec = VxlanSpec(VXLAN_DEVICE, VXLAN_VNI, VXLAN_PORT, str(local.ip), vtep_mac(str(local.ip)),
                     f"{local.cidr.network_address}/32")
    neighbours, fdb, routes_ = [], [], []
    for p in accepted:
        vtep, mac = str(p.cidr.network_address), vtep_mac(str(p.ip))
        neighbours.append(Neighbour(VXLAN_DEVICE, vtep, mac))
        fdb.append(FdbEntry(VXLAN_DEVICE, mac, str(p.ip)))
        routes_.append(Route(str(p.cidr), vtep, VXLAN_DEVICE, onlink=True))
    return Desired(routes=tuple(sorted(routes_)), vxlan=spec,
                   neighbours=tuple(sorted(neighbours)), fdb=tuple(sorted(fdb)),
                   skipped=tuple(skipped))


# --- the diff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Underlay:
    """The interface that holds the node's IP: the VXLAN device sends through it."""

    name: str
    index: int
    mtu: int


@dataclass(frozen=True)
class Observed:
    """What the kernel holds that concerns this module: the main table's routes with
    ``ROUTE_PROTO``, the VXLAN device and what is on it (permanent neighbours only), and
    the underlay of the node IP when one was asked for."""

    routes: tuple[Route, ...] = ()
    vxlan: VxlanLink | None = None
    addresses: tuple[Address, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    underlay: Underlay | None = None


def _route_matches(want: Route, have: Route) -> bool:
    return (want.dst, want.gateway, want.onlink) == (have.dst, have.gateway, have.onlink) and (
        want.dev is None or want.dev == have.dev)


def _diff_link(spec: VxlanSpec | None, observed: Observed) -> tuple[list[Change], bool]:
    """Changes that bring the device to the spec, and whether it comes out new (empty)."""
    have = observed.vxlan
    if spec is None:
        return [], False
    if observed.underlay is None:
        raise RouteSyncError(
            f"vxlan mode: the node IP {spec.local} is on no interface of this network "
            "namespace, so there is no device to send VXLAN packets through")
    want = VxlanLink(spec.name, "vxlan", spec.vni, spec.port, spec.local, observed.underlay.index,
                     learning=False, mac=spec.mac, mtu=observed.underlay.mtu - VXLAN_OVERHEAD,
                     up=True)
    if have is None:
        return [Change("add", want)], True
    if have.config() != want.config():
        return [Change("delete", have), Change("add", want)], True
    if (have.mac, have.mtu, have.up) != (want.mac, want.mtu, want.up):
        return [Change("update", want)], False
    return [], False


def diff(desired: Desired, observed: Observed) -> tuple[Change, ...]:
    """The changes, in the order to apply them, that turn ``observed`` into ``desired``.
    Pure. Deletes come before adds on the device (a MAC never has two destinations),
    routes are replaced in place (no moment without one) and stale ones deleted last, the
    device itself after its routes. Entries on a device that is (re)created or deleted are
    not listed: they come or go with it."""
    link, fresh = _diff_link(desired.vxlan, observed)
    drop_link = desired.vxlan is None and observed.vxlan is not None
    if fresh or drop_link:
        observed = dataclasses.replace(observed, addresses=(), neighbours=(), fdb=())
    if fresh:
        observed = dataclasses.replace(
            observed, routes=tuple(r for r in observed.routes if r.dev != VXLAN_DEVICE))
    changes = list(link)

    if desired.vxlan is not None:
        want_addr = Address(desired.vxlan.name, desired.vxlan.address)
        changes += [Change("delete", a) for a in observed.addresses if a != want_addr]
        if want_addr not in observed.addresses:
            changes.append(Change("add", want_addr))

    have_neigh = {n.ip: n for n in observed.neighbours}
    want_neigh = {n.ip: n for n in desired.neighbours}
    changes += [Change("delete", e) for e in observed.fdb if e not in desired.fdb]
    changes += [Change("delete", n) for ip, n in have_neigh.items() if ip not in want_neigh]
    changes += [Change("add", e) for e in desired.fdb if e not in observed.fdb]
    for ip, n in want_neigh.items():
        if ip not in have_neigh:
            changes.append(Change("add", n))
        elif have_neigh[ip] != n:
            changes.append(Change("replace", n))

    have_routes: dict[str, list[Route]] = {}
    for r in observed.routes:
        have_routes.setdefault(r.dst, []).append(r)
    want_dsts = {r.dst for r in desired.routes}
    for want in desired.routes:
        current = have_routes.get(want.dst, [])
        if not any(_route_matches(want, have) for have in current):
            changes.append(Change("replace" if current else "add", want))
    for dst, routes in sorted(have_routes.items()):
        if dst not in want_dsts:
            changes += [Change("delete", r) for r in routes]

    if drop_link and observed.vxlan is not None:
        changes.append(Change("delete", observed.vxlan))
    return tuple(changes)


# --- the thin layer: read the kernel, apply changes ----------------------------------------


class RouteSyncer:
    """Keeps this node's pod routes in line with the Node objects.

    ``node_name`` is this node's name (its own Node gives the VXLAN device's address),
    ``mode`` host-gw or vxlan, ``netns`` the name of a network namespace to work in instead
    of the current one. Each call opens its own netlink socket: there is nothing to close.
    """

    def __init__(self, node_name: str, mode: Mode | str = Mode.HOST_GW, *,
                 netns: str | None = None) -> None:
        self.node_name = node_name
        self.mode = Mode(mode)
        self.netns = netns
        self._lock = asyncio.Lock()
        self._skipped: tuple[SkippedNode, ...] = ()
        self._refused: frozenset[Change] = frozenset()

    async def sync(self, nodes: Iterable[core_pb2.Node]) -> tuple[Change, ...]:
        """Bring the kernel to the plan for ``nodes`` (all the cluster's Nodes, this one
        included) and return the changes made; none when it already matched. Never
        mutates the nodes. Raises RouteSyncError when the kernel refuses changes: all the
        others are applied all the same, and the next sync retries the refused ones."""
        desired = plan(self.node_name, nodes, self.mode)
        underlay_ip = desired.vxlan.local if desired.vxlan else None
        async with self._lock, self._connect() as ipr:
            if desired.skipped != self._skipped:
                for s in desired.skipped:
                    log.info("node left out of pod routes", node=s.name, reason=s.reason)
                self._skipped = desired.skipped
            observed = await _observe(ipr, underlay_ip)
            return await self._apply(ipr, diff(desired, observed))

    async def cleanup(self) -> tuple[Change, ...]:
        """Remove every route with ``ROUTE_PROTO`` and the VXLAN device; return what went."""
        async with self._lock, self._connect() as ipr:
            return await self._apply(ipr, diff(Desired(), await _observe(ipr, None)))

    async def observe(self, underlay_ip: str | None = None) -> Observed:
        """The kernel state this module owns (and the interface holding ``underlay_ip``)."""
        async with self._connect() as ipr:
            return await _observe(ipr, underlay_ip)

    def _connect(self) -> Any:
        return AsyncIPRoute(netns=self.netns, flags=0, groups=0)

    async def _apply(self, ipr: Any, changes: tuple[Change, ...]) -> tuple[Change, ...]:
        """Apply every change, in order; one refused does not stop the others (a node
        whose gateway is unreachable must not cut the rest off). A refusal is logged once,
        not at every retry."""
        applied: list[Change] = []
        failed: list[tuple[Change, str]] = []
        for change in changes:
            try:
                await _apply_one(ipr, change)
            except NetlinkError as err:
                if change.op == "delete" and err.code in _GONE:
                    continue  # already gone: nothing was changed
                why = f"{errno.errorcode.get(err.code, err.code)}: {os.strerror(err.code)}"
                if change not in self._refused:
                    log.warning("pod network change refused", change=str(change), error=why)
                failed.append((change, why))
                continue
            log.info("pod network change", change=str(change), mode=str(self.mode))
            applied.append(change)
        self._refused = frozenset(change for change, _ in failed)
        if failed:
            raise RouteSyncError(
                "; ".join(f"cannot {change}: {why}" for change, why in failed),
                tuple(applied), tuple(change for change, _ in failed))
        return tuple(applied)


async def _observe(ipr: Any, underlay_ip: str | None) -> Observed:
    links = [m async for m in await ipr.link("dump")]
    names: dict[int, str] = {m["index"]: m.get("ifname") for m in links}
    vx = next((m for m in links if m.get("ifname") == VXLAN_DEVICE), None)
    vx_index = vx["index"] if vx is not None else -1

    underlay: Underlay | None = None
    addresses: list[Address] = []
    async for m in await ipr.addr("dump"):
        if m["family"] != socket.AF_INET:
            continue
        if m["index"] == vx_index:
            addresses.append(Address(VXLAN_DEVICE, f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}"))
        local = m.get("IFA_LOCAL") or m.get("IFA_ADDRESS")
        if underlay_ip is not None and local == underlay_ip and underlay is None:
            link = next(x for x in links if x["index"] == m["index"])
            underlay = Underlay(names[m["index"]], m["index"], int(link.get("IFLA_MTU")))

    routes: list[Route] = []
    async for m in await ipr.route("dump", family=socket.AF_INET):
        table = m.get("RTA_TABLE") or m["table"]
        if m["proto"] != ROUTE_PROTO or table != MAIN_TABLE:
            continue
        routes.append(Route(f"{m.get('RTA_DST') or '0.0.0.0'}/{m['dst_len']}",
                            m.get("RTA_GATEWAY") or "", names.get(m.get("RTA_OIF") or -1),
                            bool(m["flags"] & _RTNH_F_ONLINK)))

    neighbours: list[Neighbour] = []
    fdb: list[FdbEntry] = []
    if vx is not None:
        async for m in await ipr.neigh("dump", family=socket.AF_INET):
            if (m["ifindex"] == vx_index and m["state"] & _NUD_PERMANENT
                    and m["family"] == socket.AF_INET and m.get("NDA_LLADDR")):
                neighbours.append(Neighbour(VXLAN_DEVICE, m.get("NDA_DST"), m.get("NDA_LLADDR")))
        async for m in await ipr.fdb("dump"):
            if m["ifindex"] == vx_index and m["family"] == socket.AF_BRIDGE and m.get("NDA_DST"):
                fdb.append(FdbEntry(VXLAN_DEVICE, m.get("NDA_LLADDR"), m.get("NDA_DST")))
    return Observed(tuple(sorted(routes)), _vxlan_link(vx), tuple(sorted(addresses)),
                    tuple(sorted(neighbours)), tuple(sorted(fdb)), underlay)


def _vxlan_link(msg: Any) -> VxlanLink | None:
    if msg is None:
        return None
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""

    def data(name: str) -> Any:
        return msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", name)

    return VxlanLink(
        name=VXLAN_DEVICE, kind=kind, vni=data("IFLA_VXLAN_ID") or 0,
        port=data("IFLA_VXLAN_PORT") or 0, local=data("IFLA_VXLAN_LOCAL") or "",
        underlay_index=data("IFLA_VXLAN_LINK") or 0, learning=bool(data("IFLA_VXLAN_LEARNING")),
        mac=msg.get("IFLA_ADDRESS") or "", mtu=int(msg.get("IFLA_MTU") or 0),
        up=bool(msg["flags"] & _IFF_UP))


async def _index(ipr: Any, dev: str) -> int:
    found = await ipr.link_lookup(ifname=dev)
    if not found:
        raise NetlinkError(errno.ENODEV, f"no device {dev}")
    return int(found[0])


async def _apply_one(ipr: Any, change: Change) -> None:
    """Make one change. Adds are sent as replaces, so a lost race is not an error."""
    entry, delete = change.entry, change.op == "delete"
    if isinstance(entry, Route):
        spec: dict[str, Any] = {"dst": entry.dst, "table": MAIN_TABLE, "proto": ROUTE_PROTO}
        if entry.gateway:
            spec["gateway"] = entry.gateway
        if entry.dev is not None:
            spec["oif"] = await _index(ipr, entry.dev)
        if entry.onlink:
            spec["flags"] = _RTNH_F_ONLINK
        await ipr.route("del" if delete else "replace", **spec)
    elif isinstance(entry, Neighbour):
        index = await _index(ipr, entry.dev)
        if delete:
            await ipr.neigh("del", ifindex=index, dst=entry.ip)
        else:
            await ipr.neigh("replace", ifindex=index, dst=entry.ip, lladdr=entry.mac,
                            state=_NUD_PERMANENT)
    elif isinstance(entry, FdbEntry):
        index = await _index(ipr, entry.dev)
        await ipr.fdb("del" if delete else "replace", ifindex=index, lladdr=entry.mac,
                      dst=entry.dst, state=_NUD_PERMANENT | _NUD_NOARP, flags=_NTF_SELF)
    elif isinstance(entry, Address):
        ip, prefixlen = entry.cidr.split("/")
        await ipr.addr("del" if delete else "replace", index=await _index(ipr, entry.dev),
                       address=ip, prefixlen=int(prefixlen))
    elif delete:
        await ipr.link("del", index=await _index(ipr, entry.name))
    elif change.op == "add":
        await ipr.link("add", ifname=entry.name, kind="vxlan", vxlan_id=entry.vni,
                       vxlan_port=entry.port, vxlan_local=entry.local,
                       vxlan_link=entry.underlay_index, vxlan_learning=int(entry.learning),
                       address=entry.mac, mtu=entry.mtu)
        await ipr.link("set", index=await _index(ipr, entry.name), state="up")
    else:
        await ipr.link("set", index=await _index(ipr, entry.name), address=entry.mac,
                       mtu=entry.mtu, state="up" if entry.up else "down")
