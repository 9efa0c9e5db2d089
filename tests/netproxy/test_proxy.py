"""``navarch proxy`` on real nftables, with real traffic between network namespaces.

Topology (all in namespaces the test makes; the host only holds the test bridge)::

    host: bridge nvp-br 172.31.241.1 ── API server (raftstore behind it)
      ├─ nvp-node-1 172.31.241.11  runs navarch proxy
      │     ├─ veth ── pod netns nvp-pa  10.251.1.2  (TCP+UDP servers "pa")
      │     └─ veth ── pod netns nvp-pb  10.251.2.2  (TCP+UDP servers "pb")
      └─ nvp-node-2 172.31.241.12  a client on another node (no proxy)

Services here have no selector; the test writes their Endpoints, as a user may.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

import navarch
from deploy import nodeenv
from deploy.nodeenv import NetworkPlan, NodeEnv
from navarch.v1 import core_pb2
from tests.api.harness import ApiServerProcess
from tests.node.agent_cluster import ProxyProcess
from tests.store.cluster import wait_for
from tests.store.conftest import make_cluster

PLAN = NetworkPlan(prefix="nvp", subnet="172.31.241.0/24", registry_port=5091)
CLUSTER_CIDR = "10.251.0.0/16"
PODS = {"pa": "10.251.1.2", "pb": "10.251.2.2"}
HERE = Path(__file__).parent
SERVER = HERE / "echo_server.py"
CLIENT = HERE / "echo_client.py"


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    absent = [b for b in ("nft", "nsenter", "ip") if shutil.which(b) is None]
    return f"not installed: {', '.join(absent)} (make deps)" if absent else ""


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


class ProxyBed:
    """The topology above, for these tests and bench.proxy (which uses its own plan)."""

    def __init__(self, workdir: Path, plan: NetworkPlan = PLAN) -> None:
        self.workdir = workdir
        self.plan = plan
        self.store: object | None = None
        self.api: ApiServerProcess | None = None
        self.nodes = [NodeEnv(f"node-{i}", i, plan, workdir / f"node-{i}") for i in (1, 2)]
        self.servers: list[subprocess.Popen[bytes]] = []
        self.proxy: ProxyProcess | None = None

    @property
    def node1(self) -> NodeEnv:
        return self.nodes[0]

    def pod_netns(self, pod: str) -> str:
        return f"{self.plan.prefix}-{pod}"

    def start(self) -> None:
        self.store = make_cluster("raftstore", self.workdir / "store")
        nodeenv.ensure_bridge(self.plan)
        api = ApiServerProcess(self.store.endpoints, self.workdir / "api")  # type: ignore[attr-defined]
        api.address = f"{self.plan.host_ip}:{api.port}"
        self.api = api
        api.start()
        for node in self.nodes:
            nodeenv.ensure_netns(node)
        for pod, ip in PODS.items():
            netns, veth = self.pod_netns(pod), f"{self.plan.prefix}-v{pod}"
            gw = ip.rsplit(".", 1)[0] + ".1"
            sh("ip", "netns", "add", netns)
            sh("ip", "-n", self.node1.netns, "link", "add", veth, "type", "veth", "peer",
               "name", "eth0", "netns", netns)
            sh("ip", "-n", self.node1.netns, "addr", "add", f"{gw}/24", "dev", veth)
            sh("ip", "-n", self.node1.netns, "link", "set", veth, "up")
            sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", netns, "link", "set", "eth0", "up")
            sh("ip", "-n", netns, "link", "set", "lo", "up")
            sh("ip", "-n", netns, "route", "add", "default", "via", gw)
            for proto in ("tcp", "udp"):
                self.servers.append(subprocess.Popen(
                    ["ip", "netns", "exec", netns, sys.executable, str(SERVER), proto, pod,
                     "8080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for pod in PODS:  # until every server listens
            wait_for(lambda p=pod: self.request(self.pod_netns(p), PODS[p], 8080) == p, 10,
                     f"the server of {pod}")

    def start_proxy(self, *extra: str) -> ProxyProcess:
        assert self.api is not None
        self.proxy = ProxyProcess(self.workdir / "proxy", self.node1, self.api.address, *extra,
                                  cluster_cidr=CLUSTER_CIDR, mode="none")
        self.proxy.start(30)
        return self.proxy

    def requests(self, netns: str, ip: str, port: int, count: int = 1, proto: str = "tcp",
                 timeout: float = 2.0) -> list[str]:
        """Answers (server names, or error names) of ``count`` fresh connections."""
        out = sh("ip", "netns", "exec", netns, sys.executable, str(CLIENT), proto, ip,
                 str(port), str(count), str(timeout), check=False)
        return json.loads(out.stdout) if out.returncode == 0 else [f"client: {out.stderr}"]

    def request(self, netns: str, ip: str, port: int, proto: str = "tcp") -> str:
        return self.requests(netns, ip, port, 1, proto)[0]

    def destroy(self) -> None:
        if self.proxy is not None:
            self.proxy.kill()
        for server in self.servers:
            server.kill()
            server.wait(5)
        for pod in PODS:
            sh("ip", "netns", "del", self.pod_netns(pod), check=False)
        for node in self.nodes:
            nodeenv.remove_netns(node)
        nodeenv.remove_bridge(self.plan)
        if self.api is not None:
            self.api.stop()
        if self.store is not None:
            self.store.destroy()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyBed]:
    why = _missing()
    if why:
        pytest.skip(why)
    testbed = ProxyBed(tmp_path_factory.mktemp("proxy"))
    try:
        testbed.start()
        testbed.start_proxy()
        yield testbed
    finally:
        testbed.destroy()
    leftovers = [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("nvp-")]
    assert not leftovers, leftovers


@pytest_asyncio.fixture
async def client(bed: ProxyBed) -> AsyncIterator[navarch.Client]:
    assert bed.api is not None
    async with navarch.Client(bed.api.address) as c:
        yield c


async def make_service(client: navarch.Client, name: str, pods: list[str], *,
                       svc_type: str = "ClusterIP", protocol: str = "TCP",
                       affinity: bool = False, local: bool = False) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name = name
    svc.spec.type = svc_type
    port = svc.spec.ports.add(name="p", protocol=protocol, port=80, target_port="8080")
    del port
    if affinity:
        svc.spec.session_affinity = "ClientIP"
    if local:
        svc.spec.external_traffic_policy = "Local"
    created = await client.services("default").create(svc)
    await set_endpoints(client, name, pods, protocol)
    return created


async def set_endpoints(client: navarch.Client, name: str, pods: list[str],
                        protocol: str = "TCP", node: str = "node-1") -> None:
    ep = core_pb2.Endpoints()
    ep.metadata.name = name
    if pods:
        subset = ep.subsets.add()
        for pod in pods:
            subset.addresses.add(ip=PODS[pod], node_name=node)
        subset.ports.add(name="p", port=8080, protocol=protocol)
    res = client.endpoints("default")
    try:
        current = await res.get(name)
    except navarch.NotFound:
        await res.create(ep)
        return
    ep.metadata.resource_version = current.metadata.resource_version
    await res.update(ep)


def until(cond: object, what: str, timeout: float = 5.0) -> object:
    return wait_for(cond, timeout, what, interval=0.05)  # type: ignore[arg-type]


async def test_cluster_ip_balances_over_ready_endpoints(bed: ProxyBed, client: navarch.Client
                                                        ) -> None:
    svc = await make_service(client, "web", ["pa", "pb"])
    vip = svc.spec.cluster_ip
    # from a pod (forwarded through the node) and from the node itself (output path)
    until(lambda: set(bed.requests(bed.pod_netns("pa"), vip, 80, 40)) == {"pa", "pb"},
          "both endpoints to answer a pod")
    until(lambda: set(bed.requests(bed.node1.netns, vip, 80, 40)) == {"pa", "pb"},
          "both endpoints to answer the node")
    # a pod reaching itself through its Service (hairpin) gets an answer too
    assert set(bed.requests(bed.pod_netns("pb"), vip, 80, 30)) == {"pa", "pb"}
    # another port of the ClusterIP is refused, not black-holed
    assert bed.request(bed.pod_netns("pa"), vip, 81) == "refused"
    # an endpoint removed stops receiving traffic within a second
    await set_endpoints(client, "web", ["pb"])
    t0 = time.monotonic()
    until(lambda: set(bed.requests(bed.pod_netns("pa"), vip, 80, 20)) == {"pb"},
          "pa to leave the rotation", timeout=3)
    assert time.monotonic() - t0 < 1.5
    # no ready endpoint: connections are rejected at once
    await set_endpoints(client, "web", [])
    until(lambda: bed.request(bed.pod_netns("pa"), vip, 80) == "refused", "a rejection")
    t0 = time.monotonic()
    assert bed.request(bed.node1.netns, vip, 80) == "refused"
    assert time.monotonic() - t0 < 1.0
    await client.services("default").delete("web")


async def test_node_port_from_another_node(bed: ProxyBed, client: navarch.Client) -> None:
    svc = await make_service(client, "np", ["pa", "pb"], svc_type="NodePort")
    node_port = svc.spec.ports[0].node_port
    assert 30000 <= node_port <= 32767
    other = bed.nodes[1].netns
    until(lambda: set(bed.requests(other, bed.node1.ip, node_port, 40)) == {"pa", "pb"},
          "the NodePort to answer from node-2")
    await client.services("default").delete("np")
    until(lambda: bed.request(other, bed.node1.ip, node_port) in ("refused", "timeout"),
          "the NodePort to close")


async def test_external_traffic_policy_local(bed: ProxyBed, client: navarch.Client) -> None:
    svc = await make_service(client, "loc", ["pa"], svc_type="NodePort", local=True)
    node_port = svc.spec.ports[0].node_port
    other = bed.nodes[1].netns
    until(lambda: bed.request(other, bed.node1.ip, node_port) == "pa",
          "the local endpoint to answer")
    # endpoints only on another node: external traffic to this node is dropped
    await set_endpoints(client, "loc", ["pa"], node="node-9")
    until(lambda: bed.request(other, bed.node1.ip, node_port, "tcp") == "timeout",
          "external traffic to be dropped")
    # a pod still reaches the service through its ClusterIP
    assert bed.request(bed.pod_netns("pb"), svc.spec.cluster_ip, 80) == "pa"
    await client.services("default").delete("loc")


async def test_session_affinity_client_ip(bed: ProxyBed, client: navarch.Client) -> None:
    svc = await make_service(client, "sticky", ["pa", "pb"], affinity=True)
    vip = svc.spec.cluster_ip
    until(lambda: bed.request(bed.pod_netns("pa"), vip, 80) in PODS, "the service to answer")
    answers = bed.requests(bed.pod_netns("pa"), vip, 80, 30)
    assert len(set(answers)) == 1, answers
    await client.services("default").delete("sticky")


async def test_udp_service_and_stale_conntrack(bed: ProxyBed, client: navarch.Client) -> None:
    svc = await make_service(client, "dgram", ["pa"], protocol="UDP")
    vip = svc.spec.cluster_ip
    until(lambda: bed.request(bed.pod_netns("pb"), vip, 80, "udp") == "pa", "UDP via the VIP")
    # the endpoint moves: the flow's conntrack entry goes with it, the next datagram from
    # the same source port reaches the new endpoint
    await set_endpoints(client, "dgram", ["pb"], protocol="UDP")
    until(lambda: bed.request(bed.pod_netns("pb"), vip, 80, "udp") == "pb",
          "UDP to follow the endpoint")
    await client.services("default").delete("dgram")


async def test_proxy_restart_keeps_traffic_and_repairs_drift(bed: ProxyBed,
                                                             client: navarch.Client) -> None:
    svc = await make_service(client, "keep", ["pa", "pb"])
    vip = svc.spec.cluster_ip
    until(lambda: set(bed.requests(bed.pod_netns("pa"), vip, 80, 30)) == {"pa", "pb"},
          "the service to answer")
    assert bed.proxy is not None
    bed.proxy.kill(signal.SIGKILL)
    # rules stay in the kernel while the proxy is down
    assert set(bed.requests(bed.pod_netns("pa"), vip, 80, 30)) == {"pa", "pb"}
    # a rule deleted by hand (the services dispatch) is back after the restart
    sh("ip", "netns", "exec", bed.node1.netns, "nft", "flush", "chain", "ip", "navarch",
       "services")
    assert bed.request(bed.pod_netns("pa"), vip, 80) not in PODS
    bed.start_proxy()
    until(lambda: set(bed.requests(bed.pod_netns("pa"), vip, 80, 30)) == {"pa", "pb"},
          "the restarted proxy to repair the rules")
    # and a running proxy repairs a hand edit on its own (the ruleset generation moved)
    sh("ip", "netns", "exec", bed.node1.netns, "nft", "flush", "chain", "ip", "navarch",
       "services")
    until(lambda: set(bed.requests(bed.pod_netns("pa"), vip, 80, 30)) == {"pa", "pb"},
          "the running proxy to repair the rules", timeout=5)
    await client.services("default").delete("keep")


async def test_cleanup_removes_the_table(bed: ProxyBed, client: navarch.Client) -> None:
    del client
    assert bed.proxy is not None
    bed.proxy.kill(signal.SIGTERM)
    assert "navarch" in sh("ip", "netns", "exec", bed.node1.netns, "nft", "list",
                           "tables").stdout  # stopping leaves the rules
    out = sh("nsenter", f"--net={bed.node1.netns_path}", sys.executable, "-m", "navarch",
             "proxy", "--cleanup", "--mode", "none", check=False)
    assert out.returncode == 0, out.stderr
    assert "navarch" not in sh("ip", "netns", "exec", bed.node1.netns, "nft", "list",
                               "tables").stdout
    bed.start_proxy()  # for any test after this one
