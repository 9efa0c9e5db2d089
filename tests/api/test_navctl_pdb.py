"""navctl and PodDisruptionBudgets end to end, against a real API server: ``create
poddisruptionbudget``, ``get pdb``, ``describe pdb``, and ``drain`` evicting through the
Eviction API, which the budget can refuse.

No controller manager runs here, so the tests write the budget's status themselves,
through the status subresource, as the disruption controller would (observedGeneration =
generation); and no kubelet, so pods are made Running and Ready the same way and are
removed with ``--grace-period=0``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import yaml

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl
from tests.api.util import obj

REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def cells(line: str) -> list[str]:
    """The cells of a table line (cells are at least 3 spaces apart)."""
    return re.split(r"\s{3,}", line.strip())


async def set_budget_status(client: navarch.Client, ns: str, name: str, *, allowed: int,
                            current: int, desired: int, expected: int) -> None:
    """The status the disruption controller would write."""
    budgets = client.poddisruptionbudgets(ns)
    budget = await budgets.get(name)
    status = budget.status
    status.observed_generation = budget.metadata.generation
    status.disruptions_allowed, status.current_healthy = allowed, current
    status.desired_healthy, status.expected_pods = desired, expected
    await budgets.update_status(budget)


# --- create / get / describe -------------------------------------------------------------------

async def test_create_get_and_describe_pdb(apiserver: ApiServerProcess,
                                           client: navarch.Client, ns: str) -> None:
    made = await navctl(apiserver, "-n", ns, "create", "poddisruptionbudget", "my-pdb",
                        "--selector=app=rails", "--min-available=1")
    assert (made.code, made.out, made.err) == (
        0, "poddisruptionbudget.policy/my-pdb created\n", "")
    stored = await client.poddisruptionbudgets(ns).get("my-pdb")
    assert (stored.spec.min_available, stored.spec.max_unavailable,
            dict(stored.spec.selector.match_labels)) == ("1", "", {"app": "rails"})
    half = await navctl(apiserver, "-n", ns, "create", "pdb", "half",
                        "--selector=app=nginx,tier in (web)", "--max-unavailable=50%")
    assert half.out == "poddisruptionbudget.policy/half created\n"
    stored = await client.poddisruptionbudgets(ns).get("half")
    assert (stored.spec.min_available, stored.spec.max_unavailable) == ("", "50%")
    assert [(r.key, r.operator, list(r.values))
            for r in stored.spec.selector.match_expressions] == [("tier", "In", ["web"])]

    again = await navctl(apiserver, "-n", ns, "create", "pdb", "my-pdb",
                         "--selector=app=rails", "--min-available=1")
    assert (again.code, again.out, again.err) == (
        1, "", "error: failed to create poddisruptionbudgets: poddisruptionbudgets.policy "
               '"my-pdb" already exists\n')

    await set_budget_status(client, ns, "my-pdb", allowed=1, current=2, desired=1,
                            expected=2)
    table = await navctl(apiserver, "-n", ns, "get", "pdb")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert cells(lines[0]) == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                               "ALLOWED DISRUPTIONS", "AGE"]
    assert [cells(line)[:4] for line in lines[1:]] == [["half", "N/A", "50%", "0"],
                                                       ["my-pdb", "1", "N/A", "1"]]

    described = await navctl(apiserver, "-n", ns, "describe", "pdb", "my-pdb")
    assert (described.code, described.out.splitlines()) == (0, [
        "Name:           my-pdb",
        f"Namespace:      {ns}",
        "Min available:  1",
        "Selector:       app=rails",
        "Status:",
        "    Allowed disruptions:  1",
        "    Current:              2",
        "    Desired:              1",
        "    Total:                2",
        "Events:                   <none>",
    ])
    described = await navctl(apiserver, "-n", ns, "describe", "poddisruptionbudgets/half")
    assert described.out.splitlines()[2:4] == ["Max unavailable:  50%",
                                               "Selector:         app=nginx,tier in (web)"]


async def test_create_pdb_dry_runs_and_refusals(apiserver: ApiServerProcess,
                                                client: navarch.Client, ns: str) -> None:
    shown = await navctl(apiserver, "-n", ns, "create", "pdb", "dry", "--selector=app=web",
                         "--min-available=50%", "--dry-run=client", "-o", "yaml")
    assert shown.code == 0, shown.err
    doc = yaml.safe_load(shown.out)
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"], doc["spec"]) == (
        "policy/v1", "PodDisruptionBudget", "dry",
        {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}})
    server = await navctl(apiserver, "-n", ns, "create", "pdb", "dry", "--selector=app=web",
                          "--max-unavailable=1", "--dry-run=server")
    assert (server.code, server.out) == (
        0, "poddisruptionbudget.policy/dry created (server dry run)\n")
    with pytest.raises(navarch.NotFound):
        await client.poddisruptionbudgets(ns).get("dry")

    for flags, why in (
            (["--min-available=1"], "a selector must be specified"),
            (["--selector=app=web"],
             "one of min-available or max-unavailable must be specified"),
            (["--selector=app=web", "--min-available=1", "--max-unavailable=1"],
             "min-available and max-unavailable cannot be both specified"),
            (["--selector=app=web", "--min-available=1Gi"],
             "invalid format specified for min-available"),
            (["--selector=app!=web", "--min-available=1"],
             '"!=" is not a valid label selector operator')):
        refused = await navctl(apiserver, "-n", ns, "create", "pdb", "bad", *flags)
        assert (refused.code, refused.out, refused.err) == (1, "", f"error: {why}\n")
    assert not (await client.poddisruptionbudgets(ns).list()).items


# --- drain through the Eviction API ---------------------------------------------------------

async def ready_pod(client: navarch.Client, ns: str, name: str, node: str) -> Any:
    """A ReplicaSet's pod labelled app=web, bound to ``node``, Running and Ready."""
    pods = client.pods(ns)
    await pods.create(obj({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": "web", "uid": str(uuid.uuid4()),
                                          "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))
    pod = await pods.get(name)
    pod.status.phase = "Running"
    pod.status.conditions.add(type="Ready", status="True")
    return await pods.update_status(pod)


async def budgeted_node(client: navarch.Client, ns: str, *, allowed: int) -> str:
    """A node running web-1, whose budget (minAvailable 1 of app=web) allows ``allowed``
    disruptions."""
    node = f"n-{uuid.uuid4().hex[:8]}"
    await client.nodes().create(obj({"apiVersion": "v1", "kind": "Node",
                                     "metadata": {"name": node}}))
    await ready_pod(client, ns, "web-1", node)
    await client.poddisruptionbudgets(ns).create(obj({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}))
    await set_budget_status(client, ns, "web", allowed=allowed, current=1 + allowed,
                            desired=1, expected=1 + allowed)
    return node


async def test_drain_retries_while_the_budget_refuses_until_its_timeout(
        apiserver: ApiServerProcess, client: navarch.Client, ns: str) -> None:
    node = await budgeted_node(client, ns, allowed=0)
    drained = await navctl(apiserver, "drain", node, "--grace-period=0", "--timeout=2s")
    assert drained.code == 1
    # refused at once; the retry sleeps until the deadline; then kubectl's loop says
    # "evicting" once more and gives up
    assert drained.out.splitlines() == [f"node/{node} cordoned",
                                        f"evicting pod {ns}/web-1", f"evicting pod {ns}/web-1"]
    problem = f'error when evicting pods/"web-1" -n "{ns}": global timeout reached: 2s'
    assert drained.err.splitlines() == [
        f'error when evicting pods/"web-1" -n "{ns}" (will retry after 5s): {REFUSED} The '
        "disruption budget web needs 1 healthy pods and has 1 currently.",
        f'There are pending pods in node "{node}" when an error occurred: {problem}',
        "pod/web-1",
        f'error: unable to drain node "{node}" due to error: {problem}, continuing '
        "command...",
        "There are pending nodes to be drained:",
        f" {node}",
        f"error: {problem}",
    ]
    pod = await client.pods(ns).get("web-1")
    assert not pod.metadata.HasField("deletion_timestamp")

    # --disable-eviction deletes without asking the budget
    deleted = await navctl(apiserver, "drain", node, "--grace-period=0", "--timeout=30s",
                           "--disable-eviction")
    assert (deleted.code, deleted.err) == (0, "")
    assert deleted.out.splitlines() == [f"node/{node} already cordoned", "pod/web-1 deleted",
                                        f"node/{node} drained"]
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("web-1")


async def test_drain_evicts_what_the_budget_allows(apiserver: ApiServerProcess,
                                                   client: navarch.Client, ns: str) -> None:
    node = await budgeted_node(client, ns, allowed=1)
    dry = await navctl(apiserver, "drain", node, "--grace-period=0", "--dry-run=server")
    assert (dry.code, dry.err) == (0, "")
    assert dry.out.splitlines() == [f"node/{node} cordoned (server dry run)",
                                    f"evicting pod {ns}/web-1 (server dry run)",
                                    f"node/{node} drained (server dry run)"]
    assert (await client.poddisruptionbudgets(ns).get("web")).status.disruptions_allowed == 1
    await client.pods(ns).get("web-1")

    drained = await navctl(apiserver, "drain", node, "--grace-period=0", "--timeout=30s")
    assert (drained.code, drained.err) == (0, "")
    assert drained.out.splitlines() == [f"node/{node} cordoned", f"evicting pod {ns}/web-1",
                                        "pod/web-1 evicted", f"node/{node} drained"]
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("web-1")
    budget = await client.poddisruptionbudgets(ns).get("web")
    assert budget.status.disruptions_allowed == 0
    assert list(budget.status.disrupted_pods) == ["web-1"]
