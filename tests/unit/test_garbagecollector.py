"""The garbage collector: owner_verdict and owner_action (table-driven), the Graph, and
the collector over a fake API for background, foreground and orphan propagation."""

from __future__ import annotations

import pytest

from navarch.v1 import apps_pb2, coordination_pb2, core_pb2
from services.controllers.garbagecollector import (
    FOREGROUND,
    ORPHAN,
    GarbageCollector,
    Graph,
    Node,
    OwnerVerdict,
    Ref,
    owner_action,
    owner_verdict,
)
from tests.unit.workload_harness import Harness


def ref(uid: str, block: bool = False) -> Ref:
    return Ref(uid, "apps/v1", "ReplicaSet", f"rs-{uid}", block)


@pytest.mark.parametrize(("owners", "states", "has_deps", "want"), [
    ([ref("a")], {"a": "solid"}, False, OwnerVerdict("keep")),
    ([ref("a")], {"a": "absent"}, False, OwnerVerdict("delete", "Background")),
    ([ref("a"), ref("b")], {"a": "absent", "b": "absent"}, False,
     OwnerVerdict("delete", "Background")),
    ([ref("a"), ref("b")], {"a": "absent", "b": "solid"}, False,
     OwnerVerdict("drop-refs", drop=("a",))),
    ([ref("a")], {"a": "waiting"}, True, OwnerVerdict("delete", "Foreground")),
    ([ref("a")], {"a": "waiting"}, False, OwnerVerdict("delete", "Background")),
    ([ref("a"), ref("b")], {"a": "waiting", "b": "solid"}, False, OwnerVerdict("keep")),
    ([ref("a")], {}, False, OwnerVerdict("keep")),  # unknown: never delete on a guess
])
def test_owner_verdict(owners: list[Ref], states: dict[str, str], has_deps: bool,
                       want: OwnerVerdict) -> None:
    assert owner_verdict(owners, states, has_deps) == want


def gnode(uid: str, owners: tuple[Ref, ...] = (), *, deleting: bool = False,
          finalizers: tuple[str, ...] = ()) -> Node:
    return Node("pods", "default", uid, uid, owners, deleting, finalizers)


@pytest.mark.parametrize(("owner", "deps", "orphan", "delete", "remove"), [
    (gnode("o", deleting=True, finalizers=(ORPHAN,)), [gnode("d1", (ref("o"),))],
     ("d1",), (), ORPHAN),
    (gnode("o", deleting=True, finalizers=(FOREGROUND,)),
     [gnode("d1", (ref("o", block=True),)), gnode("d2", (ref("o"),), deleting=True)],
     (), ("d1",), ""),
    (gnode("o", deleting=True, finalizers=(FOREGROUND,)),
     [gnode("d2", (ref("o"),), deleting=True)], (), (), FOREGROUND),  # none blocks
    (gnode("o", deleting=True, finalizers=(FOREGROUND,)), [], (), (), FOREGROUND),
    (gnode("o", deleting=True), [gnode("d1", (ref("o"),))], (), (), ""),
])
def test_owner_action(owner: Node, deps: list[Node], orphan: tuple[str, ...],
                      delete: tuple[str, ...], remove: str) -> None:
    action = owner_action(owner, deps)
    assert (action.orphan, action.delete, action.remove_finalizer) == (orphan, delete, remove)


def test_graph_tracks_dependents_through_updates_and_removal() -> None:
    g = Graph()
    g.upsert(gnode("d1", (ref("o"),)))
    g.upsert(gnode("d2", (ref("o"), ref("p"))))
    assert [n.uid for n in g.dependents("o")] == ["d1", "d2"]
    g.upsert(gnode("d2", (ref("p"),)))  # d2 released by o
    assert [n.uid for n in g.dependents("o")] == ["d1"]
    g.remove("d1")
    assert g.dependents("o") == [] and [n.uid for n in g.dependents("p")] == ["d2"]


def replicaset(name: str, uid: str) -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = name, "default", uid
    return rs


def owned_pod(name: str, *owners: tuple[str, str], block: bool = True) -> core_pb2.Pod:
    p = core_pb2.Pod(api_version="v1", kind="Pod")
    p.metadata.name, p.metadata.namespace = name, "default"
    for owner_name, uid in owners:
        p.metadata.owner_references.add(api_version="apps/v1", kind="ReplicaSet",
                                         name=owner_name, uid=uid, controller=True,
                                         block_owner_deletion=block)
    return p


@pytest.mark.asyncio
async def test_background_deletes_orphans_and_drops_dangling_refs() -> None:
    h = Harness(GarbageCollector, [
        replicaset("live", "u-live"),
        owned_pod("gone", ("rs", "u-gone")),
        owned_pod("stale-uid", ("live", "u-old")),  # same name, another uid: gone
        owned_pod("kept", ("live", "u-live")),
        owned_pod("mixed", ("live", "u-live"), ("rs", "u-gone")),
    ])
    await h.start()
    try:
        names = [p.metadata.name for p in h.client.stored("pods")]
        assert names == ["kept", "mixed"]
        mixed = h.client.stored("pods")[1]
        assert [r.uid for r in mixed.metadata.owner_references] == ["u-live"]
        await h.client.replicasets().delete("live")
        await h.step()
        assert h.client.stored("pods") == []
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_foreground_waits_for_blocking_dependents_then_removes_finalizer() -> None:
    h = Harness(GarbageCollector, [replicaset("rs", "u-rs"), owned_pod("a", ("rs", "u-rs"))])
    await h.start()
    try:
        held = await h.client.pods().get("a")
        held.metadata.finalizers.append("x.io/hold")  # a pod still in its grace period
        await h.client.pods().update(held)
        await h.client.replicasets().delete("rs", propagation_policy="Foreground")
        await h.step()
        assert ("delete", "pods", "default/a") in h.client.writes()
        rs = h.client.stored("replicasets")[0]
        assert list(rs.metadata.finalizers) == [FOREGROUND]  # waits for the pod
        held = await h.client.pods().get("a")
        del held.metadata.finalizers[:]
        await h.client.pods().update(held)
        await h.step()
        assert h.client.stored("pods") == [] and h.client.stored("replicasets") == []
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_orphan_strips_references_then_removes_finalizer() -> None:
    h = Harness(GarbageCollector, [replicaset("rs", "u-rs"), owned_pod("a", ("rs", "u-rs"))])
    await h.start()
    try:
        await h.client.replicasets().delete("rs", propagation_policy="Orphan")
        await h.step()
        assert h.client.stored("replicasets") == []
        (pod,) = h.client.stored("pods")
        assert list(pod.metadata.owner_references) == []
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_cluster_scoped_owner_a_node_lease_goes_with_its_node() -> None:
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name, n.metadata.uid = "n1", "u-n1"
    lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    lease.metadata.name, lease.metadata.namespace = "n1", "kube-node-lease"
    lease.metadata.owner_references.add(api_version="v1", kind="Node", name="n1",
                                        uid="u-n1")
    h = Harness(GarbageCollector, [n, lease])
    await h.start()
    try:
        assert len(h.client.stored("leases")) == 1
        await h.client.nodes().delete("n1")
        await h.step()
        assert h.client.stored("leases") == []
    finally:
        await h.stop()
