"""The Endpoints controller: desired_subsets (table-driven) and the controller over a fake
API (creates, follows readiness, writes only on change, leaves selector-less Services)."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._codec import to_dict
from navarch.v1 import core_pb2
from services.controllers.endpoints import (
    EndpointsController,
    desired_subsets,
    resolve_target_port,
)
from tests.unit.workload_harness import Harness


def service(name: str = "web", *, selector: dict[str, str] | None = None,
            ports: list[tuple[str, int, str]] = (("http", 80, "8080"),),  # type: ignore[assignment]
            headless: bool = False, publish: bool = False) -> core_pb2.Service:
    s = core_pb2.Service(api_version="v1", kind="Service")
    s.metadata.name, s.metadata.namespace = name, "default"
    s.spec.selector.update({"app": "web"} if selector is None else selector)
    for pname, port, target in ports:
        s.spec.ports.add(name=pname, port=port, target_port=target, protocol="TCP")
    if headless:
        s.spec.cluster_ip = "None"
    s.spec.publish_not_ready_addresses = publish
    return s


def pod(name: str, ip: str = "", *, ready: bool = True, labels: dict[str, str] | None = None,
        ports: dict[str, int] | None = None, node: str = "n1", deleting: bool = False,
        hostname: str = "", subdomain: str = "", phase: str = "Running") -> core_pb2.Pod:
    p = core_pb2.Pod(api_version="v1", kind="Pod")
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "default", f"uid-{name}"
    p.metadata.labels.update({"app": "web"} if labels is None else labels)
    ctr = p.spec.containers.add(name="c", image="img")
    for pname, number in (ports or {}).items():
        ctr.ports.add(name=pname, container_port=number, protocol="TCP")
    p.spec.node_name = node
    p.spec.hostname, p.spec.subdomain = hostname, subdomain
    p.status.pod_ip = ip
    p.status.phase = phase
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    if deleting:
        p.metadata.deletion_timestamp.FromSeconds(1)
    return p


def summary(subsets: list[core_pb2.EndpointSubset]) -> list[dict[str, Any]]:
    """Each subset as {ready: [ips], notReady: [ips], ports: [(name, port)]}."""
    return [{"ready": [a.ip for a in s.addresses],
             "notReady": [a.ip for a in s.not_ready_addresses],
             "ports": [(p.name, p.port) for p in s.ports]} for s in subsets]


CASES = [
    ("ready and not ready",
     service(), [pod("a", "10.0.0.2"), pod("b", "10.0.0.1", ready=False)],
     [{"ready": ["10.0.0.2"], "notReady": ["10.0.0.1"], "ports": [("http", 8080)]}]),
    ("publishNotReadyAddresses puts all in ready",
     service(publish=True), [pod("a", "10.0.0.2"), pod("b", "10.0.0.1", ready=False)],
     [{"ready": ["10.0.0.1", "10.0.0.2"], "notReady": [], "ports": [("http", 8080)]}]),
    ("no podIP, terminating, finished and unselected pods are left out",
     service(), [pod("a", ""), pod("b", "10.0.0.2", deleting=True),
                 pod("c", "10.0.0.3", phase="Succeeded"),
                 pod("d", "10.0.0.4", labels={"app": "db"}), pod("e", "10.0.0.5")],
     [{"ready": ["10.0.0.5"], "notReady": [], "ports": [("http", 8080)]}]),
    ("named target port resolved per pod; pods lacking it skip that port",
     service(ports=[("http", 80, "web"), ("metrics", 9000, "9090")]),
     [pod("a", "10.0.0.1", ports={"web": 8080}), pod("b", "10.0.0.2", ports={"web": 8081}),
      pod("c", "10.0.0.3")],
     [{"ready": ["10.0.0.1"], "notReady": [], "ports": [("http", 8080), ("metrics", 9090)]},
      {"ready": ["10.0.0.2"], "notReady": [], "ports": [("http", 8081), ("metrics", 9090)]},
      {"ready": ["10.0.0.3"], "notReady": [], "ports": [("metrics", 9090)]}]),
    ("empty target port means the service port",
     service(ports=[("", 80, "")]), [pod("a", "10.0.0.1")],
     [{"ready": ["10.0.0.1"], "notReady": [], "ports": [("", 80)]}]),
    ("headless without ports lists addresses only",
     service(ports=[], headless=True), [pod("a", "10.0.0.1")],
     [{"ready": ["10.0.0.1"], "notReady": [], "ports": []}]),
    ("a pod with none of the ports is left out",
     service(ports=[("http", 80, "web")]), [pod("a", "10.0.0.1")], []),
    ("no pods, no subsets", service(), [], []),
]


@pytest.mark.parametrize(("svc", "pods", "want"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_desired_subsets(svc: core_pb2.Service, pods: list[core_pb2.Pod],
                         want: list[dict[str, Any]]) -> None:
    assert summary(desired_subsets(svc, pods)) == want


def test_address_carries_node_target_ref_and_hostname() -> None:
    svc = service(headless=True)
    got = desired_subsets(svc, [pod("a", "10.0.0.1", hostname="a", subdomain="web"),
                                pod("b", "10.0.0.2", hostname="b", subdomain="other")])
    a, b = got[0].addresses
    assert to_dict(a) == {"ip": "10.0.0.1", "hostname": "a", "nodeName": "n1",
                          "targetRef": {"kind": "Pod", "namespace": "default", "name": "a",
                                        "uid": "uid-a"}}
    assert b.hostname == ""


@pytest.mark.parametrize(("target", "protocol", "ports", "want"), [
    ("", "TCP", {}, 80),
    ("8080", "TCP", {}, 8080),
    ("web", "TCP", {"web": 3000}, 3000),
    ("web", "UDP", {"web": 3000}, None),  # the container port is TCP
    ("web", "TCP", {"api": 3000}, None),
])
def test_resolve_target_port(target: str, protocol: str, ports: dict[str, int],
                             want: int | None) -> None:
    sp = core_pb2.ServicePort(port=80, target_port=target, protocol=protocol)
    assert resolve_target_port(sp, pod("a", "10.0.0.1", ports=ports)) == want


@pytest.mark.asyncio
async def test_controller_creates_follows_readiness_and_writes_only_on_change() -> None:
    h = Harness(EndpointsController, [service(), service("manual", selector={}),
                                      pod("a", "10.0.0.1", ready=False)])
    await h.start()
    try:
        assert h.client.writes() == [("create", "endpoints", "default/web")]
        ep = h.client.stored("endpoints")[0]
        assert summary(list(ep.subsets)) == [
            {"ready": [], "notReady": ["10.0.0.1"], "ports": [("http", 8080)]}]
        current = await h.client.pods().get("a")
        current.status.conditions[0].status = "True"
        await h.client.pods().update_status(current)
        await h.step()
        ep = h.client.stored("endpoints")[0]
        assert summary(list(ep.subsets)) == [
            {"ready": ["10.0.0.1"], "notReady": [], "ports": [("http", 8080)]}]
        before = len(h.client.actions)
        current = await h.client.pods().get("a")
        current.metadata.annotations["x"] = "y"  # no change to the endpoints
        await h.client.pods().update(current)
        await h.step()
        assert h.client.actions[before:] == [a for a in h.client.actions[before:]
                                             if a.resource != "endpoints"]
        await h.client.services().delete("web")
        await h.step()
        assert h.client.stored("endpoints") == []
    finally:
        await h.stop()
