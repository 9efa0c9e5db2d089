"""The scheduler's filter and score plugins, table-driven against Kubernetes' behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import core_pb2
from services.scheduler.algorithm import fit_error_message, num_feasible_nodes_to_find
from services.scheduler.framework import (
    UNSCHEDULABLE,
    UNSCHEDULABLE_AND_UNRESOLVABLE,
    CycleState,
    PodInfo,
    Status,
    default_normalize,
)
from services.scheduler.plugins.image_locality import MB, ImageLocality, image_score
from services.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from services.scheduler.plugins.node_affinity import NodeAffinity
from services.scheduler.plugins.node_name import NodeName
from services.scheduler.plugins.node_ports import NodePorts
from services.scheduler.plugins.node_resources import (
    NodeResourcesBalancedAllocation,
    NodeResourcesFit,
    balanced_score,
    least_allocated,
)
from services.scheduler.plugins.node_unschedulable import NodeUnschedulable
from services.scheduler.plugins.pod_topology_spread import PodTopologySpread
from services.scheduler.plugins.taint_toleration import TaintToleration
from tests.unit.scheduler_fixtures import node, node_info, pod


def run_filter(plugin: Any, p: core_pb2.Pod, info: Any, nodes: Any = None) -> Status | None:
    state = CycleState()
    pi = PodInfo.of(p)
    if not plugin.pre_filter(state, pi, nodes if nodes is not None else [info]):
        return None
    return plugin.filter(state, pi, info)  # type: ignore[no-any-return]


# --- requests ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("containers", "init", "want_cpu", "want_mem"), [
    ([("100m", "1Gi")], [], 100, 1 << 30),
    ([("100m", "1Gi"), ("200m", "")], [], 300, 1 << 30),
    ([("100m", "1Gi")], [("500m", "100Mi")], 500, 1 << 30),  # max(init, sum) per resource
    ([("100m", "")], [("50m", "2Gi"), ("300m", "")], 300, 2 << 30),
    ([("", "")], [], 0, 0),
])
def test_effective_requests(containers: list[tuple[str, str]], init: list[tuple[str, str]],
                            want_cpu: int, want_mem: int) -> None:
    p = pod("p", *containers[0], init=init)
    for cpu, mem in containers[1:]:
        c = p.spec.containers.add(name="more")
        if cpu:
            c.resources.requests["cpu"] = cpu
        if mem:
            c.resources.requests["memory"] = mem
    info = PodInfo.of(p)
    assert (info.requests.milli_cpu, info.requests.memory) == (want_cpu, want_mem)


def test_non_zero_requests_for_scoring() -> None:
    info = PodInfo.of(pod("p"))
    assert (info.non_zero.milli_cpu, info.non_zero.memory) == (100, 200 * 1024 * 1024)


# --- filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("p", "n", "placed", "want"), [
    (pod("p", "1"), node("n", "4"), [], None),
    (pod("p", "3"), node("n", "4"), [pod("a", "2", node_name="n")],
     Status(UNSCHEDULABLE, ("Insufficient cpu",), "NodeResourcesFit")),
    (pod("p", "", "2Gi"), node("n", memory="3Gi"), [pod("a", "", "2Gi", node_name="n")],
     Status(UNSCHEDULABLE, ("Insufficient memory",), "NodeResourcesFit")),
    (pod("p", "3", "3Gi"), node("n", "4", "4Gi"), [pod("a", "2", "2Gi", node_name="n")],
     Status(UNSCHEDULABLE, ("Insufficient cpu", "Insufficient memory"), "NodeResourcesFit")),
    (pod("p"), node("n", pods="1"), [pod("a", node_name="n")],
     Status(UNSCHEDULABLE, ("Too many pods",), "NodeResourcesFit")),
    # More than the node has at all: evicting cannot help.
    (pod("p", "8"), node("n", "4"), [],
     Status(UNSCHEDULABLE_AND_UNRESOLVABLE, ("Insufficient cpu",), "NodeResourcesFit")),
    (pod("p", "4"), node("n", "4"), [], None),  # exactly full
])
def test_node_resources_fit(p: core_pb2.Pod, n: core_pb2.Node, placed: list[core_pb2.Pod],
                            want: Status | None) -> None:
    assert run_filter(NodeResourcesFit(), p, node_info(n, *placed)) == want


T = "node(s) had untolerated taint {dedicated: gpu}"


@pytest.mark.parametrize(("taints", "tolerations", "want"), [
    ([], [], None),
    ([("dedicated", "gpu", "NoSchedule")], [], T),
    ([("dedicated", "gpu", "NoExecute")], [], T),
    ([("dedicated", "gpu", "PreferNoSchedule")], [], None),
    ([("dedicated", "gpu", "NoSchedule")], [("dedicated", "Equal", "gpu", "NoSchedule")], None),
    ([("dedicated", "gpu", "NoSchedule")], [("dedicated", "Equal", "cpu", "NoSchedule")], T),
    ([("dedicated", "gpu", "NoSchedule")], [("dedicated", "Exists", "", "")], None),
    ([("dedicated", "gpu", "NoSchedule")], [("", "Exists", "", "")], None),
    ([("dedicated", "gpu", "NoSchedule")], [("dedicated", "Exists", "", "NoExecute")], T),
])
def test_taint_toleration_filter(taints: list[tuple[str, str, str]],
                                 tolerations: list[tuple[str, str, str, str]],
                                 want: str | None) -> None:
    got = run_filter(TaintToleration(), pod("p", tolerations=tolerations),
                     node_info(node("n", taints=taints)))
    assert (got.reasons[0] if got else None) == want
    if got:
        assert got.code == UNSCHEDULABLE_AND_UNRESOLVABLE


@pytest.mark.parametrize(("unschedulable", "tolerations", "fails"), [
    (False, [], False),
    (True, [], True),
    (True, [("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")], False),
])
def test_node_unschedulable(unschedulable: bool, tolerations: list[tuple[str, str, str, str]],
                            fails: bool) -> None:
    got = run_filter(NodeUnschedulable(), pod("p", tolerations=tolerations),
                     node_info(node("n", unschedulable=unschedulable)))
    assert (got == Status(UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) were unschedulable",),
                          "NodeUnschedulable")) is fails


def test_node_name() -> None:
    assert run_filter(NodeName(), pod("p", node_name="a"), node_info(node("a"))) is None
    got = run_filter(NodeName(), pod("p", node_name="a"), node_info(node("b")))
    assert got is not None and got.reasons == ("node(s) didn't match the requested node name",)


def _affinity_pod(op: str, values: list[str], key: str = "zone") -> core_pb2.Pod:
    p = pod("p")
    term = (p.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
            .node_selector_terms.add())
    term.match_expressions.add(key=key, operator=op, values=values)
    return p


@pytest.mark.parametrize(("p", "labels", "fits"), [
    (pod("p", node_selector={"disk": "ssd"}), {"disk": "ssd"}, True),
    (pod("p", node_selector={"disk": "ssd"}), {"disk": "hdd"}, False),
    (pod("p", node_selector={"disk": "ssd"}), {}, False),
    (_affinity_pod("In", ["a", "b"]), {"zone": "b"}, True),
    (_affinity_pod("In", ["a", "b"]), {"zone": "c"}, False),
    (_affinity_pod("NotIn", ["a"]), {}, True),
    (_affinity_pod("Exists", []), {"zone": "x"}, True),
    (_affinity_pod("DoesNotExist", []), {"zone": "x"}, False),
    (_affinity_pod("Gt", ["3"], "cores"), {"cores": "8"}, True),
    (_affinity_pod("Lt", ["3"], "cores"), {"cores": "8"}, False),
])
def test_node_affinity_filter(p: core_pb2.Pod, labels: dict[str, str], fits: bool) -> None:
    got = run_filter(NodeAffinity(), p, node_info(node("n", labels=labels)))
    assert (got is None) is fits
    if got:
        assert got.reasons == ("node(s) didn't match Pod's node affinity/selector",)


@pytest.mark.parametrize(("placed_port", "want_port", "fails"), [
    (0, 8080, False), (8080, 8080, True), (8081, 8080, False), (8080, 0, False),
])
def test_node_ports(placed_port: int, want_port: int, fails: bool) -> None:
    info = node_info(node("n"), pod("a", node_name="n", host_port=placed_port))
    got = run_filter(NodePorts(), pod("p", host_port=want_port), info)
    assert (got is not None) is fails
    if got:
        assert got.reasons == ("node(s) didn't have free ports for the requested pod ports",)
    info.remove_pod("default/a")
    assert not info.used_ports


# --- scores -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "allocatable", "want"), [
    (0, 4000, 100), (1000, 4000, 75), (4000, 4000, 0), (5000, 4000, 0), (10, 0, 0),
])
def test_least_allocated(requested: int, allocatable: int, want: int) -> None:
    assert least_allocated(requested, allocatable) == want


@pytest.mark.parametrize(("cpu", "mem", "want"), [
    (0.5, 0.5, 100), (0.25, 0.75, 75), (0.0, 1.0, 50), (1.5, 1.0, 100), (0.6, 0.4, 90),
])
def test_balanced_allocation_formula(cpu: float, mem: float, want: int) -> None:
    assert balanced_score(cpu, mem) == want


def test_resource_scores_prefer_emptier_and_balanced_nodes() -> None:
    p = PodInfo.of(pod("p", "1", "8Gi"))
    empty = node_info(node("a", "4", "32Gi"))
    busy = node_info(node("b", "4", "32Gi"), pod("x", "2", "2Gi", node_name="b"))
    state = CycleState()
    fit = NodeResourcesFit()
    # cpu (4000-1000)/4000 → 75, memory (32-8)/32 → 75
    assert fit.score(state, p, empty) == 75
    assert fit.score(state, p, busy) == (25 + 68) // 2
    bal = NodeResourcesBalancedAllocation()
    assert bal.score(state, p, empty) == 100  # 0.25 and 0.25
    assert bal.score(state, p, busy) == int((1 - abs(0.75 - 10 / 32) / 2) * 100)


@pytest.mark.parametrize(("scores", "reverse", "want"), [
    ([0, 5, 10], False, [0, 50, 100]),
    ([0, 0], False, [0, 0]),
    ([0, 1, 2], True, [100, 50, 0]),
    ([0, 0], True, [100, 100]),
])
def test_default_normalize(scores: list[int], reverse: bool, want: list[int]) -> None:
    default_normalize(scores, reverse)
    assert scores == want


def test_taint_toleration_score_prefers_fewer_prefer_no_schedule_taints() -> None:
    plugin = TaintToleration()
    p = PodInfo.of(pod("p", tolerations=[("tolerated", "Exists", "", "PreferNoSchedule")]))
    nodes = [node_info(node("a")),
             node_info(node("b", taints=[("x", "1", "PreferNoSchedule")])),
             node_info(node("c", taints=[("x", "1", "PreferNoSchedule"),
                                         ("y", "1", "PreferNoSchedule"),
                                         ("tolerated", "", "PreferNoSchedule")]))]
    state = CycleState()
    assert plugin.pre_score(state, p, nodes)
    scores = [plugin.score(state, p, n) for n in nodes]
    assert scores == [0, 1, 2]
    plugin.normalize(state, p, scores)
    assert scores == [100, 50, 0]


def test_node_affinity_preferred_score() -> None:
    p = pod("p")
    pref = p.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    for weight, zone in ((10, "a"), (30, "b")):
        t = pref.add(weight=weight)
        t.preference.match_expressions.add(key="zone", operator="In", values=[zone])
    nodes = [node_info(node(z, labels={"zone": z})) for z in ("a", "b", "c")]
    plugin, state, info = NodeAffinity(), CycleState(), PodInfo.of(p)
    assert plugin.pre_score(state, info, nodes)
    scores = [plugin.score(state, info, n) for n in nodes]
    plugin.normalize(state, info, scores)
    assert scores == [33, 100, 0]


@pytest.mark.parametrize(("sizes", "total", "containers", "want"), [
    ([], 10, 1, 0),
    ([(10 * MB, 10)], 10, 1, 0),  # under the 23 MB threshold
    ([(500 * MB, 10)], 10, 1, 100 * (500 - 23) // (1000 - 23)),
    ([(500 * MB, 1)], 10, 1, 0),  # rare image: 50 MB scaled, 27 over the threshold
    ([(2000 * MB, 10)], 10, 1, 100),
])
def test_image_score(sizes: list[tuple[int, int]], total: int, containers: int,
                     want: int) -> None:
    if sizes == [(500 * MB, 1)]:
        want = 100 * (500 * MB // 10 - 23 * MB) // (977 * MB)
    assert image_score(sizes, total, containers) == want


def test_image_locality_plugin() -> None:
    plugin = ImageLocality()
    with_image = node_info(node("a", images={"registry/app:1": 600 * MB}))
    without = node_info(node("b"))
    p = PodInfo.of(pod("p", image="registry/app:1"))
    state = CycleState(image_nodes={"registry/app:1": 1}, total_nodes=2)
    assert plugin.pre_score(state, p, [with_image, without])
    assert plugin.score(state, p, with_image) == 100 * (300 * MB - 23 * MB) // (977 * MB)
    assert plugin.score(state, p, without) == 0


# --- inter-pod affinity and topology spread ---------------------------------------------------

def _with_pod_affinity(p: core_pb2.Pod, kind: str, labels: dict[str, str],
                       key: str = "zone") -> core_pb2.Pod:
    aff = getattr(p.spec.affinity, kind)
    term = aff.required_during_scheduling_ignored_during_execution.add(topology_key=key)
    term.label_selector.match_labels.update(labels)
    return p


ZONES = {"a1": "a", "a2": "a", "b1": "b"}


def _zoned(placed: dict[str, list[core_pb2.Pod]]) -> list[Any]:
    return [node_info(node(n, labels={"zone": z}), *placed.get(n, []))
            for n, z in ZONES.items()]


@pytest.mark.parametrize(("incoming", "placed", "want"), [
    # required affinity to app=db, which runs in zone a
    (_with_pod_affinity(pod("p"), "pod_affinity", {"app": "db"}),
     {"a1": [pod("db", labels={"app": "db"}, node_name="a1")]},
     {"a1": None, "a2": None, "b1": "node(s) didn't match pod affinity rules"}),
    # the first pod of a self-selecting group may go anywhere
    (_with_pod_affinity(pod("p", labels={"app": "web"}), "pod_affinity", {"app": "web"}),
     {}, {"a1": None, "a2": None, "b1": None}),
    # required anti-affinity against app=web in zone a
    (_with_pod_affinity(pod("p"), "pod_anti_affinity", {"app": "web"}),
     {"a2": [pod("w", labels={"app": "web"}, node_name="a2")]},
     {"a1": "node(s) didn't match pod anti-affinity rules",
      "a2": "node(s) didn't match pod anti-affinity rules", "b1": None}),
    # an existing pod's anti-affinity keeps the incoming pod out of its zone
    (pod("p", labels={"app": "web"}),
     {"b1": [_with_pod_affinity(pod("x", node_name="b1"), "pod_anti_affinity",
                                {"app": "web"})]},
     {"a1": None, "a2": None, "b1": "node(s) didn't satisfy existing pods anti-affinity rules"}),
])
def test_inter_pod_affinity_filter(incoming: core_pb2.Pod,
                                   placed: dict[str, list[core_pb2.Pod]],
                                   want: dict[str, str | None]) -> None:
    nodes = _zoned(placed)
    plugin, state, info = InterPodAffinity(), CycleState(), PodInfo.of(incoming)
    ran = plugin.pre_filter(state, info, nodes)
    got = {}
    for n in nodes:
        status = plugin.filter(state, info, n) if ran else None
        got[n.name] = status.reasons[0] if status else None
    assert got == want


def test_inter_pod_affinity_preferred_score() -> None:
    p = pod("p")
    w = p.spec.affinity.pod_affinity.preferred_during_scheduling_ignored_during_execution.add(
        weight=50)
    w.pod_affinity_term.topology_key = "zone"
    w.pod_affinity_term.label_selector.match_labels["app"] = "db"
    nodes = _zoned({"b1": [pod("db", labels={"app": "db"}, node_name="b1")]})
    plugin, state, info = InterPodAffinity(), CycleState(), PodInfo.of(p)
    assert plugin.pre_score(state, info, nodes)
    scores = [plugin.score(state, info, n) for n in nodes]
    plugin.normalize(state, info, scores)
    assert scores == [0, 0, 100]


def _spread(p: core_pb2.Pod, skew: int, when: str = "DoNotSchedule") -> core_pb2.Pod:
    c = p.spec.topology_spread_constraints.add(max_skew=skew, topology_key="zone",
                                               when_unsatisfiable=when)
    c.label_selector.match_labels["app"] = "web"
    return p


@pytest.mark.parametrize(("skew", "placed", "want_fail"), [
    (1, {}, set()),
    (1, {"a1": 1}, {"a1", "a2"}),  # zone a has 1, b has 0: a would reach skew 2
    (2, {"a1": 1}, set()),
    (1, {"a1": 1, "b1": 1}, set()),
    (1, {"a1": 2, "b1": 1}, {"a1", "a2"}),
])
def test_pod_topology_spread_filter(skew: int, placed: dict[str, int],
                                    want_fail: set[str]) -> None:
    pods = {n: [pod(f"{n}-{i}", labels={"app": "web"}, node_name=n) for i in range(k)]
            for n, k in placed.items()}
    nodes = _zoned(pods)
    plugin, state = PodTopologySpread(), CycleState()
    info = PodInfo.of(_spread(pod("p", labels={"app": "web"}), skew))
    assert plugin.pre_filter(state, info, nodes)
    failed = {n.name for n in nodes if plugin.filter(state, info, n) is not None}
    assert failed == want_fail


def test_pod_topology_spread_missing_label_and_score() -> None:
    plugin, state = PodTopologySpread(), CycleState()
    info = PodInfo.of(_spread(pod("p", labels={"app": "web"}), 1))
    bare = node_info(node("bare"))
    assert plugin.pre_filter(state, info, [bare])
    got = plugin.filter(state, info, bare)
    assert got is not None and got.code == UNSCHEDULABLE_AND_UNRESOLVABLE
    soft = PodInfo.of(_spread(pod("p", labels={"app": "web"}), 1, "ScheduleAnyway"))
    nodes = _zoned({"a1": [pod("w", labels={"app": "web"}, node_name="a1")]})
    state = CycleState()
    assert plugin.pre_score(state, soft, nodes)
    scores = [plugin.score(state, soft, n) for n in nodes]
    plugin.normalize(state, soft, scores)
    assert scores[2] > scores[0] == scores[1]


# --- the cycle's arithmetic and wording -------------------------------------------------------

@pytest.mark.parametrize(("total", "percentage", "want"), [
    (50, 0, 50), (100, 0, 100), (1000, 0, 420), (5000, 0, 500), (6000, 0, 300),
    (10000, 0, 500), (200, 10, 100), (5000, 100, 5000), (5000, 30, 1500),
])
def test_num_feasible_nodes_to_find(total: int, percentage: int, want: int) -> None:
    assert num_feasible_nodes_to_find(total, percentage) == want


def test_fit_error_message_counts_and_sorts_reasons_like_kube_scheduler() -> None:
    statuses = {
        "n1": Status.unschedulable("NodeResourcesFit", "Insufficient cpu"),
        "n2": Status.unschedulable("NodeResourcesFit", "Insufficient cpu"),
        "n3": Status.unresolvable("TaintToleration",
                                  "node(s) had untolerated taint {key: value}"),
    }
    assert fit_error_message(3, statuses) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, "
        "2 Insufficient cpu.")
    both = {"n1": Status.unschedulable("NodeResourcesFit", "Insufficient cpu",
                                       "Insufficient memory")}
    assert fit_error_message(1, both, "preemption: x.") == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: x.")


# --- batch fast paths agree with node-by-node -------------------------------------------------

def _mixed_nodes() -> list[Any]:
    return [node_info(node("free", "4")),
            node_info(node("full", "1"), pod("x", "1", node_name="full")),
            node_info(node("pods", pods="1"), pod("y", node_name="pods")),
            node_info(node("tainted", taints=[("k", "v", "NoSchedule")])),
            node_info(node("soft", taints=[("k", "v", "PreferNoSchedule")])),
            node_info(node("cordoned", unschedulable=True)),
            node_info(node("zero", "0", "0"))]


@pytest.mark.parametrize("plugin", [NodeResourcesFit(), TaintToleration(),
                                    NodeUnschedulable()], ids=lambda p: p.name)
@pytest.mark.parametrize("p", [pod("p", "500m", "1Gi"), pod("q"), pod("r", "2")],
                         ids=["small", "best-effort", "big"])
def test_filter_batch_matches_filter(plugin: Any, p: core_pb2.Pod) -> None:
    nodes, state, info = _mixed_nodes(), CycleState(), PodInfo.of(p)
    plugin.pre_filter(state, info, nodes)
    passed, failed = plugin.filter_batch(state, info, nodes)
    one_by_one = {n.name: plugin.filter(state, info, n) for n in nodes}
    assert {n.name for n in passed} == {k for k, v in one_by_one.items() if v is None}
    assert {n.name: s for n, s in failed} == {k: v for k, v in one_by_one.items() if v}


@pytest.mark.parametrize("plugin", [NodeResourcesFit(), NodeResourcesBalancedAllocation(),
                                    TaintToleration()], ids=lambda p: p.name)
@pytest.mark.parametrize("p", [pod("p", "500m", "1Gi"), pod("q"), pod("r", "2")],
                         ids=["small", "best-effort", "big"])
def test_score_batch_matches_score(plugin: Any, p: core_pb2.Pod) -> None:
    nodes, state, info = _mixed_nodes(), CycleState(), PodInfo.of(p)
    plugin.pre_score(state, info, nodes)
    assert plugin.score_batch(state, info, nodes) == [
        plugin.score(state, info, n) for n in nodes]


def test_resource_score_memo_follows_node_changes() -> None:
    nodes, info = _mixed_nodes(), PodInfo.of(pod("p", "500m", "1Gi"))
    fit, bal = NodeResourcesFit(), NodeResourcesBalancedAllocation()
    first = fit.score_batch(CycleState(), info, nodes)
    nodes[0].add_pod(PodInfo.of(pod("z", "2", "8Gi", node_name="free")))
    state = CycleState()
    assert fit.score_batch(state, info, nodes) == [fit.score(state, info, n) for n in nodes]
    assert bal.score_batch(state, info, nodes) == [bal.score(state, info, n) for n in nodes]
    assert fit.score_batch(CycleState(), info, nodes)[0] < first[0]
    other = PodInfo.of(pod("o", "3", "1Gi"))  # another request shape: not the memo's
    assert fit.score_batch(CycleState(), other, nodes) == [
        fit.score(CycleState(), other, n) for n in nodes]
