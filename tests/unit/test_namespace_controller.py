"""The Namespace controller: cleanup_plan (table-driven) and the controller over a fake
API (empties a terminating namespace, waits for graceful deletions, then finalizes)."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import core_pb2
from services.controllers.namespace import (
    FINALIZER,
    NamespaceController,
    cleanup_plan,
    namespaced_kinds,
)
from tests.unit.workload_harness import Harness


def obj(name: str, *, deleting: bool = False, finalizers: tuple[str, ...] = ()) -> Any:
    cm = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    cm.metadata.name, cm.metadata.namespace, cm.metadata.uid = name, "doomed", f"u-{name}"
    cm.metadata.finalizers.extend(finalizers)
    if deleting:
        cm.metadata.deletion_timestamp.FromSeconds(1)
    return cm


@pytest.mark.parametrize(("contents", "failures", "delete", "remaining", "conditions"), [
    ({}, (), [], {}, {"NamespaceDeletionContentFailure": "False",
                      "NamespaceContentRemaining": "False",
                      "NamespaceFinalizersRemaining": "False"}),
    ({"configmaps": [obj("a"), obj("b", deleting=True, finalizers=("x.io/f",))]}, (),
     [("configmaps", "a", "u-a")], {"configmaps": 2},
     {"NamespaceDeletionContentFailure": "False", "NamespaceContentRemaining": "True",
      "NamespaceFinalizersRemaining": "True"}),
    ({"pods": [obj("p", deleting=True)]}, ("pods",), [], {"pods": 1},
     {"NamespaceDeletionContentFailure": "True", "NamespaceContentRemaining": "True",
      "NamespaceFinalizersRemaining": "False"}),
])
def test_cleanup_plan(contents: dict[str, list[Any]], failures: tuple[str, ...],
                      delete: list[tuple[str, str, str]], remaining: dict[str, int],
                      conditions: dict[str, str]) -> None:
    plan = cleanup_plan(contents, failures)
    assert list(plan.delete) == delete
    assert dict(plan.remaining) == remaining
    assert plan.empty == (not remaining)
    assert {c.type: c.status for c in plan.conditions} == conditions


def test_namespaced_kinds_cover_the_served_namespaced_kinds() -> None:
    names = {k.resource for k in namespaced_kinds()}
    assert {"pods", "configmaps", "deployments", "leases", "podmetrics"} <= names
    assert not {"namespaces", "nodes", "persistentvolumes"} & names


@pytest.mark.asyncio
async def test_terminating_namespace_is_emptied_then_finalized() -> None:
    ns = core_pb2.Namespace(api_version="v1", kind="Namespace")
    ns.metadata.name = "doomed"
    ns.spec.finalizers.append(FINALIZER)
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name, pod.metadata.namespace = "p", "doomed"
    pod.metadata.finalizers.append("x.io/hold")  # stands in for a grace period
    h = Harness(NamespaceController, [ns, obj("a"), pod])
    await h.start()
    try:
        assert h.client.writes() == []  # not terminating: nothing to do
        marked = await h.client.namespaces().get("doomed")  # as the API server marks it
        marked.metadata.deletion_timestamp.FromSeconds(int(h.clock.now()))
        marked.status.phase = "Terminating"
        h.client.seed(marked)
        await h.step()
        assert ("delete", "configmaps", "doomed/a") in h.client.writes()
        assert ("delete", "pods", "doomed/p") in h.client.writes()
        stored = h.client.stored("namespaces")[0]
        assert list(stored.spec.finalizers) == [FINALIZER]
        conds = {c.type: c.status for c in stored.status.conditions}
        assert conds["NamespaceContentRemaining"] == "True"
        held = await h.client.pods("doomed").get("p")
        del held.metadata.finalizers[:]
        await h.client.pods("doomed").update(held)  # the "kubelet" finishes
        await h.advance(2)
        finalized = [a for a in h.client.actions if a.resource == "namespaces"
                     and a.verb == "update" and not a.subresource]
        assert finalized and list(finalized[-1].obj.spec.finalizers) == []  # type: ignore[union-attr]
        assert h.client.stored("namespaces") == []
    finally:
        await h.stop()
