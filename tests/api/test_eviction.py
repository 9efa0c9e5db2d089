"""pods/eviction and PodDisruptionBudgets, against a real API server on both stores.

No disruption controller runs here: each test writes the budget's status itself (as the
controller would), so that what the eviction decides follows from the status alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

import navarch
from navarch.v1 import api_pb2, policy_pb2
from tests.api.util import obj, pod

REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


async def running_pod(client: navarch.Client, ns: str, name: str, *, ready: bool = True,
                      labels: dict[str, str] | None = None) -> Any:
    """A pod bound to a node, Running, Ready or not."""
    pods = client.pods(ns)
    await pods.create(pod(name, ns, labels={"app": "web"} if labels is None else labels))
    bound = await client.bind(ns, name, "node-1")
    bound.status.phase = "Running"
    bound.status.conditions.add(type="Ready", status="True" if ready else "False")
    return await pods.update_status(bound)


async def budget(client: navarch.Client, ns: str, name: str = "web", *, allowed: int,
                 healthy: int = 3, desired: int = 2, selector: dict[str, str] | None = None,
                 policy: str = "", observed: bool = True) -> Any:
    """A budget selecting app=web, with the status the controller would have written."""
    spec: dict[str, Any] = {"minAvailable": desired,
                            "selector": {"matchLabels": selector or {"app": "web"}}}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    pdbs = client.poddisruptionbudgets(ns)
    created = await pdbs.create(obj({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                     "metadata": {"name": name, "namespace": ns},
                                     "spec": spec}))
    status = created.status
    status.observed_generation = created.metadata.generation if observed else 0
    status.disruptions_allowed = allowed
    status.current_healthy = healthy
    status.desired_healthy = desired
    status.expected_pods = healthy
    return await pdbs.update_status(created)


def disruption_target(p: Any) -> Any:
    return next((c for c in p.status.conditions if c.type == "DisruptionTarget"), None)


async def test_eviction_without_a_budget_deletes_gracefully(client: navarch.Client,
                                                            ns: str) -> None:
    await running_pod(client, ns, "a")
    last = await client.evict(ns, "a")
    assert last.metadata.HasField("deletion_timestamp")
    assert last.metadata.deletion_grace_period_seconds == 30
    stored = await client.pods(ns).get("a")
    cond = disruption_target(stored)
    assert (cond.status, cond.reason, cond.message) == (
        "True", "EvictionByEvictionAPI", "Eviction API: evicting")
    # Evicting it again changes nothing, and a shorter grace period still applies.
    again = await client.evict(ns, "a")
    assert again.metadata.resource_version == stored.metadata.resource_version
    await client.evict(ns, "a", grace_period_seconds=0)
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("a")
    with pytest.raises(navarch.NotFound):
        await client.evict(ns, "a")


async def test_budget_with_no_disruption_left_refuses(client: navarch.Client, ns: str) -> None:
    await running_pod(client, ns, "a")
    before = await budget(client, ns, allowed=0, healthy=2, desired=2)
    with pytest.raises(navarch.TooManyRequests) as err:
        await client.evict(ns, "a")
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.message == (f"{REFUSED} The disruption budget web needs 2 healthy pods "
                                 "and has 2 currently.")
    kept = await client.pods(ns).get("a")
    assert not kept.metadata.HasField("deletion_timestamp")
    assert disruption_target(kept) is None
    after = await client.poddisruptionbudgets(ns).get("web")
    assert after.metadata.resource_version == before.metadata.resource_version


async def test_eviction_takes_one_disruption_in_the_same_write(client: navarch.Client,
                                                               ns: str) -> None:
    await running_pod(client, ns, "a")
    await running_pod(client, ns, "b")
    await budget(client, ns, allowed=1)
    last = await client.evict(ns, "a")
    assert last.metadata.HasField("deletion_timestamp")
    pdb = await client.poddisruptionbudgets(ns).get("web")
    assert pdb.status.disruptions_allowed == 0
    assert list(pdb.status.disrupted_pods) == ["a"]
    assert pdb.status.disrupted_pods["a"].seconds == last.metadata.deletion_timestamp.seconds - 30
    cond = next(c for c in pdb.status.conditions if c.type == "DisruptionAllowed")
    assert (cond.status, cond.reason) == ("False", "InsufficientPods")
    # The pod and the budget changed in one store transaction: one revision.
    assert pdb.metadata.resource_version == last.metadata.resource_version
    with pytest.raises(navarch.TooManyRequests):
        await client.evict(ns, "b")


async def test_racing_evictions_take_the_last_disruption_once(client: navarch.Client,
                                                              ns: str) -> None:
    names = [f"p{i}" for i in range(6)]
    for name in names:
        await running_pod(client, ns, name)
    await budget(client, ns, allowed=1, healthy=6, desired=5)
    results = await asyncio.gather(*(client.evict(ns, n) for n in names),
                                   return_exceptions=True)
    evicted = [n for n, r in zip(names, results, strict=True) if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, navarch.TooManyRequests)]
    assert len(evicted) == 1 and len(refused) == 5, results
    pdb = await client.poddisruptionbudgets(ns).get("web")
    assert list(pdb.status.disrupted_pods) == evicted
    deleting = [p.metadata.name for p in (await client.pods(ns).list()).items
                if p.metadata.HasField("deletion_timestamp")]
    assert deleting == evicted


async def test_budget_not_yet_observed_refuses(client: navarch.Client, ns: str) -> None:
    await running_pod(client, ns, "a")
    await budget(client, ns, allowed=3, observed=False)
    with pytest.raises(navarch.TooManyRequests) as err:
        await client.evict(ns, "a")
    assert err.value.message == (f"{REFUSED} The disruption budget web is still being "
                                 "processed by the server.")


async def test_pods_that_disrupt_nothing_more_ignore_the_budget(client: navarch.Client,
                                                                ns: str) -> None:
    await budget(client, ns, allowed=0, healthy=2, desired=2)
    await client.pods(ns).create(pod("pending", ns, labels={"app": "web"}))
    await client.evict(ns, "pending")  # unbound: deleted at once
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("pending")
    done = await running_pod(client, ns, "done")
    done.status.phase = "Succeeded"
    await client.pods(ns).update_status(done)
    marked = await client.evict(ns, "done")
    assert marked.metadata.HasField("deletion_timestamp")


@pytest.mark.parametrize(("policy", "healthy", "evicted"), [
    ("", 2, True),                 # IfHealthyBudget: the application has what it needs
    ("IfHealthyBudget", 1, False),  # ... or not
    ("AlwaysAllow", 1, True),
])
async def test_unready_pods_follow_the_unhealthy_pod_policy(
        client: navarch.Client, ns: str, policy: str, healthy: int, evicted: bool) -> None:
    await running_pod(client, ns, "sick", ready=False)
    before = await budget(client, ns, allowed=0, healthy=healthy, desired=2, policy=policy)
    if evicted:
        await client.evict(ns, "sick")
        assert (await client.pods(ns).get("sick")).metadata.HasField("deletion_timestamp")
    else:
        with pytest.raises(navarch.TooManyRequests):
            await client.evict(ns, "sick")
    after = await client.poddisruptionbudgets(ns).get("web")
    assert after.metadata.resource_version == before.metadata.resource_version


async def test_dry_run_changes_nothing(client: navarch.Client, ns: str) -> None:
    await running_pod(client, ns, "a")
    before = await budget(client, ns, allowed=1)
    would = await client.evict(ns, "a", dry_run=True)
    assert would.metadata.HasField("deletion_timestamp")
    assert not (await client.pods(ns).get("a")).metadata.HasField("deletion_timestamp")
    after = await client.poddisruptionbudgets(ns).get("web")
    assert after.metadata.resource_version == before.metadata.resource_version


async def test_two_budgets_for_one_pod_are_not_supported(client: navarch.Client,
                                                         ns: str) -> None:
    await running_pod(client, ns, "a", labels={"app": "web", "tier": "front"})
    await budget(client, ns, "web", allowed=1)
    await budget(client, ns, "front", allowed=1, selector={"tier": "front"})
    with pytest.raises(navarch.ApiError) as err:
        await client.evict(ns, "a")
    assert err.value.code == grpc.StatusCode.INTERNAL
    assert err.value.message == ("This pod has more than one PodDisruptionBudget, which the "
                                 "eviction subresource does not support.")


async def evict_request(client: navarch.Client, ns: str, name: str, eviction: Any) -> Any:
    req = api_pb2.CreateRequest(resource="pods", namespace=ns, name=name,
                                subresource="eviction")
    req.object.Pack(eviction)
    return await client.call("Create", req)


async def test_bad_evictions_are_refused_with_the_reason(client: navarch.Client,
                                                         ns: str) -> None:
    created = await running_pod(client, ns, "a")
    other = policy_pb2.Eviction(api_version="policy/v1", kind="Eviction")
    other.metadata.name = "b"
    with pytest.raises(navarch.Invalid, match="name in URL does not match name in Eviction"):
        await evict_request(client, ns, "a", other)
    bad_dry = policy_pb2.Eviction(api_version="policy/v1", kind="Eviction")
    bad_dry.delete_options.dry_run.append("Some")
    with pytest.raises(navarch.Invalid) as err:
        await evict_request(client, ns, "a", bad_dry)
    assert err.value.violations[0].field == "deleteOptions.dryRun"
    wrong_uid = policy_pb2.Eviction(api_version="policy/v1", kind="Eviction")
    wrong_uid.delete_options.preconditions.uid = "not-" + created.metadata.uid
    with pytest.raises(navarch.Conflict, match="Precondition failed: UID in precondition"):
        await evict_request(client, ns, "a", wrong_uid)
    with pytest.raises(navarch.Invalid, match=r"pods/eviction takes a navarch\.v1\.Eviction"):
        await evict_request(client, ns, "a", created)
    assert not (await client.pods(ns).get("a")).metadata.HasField("deletion_timestamp")


@pytest.mark.parametrize(("spec", "path", "words"), [
    ({"minAvailable": 1, "maxUnavailable": 1, "selector": {}}, "spec",
     "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": "150%"}, "spec.minAvailable", "must not be greater than 100%"),
    ({"maxUnavailable": -1}, "spec.maxUnavailable", "must be greater than or equal to 0"),
    ({"maxUnavailable": "half"}, "spec.maxUnavailable", "must be an integer or a percentage"),
    ({"selector": {"matchLabels": {"a b": "c"}}}, "spec.selector.matchLabels", ""),
    ({"unhealthyPodEvictionPolicy": "Never"}, "spec.unhealthyPodEvictionPolicy",
     'supported values: "AlwaysAllow", "IfHealthyBudget"'),
])
async def test_budget_validation_names_the_field(client: navarch.Client, ns: str,
                                                 spec: dict[str, Any], path: str,
                                                 words: str) -> None:
    doc = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "bad", "namespace": ns}, "spec": spec}
    with pytest.raises(navarch.Invalid) as err:
        await client.poddisruptionbudgets(ns).create(obj(doc))
    assert any(v.field.startswith(path) and words in v.description
               for v in err.value.violations), err.value.violations
    with pytest.raises(navarch.NotFound):
        await client.poddisruptionbudgets(ns).get("bad")


async def test_budget_spec_changes_bump_the_generation(client: navarch.Client, ns: str) -> None:
    created = await budget(client, ns, allowed=1)
    assert created.metadata.generation == 1
    assert created.status.observed_generation == 1
    changed = await client.poddisruptionbudgets(ns).patch(
        "web", {"spec": {"minAvailable": None, "maxUnavailable": "25%"}})
    assert changed.metadata.generation == 2
    assert (changed.spec.min_available, changed.spec.max_unavailable) == ("", "25%")
    assert changed.status.disruptions_allowed == 1  # status is the controller's to change
