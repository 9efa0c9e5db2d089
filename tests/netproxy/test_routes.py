"""System test of netproxy.routes: real namespaces, real links, real traffic (root).

The topology lives entirely in namespaces made here, under a prefix unique to the test::

    <p>-sw    bridge br0 with ports s1 s2 s3                  (the nodes' shared link)
    <p>-n1..3 eth0 172.31.250.<i>/24 (peer of s<i>), ip_forward on,
              pod 10.250.<i>.1/24 (peer of the pod's eth0)    (one node each)
    <p>-p1..3 eth0 10.250.<i>.2/24, default via 10.250.<i>.1   (one pod per node)

Nothing is made in the host's namespace. The syncer runs as ``navarch proxy`` will: in a
process started inside the node's namespace with nsenter, without the netns option. Each
pod runs a tiny TCP server that answers with the address it saw the client at; pod 1
reaching pod 2 and hearing "10.250.1.2" back proves both the route and the absence of NAT.
Every namespace is deleted at the end of each test, whatever happens (deleting a
namespace deletes its links, and their veth peers).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from pyroute2.netns import create_socket

from navarch.v1 import core_pb2
from netproxy.routes import ROUTE_PROTO, VXLAN_DEVICE, RouteSyncer, RouteSyncError, vtep_mac

ROOT = Path(__file__).resolve().parents[2]
NETNS_DIR = Path("/var/run/netns")
NODES = (1, 2, 3)
PORT = 7077
MODES = ("host-gw", "vxlan")


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    absent = [b for b in ("ip", "bridge", "nsenter") if shutil.which(b) is None]
    return f"not installed: {', '.join(absent)}" if absent else ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")


def run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns a true value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as err:
            last = err
        if last and not isinstance(last, OSError):
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what}: still not true after {timeout} s (last: {last!r})")


def node_object(i: int) -> core_pb2.Node:
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name = f"node{i}"
    n.spec.pod_cidr = f"10.250.{i}.0/24"
    n.spec.pod_cidrs.append(n.spec.pod_cidr)
    n.status.addresses.add(type="InternalIP", address=f"172.31.250.{i}")
    n.status.addresses.add(type="Hostname", address=f"node{i}")
    return n


# The syncer as the daemon runs it: a process inside the node's namespace, default netns.
SYNC_SCRIPT = """
import asyncio, json, sys
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from google.protobuf import json_format
from navarch.v1 import core_pb2
from netproxy.routes import RouteSyncer
req = json.load(sys.stdin)
syncer = RouteSyncer(req["node"], req["mode"])
if req["cleanup"]:
    changes = asyncio.run(syncer.cleanup())
else:
    nodes = [json_format.ParseDict(n, core_pb2.Node()) for n in req["nodes"]]
    changes = asyncio.run(syncer.sync(nodes))
print(json.dumps([str(c) for c in changes]))
"""


class Reporter:
    """A TCP server in a pod's namespace that sends each client the address it saw."""

    def __init__(self, netns: str) -> None:
        self.sock = create_socket(netns, socket.AF_INET, socket.SOCK_STREAM, flags=0)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", PORT))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, (peer, _) = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(peer.encode())

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


class Cluster:
    """The three-node topology; ``destroy`` removes all of it."""

    def __init__(self) -> None:
        self.prefix = f"nvrt{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []
        self.reporters: list[Reporter] = []

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def node(self, i: int) -> str:
        return self.ns(f"n{i}")

    def pod(self, i: int) -> str:
        return self.ns(f"p{i}")

    def _add_ns(self, role: str) -> str:
        name = self.ns(role)
        self.made.append(name)
        run("ip", "netns", "add", name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self) -> None:
        sw = self._add_ns("sw")
        run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", sw, "link", "set", "br0", "up")
        for i in NODES:
            node, pod = self._add_ns(f"n{i}"), self._add_ns(f"p{i}")
            run("ip", "-n", sw, "link", "add", f"s{i}", "type", "veth",
                "peer", "name", "eth0", "netns", node)
            run("ip", "-n", sw, "link", "set", f"s{i}", "master", "br0", "up")
            run("ip", "-n", node, "addr", "add", f"172.31.250.{i}/24", "dev", "eth0")
            run("ip", "-n", node, "link", "set", "eth0", "up")
            run("nsenter", f"--net={NETNS_DIR / node}", "sysctl", "-qw", "net.ipv4.ip_forward=1")
            run("ip", "-n", node, "link", "add", "pod", "type", "veth",
                "peer", "name", "eth0", "netns", pod)
            run("ip", "-n", node, "addr", "add", f"10.250.{i}.1/24", "dev", "pod")
            run("ip", "-n", node, "link", "set", "pod", "up")
            run("ip", "-n", pod, "addr", "add", f"10.250.{i}.2/24", "dev", "eth0")
            run("ip", "-n", pod, "link", "set", "eth0", "up")
            run("ip", "-n", pod, "route", "add", "default", "via", f"10.250.{i}.1")
            self.reporters.append(Reporter(pod))

    def destroy(self) -> None:
        try:
            for r in self.reporters:
                r.stop()
        finally:
            self._delete_namespaces()

    def _delete_namespaces(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        left = [n for n in os.listdir(NETNS_DIR) if n.startswith(self.prefix)] if (
            NETNS_DIR.is_dir()) else []
        assert not left, f"namespaces left behind: {left}"

    # -- the syncer, as it will run ---------------------------------------------------------

    def _syncer(self, i: int, mode: str, nodes: list[int] | None, cleanup: bool) -> list[str]:
        req = {"node": f"node{i}", "mode": mode, "cleanup": cleanup,
               "nodes": [json_format.MessageToDict(node_object(j))
                         for j in (NODES if nodes is None else nodes)]}
        done = subprocess.run(
            ["nsenter", f"--net={NETNS_DIR / self.node(i)}", sys.executable, "-c", SYNC_SCRIPT],
            input=json.dumps(req), capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        assert done.returncode == 0, f"syncer on node{i} failed:\n{done.stderr}"
        changes: list[str] = json.loads(done.stdout.splitlines()[-1])
        return changes

    def sync(self, i: int, mode: str, nodes: list[int] | None = None) -> list[str]:
        """Run one sync on node i with the Node objects of ``nodes`` (default: all)."""
        return self._syncer(i, mode, nodes, cleanup=False)

    def cleanup(self, i: int) -> list[str]:
        return self._syncer(i, "host-gw", None, cleanup=True)

    def sync_all(self, mode: str) -> None:
        for i in NODES:
            assert self.sync(i, mode), f"first {mode} sync of node{i} changed nothing"

    # -- what the kernel holds, read with iproute2 ------------------------------------------

    def ip_json(self, i: int, *args: str, tool: str = "ip") -> list[dict[str, Any]]:
        out = run(tool, "-n", self.node(i), "-j", *args)
        return json.loads(out) if out.strip() else []

    def our_routes(self, i: int) -> dict[str, dict[str, Any]]:
        return {r["dst"]: r for r in self.ip_json(i, "route", "show", "proto", str(ROUTE_PROTO))}

    def has_vxlan(self, i: int) -> bool:
        return any(link["ifname"] == VXLAN_DEVICE for link in self.ip_json(i, "link", "show"))

    # -- traffic ----------------------------------------------------------------------------

    def seen_from(self, src: int, dst: int) -> str:
        """Connect from pod ``src`` to pod ``dst``; what the server saw us as."""
        sock = create_socket(self.pod(src), socket.AF_INET, socket.SOCK_STREAM, flags=0)
        with sock:
            sock.settimeout(2)
            sock.connect((f"10.250.{dst}.2", PORT))
            return sock.recv(64).decode()

    def assert_reaches(self, src: int, dst: int) -> None:
        seen = wait_for(f"pod {src} reaches pod {dst}", lambda: self.seen_from(src, dst))
        assert seen == f"10.250.{src}.2", "the server saw a translated source address"

    def assert_cannot_reach(self, src: int, dst: int) -> None:
        with pytest.raises(OSError):
            self.seen_from(src, dst)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        c.build()
        yield c
    finally:
        c.destroy()


def vxlan_state(c: Cluster, i: int) -> dict[str, Any]:
    (link,) = c.ip_json(i, "-d", "link", "show", "dev", VXLAN_DEVICE)
    (ipv4,) = c.ip_json(i, "-4", "addr", "show", "dev", VXLAN_DEVICE)
    addrs = [f"{a['local']}/{a['prefixlen']}" for a in ipv4["addr_info"]]
    neigh = {n["dst"]: n["lladdr"] for n in c.ip_json(i, "neigh", "show", "dev", VXLAN_DEVICE)
             if "PERMANENT" in n.get("state", [])}
    fdb = {(f["mac"], f.get("dst")) for f in c.ip_json(i, "fdb", "show", "dev", VXLAN_DEVICE,
                                                        tool="bridge")}
    return {"link": link, "addrs": addrs, "neigh": neigh, "fdb": fdb}


def expected_routes(i: int, mode: str, peers: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    if mode == "host-gw":
        return {f"10.250.{j}.0/24": {"gateway": f"172.31.250.{j}", "dev": "eth0"}
                for j in peers if j != i}
    return {f"10.250.{j}.0/24": {"gateway": f"10.250.{j}.0", "dev": VXLAN_DEVICE}
            for j in peers if j != i}


def assert_routes(c: Cluster, i: int, mode: str, peers: tuple[int, ...] = NODES) -> None:
    got = {dst: {"gateway": r.get("gateway"), "dev": r.get("dev")}
           for dst, r in c.our_routes(i).items()}
    assert got == expected_routes(i, mode, peers)
    if mode == "vxlan":
        assert all("onlink" in r.get("flags", []) for r in c.our_routes(i).values())


@pytest.mark.parametrize("mode", MODES)
def test_pods_reach_pods_on_other_nodes_without_nat(cluster: Cluster, mode: str) -> None:
    cluster.assert_cannot_reach(1, 2)
    cluster.sync_all(mode)
    for i in NODES:
        assert cluster.sync(i, mode) == [], "a second sync with the same nodes changed things"
        assert_routes(cluster, i, mode)
    for src, dst in ((1, 2), (1, 3), (3, 2)):
        cluster.assert_reaches(src, dst)
    if mode == "host-gw":
        assert not cluster.has_vxlan(1)
        return
    state = vxlan_state(cluster, 1)
    info = state["link"]["linkinfo"]["info_data"]
    assert (info["id"], info["port"], info["local"], info["learning"]) == (
        1, 8472, "172.31.250.1", False)
    assert state["link"]["mtu"] == 1500 - 50
    assert state["link"]["address"] == vtep_mac("172.31.250.1")
    assert state["addrs"] == ["10.250.1.0/32"]
    assert state["neigh"] == {"10.250.2.0": vtep_mac("172.31.250.2"),
                              "10.250.3.0": vtep_mac("172.31.250.3")}
    assert state["fdb"] == {(vtep_mac("172.31.250.2"), "172.31.250.2"),
                            (vtep_mac("172.31.250.3"), "172.31.250.3")}


@pytest.mark.parametrize("mode", MODES)
def test_a_node_gone_takes_its_entries(cluster: Cluster, mode: str) -> None:
    cluster.sync_all(mode)
    cluster.assert_reaches(1, 3)
    changes = cluster.sync(1, mode, nodes=[1, 2])
    assert any(c.startswith("delete route 10.250.3.0/24") for c in changes), changes
    assert_routes(cluster, 1, mode, peers=(1, 2))
    if mode == "vxlan":
        state = vxlan_state(cluster, 1)
        assert list(state["neigh"]) == ["10.250.2.0"]
        assert state["fdb"] == {(vtep_mac("172.31.250.2"), "172.31.250.2")}
    cluster.assert_cannot_reach(1, 3)
    cluster.assert_reaches(1, 2)


@pytest.mark.parametrize("mode", MODES)
def test_an_entry_deleted_by_hand_comes_back(cluster: Cluster, mode: str) -> None:
    cluster.sync_all(mode)
    cluster.assert_reaches(1, 2)
    n1 = cluster.node(1)
    run("ip", "-n", n1, "route", "del", "10.250.2.0/24")
    want = ["add route 10.250.2.0/24 via 172.31.250.2"]
    if mode == "vxlan":
        mac = vtep_mac("172.31.250.2")
        run("ip", "-n", n1, "neigh", "del", "10.250.2.0", "dev", VXLAN_DEVICE)
        run("bridge", "-n", n1, "fdb", "del", mac, "dev", VXLAN_DEVICE, "dst", "172.31.250.2")
        want = [f"add fdb {mac} dev {VXLAN_DEVICE} dst 172.31.250.2",
                f"add neighbour 10.250.2.0 lladdr {mac} dev {VXLAN_DEVICE}",
                f"add route 10.250.2.0/24 via 10.250.2.0 dev {VXLAN_DEVICE} onlink"]
    cluster.assert_cannot_reach(1, 2)
    assert cluster.sync(1, mode) == want
    assert_routes(cluster, 1, mode)
    cluster.assert_reaches(1, 2)


def test_a_vxlan_device_deleted_by_hand_is_rebuilt(cluster: Cluster) -> None:
    cluster.sync_all("vxlan")
    run("ip", "-n", cluster.node(1), "link", "del", VXLAN_DEVICE)
    changes = cluster.sync(1, "vxlan")
    assert changes[0].startswith(f"add link {VXLAN_DEVICE} vxlan id 1 dstport 8472"), changes
    assert len(changes) == 1 + 1 + 3 * 2  # link, address, fdb+neighbour+route per peer
    assert_routes(cluster, 1, "vxlan")
    cluster.assert_reaches(1, 2)
    cluster.assert_reaches(1, 3)


def test_switching_modes_cleans_the_other_modes_entries(cluster: Cluster) -> None:
    cluster.sync_all("host-gw")
    cluster.assert_reaches(1, 2)
    cluster.sync_all("vxlan")
    for i in NODES:
        assert_routes(cluster, i, "vxlan")  # no host-gw route left over
    cluster.assert_reaches(1, 2)
    cluster.assert_reaches(2, 3)
    cluster.sync_all("host-gw")
    for i in NODES:
        assert_routes(cluster, i, "host-gw")
        assert not cluster.has_vxlan(i)
    cluster.assert_reaches(1, 3)


@pytest.mark.parametrize("mode", MODES)
def test_cleanup_leaves_nothing_and_spares_other_routes(cluster: Cluster, mode: str) -> None:
    n1 = cluster.node(1)
    run("ip", "-n", n1, "route", "add", "10.99.0.0/24", "via", "172.31.250.2")
    cluster.sync_all(mode)
    cluster.assert_reaches(1, 2)
    for i in NODES:
        gone = cluster.cleanup(i)
        assert sum(c.startswith("delete route") for c in gone) == 2, gone
        assert cluster.our_routes(i) == {}
        assert not cluster.has_vxlan(i)
        assert cluster.cleanup(i) == []
    assert [r["dst"] for r in cluster.ip_json(1, "route", "show", "10.99.0.0/24")] == [
        "10.99.0.0/24"]
    cluster.assert_cannot_reach(1, 2)


def test_netns_option_sees_what_the_daemon_made(cluster: Cluster) -> None:
    """The in-process syncer on a named namespace reads the same state as the one run
    inside it: nothing to change; its cleanup removes everything."""
    cluster.sync_all("vxlan")
    nodes = [node_object(i) for i in NODES]
    syncer = RouteSyncer("node1", "vxlan", netns=cluster.node(1))
    assert asyncio.run(syncer.sync(nodes)) == ()
    observed = asyncio.run(syncer.observe("172.31.250.1"))
    assert observed.underlay is not None and observed.underlay.name == "eth0"
    assert len(observed.routes) == len(observed.neighbours) == len(observed.fdb) == 2
    gone = asyncio.run(syncer.cleanup())
    assert [c.kind for c in gone] == ["route", "route", "link"]
    assert cluster.our_routes(1) == {} and not cluster.has_vxlan(1)


def test_a_refused_route_does_not_hold_back_the_others(cluster: Cluster) -> None:
    """Node 4's address is on no link of node 1: the kernel refuses its route (no packet
    is sent anywhere), the other routes are made, and the next sync tries again."""
    stray = node_object(4)
    stray.status.addresses[0].address = "172.31.251.4"
    nodes = [*map(node_object, NODES), stray]
    syncer = RouteSyncer("node1", "host-gw", netns=cluster.node(1))
    refused = re.escape("cannot add route 10.250.4.0/24 via 172.31.251.4: ENETUNREACH")
    with pytest.raises(RouteSyncError, match=refused) as caught:
        asyncio.run(syncer.sync(nodes))
    assert [c.entry.dst for c in caught.value.applied] == ["10.250.2.0/24", "10.250.3.0/24"]
    assert [str(c) for c in caught.value.failed] == ["add route 10.250.4.0/24 via 172.31.251.4"]
    assert_routes(cluster, 1, "host-gw")
    with pytest.raises(RouteSyncError) as again:
        asyncio.run(syncer.sync(nodes))
    assert again.value.applied == () and len(again.value.failed) == 1
    cluster.sync(2, "host-gw")
    cluster.assert_reaches(1, 2)


def test_a_missing_namespace_is_an_error_not_created() -> None:
    name = f"nvrt{uuid.uuid4().hex[:8]}-absent"
    with pytest.raises(FileNotFoundError):
        asyncio.run(RouteSyncer("node1", netns=name).sync([node_object(1), node_object(2)]))
    assert not (NETNS_DIR / name).exists()
