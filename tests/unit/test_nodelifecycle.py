"""The node lifecycle controller: its decisions (table-driven) and the controller over a
fake API with a FakeClock (a silent node goes Unknown after the grace period, is tainted,
and its pods are evicted after their tolerationSeconds)."""

from __future__ import annotations

import pytest

from navarch.v1 import coordination_pb2, core_pb2
from services.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    NodeLifecycleController,
    desired_taints,
    eviction_delay,
    mark_unknown,
    tolerates,
    with_default_tolerations,
)
from tests.unit.workload_harness import NOW, Harness


def taint(key: str, effect: str = "NoExecute", added: float | None = None,
          value: str = "") -> core_pb2.Taint:
    t = core_pb2.Taint(key=key, effect=effect, value=value)
    if added is not None:
        t.time_added.FromSeconds(int(added))
    return t


def tol(key: str = "", operator: str = "Exists", effect: str = "NoExecute",
        seconds: int | None = None, value: str = "") -> core_pb2.Toleration:
    t = core_pb2.Toleration(key=key, operator=operator, effect=effect, value=value)
    if seconds is not None:
        t.toleration_seconds = seconds
    return t


@pytest.mark.parametrize(("toleration", "taint_", "want"), [
    (tol(), taint("a"), True),  # empty key + Exists: everything
    (tol("a"), taint("a"), True),
    (tol("a"), taint("b"), False),
    (tol("a", effect="NoSchedule"), taint("a"), False),
    (tol("a", effect=""), taint("a"), True),
    (tol("a", "Equal", value="x"), taint("a", value="x"), True),
    (tol("a", "", value="x"), taint("a", value="y"), False),
])
def test_tolerates(toleration: core_pb2.Toleration, taint_: core_pb2.Taint,
                   want: bool) -> None:
    assert tolerates(toleration, taint_) is want


@pytest.mark.parametrize(("tolerations", "taints", "want"), [
    ([], [], None),
    ([], [taint("a", "NoSchedule")], None),  # only NoExecute counts
    ([], [taint("a", added=NOW)], 0.0),
    ([tol("a")], [taint("a", added=NOW)], None),  # tolerated for ever
    ([tol("a", seconds=30)], [taint("a", added=NOW)], 30.0),
    ([tol("a", seconds=30)], [taint("a", added=NOW - 10)], 20.0),
    ([tol("a", seconds=30)], [taint("a", added=NOW - 100)], 0.0),
    ([tol("a", seconds=-5)], [taint("a", added=NOW)], 0.0),
    ([tol("a", seconds=300), tol("a", seconds=30)], [taint("a", added=NOW)], 30.0),
    ([tol("a", seconds=300), tol("b", seconds=60)],
     [taint("a", added=NOW), taint("b", added=NOW)], 60.0),
    ([tol("a", seconds=300)], [taint("a", added=NOW), taint("b", added=NOW)], 0.0),
])
def test_eviction_delay(tolerations: list[core_pb2.Toleration],
                        taints: list[core_pb2.Taint], want: float | None) -> None:
    assert eviction_delay(tolerations, taints, NOW) == want


@pytest.mark.parametrize(("taints", "conditions", "cordoned", "want"), [
    ([], {"Ready": "True"}, False, None),
    ([], {"Ready": "Unknown"}, False, [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]),
    ([], {"Ready": "False"}, False, [(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]),
    ([], {}, False, None),  # no Ready condition yet
    ([taint(UNREACHABLE), taint(UNREACHABLE, "NoSchedule")], {"Ready": "True"}, False, []),
    ([taint("user.io/x"), taint(UNREACHABLE), taint(UNREACHABLE, "NoSchedule")],
     {"Ready": "False"}, False,
     [("user.io/x", "NoExecute"), (NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]),
    ([taint(UNREACHABLE, "NoSchedule"), taint(UNREACHABLE)], {"Ready": "Unknown"}, False,
     None),
    ([], {"Ready": "True", "MemoryPressure": "True", "DiskPressure": "False"}, True,
     [("node.kubernetes.io/memory-pressure", "NoSchedule"),
      (UNSCHEDULABLE, "NoSchedule")]),
    ([taint(UNSCHEDULABLE, "NoSchedule")], {"Ready": "True"}, False, []),
])
def test_desired_taints(taints: list[core_pb2.Taint], conditions: dict[str, str],
                        cordoned: bool, want: list[tuple[str, str]] | None) -> None:
    got = desired_taints(taints, conditions, cordoned, NOW)
    assert (None if got is None else [(t.key, t.effect) for t in got]) == want


def test_desired_taints_keep_time_added() -> None:
    old = taint(UNREACHABLE, added=NOW - 50)
    got = desired_taints([old], {"Ready": "Unknown"}, False, NOW)
    assert got is not None and got[0].time_added.seconds == NOW - 50
    assert (got[1].effect, got[1].HasField("time_added")) == ("NoSchedule", False)


def node(name: str = "n1", ready: str = "True") -> core_pb2.Node:
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name = name
    cond = n.status.conditions.add(type="Ready", status=ready, reason="KubeletReady")
    cond.last_heartbeat_time.FromSeconds(int(NOW))
    n.status.conditions.add(type="MemoryPressure", status="False")
    return n


def test_mark_unknown() -> None:
    got = mark_unknown(node(), NOW)
    assert got is not None
    assert [(c.type, c.status, c.reason) for c in got.status.conditions] == [
        ("Ready", "Unknown", "NodeStatusUnknown"),
        ("MemoryPressure", "Unknown", "NodeStatusUnknown")]
    assert got.status.conditions[0].message == "Kubelet stopped posting node status."
    assert mark_unknown(got, NOW) is None
    fresh = core_pb2.Node()
    never = mark_unknown(fresh, NOW)
    assert never is not None and never.status.conditions[0].reason == "NodeStatusNeverUpdated"


def lease(name: str, renewed: float) -> coordination_pb2.Lease:
    lz = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    lz.metadata.name, lz.metadata.namespace = name, "kube-node-lease"
    lz.spec.renew_time.FromSeconds(int(renewed))
    return lz


def pod(name: str, *tolerations: core_pb2.Toleration) -> core_pb2.Pod:
    p = core_pb2.Pod(api_version="v1", kind="Pod")
    p.metadata.name, p.metadata.namespace = name, "default"
    p.spec.node_name = "n1"
    p.spec.tolerations.extend(tolerations)
    p.status.conditions.add(type="Ready", status="True")
    return p


@pytest.mark.asyncio
async def test_silent_node_goes_unknown_gets_tainted_and_pods_are_evicted_in_time() -> None:
    h = Harness(NodeLifecycleController, [
        node(), lease("n1", NOW),
        pod("stays", tol(UNREACHABLE)),
        pod("t30", tol(UNREACHABLE, seconds=30)),
        pod("t300", tol(UNREACHABLE, seconds=300), tol(NOT_READY, seconds=300)),
    ])
    h.ctx.options.update(node_monitor_grace_period=40.0)
    await h.start()
    try:
        leases = h.client.leases("kube-node-lease")
        for _ in range(3):  # renewed every 20 s: healthy
            await h.advance(20)
            await leases.update(lease("n1", h.clock.now()))
            await h.step()
        assert h.client.writes("update", "delete") == [("update", "leases",
                                                        "kube-node-lease/n1")] * 3
        await h.advance(39)  # the kubelet goes silent
        assert h.client.stored("nodes")[0].status.conditions[0].status == "True"
        await h.advance(2)
        n1 = h.client.stored("nodes")[0]
        assert [(c.type, c.status) for c in n1.status.conditions] == [
            ("Ready", "Unknown"), ("MemoryPressure", "Unknown")]
        assert [(t.key, t.effect) for t in n1.spec.taints] == [
            (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        assert "NodeNotReady" in h.reasons()
        assert {p.status.conditions[0].status for p in h.client.stored("pods")} == {"False"}
        assert sorted(p.metadata.name for p in h.client.stored("pods")) == [
            "stays", "t30", "t300"]
        await h.advance(29)
        assert len(h.client.stored("pods")) == 3  # not before 30 s
        await h.advance(1.5)
        assert sorted(p.metadata.name for p in h.client.stored("pods")) == ["stays", "t300"]
        assert "TaintManagerEviction" in h.reasons()
        # the node comes back: taints go, the remaining pods stay
        await leases.update(lease("n1", h.clock.now()))
        back = h.client.stored("nodes")[0]
        back.status.conditions[0].status = "True"
        back.status.conditions[0].last_heartbeat_time.FromSeconds(int(h.clock.now()))
        await h.client.nodes().update_status(back)
        await h.step()
        assert list(h.client.stored("nodes")[0].spec.taints) == []
        await h.advance(300)
        assert sorted(p.metadata.name for p in h.client.stored("pods")) == ["stays", "t300"]
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_pod_not_tolerating_a_noexecute_taint_is_evicted_at_once() -> None:
    tainted = node()
    tainted.spec.taints.append(taint("dedicated", added=NOW))
    h = Harness(NodeLifecycleController, [tainted, lease("n1", NOW), pod("p"),
                                          pod("ok", tol("dedicated"))])
    await h.start()
    try:
        assert [p.metadata.name for p in h.client.stored("pods")] == ["ok"]
    finally:
        await h.stop()


@pytest.mark.parametrize(("tolerations", "added"), [
    ([], [NOT_READY, UNREACHABLE]),
    ([tol(UNREACHABLE, seconds=5)], [NOT_READY]),
    ([tol(NOT_READY, effect="")], [UNREACHABLE]),
    ([tol()], []),  # tolerates everything
    ([tol(UNREACHABLE, effect="NoSchedule")], [NOT_READY, UNREACHABLE]),
])
def test_with_default_tolerations(tolerations: list[core_pb2.Toleration],
                                  added: list[str]) -> None:
    got = with_default_tolerations(tolerations, 300)
    extra = got[len(tolerations):]
    assert [(t.key, t.effect, t.toleration_seconds) for t in extra] == [
        (k, "NoExecute", 300) for k in added]


@pytest.mark.asyncio
async def test_taint_without_time_added_counts_from_first_sight() -> None:
    tainted = node()
    tainted.spec.taints.append(taint("dedicated"))  # no timeAdded
    h = Harness(NodeLifecycleController, [tainted, lease("n1", NOW),
                                          pod("p", tol("dedicated", seconds=10))])
    await h.start()
    try:
        await h.advance(5)
        await h.client.pods().update(h.client.stored("pods")[0])  # a pod event: no reset
        await h.step()
        await h.advance(4)
        assert len(h.client.stored("pods")) == 1
        await h.advance(1.5)
        assert h.client.stored("pods") == []
    finally:
        await h.stop()


@pytest.mark.parametrize(("tolerations", "want"), [
    ([], [(NOT_READY, 300), (UNREACHABLE, 300)]),
    ([tol(UNREACHABLE, seconds=2)], [(UNREACHABLE, 2), (NOT_READY, 300)]),
    ([tol()], [("", None)]),
])
def test_api_server_defaults_the_not_ready_tolerations(
        tolerations: list[core_pb2.Toleration], want: list[tuple[str, int | None]]) -> None:
    from services.apiserver import defaults

    p = pod("p", *tolerations)
    defaults.apply("Pod", p)
    assert [(t.key, t.toleration_seconds if t.HasField("toleration_seconds") else None)
            for t in p.spec.tolerations] == want
