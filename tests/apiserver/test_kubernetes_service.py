"""The default/kubernetes Service and its Endpoints (services/apiserver/kubernetes_service.py),
kept by API servers over a real store: two servers (two reconcilers over one store, each
with its own Resources and watch caches), a clock the test moves for lease expiry.

Each test gets a fresh store, since the Service and its Endpoints are cluster-wide.
The advertised addresses come from TEST-NET-1 (192.0.2.0/24): they are only stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from navarch.v1 import coordination_pb2, core_pb2
from services.apiserver.kubernetes_service import KubernetesService
from services.apiserver.resources import Resources
from services.apiserver.storage import EtcdStore
from tests.store.cluster import StoreCluster


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """One API server's share: its Resources (watch caches) and its reconciler."""

    def __init__(self, res: Resources, reconciler: KubernetesService) -> None:
        self.res, self.reconciler = res, reconciler

    async def endpoints(self) -> list[tuple[str, int]]:
        ep = await self.res.get("endpoints", "default", "kubernetes")
        assert isinstance(ep, core_pb2.Endpoints)
        return [(a.ip, s.ports[0].port) for s in ep.subsets for a in s.addresses]

    async def service(self) -> core_pb2.Service:
        svc = await self.res.get("services", "default", "kubernetes")
        assert isinstance(svc, core_pb2.Service)
        return svc

    async def caught_up(self) -> None:
        """Let the leases cache see every write made so far (by any server)."""
        revision = await self.res.store.current_revision()
        await self.res.caches["leases"].wait_fresh(revision)


MakeServer = Callable[..., Awaitable[Server]]


@pytest_asyncio.fixture
async def servers(fresh_store: StoreCluster) -> AsyncIterator[tuple[FakeClock, MakeServer]]:
    clock = FakeClock()
    made: list[tuple[EtcdStore, Resources]] = []

    async def server(ip: str | None, port: int = 6443) -> Server:
        db = EtcdStore(fresh_store.endpoints)
        res = Resources(db)
        made.append((db, res))
        await res.start()
        reconciler = KubernetesService(res, service_ip="10.96.0.1", port=port,
                                       advertised=(ip, port) if ip else None, clock=clock)
        return Server(res, reconciler)

    try:
        yield clock, server
    finally:
        for db, res in made:
            await res.stop()
            await db.close()


async def test_service_and_endpoints_follow_the_live_servers(
        servers: tuple[FakeClock, MakeServer]) -> None:
    clock, make = servers
    a = await make("192.0.2.10")
    b = await make("192.0.2.11")
    await a.reconciler.sync()
    svc = await a.service()
    assert svc.spec.cluster_ip == "10.96.0.1"
    assert svc.spec.type == "ClusterIP"
    assert [(p.name, p.protocol, p.port, p.target_port) for p in svc.spec.ports] == [
        ("https", "TCP", 443, "6443")]
    assert dict(svc.metadata.labels) == {"component": "apiserver", "provider": "kubernetes"}
    assert not svc.spec.selector
    assert await a.endpoints() == [("192.0.2.10", 6443)]

    await b.caught_up()
    await b.reconciler.sync()
    assert await b.endpoints() == [("192.0.2.10", 6443), ("192.0.2.11", 6443)]
    leases = [coordination_pb2.Lease.FromString(d) for d in (await a.res.list(
        "leases", "kube-system",
        label_selector="apiserver.kubernetes.io/identity=kube-apiserver")).items]
    assert sorted(lease.spec.holder_identity for lease in leases) == [
        "192.0.2.10:6443", "192.0.2.11:6443"]

    # b stops cleanly: out at once, and its Lease is gone
    await b.reconciler.stop()
    assert await a.endpoints() == [("192.0.2.10", 6443)]
    await a.caught_up()
    await a.reconciler.sync()
    assert await a.endpoints() == [("192.0.2.10", 6443)]

    # b comes back, then dies: it drops out once its Lease has run out (15 s)
    await b.reconciler.sync()
    await a.caught_up()
    clock.now += 14
    await a.reconciler.sync()
    assert await a.endpoints() == [("192.0.2.10", 6443), ("192.0.2.11", 6443)]
    clock.now += 2
    await a.reconciler.sync()
    assert await a.endpoints() == [("192.0.2.10", 6443)]


async def test_the_service_is_put_back(servers: tuple[FakeClock, MakeServer]
                                       ) -> None:
    _, make = servers
    a = await make("192.0.2.10")
    await a.reconciler.sync()
    svc = await a.service()
    svc.spec.ports[0].port = 8443
    svc.metadata.labels["team"] = "platform"
    await a.res.update("services", "default", svc)
    await a.reconciler.sync()
    svc = await a.service()
    assert [p.port for p in svc.spec.ports] == [443]
    assert svc.metadata.labels["team"] == "platform"  # the rest is the user's

    await a.res.delete("services", "default", "kubernetes")
    await a.reconciler.sync()
    assert (await a.service()).spec.cluster_ip == "10.96.0.1"


async def test_a_loopback_server_keeps_the_service_and_advertises_nothing(
        servers: tuple[FakeClock, MakeServer]) -> None:
    _, make = servers
    local = await make(None, 7443)
    await local.reconciler.sync()
    assert [p.target_port for p in (await local.service()).spec.ports] == ["7443"]
    assert await local.endpoints() == []
    other = await make("192.0.2.12")
    await other.reconciler.sync()
    await local.caught_up()
    await local.reconciler.sync()
    assert await local.endpoints() == [("192.0.2.12", 6443)]
