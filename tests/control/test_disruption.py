"""The disruption controller as a process (``navarch controllers``) over the real API
server, with simulated nodes and the scheduler making pods Running and Ready:
PodDisruptionBudgets over a Deployment get Kubernetes' numbers, follow an eviction's
disruptedPods entry until the pod goes, follow spec changes; a budget over a bare pod
counts nothing, and one over DaemonSet pods (no scale) fails its sync."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import navarch
from tests.api.util import eventually, obj
from tests.control.conftest import Daemons
from tests.control.test_acceptance import (
    TEST_LABEL,
    control_plane,
    deployment,
    rolled_out,
    sim,
)

pytestmark = pytest.mark.asyncio


def budget(name: str, ns: str, app: str, **spec: Any) -> Any:
    return obj({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": app}}, **spec}})


def shape(pdb: Any) -> dict[str, Any]:
    """The status fields the controller computes, the condition as (status, reason)."""
    st = pdb.status
    cond = {c.type: c for c in st.conditions}.get("DisruptionAllowed")
    return {"allowed": st.disruptions_allowed, "healthy": st.current_healthy,
            "desired": st.desired_healthy, "expected": st.expected_pods,
            "current": st.observed_generation == pdb.metadata.generation,
            "condition": None if cond is None else (cond.status, cond.reason),
            "disrupted": sorted(st.disrupted_pods)}


async def status_is(client: navarch.Client, ns: str, name: str, want: dict[str, Any]) -> Any:
    """The budget once its status has ``want``'s values."""
    async def check() -> Any:
        pdb = await client.poddisruptionbudgets(ns).get(name)
        got = shape(pdb)
        return pdb if all(got[k] == v for k, v in want.items()) else None
    return await eventually(check, 60, f"budget {name} to have {want}")


async def has_event(client: navarch.Client, ns: str, name: str, reason: str) -> bool:
    """Whether an event about object ``name`` has ``reason``."""
    events = (await client.events(ns).list()).items
    return any(e.involved_object.name == name and e.reason == reason for e in events)


async def test_budgets_over_a_deployment_a_bare_pod_and_a_daemonset(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    sim(daemons, ns, 3, f"{ns}-")
    control_plane(daemons, "replicaset", "deployment", "daemonset", "disruption")
    await client.deployments(ns).create(deployment("web", ns, 3, "localhost/web:1"))
    await rolled_out(client, ns, "web", 3)
    budgets = client.poddisruptionbudgets(ns)

    # --- minAvailable 2 and maxUnavailable 34% over 3 Ready replicas ------------------------
    await budgets.create(budget("web-min", ns, "web", minAvailable=2))
    await budgets.create(budget("web-max", ns, "web", maxUnavailable="34%"))
    await status_is(client, ns, "web-min", {
        "allowed": 1, "healthy": 3, "desired": 2, "expected": 3, "current": True,
        "condition": ("True", "SufficientPods"), "disrupted": []})
    # 34% of 3 rounded up is 2 unavailable: 1 must stay healthy, 2 may go
    await status_is(client, ns, "web-max", {
        "allowed": 2, "healthy": 3, "desired": 1, "expected": 3, "current": True,
        "condition": ("True", "SufficientPods")})

    # --- an eviction as the API server records it: the pod stops counting ------------------
    victim = sorted(p.metadata.name for p in (await client.pods(ns).list()).items)[0]

    async def record_eviction() -> bool:
        pdb = await budgets.get("web-min")
        pdb.status.disruptions_allowed -= 1
        pdb.status.disrupted_pods[victim].GetCurrentTime()
        try:
            await budgets.update_status(pdb)
        except navarch.Conflict:
            return False  # the controller wrote in between: read again
        return True
    await eventually(record_eviction, 20, "the eviction to be recorded")
    await status_is(client, ns, "web-min", {
        "allowed": 0, "healthy": 2, "desired": 2, "condition": ("False", "InsufficientPods"),
        "disrupted": [victim]})
    await status_is(client, ns, "web-max", {"allowed": 2, "healthy": 3, "disrupted": []})

    # the pod goes: its entry is dropped; the replacement makes the budget whole again
    await client.pods(ns).delete(victim)
    await status_is(client, ns, "web-min", {
        "allowed": 1, "healthy": 3, "expected": 3, "disrupted": [],
        "condition": ("True", "SufficientPods")})

    # --- a spec change is observed -----------------------------------------------------------
    async def require_three() -> bool:
        pdb = await budgets.get("web-min")
        pdb.spec.min_available = "3"
        try:
            await budgets.update(pdb)
        except navarch.Conflict:
            return False  # the controller wrote the status in between: read again
        return True
    await eventually(require_three, 20, "minAvailable to be raised")
    await status_is(client, ns, "web-min", {
        "allowed": 0, "healthy": 3, "desired": 3, "current": True,
        "condition": ("False", "InsufficientPods")})

    # --- a bare pod with maxUnavailable: no controller, nothing expected --------------------
    await client.pods(ns).create(obj({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "lonely", "namespace": ns, "labels": {"app": "lonely"}},
        "spec": {"nodeSelector": {TEST_LABEL: ns},
                 "containers": [{"name": "c", "image": "localhost/lonely:1"}]}}))
    await budgets.create(budget("lonely", ns, "lonely", maxUnavailable=1))
    await status_is(client, ns, "lonely", {
        "allowed": 0, "healthy": 1, "desired": 0, "expected": 0, "current": True,
        "condition": ("False", "InsufficientPods")})
    await eventually(functools.partial(has_event, client, ns, "lonely", "UnmanagedPods"),
                     20, "the UnmanagedPods event")

    # --- DaemonSet pods with maxUnavailable: no scale subresource, the sync fails -----------
    labels = {"app": "agent"}
    await client.daemonsets(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": ns},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": {TEST_LABEL: ns},
                                       "containers": [{"name": "a",
                                                       "image": "localhost/agent:1"}]}}}}))
    await budgets.create(budget("agent", ns, "agent", maxUnavailable=1))
    failed = await status_is(client, ns, "agent", {"allowed": 0,
                                                   "condition": ("False", "SyncFailed")})
    cond = next(c for c in failed.status.conditions if c.type == "DisruptionAllowed")
    assert cond.message == "daemonsets.apps does not implement the scale subresource"
    await eventually(functools.partial(has_event, client, ns, "agent",
                                       "CalculateExpectedPodCountFailed"), 20,
                     "the CalculateExpectedPodCountFailed event")


async def test_evictions_keep_the_budget_through_the_replacement(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    """The eviction API, the disruption controller, the ReplicaSet controller, the
    scheduler and the nodes together: with 2 replicas and minAvailable 1, one pod may go;
    the other only once its replacement is Ready."""
    sim(daemons, ns, 2, f"{ns}-")
    control_plane(daemons, "replicaset", "deployment", "disruption")
    await client.deployments(ns).create(deployment("web", ns, 2, "localhost/web:1"))
    await rolled_out(client, ns, "web", 2)
    await client.poddisruptionbudgets(ns).create(budget("web", ns, "web", minAvailable=1))
    await status_is(client, ns, "web", {"allowed": 1, "healthy": 2, "current": True})
    first, second = sorted(p.metadata.name for p in (await client.pods(ns).list()).items)

    evicted = await client.evict(ns, first)
    cond = next(c for c in evicted.status.conditions if c.type == "DisruptionTarget")
    assert (cond.status, cond.reason) == ("True", "EvictionByEvictionAPI")
    with pytest.raises(navarch.TooManyRequests,
                       match="The disruption budget web needs 1 healthy pods"):
        await client.evict(ns, second)

    async def second_evicted() -> bool:
        try:
            await client.evict(ns, second)
        except navarch.TooManyRequests:
            return False  # the replacement is not Ready yet: retry, as drain does
        return True
    await eventually(second_evicted, 60, "the budget to allow the second eviction")

    async def replaced() -> set[str] | None:
        # the Deployment's status may still count the pod just evicted: look at the pods
        live = {p.metadata.name for p in (await client.pods(ns).list()).items
                if not p.metadata.HasField("deletion_timestamp")}
        return live if len(live) == 2 else None
    live = await eventually(replaced, 60, "two replacements")
    assert not live & {first, second}
