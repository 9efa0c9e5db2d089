"""The disruption controller: its decisions table-driven (which pods, expectedPods and
desiredHealthy for each kind of budget, disruptedPods housekeeping, healthy pods,
disruptionsAllowed, the status and its condition), then the controller over a fake API
(writes only on change, follows pod events, expires disruptedPods on the injected clock).
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from navarch.v1 import apps_pb2, core_pb2, policy_pb2
from services.controllers.disruption import (
    DELETION_TIMEOUT,
    DisruptionController,
    Expected,
    SyncError,
    Workloads,
    budget_selects,
    count_healthy,
    disruptions_allowed,
    expected_pod_count,
    live_disruptions,
    select_pods,
    sync_budget,
)
from services.controllers.workloads import timestamp
from tests.unit.workload_harness import NOW, Harness

# --- builders ------------------------------------------------------------------------------


def owner(kind: str, name: str, api_version: str = "apps/v1") -> dict[str, str]:
    return {"kind": kind, "name": name, "api_version": api_version, "uid": f"uid-{name}"}


def pod(name: str, *, ready: bool = True, owned_by: dict[str, str] | None = None,
        labels: dict[str, str] | None = None, deleting: bool = False,
        namespace: str = "default") -> core_pb2.Pod:
    p = core_pb2.Pod(api_version="v1", kind="Pod")
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, namespace, f"uid-{name}"
    p.metadata.labels.update({"app": "web"} if labels is None else labels)
    if owned_by is not None:
        p.metadata.owner_references.add(controller=True, **owned_by)
    p.spec.containers.add(name="c", image="img")
    p.status.phase = "Running"
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    if deleting:
        p.metadata.deletion_timestamp.FromSeconds(int(NOW))
    return p


def rs(name: str, replicas: int | None, deployment: str = "") -> apps_pb2.ReplicaSet:
    r = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    r.metadata.name, r.metadata.namespace, r.metadata.uid = name, "default", f"uid-{name}"
    if replicas is not None:
        r.spec.replicas = replicas
    if deployment:
        r.metadata.owner_references.add(controller=True,
                                        **owner("Deployment", deployment))
    r.spec.selector.match_labels["app"] = "web"
    r.spec.template.metadata.labels["app"] = "web"
    r.spec.template.spec.containers.add(name="c", image="img")
    return r


def deployment(name: str, replicas: int) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment(api_version="apps/v1", kind="Deployment")
    d.metadata.name, d.metadata.namespace, d.metadata.uid = name, "default", f"uid-{name}"
    d.spec.replicas = replicas
    return d


def statefulset(name: str, replicas: int) -> apps_pb2.StatefulSet:
    s = apps_pb2.StatefulSet(api_version="apps/v1", kind="StatefulSet")
    s.metadata.name, s.metadata.namespace, s.metadata.uid = name, "default", f"uid-{name}"
    s.spec.replicas = replicas
    return s


def pdb(*, min_available: str = "", max_unavailable: str = "",
        selector: dict[str, str] | None = None, unset_selector: bool = False,
        generation: int = 1, disrupted: dict[str, float] | None = None
        ) -> policy_pb2.PodDisruptionBudget:
    b = policy_pb2.PodDisruptionBudget(api_version="policy/v1", kind="PodDisruptionBudget")
    b.metadata.name, b.metadata.namespace, b.metadata.uid = "budget", "default", "uid-budget"
    b.metadata.generation = generation
    b.spec.min_available, b.spec.max_unavailable = min_available, max_unavailable
    if not unset_selector:
        b.spec.selector.SetInParent()
        b.spec.selector.match_labels.update({"app": "web"} if selector is None else selector)
    for name, when in (disrupted or {}).items():
        b.status.disrupted_pods[name].CopyFrom(timestamp(when))
    return b


def workloads(*objs: Any) -> Workloads:
    by: dict[str, dict[str, Any]] = {"ReplicaSet": {}, "Deployment": {}, "StatefulSet": {}}
    for o in objs:
        by[o.kind][o.metadata.name] = o
    return Workloads(by["ReplicaSet"], by["Deployment"], by["StatefulSet"])


def with_uid(obj: Any, uid: str) -> Any:
    obj.metadata.uid = uid
    return obj


def ts(when: float) -> Timestamp:
    return timestamp(when)


RS = owner("ReplicaSet", "web-1")
RS2 = owner("ReplicaSet", "web-2")
SS = owner("StatefulSet", "db")

# --- which pods ------------------------------------------------------------------------------

SELECT_CASES = [
    ("matchLabels selects", pdb(), [pod("a"), pod("b", labels={"app": "db"})], ["a"]),
    ("an empty selector selects every pod of the namespace", pdb(selector={}),
     [pod("a"), pod("b", labels={}), pod("c", namespace="other")], ["a", "b"]),
    ("an unset selector selects nothing", pdb(unset_selector=True), [pod("a")], []),
    ("pods of other namespaces are not selected", pdb(), [pod("a", namespace="other")], []),
]


@pytest.mark.parametrize(("budget", "pods", "want"),
                         [c[1:] for c in SELECT_CASES], ids=[c[0] for c in SELECT_CASES])
def test_select_pods(budget: policy_pb2.PodDisruptionBudget, pods: list[core_pb2.Pod],
                     want: list[str]) -> None:
    assert [p.metadata.name for p in select_pods(budget, pods)] == want
    for p in pods:  # the pod handlers map a pod to its budgets with the same rule
        if p.metadata.namespace == "default":
            assert budget_selects(budget, p.metadata.labels) == (p.metadata.name in want)


def test_an_invalid_selector_selects_nothing_for_handlers_and_fails_the_sync() -> None:
    budget = pdb()
    budget.spec.selector.match_expressions.add(key="app", operator="Sideways")
    assert not budget_selects(budget, {"app": "web"})
    result = sync_budget(budget, [pod("a")], workloads(), NOW)
    cond = result.status.conditions[0]
    assert (cond.status, cond.reason) == ("False", "SyncFailed")
    assert "operator" in cond.message
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "NoPods")]


# --- expectedPods and desiredHealthy -----------------------------------------------------------

THREE_OF_RS = [pod("a", owned_by=RS), pod("b", owned_by=RS), pod("c", owned_by=RS)]

EXPECTED_CASES: list[tuple[str, policy_pb2.PodDisruptionBudget, list[core_pb2.Pod],
                           Workloads, Expected]] = [
    ("integer minAvailable: the selected pods, whatever their controllers",
     pdb(min_available="2"), [pod("a", owned_by=RS), pod("b"), pod("c", ready=False)],
     workloads(), Expected(3, 2)),
    ("integer minAvailable above the pods", pdb(min_available="5"), THREE_OF_RS,
     workloads(rs("web-1", 3)), Expected(3, 5)),
    ("percentage minAvailable: the controllers' scale, rounded up",
     pdb(min_available="50%"), THREE_OF_RS, workloads(rs("web-1", 3)), Expected(3, 2)),
    ("percentage minAvailable counts replicas, not pods",
     pdb(min_available="50%"), THREE_OF_RS, workloads(rs("web-1", 5)), Expected(5, 3)),
    ("maxUnavailable integer", pdb(max_unavailable="1"), THREE_OF_RS,
     workloads(rs("web-1", 3)), Expected(3, 2)),
    ("maxUnavailable percentage rounds the unavailable up: 34% of 3 is 2",
     pdb(max_unavailable="34%"), THREE_OF_RS, workloads(rs("web-1", 3)), Expected(3, 1)),
    ("maxUnavailable 0 wants every pod", pdb(max_unavailable="0"), THREE_OF_RS,
     workloads(rs("web-1", 3)), Expected(3, 3)),
    ("maxUnavailable above the scale: desiredHealthy never below 0",
     pdb(max_unavailable="5"), THREE_OF_RS, workloads(rs("web-1", 3)), Expected(3, 0)),
    ("neither set: nothing expected", pdb(), THREE_OF_RS, workloads(rs("web-1", 3)),
     Expected(0, 0)),
    ("ReplicaSets of one Deployment count the Deployment once",
     pdb(max_unavailable="1"),
     [pod("a", owned_by=RS), pod("b", owned_by=RS), pod("c", owned_by=RS2)],
     workloads(rs("web-1", 2, deployment="web"), rs("web-2", 2, deployment="web"),
               deployment("web", 3)), Expected(3, 2)),
    ("a ReplicaSet whose Deployment is gone counts itself",
     pdb(max_unavailable="1"), THREE_OF_RS, workloads(rs("web-1", 4, deployment="web")),
     Expected(4, 3)),
    ("distinct controllers add up", pdb(min_available="100%"),
     [pod("a", owned_by=RS), pod("b", owned_by=SS)],
     workloads(rs("web-1", 2), statefulset("db", 3)), Expected(5, 5)),
    ("a ReplicaSet without replicas is 1", pdb(max_unavailable="0"), THREE_OF_RS[:1],
     workloads(rs("web-1", None)), Expected(1, 1)),
    ("a pod controlled by a Deployment directly", pdb(max_unavailable="1"),
     [pod("a", owned_by=owner("Deployment", "web"))], workloads(deployment("web", 2)),
     Expected(2, 1)),
    ("pods without a controller are left out of the scales and reported",
     pdb(max_unavailable="1"), [*THREE_OF_RS[:2], pod("bare")], workloads(rs("web-1", 2)),
     Expected(2, 1, ("bare",))),
    ("only bare pods: nothing expected", pdb(min_available="50%"), [pod("bare")],
     workloads(), Expected(0, 0, ("bare",))),
]


@pytest.mark.parametrize(("budget", "pods", "scales", "want"),
                         [c[1:] for c in EXPECTED_CASES], ids=[c[0] for c in EXPECTED_CASES])
def test_expected_pod_count(budget: policy_pb2.PodDisruptionBudget,
                            pods: list[core_pb2.Pod], scales: Workloads,
                            want: Expected) -> None:
    assert expected_pod_count(budget.spec, pods, scales) == want


FAILURE_CASES = [
    ("the controller is not in the cache", THREE_OF_RS, workloads(),
     'found no controllers for pod "a"'),
    ("another ReplicaSet of the same name (uid differs)", THREE_OF_RS,
     workloads(with_uid(rs("web-1", 3), "other")), 'found no controllers for pod "a"'),
    ("a StatefulSet not found", [pod("a", owned_by=SS)], workloads(),
     'found no controllers for pod "a"'),
    ("a DaemonSet has no scale", [pod("a", owned_by=owner("DaemonSet", "agent"))],
     workloads(), "daemonsets.apps does not implement the scale subresource"),
    ("a Job has no scale", [pod("a", owned_by=owner("Job", "once", "batch/v1"))],
     workloads(), "jobs.batch does not implement the scale subresource"),
    ("a kind that is not served",
     [pod("a", owned_by=owner("Widget", "w", "example.com/v1"))], workloads(),
     'no matches for kind "Widget" in version "example.com/v1"'),
]


@pytest.mark.parametrize(("pods", "scales", "message"), [c[1:] for c in FAILURE_CASES],
                         ids=[c[0] for c in FAILURE_CASES])
@pytest.mark.parametrize("spec", ["maxUnavailable=1", "minAvailable=50%"])
def test_expected_pod_count_fails_without_a_scale(pods: list[core_pb2.Pod],
                                                  scales: Workloads, message: str,
                                                  spec: str) -> None:
    field, value = spec.split("=")
    budget = pdb(**{"max_unavailable" if field == "maxUnavailable" else "min_available":
                    value})
    with pytest.raises(SyncError) as caught:
        expected_pod_count(budget.spec, pods, scales)
    assert str(caught.value) == message


def test_integer_min_available_needs_no_controller() -> None:
    pods = [pod("a", owned_by=owner("DaemonSet", "agent")), pod("b", owned_by=RS)]
    assert expected_pod_count(pdb(min_available="1").spec, pods, workloads()) == Expected(2, 1)


# --- disruptedPods and healthy pods ------------------------------------------------------------

LIVE_CASES = [
    ("a fresh entry is kept until its deadline", {"a": NOW - 10}, [pod("a")], NOW,
     ["a"], NOW - 10 + DELETION_TIMEOUT, []),
    ("the earliest deadline is when to look again", {"a": NOW - 10, "b": NOW - 50},
     [pod("a"), pod("b")], NOW, ["a", "b"], NOW - 50 + DELETION_TIMEOUT, []),
    ("an entry of a pod gone is dropped", {"gone": NOW}, [pod("a")], NOW, [], None, []),
    ("an entry of a pod being deleted is dropped", {"a": NOW},
     [pod("a", deleting=True)], NOW, [], None, []),
    ("an entry older than the deletion timeout is dropped and reported",
     {"a": NOW - DELETION_TIMEOUT - 1, "b": NOW}, [pod("a"), pod("b")], NOW, ["b"],
     NOW + DELETION_TIMEOUT, ["a"]),
    ("an entry exactly at its deadline is still kept", {"a": NOW - DELETION_TIMEOUT},
     [pod("a")], NOW, ["a"], NOW, []),
]


@pytest.mark.parametrize(("recorded", "pods", "now", "kept", "recheck_at", "expired"),
                         [c[1:] for c in LIVE_CASES], ids=[c[0] for c in LIVE_CASES])
def test_live_disruptions(recorded: dict[str, float], pods: list[core_pb2.Pod], now: float,
                          kept: list[str], recheck_at: float | None,
                          expired: list[str]) -> None:
    live = live_disruptions({k: ts(v) for k, v in recorded.items()}, pods, now)
    assert sorted(live.pods) == kept
    assert live.recheck_at == recheck_at
    assert list(live.expired) == expired


HEALTHY_CASES = [
    ("Ready pods count", [pod("a"), pod("b")], {}, 2),
    ("unready pods do not", [pod("a"), pod("b", ready=False)], {}, 1),
    ("pods being deleted do not", [pod("a"), pod("b", deleting=True)], {}, 1),
    ("disrupted pods do not", [pod("a"), pod("b")], {"b": NOW - 5}, 1),
    ("a disruption past its deadline no longer counts", [pod("a"), pod("b")],
     {"b": NOW - DELETION_TIMEOUT - 1}, 2),
    ("a pod without conditions is not Ready", [core_pb2.Pod()], {}, 0),
]


@pytest.mark.parametrize(("pods", "disrupted", "want"), [c[1:] for c in HEALTHY_CASES],
                         ids=[c[0] for c in HEALTHY_CASES])
def test_count_healthy(pods: list[core_pb2.Pod], disrupted: dict[str, float],
                       want: int) -> None:
    assert count_healthy(pods, {k: ts(v) for k, v in disrupted.items()}, NOW) == want


@pytest.mark.parametrize(("healthy", "desired", "expected", "want"), [
    (3, 2, 3, 1),
    (3, 1, 3, 2),
    (2, 2, 3, 0),
    (1, 2, 3, 0),  # never negative
    (3, 0, 0, 0),  # nothing expected: nothing allowed
    (3, 5, 3, 0),
])
def test_disruptions_allowed(healthy: int, desired: int, expected: int, want: int) -> None:
    assert disruptions_allowed(healthy, desired, expected) == want


# --- the status --------------------------------------------------------------------------------

def summary(status: policy_pb2.PodDisruptionBudgetStatus) -> dict[str, Any]:
    cond = {c.type: c for c in status.conditions}.get("DisruptionAllowed")
    return {"allowed": status.disruptions_allowed, "healthy": status.current_healthy,
            "desired": status.desired_healthy, "expected": status.expected_pods,
            "generation": status.observed_generation,
            "condition": None if cond is None else (cond.status, cond.reason, cond.message,
                                                    cond.observed_generation),
            "disrupted": sorted(status.disrupted_pods)}


STATUS_CASES = [
    ("minAvailable 2 of 3 Ready: one disruption allowed",
     pdb(min_available="2"), THREE_OF_RS,
     {"allowed": 1, "healthy": 3, "desired": 2, "expected": 3, "generation": 1,
      "condition": ("True", "SufficientPods", "", 1), "disrupted": []}),
    ("a disrupted pod is not healthy and stays listed",
     pdb(min_available="2", disrupted={"a": NOW - 1}), THREE_OF_RS,
     {"allowed": 0, "healthy": 2, "desired": 2, "expected": 3, "generation": 1,
      "condition": ("False", "InsufficientPods", "", 1), "disrupted": ["a"]}),
    ("no pods: nothing allowed", pdb(min_available="0", generation=4), [],
     {"allowed": 0, "healthy": 0, "desired": 0, "expected": 0, "generation": 4,
      "condition": ("False", "InsufficientPods", "", 4), "disrupted": []}),
    ("maxUnavailable with a pod whose controller is missing: SyncFailed",
     pdb(max_unavailable="1"), [*THREE_OF_RS[:1], pod("x", owned_by=RS2)],
     {"allowed": 0, "healthy": 0, "desired": 0, "expected": 0, "generation": 0,
      "condition": ("False", "SyncFailed", 'found no controllers for pod "x"', 0),
      "disrupted": []}),
]


@pytest.mark.parametrize(("budget", "pods", "want"), [c[1:] for c in STATUS_CASES],
                         ids=[c[0] for c in STATUS_CASES])
def test_sync_budget_status(budget: policy_pb2.PodDisruptionBudget,
                            pods: list[core_pb2.Pod], want: dict[str, Any]) -> None:
    result = sync_budget(budget, pods, workloads(rs("web-1", 3)), NOW)
    assert summary(result.status) == want
    assert result.status.conditions[0].last_transition_time == timestamp(NOW)


def test_sync_budget_events() -> None:
    none = sync_budget(pdb(min_available="1"), [], workloads(), NOW)
    assert [(e.type, e.reason, e.message) for e in none.events] == [
        ("Normal", "NoPods", "No matching pods found")]
    bare = sync_budget(pdb(max_unavailable="1"), [pod("bare")], workloads(), NOW)
    assert [(e.type, e.reason) for e in bare.events] == [("Warning", "UnmanagedPods")]
    assert "selector: app=web" in bare.events[0].message
    missing = sync_budget(pdb(max_unavailable="1"), THREE_OF_RS, workloads(), NOW)
    assert [(e.reason, e.message) for e in missing.events] == [
        ("CalculateExpectedPodCountFailed",
         'Failed to calculate the number of expected pods: found no controllers for pod "a"')]
    stale = sync_budget(pdb(min_available="1", disrupted={"b": NOW - 500}), THREE_OF_RS,
                        workloads(), NOW)
    assert [(e.reason, e.pod, e.message) for e in stale.events] == [
        ("NotDeleted", "b", "Pod was expected by PDB default/budget to be deleted but it "
         "wasn't")]
    assert not stale.status.disrupted_pods and stale.status.current_healthy == 3


def test_sync_budget_asks_to_be_woken_when_the_oldest_disruption_expires() -> None:
    budget = pdb(min_available="1", disrupted={"a": NOW - 20, "b": NOW - 100})
    assert sync_budget(budget, THREE_OF_RS, workloads(), NOW).recheck_after == 20.0
    assert sync_budget(pdb(min_available="1"), THREE_OF_RS, workloads(), NOW
                       ).recheck_after is None


def test_the_condition_moves_only_when_its_status_changes() -> None:
    first = pdb(min_available="2")
    first.status.CopyFrom(sync_budget(first, THREE_OF_RS, workloads(), NOW).status)
    same = sync_budget(first, THREE_OF_RS, workloads(), NOW + 60).status
    assert same == first.status  # nothing changed: nothing to write
    first.status.CopyFrom(same)
    lower = sync_budget(first, THREE_OF_RS[:2], workloads(), NOW + 120).status
    cond = lower.conditions[0]
    assert (cond.status, cond.reason, cond.last_transition_time) == (
        "False", "InsufficientPods", timestamp(NOW + 120))


def test_a_failed_sync_keeps_the_status_but_allows_nothing() -> None:
    budget = pdb(max_unavailable="1", generation=2)
    budget.status.CopyFrom(sync_budget(pdb(max_unavailable="1"), THREE_OF_RS,
                                       workloads(rs("web-1", 3)), NOW).status)
    assert summary(budget.status)["allowed"] == 1
    failed = sync_budget(budget, THREE_OF_RS, workloads(), NOW + 5).status
    assert summary(failed) == {
        "allowed": 0, "healthy": 3, "desired": 2, "expected": 3, "generation": 1,
        "condition": ("False", "SyncFailed", 'found no controllers for pod "a"', 1),
        "disrupted": []}
    assert failed.conditions[0].last_transition_time == timestamp(NOW + 5)
    budget.status.CopyFrom(failed)
    recovered = sync_budget(budget, THREE_OF_RS, workloads(rs("web-1", 3)), NOW + 9).status
    assert summary(recovered)["condition"] == ("True", "SufficientPods", "", 2)
    assert recovered.observed_generation == 2


def test_other_conditions_are_kept() -> None:
    budget = pdb(min_available="1")
    budget.status.conditions.add(type="Other", status="True", reason="Mine")
    status = sync_budget(budget, THREE_OF_RS, workloads(), NOW).status
    assert [(c.type, c.reason) for c in status.conditions] == [
        ("Other", "Mine"), ("DisruptionAllowed", "SufficientPods")]


# --- the controller over a fake API ------------------------------------------------------------

def stored(h: Harness) -> policy_pb2.PodDisruptionBudget:
    found: policy_pb2.PodDisruptionBudget = h.client.stored("poddisruptionbudgets")[0]
    return found


async def test_controller_writes_status_once_and_follows_pods() -> None:
    h = Harness(DisruptionController, [
        deployment("web", 3), rs("web-1", 3, deployment="web"), *THREE_OF_RS,
        pdb(max_unavailable="1")])
    await h.start()
    try:
        assert h.client.writes() == [
            ("update", "poddisruptionbudgets/status", "default/budget")]
        assert summary(stored(h).status)["allowed"] == 1
        h.controller.enqueue(stored(h))  # a resync with nothing new writes nothing
        await h.step()
        assert len(h.client.writes()) == 1
        await h.set_pod("a", ready=False)  # a selected pod's event resyncs its budget
        assert summary(stored(h).status)["healthy"] == 2
        assert summary(stored(h).status)["condition"][1] == "InsufficientPods"
        assert h.controller.stats.errors == 0
    finally:
        await h.stop()


async def test_controller_drops_a_disruption_that_never_came_after_two_minutes() -> None:
    h = Harness(DisruptionController, [
        rs("web-1", 3), *THREE_OF_RS, pdb(min_available="2", disrupted={"a": NOW})])
    await h.start()
    try:
        status = stored(h).status
        assert (status.current_healthy, list(status.disrupted_pods)) == (2, ["a"])
        await h.advance(DELETION_TIMEOUT + 1)
        status = stored(h).status
        assert (status.current_healthy, list(status.disrupted_pods)) == (3, [])
        assert status.disruptions_allowed == 1
        assert "NotDeleted" in h.reasons()
    finally:
        await h.stop()


async def test_controller_drops_the_disruption_of_a_pod_being_deleted() -> None:
    h = Harness(DisruptionController, [
        rs("web-1", 3), *THREE_OF_RS, pdb(min_available="2", disrupted={"a": NOW})])
    await h.start()
    try:
        await h.client.pods("default").delete("a")
        await h.step()
        status = stored(h).status
        assert (status.current_healthy, list(status.disrupted_pods)) == (2, [])
    finally:
        await h.stop()
