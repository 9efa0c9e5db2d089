"""Issue 6's acceptance on real nodes: 3 network namespaces, each with containerd, an agent
and ``navarch proxy`` (host-gw pod routes), the cluster DNS on node-1 behind the kube-dns
Service 10.96.0.10, and real HTTP traffic.

- the Kubernetes tutorial: a Deployment exposed with ``navctl expose --type=NodePort``
  answers at every node's address from another node, from pods on all nodes; its
  ClusterIP and DNS name work from inside a pod; pods reach pods on other nodes by IP
  with no NAT; scaling changes the answering pods within a second;
- a rolling update under a client looping on the Service fails no request;
- killing the proxy keeps traffic flowing, and it repairs a rule removed by hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import navarch
from tests.api.util import eventually, obj
from tests.node.agent_cluster import AgentCluster
from tests.node.test_agent import condition, navctl, running
from tests.store.cluster import REPO

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, containerd)"),
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("nft") is None,
                       reason="containerd and nftables are not installed"),
]
CLIENT = REPO / "tests" / "netproxy" / "echo_client.py"
LOAD = REPO / "tests" / "netproxy" / "load_client.py"
# prints "<original source> <reply destination>" of each TCP flow to {dst}:8080
CONNTRACK = """
from pyroute2 import Conntrack
with Conntrack() as ct:
    for e in ct.dump_entries():
        if e.tuple_orig.daddr == "{dst}" and e.tuple_orig.dport == 8080:
            print(e.tuple_orig.saddr, e.tuple_reply.daddr)
"""


@pytest.fixture(scope="module")
def cluster(node_plan: Any, registry: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentCluster]:
    netns_before = set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()
    c = AgentCluster(node_plan, tmp_path_factory.mktemp("services"), network=True)
    try:
        c.start()
        yield c
    finally:
        c.destroy()
    left = set(os.listdir("/var/run/netns")) - netns_before
    assert not left, f"network namespaces left behind: {sorted(left)}"


@pytest.fixture(scope="module")
def apiserver(cluster: AgentCluster) -> Any:
    return cluster.api


def requests(cluster: AgentCluster, node: str, ip: str, port: int, count: int,
             proto: str = "http") -> list[str]:
    out = cluster.in_node(node, sys.executable, str(CLIENT), proto, ip, str(port), str(count),
                          "3", timeout=60)
    assert out.returncode == 0, out.stderr
    answers: list[str] = json.loads(out.stdout)
    return answers


def web_deployment(ns: str, image: str, replicas: int) -> Any:
    labels = {"app": "hello"}
    web = {"name": "web", "image": image, "ports": [{"containerPort": 8080}],
           "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
           # the endpoint leaves every proxy before the server stops (Kubernetes' advice)
           "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
    return obj({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [web],
                                       "terminationGracePeriodSeconds": 5}}}})


async def ready_pods(client: navarch.Client, ns: str, count: int, image: str = ""
                     ) -> list[Any]:
    async def check() -> Any:
        pods = [p for p in (await client.pods(ns).list(label_selector="app=hello")).items
                if not p.metadata.HasField("deletion_timestamp")]
        if len(pods) == count and all(
                running(p) and condition(p, "Ready") == "True"
                and (not image or p.spec.containers[0].image == image) for p in pods):
            return pods
        return None
    pods: list[Any] = await eventually(check, 120, f"{count} ready hello pods")
    return pods


async def endpoint_ips(client: navarch.Client, ns: str, name: str) -> set[str]:
    try:
        ep = await client.endpoints(ns).get(name)
    except navarch.NotFound:
        return set()
    return {a.ip for s in ep.subsets for a in s.addresses}


async def test_tutorial_nodeport_clusterip_dns_and_scaling(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.deployments(ns).create(web_deployment(ns, registry["web1"], 3))
    pods = await ready_pods(client, ns, 3)
    assert {p.spec.node_name for p in pods} == {n.name for n in cluster.nodes}
    out = await navctl(cluster, "-n", ns, "expose", "deployment/hello", "--type=NodePort",
                       "--port", "8080")
    assert out.strip() == "service/hello exposed"
    svc = await client.services(ns).get("hello")
    node_port = svc.spec.ports[0].node_port
    names = {p.metadata.name for p in pods}
    await until(lambda: endpoint_ips(client, ns, "hello"), lambda ips: len(ips) == 3, 30,
                "3 endpoints")

    # every node's address at the NodePort, from another node, reaches pods on all nodes
    for target in cluster.nodes:
        source = next(n.name for n in cluster.nodes if n.name != target.name)
        answers = await asyncio.to_thread(
            _until_answers, cluster, source, target.ip, node_port, names)
        assert set(answers) == names, (target.name, answers)

    # from inside a pod: the ClusterIP, the DNS names (search path and FQDN), and pods on
    # other nodes by their IP with no NAT
    await client.pods(ns).create(obj({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shell", "namespace": ns},
        "spec": {"containers": [{"name": "sh", "image": registry["busybox"],
                                 "command": ["sleep", "3600"]}],
                 "terminationGracePeriodSeconds": 1}}))
    shell = await until(lambda: client.pods(ns).get("shell"), running, 60, "the shell pod")

    async def in_shell(script: str) -> str:
        return await navctl(cluster, "-n", ns, "exec", "shell", "--", "sh", "-c", script)

    got = await in_shell(f"wget -q -O- http://{svc.spec.cluster_ip}:8080/cgi-bin/hostname")
    assert got.strip() in names
    resolv = await in_shell("cat /etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "ndots:5" in resolv
    lookup = await in_shell(f"nslookup hello.{ns}.svc.cluster.local")
    assert svc.spec.cluster_ip in lookup, lookup
    got = await in_shell("wget -q -O- http://hello:8080/cgi-bin/hostname")
    assert got.strip() in names
    env = await navctl(cluster, "-n", ns, "exec", "shell", "--", "env")
    assert f"HELLO_SERVICE_HOST={svc.spec.cluster_ip}" in env
    assert "HELLO_SERVICE_PORT=8080" in env
    # the API server's own Service, default/kubernetes: in every pod's environment, in
    # the DNS, and routed to the API server's advertised address
    api = await client.services("default").get("kubernetes")
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1" in env and api.spec.cluster_ip == "10.96.0.1"
    assert "KUBERNETES_SERVICE_PORT=443" in env
    assert "10.96.0.1" in await in_shell("nslookup kubernetes.default.svc.cluster.local")
    host, port = cluster.api_address.rsplit(":", 1)
    await until(lambda: client.endpoints("default").get("kubernetes"),
                lambda ep: [(a.ip, p.port) for s in ep.subsets for a in s.addresses
                            for p in s.ports] == [(host, int(port))], 30,
                "the API server in the kubernetes Endpoints")
    connect = await in_shell("nc -w 3 10.96.0.1 443 -e true && echo connected")
    assert connect.strip() == "connected", connect
    other = next(p for p in pods if p.spec.node_name != shell.spec.node_name)
    got = await in_shell(f"wget -q -O- http://{other.status.pod_ip}:8080/cgi-bin/hostname")
    assert got.strip() == other.metadata.name
    # no NAT between pods: the target node tracked the flow from the shell's own pod IP,
    # and its replies go back to that IP unchanged
    flows = cluster.in_node(other.spec.node_name, sys.executable, "-c", CONNTRACK.format(
        dst=other.status.pod_ip), timeout=30)
    assert f"{shell.status.pod_ip} {shell.status.pod_ip}" in flows.stdout.splitlines(), flows

    # scaling: the answering set follows the Endpoints within a second
    await client.deployments(ns).scale("hello", 5)
    pods = await ready_pods(client, ns, 5)
    ips = {p.status.pod_ip for p in pods}
    names = {p.metadata.name for p in pods}
    await until(lambda: endpoint_ips(client, ns, "hello"), lambda got: got == ips, 30,
                "5 endpoints")
    seen_at = time.monotonic()
    answers = await asyncio.to_thread(_until_answers, cluster, cluster.nodes[1].name,
                                      svc.spec.cluster_ip, 8080, names, 10.0)
    elapsed = time.monotonic() - seen_at
    assert set(answers) == names
    assert elapsed < 1.5, f"the new endpoints answered {elapsed:.2f}s after the Endpoints"


def _until_answers(cluster: AgentCluster, node: str, ip: str, port: int, names: set[str],
                   within: float = 20.0) -> list[str]:
    deadline = time.monotonic() + within
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = requests(cluster, node, ip, port, 40)
        if set(seen) == names:
            return seen
    return seen


async def until(fetch: Any, check: Any, within: float, what: str) -> Any:
    """Await ``fetch()`` until ``check`` holds for its value (NotFound counts as None)."""
    async def probe() -> Any:
        try:
            value = await fetch()
        except navarch.NotFound:
            return None
        return value if check(value) else None
    return await eventually(probe, within, what)


async def test_rolling_update_under_load_fails_no_request(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str], tmp_path: Path) -> None:
    await client.deployments(ns).create(web_deployment(ns, registry["web1"], 3))
    await ready_pods(client, ns, 3)
    await navctl(cluster, "-n", ns, "expose", "deployment/hello", "--port", "80",
                 "--target-port", "8080")
    svc = await client.services(ns).get("hello")
    old = {p.metadata.name for p in await ready_pods(client, ns, 3)}
    await asyncio.to_thread(_until_answers, cluster, cluster.nodes[1].name,
                            svc.spec.cluster_ip, 80, old)
    stop, result = tmp_path / "stop", tmp_path / "result.json"
    node = cluster.nodes[1]
    load = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={node.netns_path}", sys.executable, str(LOAD), svc.spec.cluster_ip,
        "80", str(stop), str(result))
    try:
        await navctl(cluster, "-n", ns, "set", "image", "deployment/hello",
                     f"web={registry['web2']}")
        out = await navctl(cluster, "-n", ns, "rollout", "status", "deployment/hello")
        assert "successfully rolled out" in out
        new = {p.metadata.name for p in await ready_pods(client, ns, 3, registry["web2"])}
        await asyncio.to_thread(_until_answers, cluster, cluster.nodes[2].name,
                                svc.spec.cluster_ip, 80, new)
    finally:
        stop.touch()
        await asyncio.wait_for(load.wait(), 30)
    summary = json.loads(result.read_text())
    assert summary["failures"] == [], summary
    assert set(summary["answers"]) >= old | new, summary
    assert summary["requests"] > 50, summary


async def test_proxy_restart_keeps_traffic_and_repairs_a_removed_rule(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    await client.deployments(ns).create(web_deployment(ns, registry["web1"], 2))
    pods = await ready_pods(client, ns, 2)
    names = {p.metadata.name for p in pods}
    await navctl(cluster, "-n", ns, "expose", "deployment/hello", "--port", "8080")
    svc = await client.services(ns).get("hello")
    node = cluster.nodes[0]
    await asyncio.to_thread(_until_answers, cluster, node.name, svc.spec.cluster_ip, 8080,
                            names)
    cluster.proxies[node.name].kill(signal.SIGKILL)
    # the rules stay in the kernel while the proxy is down
    assert set(requests(cluster, node.name, svc.spec.cluster_ip, 8080, 30)) == names
    # a rule removed by hand breaks the service on that node...
    out = cluster.in_node(node.name, "nft", "flush", "chain", "ip", "navarch", "services")
    assert out.returncode == 0, out.stderr
    assert not set(requests(cluster, node.name, svc.spec.cluster_ip, 8080, 3)) & names
    # ...and the restarted proxy puts it back
    cluster.start_proxy(node)
    answers = await asyncio.to_thread(_until_answers, cluster, node.name,
                                      svc.spec.cluster_ip, 8080, names, 10.0)
    assert set(answers) == names


async def test_vxlan_pod_network(cluster: AgentCluster, client: navarch.Client, ns: str,
                                 registry: dict[str, str]) -> None:
    """The proxies switch to the VXLAN overlay: host-gw routes go, the overlay carries
    pod-to-pod and Service traffic between nodes."""
    for node in cluster.nodes:
        cluster.proxies[node.name].stop()
        cluster.start_proxy(node, mode="vxlan")
    for node in cluster.nodes:
        routes = cluster.in_node(node.name, "ip", "route", "show", "proto", "110").stdout
        assert "navarch.1" in routes and "via" in routes, routes
    await client.deployments(ns).create(web_deployment(ns, registry["web1"], 3))
    pods = await ready_pods(client, ns, 3)
    names = {p.metadata.name for p in pods}
    for pod in pods:  # every pod from a node that is not its own
        source = next(n.name for n in cluster.nodes if n.name != pod.spec.node_name)
        assert requests(cluster, source, pod.status.pod_ip, 8080, 1) == [pod.metadata.name]
    await navctl(cluster, "-n", ns, "expose", "deployment/hello", "--port", "8080")
    svc = await client.services(ns).get("hello")
    answers = await asyncio.to_thread(_until_answers, cluster, cluster.nodes[2].name,
                                      svc.spec.cluster_ip, 8080, names)
    assert set(answers) == names


async def test_statefulset_pods_have_stable_dns_names(
        cluster: AgentCluster, client: navarch.Client, ns: str,
        registry: dict[str, str]) -> None:
    """A headless Service answers with its pods' IPs, each StatefulSet pod has its own
    name, SRV names the named port, and an unknown name is NXDOMAIN, from inside a pod."""
    labels = {"app": "db"}
    await client.services(ns).create(obj({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": ns},
        "spec": {"clusterIP": "None", "selector": labels,
                 "ports": [{"name": "http", "port": 8080}]}}))
    await client.statefulsets(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "web", "image": registry["web1"],
                                     "ports": [{"name": "http", "containerPort": 8080}],
                                     "readinessProbe": {"httpGet": {"path": "/",
                                                                    "port": 8080},
                                                        "periodSeconds": 1}}]}}}}))

    async def both_ready() -> Any:
        pods = {p.metadata.name: p for p in (await client.pods(ns).list()).items}
        ok = all(n in pods and running(pods[n]) and condition(pods[n], "Ready") == "True"
                 for n in ("db-0", "db-1"))
        return pods if ok else None
    pods = await eventually(both_ready, 120, "db-0 and db-1 ready")
    ips = {n: pods[n].status.pod_ip for n in ("db-0", "db-1")}
    await until(lambda: endpoint_ips(client, ns, "db"), lambda got: got == set(ips.values()),
                30, "the headless Service's endpoints")

    async def lookup(name: str, *opts: str) -> str:
        return await navctl(cluster, "-n", ns, "exec", "db-0", "--", "nslookup", *opts,
                            name, check=False)

    fqdn = f"db.{ns}.svc.cluster.local"
    got = await lookup(fqdn)
    assert all(ip in got for ip in ips.values()), got
    got = await lookup(f"db-1.{fqdn}")
    assert ips["db-1"] in got and ips["db-0"] not in got, got
    got = await lookup(f"_http._tcp.{fqdn}", "-type=SRV")
    assert f"db-0.{fqdn}" in got and f"db-1.{fqdn}" in got and "8080" in got, got
    got = await lookup(f"nothing.{ns}.svc.cluster.local")
    assert "NXDOMAIN" in got, got
    # the stable name follows the pod to its new IP when it is recreated
    await client.pods(ns).delete("db-1")

    new = await until(  # NotFound while the old pod is gone and the new one not yet made
        lambda: client.pods(ns).get("db-1"),
        lambda p: running(p) and condition(p, "Ready") == "True"
        and p.metadata.uid != pods["db-1"].metadata.uid, 120, "db-1 recreated")
    await until(lambda: lookup(f"db-1.{fqdn}"), lambda out: new.status.pod_ip in out, 30,
                "db-1's name to follow it")
