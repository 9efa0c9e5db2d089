"""``navarch scheduler`` as a process against the real API server: pods are bound to
Node objects created directly (no simulated nodes), a pod that fits nowhere gets a
FailedScheduling event in Kubernetes' words, and Explain answers over gRPC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import pytest

import navarch
from navarch.v1 import control_pb2, control_pb2_grpc, core_pb2
from tests.control.conftest import Daemons
from tests.store.cluster import wait_for

SERVICE = "navarch.v1.Scheduler"
T = TypeVar("T")


async def eventually(cond: Callable[[], Awaitable[T | None]], timeout: float,  # noqa: ASYNC109
                     what: str) -> T:
    """Poll the async ``cond`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def make_node(name: str) -> core_pb2.Node:
    n = core_pb2.Node()
    n.metadata.name = name
    n.metadata.labels["kubernetes.io/hostname"] = name
    for field in (n.status.capacity, n.status.allocatable):
        field.update({"cpu": "2", "memory": "4Gi", "pods": "10"})
    c = n.status.conditions.add()
    c.type, c.status, c.reason = "Ready", "True", "KubeletReady"
    return n


def make_pod(ns: str, name: str, cpu: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, ns
    c = p.spec.containers.add(name="app", image="localhost/pause:1")
    c.resources.requests.update({"cpu": cpu, "memory": "100Mi"})
    return p


@pytest.mark.asyncio
async def test_scheduler_binds_pods_reports_failures_and_explains(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    proc = daemons.start("scheduler", "--lease-name", f"sched-{ns}",
                         "--leader-elect-lease-duration", "3",
                         "--leader-elect-renew-deadline", "2",
                         "--leader-elect-retry-period", "0.5")
    wait_for(lambda: proc.serving(SERVICE), 20, "the scheduler to lead")
    nodes = [f"{ns}-n{i}" for i in range(3)]
    for name in nodes:
        await client.nodes().create(make_node(name))
    pods = client.pods(ns)
    for i in range(4):
        await pods.create(make_pod(ns, f"p{i}", "500m"))

    async def all_bound() -> list[str] | None:
        placed = [(await pods.get(f"p{i}")).spec.node_name for i in range(4)]
        return placed if all(placed) else None

    placed = await eventually(all_bound, 20, "4 pods bound")
    assert set(placed) <= set(nodes)
    assert len(set(placed)) >= 2  # LeastAllocated spreads them

    await pods.create(make_pod(ns, "big", "16"))
    message = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
               "available: 3 Preemption is not helpful for scheduling.")

    async def failed() -> list[str] | None:
        listed = await client.events(ns).list()
        found = [e.message for e in listed.items
                 if e.involved_object.name == "big" and e.reason == "FailedScheduling"]
        return found or None

    assert (await eventually(failed, 20, "a FailedScheduling event")) == [message]

    async def condition() -> list[tuple[str, str, str]] | None:
        big = await pods.get("big")
        assert not big.spec.node_name
        found = [(c.status, c.reason, c.message) for c in big.status.conditions
                 if c.type == "PodScheduled"]
        return found or None

    assert (await eventually(condition, 20, "the PodScheduled condition")) == [
        ("False", "Unschedulable", message)]
    scheduled = [e.message for e in (await client.events(ns).list()).items
                 if e.reason == "Scheduled" and e.involved_object.name == "p0"]
    assert scheduled == [f"Successfully assigned {ns}/p0 to {placed[0]}"]

    async with grpc.aio.insecure_channel(proc.address) as channel:
        stub = control_pb2_grpc.SchedulerStub(channel)  # type: ignore[no-untyped-call]
        out = await stub.Explain(control_pb2.ExplainRequest(namespace=ns, name="big"))
        assert out.pod == f"{ns}/big" and out.selected_node == ""
        assert out.message == "0/3 nodes are available: 3 Insufficient cpu."
        assert [v.node for v in out.nodes] == sorted(nodes)
        assert all(v.filters[-1].reasons == ["Insufficient cpu"] for v in out.nodes)
        what_if = await stub.Explain(control_pb2.ExplainRequest(
            pod=make_pod(ns, "small", "100m")))
        assert what_if.selected_node in nodes
        assert all(v.feasible and v.total_score > 0 for v in what_if.nodes)
        status = await stub.Status(control_pb2.SchedulerStatusRequest())
        assert status.nodes == 3 and status.bound == 4
        assert status.unschedulable_pods + status.backoff_pods + status.active_pods <= 1
        assert status.scheduler_name == "default-scheduler" and status.election.leader
