"""The DaemonSet controller: node fitness and decisions (table-driven), and the
controller over a fake API."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import apps_pb2, core_pb2
from services.controllers.daemonset import DaemonSetController
from services.controllers.daemonset_sync import (
    daemon_pod_node,
    new_daemon_pod,
    node_should_run,
    plan_daemonset,
    with_default_tolerations,
)
from services.controllers.nodefit import requirement_matches, tolerates
from services.controllers.workloads import REVISION_LABEL, int_or_percent, timestamp
from tests.unit.workload_harness import NOW, Harness, node, pod_state

REV = "newrev"


def daemonset(*, max_unavailable: str = "1", max_surge: str = "0", strategy: str = "RollingUpdate",
              node_selector: dict[str, str] | None = None,
              tolerations: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
              min_ready: int = 0) -> apps_pb2.DaemonSet:
    ds = apps_pb2.DaemonSet(api_version="apps/v1", kind="DaemonSet")
    ds.metadata.name, ds.metadata.namespace, ds.metadata.uid = "agent", "default", "ds-uid"
    ds.metadata.generation = 3
    ds.spec.selector.match_labels["app"] = "agent"
    ds.spec.template.metadata.labels["app"] = "agent"
    ds.spec.template.spec.containers.add(name="a", image="localhost/agent:1")
    ds.spec.template.spec.node_selector.update(node_selector or {})
    for key, op, effect in tolerations:
        ds.spec.template.spec.tolerations.add(key=key, operator=op, effect=effect)
    ds.spec.update_strategy.type = strategy
    if strategy == "RollingUpdate":
        ds.spec.update_strategy.rolling_update.max_unavailable = max_unavailable
        ds.spec.update_strategy.rolling_update.max_surge = max_surge
    ds.spec.min_ready_seconds = min_ready
    return ds


def dpod(name: str, on: str, *, rev: str = REV, phase: str = "Running", ready: bool = True,
         created: float = NOW - 100, terminating: bool = False,
         ready_since: float = NOW - 100) -> core_pb2.Pod:
    p = new_daemon_pod(daemonset(), on, rev)
    p.metadata.name = name
    p.metadata.creation_timestamp.CopyFrom(timestamp(created))
    pod_state(p, phase=phase, ready=ready, now=ready_since, node=on)
    if terminating:
        p.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    return p


# --- fitness -------------------------------------------------------------------------------

def taint(key: str, effect: str, value: str = "") -> core_pb2.Taint:
    return core_pb2.Taint(key=key, value=value, effect=effect)


@pytest.mark.parametrize(("tol", "t", "ok"), [
    (core_pb2.Toleration(key="k", operator="Exists"), taint("k", "NoSchedule"), True),
    (core_pb2.Toleration(key="k", value="v"), taint("k", "NoSchedule", "v"), True),
    (core_pb2.Toleration(key="k", value="v"), taint("k", "NoSchedule", "w"), False),
    (core_pb2.Toleration(operator="Exists"), taint("any", "NoExecute"), True),
    (core_pb2.Toleration(key="k", operator="Exists", effect="NoExecute"),
     taint("k", "NoSchedule"), False),
    (core_pb2.Toleration(key="other", operator="Exists"), taint("k", "NoSchedule"), False),
])
def test_tolerates(tol: core_pb2.Toleration, t: core_pb2.Taint, ok: bool) -> None:
    assert tolerates(tol, t) is ok


@pytest.mark.parametrize(("op", "values", "labels", "ok"), [
    ("In", ["a", "b"], {"k": "a"}, True), ("In", ["a"], {}, False),
    ("NotIn", ["a"], {"k": "b"}, True), ("NotIn", ["a"], {}, True),
    ("Exists", [], {"k": ""}, True), ("DoesNotExist", [], {"k": "x"}, False),
    ("Gt", ["3"], {"k": "4"}, True), ("Lt", ["3"], {"k": "4"}, False),
    ("Gt", ["3"], {"k": "x"}, False),
])
def test_node_selector_requirements(op: str, values: list[str], labels: dict[str, str],
                                    ok: bool) -> None:
    req = core_pb2.NodeSelectorRequirement(key="k", operator=op, values=values)
    assert requirement_matches(req, labels) is ok


FIT: list[tuple[str, apps_pb2.DaemonSet, core_pb2.Node, tuple[bool, bool]]] = [
    ("an untainted node", daemonset(), node("n1"), (True, True)),
    ("an untolerated NoSchedule taint: no new pod, an old one stays",
     daemonset(), node("n1", taints=[("dedicated", "gpu", "NoSchedule")]), (False, True)),
    ("an untolerated NoExecute taint: no pod at all",
     daemonset(), node("n1", taints=[("dedicated", "gpu", "NoExecute")]), (False, False)),
    ("a PreferNoSchedule taint does not matter",
     daemonset(), node("n1", taints=[("soft", "", "PreferNoSchedule")]), (True, True)),
    ("a toleration admits the tainted node",
     daemonset(tolerations=[("dedicated", "Exists", "")]),
     node("n1", taints=[("dedicated", "gpu", "NoSchedule")]), (True, True)),
    ("default tolerations: a not-ready node still runs the pod",
     daemonset(), node("n1", taints=[("node.kubernetes.io/not-ready", "", "NoExecute")]),
     (True, True)),
    ("default tolerations: unschedulable nodes too",
     daemonset(), node("n1", taints=[("node.kubernetes.io/unschedulable", "", "NoSchedule")]),
     (True, True)),
    ("nodeSelector matches", daemonset(node_selector={"disk": "ssd"}),
     node("n1", {"disk": "ssd"}), (True, True)),
    ("nodeSelector does not match", daemonset(node_selector={"disk": "ssd"}),
     node("n1", {"disk": "hdd"}), (False, False)),
]


@pytest.mark.parametrize(("ds", "n", "expected"), [c[1:] for c in FIT], ids=[c[0] for c in FIT])
def test_node_should_run(ds: apps_pb2.DaemonSet, n: core_pb2.Node,
                         expected: tuple[bool, bool]) -> None:
    assert node_should_run(with_default_tolerations(ds.spec.template.spec), n) == expected


def test_required_node_affinity_is_honoured_and_replaced_by_the_node_name() -> None:
    ds = daemonset()
    term = (ds.spec.template.spec.affinity.node_affinity
            .required_during_scheduling_ignored_during_execution.node_selector_terms.add())
    term.match_expressions.add(key="zone", operator="In", values=["a"])
    spec = with_default_tolerations(ds.spec.template.spec)
    assert node_should_run(spec, node("n1", {"zone": "a"})) == (True, True)
    assert node_should_run(spec, node("n2", {"zone": "b"})) == (False, False)
    p = new_daemon_pod(ds, "n1", REV)
    terms = (p.spec.affinity.node_affinity
             .required_during_scheduling_ignored_during_execution.node_selector_terms)
    assert len(terms) == 1
    assert terms[0].match_expressions[0].key == "zone"
    assert [(f.key, f.operator, list(f.values)) for f in terms[0].match_fields] == [
        ("metadata.name", "In", ["n1"])]
    assert daemon_pod_node(p) == "n1"
    assert p.metadata.labels[REVISION_LABEL] == REV
    assert not p.spec.node_name
    keys = {(t.key, t.effect) for t in p.spec.tolerations}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys


@pytest.mark.parametrize(("value", "total", "expected"), [
    ("1", 10, 1), ("25%", 10, 3), ("10%", 3, 1), ("0", 5, 0), ("", 5, 7)])
def test_scaled_value(value: str, total: int, expected: int) -> None:
    assert int_or_percent(value, total, round_up=True, default=7) == expected


# --- decisions ---------------------------------------------------------------------------

N3 = [node("n1"), node("n2"), node("n3")]

CASES: list[tuple[str, apps_pb2.DaemonSet, list[core_pb2.Node], list[core_pb2.Pod],
                  dict[str, Any]]] = [
    ("a pod for every node", daemonset(), N3, [],
     {"create_on": ("n1", "n2", "n3"), "desired": 3, "current": 0}),
    ("tainted node skipped",
     daemonset(), [node("n1"), node("t1", taints=[("dedicated", "gpu", "NoSchedule")])], [],
     {"create_on": ("n1",), "desired": 1}),
    ("nodes already covered",
     daemonset(), N3, [dpod("a", "n1"), dpod("b", "n2"), dpod("c", "n3")],
     {"create_on": (), "delete": (), "desired": 3, "current": 3, "ready": 3,
      "available": 3, "updated": 3}),
    ("a pod of a node that left is deleted",
     daemonset(), N3[:2], [dpod("a", "n1"), dpod("b", "n2"), dpod("c", "gone")],
     {"delete": ("c",), "create_on": ()}),
    ("a node that became ineligible loses its pod (NoExecute)",
     daemonset(), [node("n1", taints=[("evict", "", "NoExecute")])], [dpod("a", "n1")],
     {"delete": ("a",), "misscheduled": 1, "desired": 0}),
    ("a NoSchedule taint keeps the running pod, counted misscheduled",
     daemonset(), [node("n1", taints=[("nosched", "", "NoSchedule")])], [dpod("a", "n1")],
     {"delete": (), "misscheduled": 1}),
    ("a failed pod is deleted and replaced later",
     daemonset(), N3[:1], [dpod("a", "n1", phase="Failed")],
     {"delete": ("a",), "failed": (("a", "n1"),), "create_on": ()}),
    ("duplicates: the oldest stays",
     daemonset(), N3[:1], [dpod("a", "n1", created=NOW - 50), dpod("b", "n1")],
     {"delete": ("a",)}),
    ("a terminating pod blocks a new one until it is gone",
     daemonset(), N3[:1], [dpod("a", "n1", terminating=True)],
     {"delete": (), "create_on": (), "current": 0}),
    ("rolling update, maxUnavailable 1: one old pod at a time",
     daemonset(), N3, [dpod("a", "n1", rev="old"), dpod("b", "n2", rev="old"),
                       dpod("c", "n3", rev="old")],
     {"delete": ("a",), "updated": 0}),
    ("rolling update waits while a new pod is not available",
     daemonset(), N3, [dpod("a", "n1", ready=False), dpod("b", "n2", rev="old"),
                       dpod("c", "n3", rev="old")],
     {"delete": (), "updated": 1, "ready": 2}),
    ("rolling update: unavailable old pods go at once",
     daemonset(max_unavailable="1"), N3,
     [dpod("a", "n1", rev="old", ready=False), dpod("b", "n2", rev="old", ready=False),
      dpod("c", "n3", rev="old")],
     {"delete": ("a", "b")}),
    ("rolling update, maxUnavailable 2",
     daemonset(max_unavailable="2"), N3,
     [dpod("a", "n1", rev="old"), dpod("b", "n2", rev="old"), dpod("c", "n3", rev="old")],
     {"delete": ("a", "b")}),
    ("surge: a new pod beside the old one, maxSurge nodes at a time",
     daemonset(max_unavailable="0", max_surge="1"), N3,
     [dpod("a", "n1", rev="old"), dpod("b", "n2", rev="old"), dpod("c", "n3", rev="old")],
     {"create_on": ("n1",), "delete": ()}),
    ("surge: the old pod goes once the new one is available",
     daemonset(max_unavailable="0", max_surge="1"), N3,
     [dpod("a", "n1", rev="old"), dpod("a2", "n1"), dpod("b", "n2", rev="old"),
      dpod("c", "n3", rev="old")],
     {"create_on": ("n2",), "delete": ("a",)}),
    ("OnDelete never replaces pods by itself",
     daemonset(strategy="OnDelete"), N3,
     [dpod("a", "n1", rev="old"), dpod("b", "n2", rev="old"), dpod("c", "n3", rev="old")],
     {"delete": (), "create_on": (), "updated": 0}),
    ("minReadySeconds: ready but not yet available, wake up then",
     daemonset(min_ready=30), N3[:1], [dpod("a", "n1", ready_since=NOW - 10)],
     {"ready": 1, "available": 0, "requeue_after": 20.0}),
]


@pytest.mark.parametrize(("ds", "nodes", "pods", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan_daemonset(ds: apps_pb2.DaemonSet, nodes: list[core_pb2.Node],
                        pods: list[core_pb2.Pod], expected: dict[str, Any]) -> None:
    plan = plan_daemonset(ds, nodes, pods, REV, NOW)
    for key, want in expected.items():
        assert getattr(plan, key) == want, key


# --- the controller over a fake API --------------------------------------------------------

async def test_daemonset_covers_every_untainted_node_and_skips_a_tainted_one() -> None:
    nodes = [node("n1"), node("n2"), node("n3"),
             node("t1", taints=[("dedicated", "gpu", "NoSchedule")])]
    h = Harness(DaemonSetController, [*nodes, daemonset()])
    await h.start()
    try:
        pods = h.client.stored("pods")
        assert sorted(daemon_pod_node(p) for p in pods) == ["n1", "n2", "n3"]
        for p in pods:  # play scheduler + kubelet
            await h.set_pod(p.metadata.name, phase="Running", ready=True,
                            node=daemon_pod_node(p))
        ds = h.client.stored("daemonsets")[0]
        assert (ds.status.desired_number_scheduled, ds.status.current_number_scheduled,
                ds.status.number_ready, ds.status.number_available,
                ds.status.updated_number_scheduled, ds.status.number_misscheduled,
                ds.status.observed_generation) == (3, 3, 3, 3, 3, 0, 3)
        # a new node gets a pod; a node that leaves loses its pod
        h.client.seed(node("n4"))
        await h.step()
        assert sorted(daemon_pod_node(p) for p in h.client.stored("pods")) == [
            "n1", "n2", "n3", "n4"]
        await h.client.nodes().delete("n1")
        await h.step()
        assert sorted(daemon_pod_node(p) for p in h.client.stored("pods")) == [
            "n2", "n3", "n4"]
        assert h.reasons().count("SuccessfulCreate") == 4
    finally:
        await h.stop()


async def test_a_failed_pod_is_replaced_after_a_growing_backoff() -> None:
    h = Harness(DaemonSetController, [node("n1"), daemonset()])
    await h.start()
    try:
        for delay in (1, 2, 4):
            (p,) = h.client.stored("pods")
            await h.set_pod(p.metadata.name, phase="Failed", node="n1")
            assert h.client.stored("pods") == [], "the failed pod is deleted"
            await h.advance(delay - 0.5)
            assert h.client.stored("pods") == [], f"not replaced before {delay}s"
            await h.advance(0.6)
            assert len(h.client.stored("pods")) == 1
        assert h.reasons().count("FailedDaemonPod") == 3
    finally:
        await h.stop()


async def test_rolling_update_replaces_pods_one_node_at_a_time() -> None:
    h = Harness(DaemonSetController, [node("n1"), node("n2"), daemonset()])
    await h.start()
    try:
        for p in h.client.stored("pods"):
            await h.set_pod(p.metadata.name, ready=True, node=daemon_pod_node(p))
        ds = await h.client.daemonsets("default").get("agent")
        ds.spec.template.spec.containers[0].image = "localhost/agent:2"
        await h.client.daemonsets("default").update(ds)
        await h.step()
        # one old pod deleted and replaced; the other waits for the new one to be ready
        images = sorted(p.spec.containers[0].image for p in h.client.stored("pods"))
        assert images == ["localhost/agent:1", "localhost/agent:2"]
        new = [p for p in h.client.stored("pods") if p.spec.containers[0].image.endswith(":2")]
        await h.set_pod(new[0].metadata.name, ready=True, node=daemon_pod_node(new[0]))
        await h.step()
        for p in h.client.stored("pods"):
            if not p.status.phase:
                await h.set_pod(p.metadata.name, ready=True, node=daemon_pod_node(p))
        images = sorted(p.spec.containers[0].image for p in h.client.stored("pods"))
        assert images == ["localhost/agent:2", "localhost/agent:2"]
        revs = sorted((r.revision, r.metadata.labels[REVISION_LABEL])
                      for r in h.client.stored("controllerrevisions"))
        assert [n for n, _ in revs] == [1, 2]
        assert {p.metadata.labels[REVISION_LABEL] for p in h.client.stored("pods")} == {
            revs[1][1]}
    finally:
        await h.stop()
