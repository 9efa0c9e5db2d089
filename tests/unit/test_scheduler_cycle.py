"""The scheduler over FakeClient: informers → queue → cycle → assume → bind, events,
the PodScheduled condition, preemption and Explain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from navarch._clock import FakeClock
from navarch._errors import ServerUnavailable
from navarch.v1 import core_pb2, policy_pb2
from services.scheduler.algorithm import ScheduleResult
from services.scheduler.explain import explain
from services.scheduler.framework import PodInfo
from services.scheduler.scheduler import Scheduler, SchedulerOptions
from tests.fakeapi import FakeClient
from tests.unit.scheduler_fixtures import node, pod


class Running:
    """A scheduler running over a FakeClient."""

    def __init__(self, client: FakeClient, scheduler: Scheduler) -> None:
        self.client, self.s = client, scheduler

    async def settle(self) -> None:
        """Run until nothing is queued, scheduling or being written."""
        for _ in range(500):
            await asyncio.sleep(0)
            if not self.s.queue.active_count and not self.s.queue.in_flight and (
                    not self.s._tasks):
                for _ in range(20):
                    await asyncio.sleep(0)
                if not self.s.queue.active_count and not self.s._tasks:
                    return
        raise AssertionError("scheduler did not settle")

    def node_of(self, name: str, namespace: str = "default") -> str:
        return str(self.client.objects[("pods", namespace, name)].spec.node_name)  # type: ignore[attr-defined]

    def bindings(self) -> list[str]:
        return [w[2] for w in self.client.writes("create") if w[1] == "pods/binding"]

    def events(self, reason: str) -> list[str]:
        return [e.message for e in self.s.recorder.recorded if e.reason == reason]


@pytest_asyncio.fixture
async def running() -> AsyncIterator[Running]:
    client = FakeClient()
    s = Scheduler(client, SchedulerOptions(), clock=FakeClock())
    task = asyncio.create_task(s.run())
    await s.informers.wait_synced(5)
    try:
        yield Running(client, s)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def add(r: Running, *objs: object) -> None:
    for obj in objs:
        r.client.seed(obj)  # type: ignore[arg-type]
    await r.settle()


@pytest.mark.asyncio
async def test_second_pod_sees_the_first_pods_resources(running: Running) -> None:
    await add(running, node("n1", "1"), node("n2", "1"))
    await add(running, pod("p1", "1"), pod("p2", "1"))
    assert {running.node_of("p1"), running.node_of("p2")} == {"n1", "n2"}
    assert running.bindings() == ["default/p1", "default/p2"]
    assert sorted(running.events("Scheduled")) == [
        f"Successfully assigned default/p1 to {running.node_of('p1')}",
        f"Successfully assigned default/p2 to {running.node_of('p2')}"]
    assert running.s.bound == 2 and not running.s.cache.assumed


@pytest.mark.asyncio
async def test_pod_that_fits_nowhere_gets_failed_scheduling_and_condition(
        running: Running) -> None:
    await add(running, node("a", "2"), node("b", "2"),
              node("c", "8", taints=[("key", "value", "NoSchedule")]),
              pod("x", "1", node_name="a"), pod("y", "1", node_name="b"))
    await add(running, pod("big", "2"))
    message = ("0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, "
               "2 Insufficient cpu. preemption: 0/3 nodes are available: "
               "1 Preemption is not helpful for scheduling, "
               "2 No preemption victims found for incoming pod.")
    assert running.events("FailedScheduling") == [message]
    stored = running.client.objects[("pods", "default", "big")]
    cond = [c for c in stored.status.conditions if c.type == "PodScheduled"]  # type: ignore[attr-defined]
    assert [(c.status, c.reason, c.message) for c in cond] == [
        ("False", "Unschedulable", message)]
    assert running.s.queue.unschedulable_count == 1
    # A node that fits arrives: the pod is moved and bound (after its backoff).
    await add(running, node("d", "4"))
    await running.s.clock.advance(1.0)  # type: ignore[attr-defined]
    await running.settle()
    assert running.node_of("big") == "d"


@pytest.mark.asyncio
async def test_only_own_scheduler_name_and_unbound_pods(running: Running) -> None:
    await add(running, node("n", "4"))
    await add(running, pod("mine", "1"), pod("theirs", "1", scheduler_name="other"),
              pod("bound", "1", node_name="n"))
    assert running.node_of("mine") == "n" and running.node_of("theirs") == ""
    assert running.bindings() == ["default/mine"]
    assert running.s.cache.nodes["n"].requested.milli_cpu == 2000


@pytest.mark.asyncio
async def test_failed_bind_forgets_the_pod_and_retries(running: Running) -> None:
    await add(running, node("n", "1"))
    running.client.fail[("bind", "pods")] = ServerUnavailable(
        grpc.StatusCode.UNAVAILABLE, "try later")
    await add(running, pod("p", "1"))
    assert running.node_of("p") == ""
    assert running.s.cache.nodes["n"].requested.milli_cpu == 0
    assert running.events("FailedScheduling") == ["Binding rejected: try later"]
    del running.client.fail[("bind", "pods")]
    await running.s.clock.advance(1.0)  # type: ignore[attr-defined]
    await running.settle()
    assert running.node_of("p") == "n"


@pytest.mark.asyncio
async def test_preemption_evicts_lower_priority_pods_and_nominates(running: Running) -> None:
    await add(running, node("n", "2"))
    await add(running, pod("low1", "1", priority=1, node_name="n"),
              pod("low2", "1", priority=5, node_name="n"))
    await add(running, pod("vip", "1", priority=100))
    # One victim suffices; the lower-priority one goes.
    assert ("delete", "pods", "default/low1") in running.client.writes("delete")
    assert ("delete", "pods", "default/low2") not in running.client.writes("delete")
    vip = running.client.objects[("pods", "default", "vip")]
    assert vip.status.nominated_node_name == "n"  # type: ignore[attr-defined]
    assert running.events("Preempted") == ["Preempted by pod uid-vip on node n"]
    await running.s.clock.advance(1.0)  # type: ignore[attr-defined]
    await running.settle()
    assert running.node_of("vip") == "n"


def budget(name: str, labels: dict[str, str], allowed: int, *, namespace: str = "default",
           disrupted: tuple[str, ...] = ()) -> policy_pb2.PodDisruptionBudget:
    b = policy_pb2.PodDisruptionBudget(api_version="policy/v1", kind="PodDisruptionBudget")
    b.metadata.name, b.metadata.namespace = name, namespace
    b.spec.selector.match_labels.update(labels)
    b.status.disruptions_allowed = allowed
    for p in disrupted:
        b.status.disrupted_pods[p].FromSeconds(1)
    return b


@pytest.mark.asyncio
@pytest.mark.parametrize(("budgets", "victim"), [
    ((), "db"),                                        # the lowest priority goes
    ((budget("db", {"app": "db"}, 0),), "web"),        # unless a budget protects it
    ((budget("db", {"app": "db"}, 1),), "db"),         # ... with no disruption left
    ((budget("db", {"app": "db"}, 0, disrupted=("db",)),), "db"),  # already counted
    ((budget("db", {"app": "db"}, 0, namespace="other"),), "db"),  # other namespace
    ((budget("db", {}, 0),), "db"),                    # an empty selector: ignored
    ((budget("db", {"app": "db"}, 0), budget("web", {"app": "web"}, 0)), "db"),
])
async def test_preemption_prefers_victims_no_budget_protects(
        running: Running, budgets: tuple[policy_pb2.PodDisruptionBudget, ...],
        victim: str) -> None:
    await add(running, *budgets, node("a", "2"), node("b", "2"))
    await add(running, pod("db", "2", priority=1, node_name="a", labels={"app": "db"}),
              pod("web", "2", priority=5, node_name="b", labels={"app": "web"}))
    await add(running, pod("vip", "2", priority=100))
    assert [w[2] for w in running.client.writes("delete")] == [f"default/{victim}"]
    vip = running.client.objects[("pods", "default", "vip")]
    assert vip.status.nominated_node_name == {"db": "a", "web": "b"}[victim]  # type: ignore[attr-defined]
    marked = [a.obj for a in running.client.actions
              if a.verb == "update" and a.subresource == "status" and a.name == victim]
    cond = next(c for c in marked[-1].status.conditions  # type: ignore[union-attr]
                if c.type == "DisruptionTarget")
    assert (cond.status, cond.reason, cond.message) == (
        "True", "PreemptionByScheduler",
        "default-scheduler: preempting to accommodate a higher priority pod")


def test_explain_lists_verdicts_and_scores() -> None:
    s = Scheduler(FakeClient(), SchedulerOptions(), clock=FakeClock())
    for n in (node("small", "1"), node("big", "8"),
              node("tainted", "8", taints=[("key", "value", "NoSchedule")])):
        s.cache.add_node(n)
    out = explain(s.algorithm, PodInfo.of(pod("p", "2")), s.cache.node_list())
    assert out.selected_node == "big"
    assert [(v.node, v.feasible) for v in out.nodes] == [
        ("big", True), ("small", False), ("tainted", False)]
    small = out.nodes[1]
    assert [(f.plugin, f.code, list(f.reasons)) for f in small.filters][-1] == (
        "NodeResourcesFit", "UnschedulableAndUnresolvable", ["Insufficient cpu"])
    big = out.nodes[0]
    assert big.total_score == sum(sc.weighted for sc in big.scores) > 0
    assert {sc.plugin for sc in big.scores} >= {"NodeResourcesFit", "TaintToleration"}
    none = explain(s.algorithm, PodInfo.of(pod("huge", "64")), s.cache.node_list())
    assert none.selected_node == "" and none.message.startswith("0/3 nodes are available: ")


def test_cycle_is_proportional_to_nodes_scored() -> None:
    s = Scheduler(FakeClient(), SchedulerOptions(), clock=FakeClock())
    for i in range(1000):
        s.cache.add_node(node(f"n{i:04}", "4"))
    result = s.algorithm.schedule(PodInfo.of(pod("p", "100m")), s.cache.node_list())
    assert isinstance(result, ScheduleResult)
    assert result.evaluated == 420 and result.feasible == 420
    again = s.algorithm.schedule(PodInfo.of(pod("q", "100m")), s.cache.node_list())
    assert isinstance(again, ScheduleResult) and again.evaluated == 420
    assert s.algorithm.next_start_node_index == 840


def test_pods_informer_objects_are_not_mutated() -> None:
    p = pod("p", "1")
    before = core_pb2.Pod()
    before.CopyFrom(p)
    PodInfo.of(p)
    assert p == before


# Equal priority does not take the room either (nominated pods of >= priority count).
@pytest.mark.parametrize(("priority", "fits"), [(0, False), (100, False), (200, True)])
def test_room_made_by_preemption_is_held_for_the_nominated_pod(priority: int,
                                                               fits: bool) -> None:
    s = Scheduler(FakeClient(), SchedulerOptions(), clock=FakeClock())
    s.cache.add_node(node("n", "2"))
    vip = pod("vip", "2", priority=100)
    vip.status.nominated_node_name = "n"
    s._pod_added(vip)
    state = s.cache.cycle_state()
    state["nominated"] = s.nominated
    result = s.algorithm.schedule(PodInfo.of(pod("other", "1", priority=priority)),
                                  s.cache.node_list(), state)
    assert isinstance(result, ScheduleResult) is fits
    bound = pod("vip", "2", priority=100, node_name="n")
    s._pod_updated(vip, bound)
    assert s.nominated == {}
