"""ClusterIP and NodePort allocation: in range, conflict-free, released, shared by servers."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.util import service
from tests.store.cluster import StoreCluster

SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")


async def test_cluster_ips_are_allocated_in_range_and_distinct(client: navarch.Client,
                                                               ns: str) -> None:
    made = await asyncio.gather(*(client.services(ns).create(service(f"s{i}", ns))
                                  for i in range(20)))
    ips = [s.spec.cluster_ip for s in made]
    assert len(set(ips)) == 20
    for s, ip in zip(made, ips, strict=True):
        addr = ipaddress.ip_address(ip)
        assert addr in SERVICE_RANGE and addr != SERVICE_RANGE.network_address
        assert list(s.spec.cluster_ips) == [ip]


async def test_the_kubernetes_service_has_the_first_address(client: navarch.Client) -> None:
    """Made by the API server before it serves, as Kubernetes' bootstrap does; this
    server listens on loopback only, so it publishes no endpoint."""
    svc = await client.services("default").get("kubernetes")
    assert svc.spec.cluster_ip == str(SERVICE_RANGE.network_address + 1)
    assert [(p.name, p.port) for p in svc.spec.ports] == [("https", 443)]
    endpoints = await client.endpoints("default").get("kubernetes")
    assert [a.ip for s in endpoints.subsets for a in s.addresses] == []


async def test_requested_cluster_ip(client: navarch.Client, ns: str) -> None:
    svcs = client.services(ns)
    fixed = await svcs.create(service("dns", ns, clusterIP="10.96.200.10"))
    assert fixed.spec.cluster_ip == "10.96.200.10"
    with pytest.raises(navarch.Invalid) as info:
        await svcs.create(service("dns2", ns, clusterIP="10.96.200.10"))
    assert info.value.violations[0].field == "spec.clusterIP"
    assert "already allocated" in info.value.violations[0].description
    with pytest.raises(navarch.NotFound):
        await svcs.get("dns2")
    with pytest.raises(navarch.Invalid, match="not in the valid range"):
        await svcs.create(service("far", ns, clusterIP="192.168.1.1"))
    await svcs.delete("dns")
    again = await svcs.create(service("dns3", ns, clusterIP="10.96.200.10"))
    assert again.spec.cluster_ip == "10.96.200.10"


async def test_headless_service_gets_no_ip(client: navarch.Client, ns: str) -> None:
    svc = await client.services(ns).create(service("headless", ns, clusterIP="None"))
    assert svc.spec.cluster_ip == "None"


async def test_cluster_ip_survives_updates(client: navarch.Client, ns: str) -> None:
    svcs = client.services(ns)
    created = await svcs.create(service("web", ns))
    created.spec.cluster_ip = ""
    created.spec.cluster_ips[:] = []
    created.metadata.labels["v"] = "2"
    updated = await svcs.update(created)
    assert updated.spec.cluster_ip == (await svcs.get("web")).spec.cluster_ip != ""


async def test_node_ports(client: navarch.Client, ns: str) -> None:
    svcs = client.services(ns)
    fixed = await svcs.create(service("fixed", ns, type="NodePort",
                                      ports=[{"port": 80, "targetPort": 80, "nodePort": 30007}]))
    assert fixed.spec.ports[0].node_port == 30007
    auto = await svcs.create(service("auto", ns, type="NodePort",
                                     ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}]))
    ports = [p.node_port for p in auto.spec.ports]
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 2
    assert 30007 not in ports
    with pytest.raises(navarch.Invalid) as info:
        await svcs.create(service("clash", ns, type="NodePort",
                                  ports=[{"port": 80, "nodePort": 30007}]))
    assert info.value.violations[0].field == "spec.ports[0].nodePort"
    assert "already allocated" in info.value.violations[0].description
    with pytest.raises(navarch.Invalid, match="valid range"):
        await svcs.create(service("low", ns, type="NodePort", ports=[{"port": 80, "nodePort": 80}]))


async def test_node_ports_released_on_type_change_and_delete(client: navarch.Client,
                                                             ns: str) -> None:
    svcs = client.services(ns)
    await svcs.create(service("a", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30100}]))
    as_cluster_ip = await svcs.patch("a", {"spec": {"type": "ClusterIP",
                                                    "ports": [{"port": 80}]}})
    assert as_cluster_ip.spec.ports[0].node_port == 0
    taker = await svcs.create(service("b", ns, type="NodePort",
                                      ports=[{"port": 80, "nodePort": 30100}]))
    assert taker.spec.ports[0].node_port == 30100
    await svcs.delete("b")
    await svcs.create(service("c", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30100}]))


async def test_updates_keep_node_ports(client: navarch.Client, ns: str) -> None:
    svcs = client.services(ns)
    created = await svcs.create(service("a", ns, type="NodePort", ports=[{"port": 80}]))
    port = created.spec.ports[0].node_port
    patched = await svcs.patch("a", {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert patched.spec.ports[0].node_port == port


async def test_allocation_is_shared_by_api_servers_and_survives_restart(
        fresh_store: StoreCluster, tmp_path: Path) -> None:
    servers = [ApiServerProcess(fresh_store.endpoints, tmp_path / f"api{i}") for i in range(2)]
    for s in servers:
        s.start()
    try:
        clients = [navarch.Client(s.address) for s in servers]

        async def make(c: navarch.Client, i: int) -> navarch.v1.core_pb2.Service:
            return await c.services("default").create(
                service(f"s{i}", "default", type="NodePort", ports=[{"port": 80}]))

        made = await asyncio.gather(*(make(clients[i % 2], i) for i in range(40)))
        ips = {s.spec.cluster_ip for s in made}
        node_ports = {s.spec.ports[0].node_port for s in made}
        assert len(ips) == 40 and len(node_ports) == 40
        for c in clients:
            await c.close()
        servers[0].kill()
        servers[0].start()
        async with navarch.Client(servers[0].address) as c:
            taken_ip = made[0].spec.cluster_ip
            with pytest.raises(navarch.Invalid, match="already allocated"):
                await c.services("default").create(service("x", "default", clusterIP=taken_ip))
    finally:
        for s in servers:
            s.stop()


async def test_invalid_service_claims_nothing(client: navarch.Client, ns: str) -> None:
    """A Service refused for a bad field leaves no allocation behind: its IP and port are
    free for the next Service."""
    svcs = client.services(ns)
    with pytest.raises(navarch.Invalid) as info:
        await svcs.create(service("bad", ns, type="NodePort", clusterIP="10.96.201.1",
                                  ports=[{"port": 0, "nodePort": 30201}]))
    assert any(v.field.startswith("spec.ports[0].port") for v in info.value.violations)
    with pytest.raises(navarch.NotFound):
        await svcs.get("bad")
    good = await svcs.create(service("good", ns, type="NodePort", clusterIP="10.96.201.1",
                                     ports=[{"port": 80, "nodePort": 30201}]))
    assert good.spec.cluster_ip == "10.96.201.1" and good.spec.ports[0].node_port == 30201


async def test_failed_update_keeps_old_allocation(client: navarch.Client, ns: str) -> None:
    svcs = client.services(ns)
    await svcs.create(service("a", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30202}]))
    await svcs.create(service("b", ns, type="NodePort", ports=[{"port": 80, "nodePort": 30203}]))
    with pytest.raises(navarch.Invalid, match="already allocated"):
        await svcs.patch("a", {"spec": {"ports": [{"port": 80, "nodePort": 30203}]}})
    assert (await svcs.get("a")).spec.ports[0].node_port == 30202
    with pytest.raises(navarch.Invalid, match="already allocated"):
        await svcs.create(service("c", ns, type="NodePort",
                                  ports=[{"port": 80, "nodePort": 30202}]))
