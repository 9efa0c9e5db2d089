"""The bootstrap RBAC policy (services/apiserver/bootstrap_rbac.py) reconciled through
Resources over a real store: every object created and valid, a second run writes
nothing, what is taken away by hand comes back (and what users added stays), autoupdate
"false" is respected, and two API servers reconciling at once both succeed.

The objects are cluster-scoped with fixed names, so each test starts by deleting every
ClusterRole and ClusterRoleBinding of the module's store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from navarch.v1 import rbac_pb2
from services.apiserver import defaults, validation
from services.apiserver.bootstrap_rbac import (
    AUTOUPDATE_ANNOTATION,
    cluster_role_bindings,
    cluster_roles,
    ensure_bootstrap_policy,
)
from services.apiserver.rbac import uncovered
from services.apiserver.resources import Resources
from services.apiserver.storage import EtcdStore
from tests.store.cluster import StoreCluster

ROLES = {r.metadata.name: r for r in cluster_roles()}
BINDINGS = {b.metadata.name: b for b in cluster_role_bindings()}


@pytest_asyncio.fixture
async def resources(store: StoreCluster) -> AsyncIterator[Resources]:
    db = EtcdStore(store.endpoints)
    res = Resources(db)
    await res.start()
    try:
        for resource in ("clusterrolebindings", "clusterroles"):
            for name in await _names(res, resource):
                await res.delete(resource, "", name)
        yield res
    finally:
        await res.stop()
        await db.close()


async def _names(res: Resources, resource: str) -> list[str]:
    listed = await res.list(resource)
    message = rbac_pb2.ClusterRole if resource == "clusterroles" else rbac_pb2.ClusterRoleBinding
    return [message.FromString(item).metadata.name for item in listed.items]


async def _versions(res: Resources) -> dict[str, str]:
    out = {}
    for resource in ("clusterroles", "clusterrolebindings"):
        for name in await _names(res, resource):
            obj = await res.get(resource, "", name)
            out[f"{resource}/{name}"] = obj.metadata.resource_version
    return out


# --- the policy as data -------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "obj"),
                         [("ClusterRole", r) for r in cluster_roles()]
                         + [("ClusterRoleBinding", b) for b in cluster_role_bindings()],
                         ids=lambda v: v if isinstance(v, str) else v.metadata.name)
def test_every_bootstrap_object_is_valid_and_marked(kind: str, obj: Any) -> None:
    defaults.apply(kind, obj)
    assert validation.validate(kind, obj) == []
    assert obj.metadata.labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
    assert obj.metadata.annotations[AUTOUPDATE_ANNOTATION] == "true"


def test_every_binding_names_a_bootstrap_role() -> None:
    assert {b.role_ref.name for b in BINDINGS.values()} <= set(ROLES)


def test_cluster_admin_covers_every_bootstrap_rule() -> None:
    assert uncovered(list(ROLES["cluster-admin"].rules),
                     [r for role in ROLES.values() for r in role.rules]) == []


# --- reconciling over a store -------------------------------------------------------------

async def test_creates_the_policy_then_writes_nothing(resources: Resources) -> None:
    await ensure_bootstrap_policy(resources)
    for name, expected in ROLES.items():
        got = await resources.get("clusterroles", "", name)
        assert list(got.rules) == list(expected.rules), name
        assert got.aggregation_rule == expected.aggregation_rule, name
        assert dict(got.metadata.labels) == dict(expected.metadata.labels), name
        assert dict(got.metadata.annotations) == {AUTOUPDATE_ANNOTATION: "true"}, name
    for name, binding in BINDINGS.items():
        got = await resources.get("clusterrolebindings", "", name)
        assert got.role_ref == binding.role_ref, name
        assert list(got.subjects) == list(binding.subjects), name
    admins = await resources.get("clusterrolebindings", "", "cluster-admin")
    assert [(s.kind, s.name) for s in admins.subjects] == [("Group", "system:masters")]

    before = await _versions(resources)
    assert len(before) == len(ROLES) + len(BINDINGS)
    await ensure_bootstrap_policy(resources)
    assert await _versions(resources) == before


async def test_what_is_taken_away_comes_back_and_additions_stay(resources: Resources
                                                                ) -> None:
    await ensure_bootstrap_policy(resources)
    node = await resources.get("clusterroles", "", "system:node")
    taken = node.rules[0]
    del node.rules[0]
    node.rules.add(verbs=["get"], api_groups=[""], resources=["persistentvolumes"])
    node.metadata.labels["team"] = "platform"
    del node.metadata.labels["kubernetes.io/bootstrapping"]
    await resources.update("clusterroles", "", node)
    binding = await resources.get("clusterrolebindings", "", "system:public-info-viewer")
    del binding.subjects[0]
    binding.subjects.add(kind="User", api_group="rbac.authorization.k8s.io", name="alice")
    await resources.update("clusterrolebindings", "", binding)
    admin = await resources.get("clusterroles", "", "cluster-admin")
    admin.aggregation_rule.cluster_role_selectors.add().match_labels["x"] = "y"
    await resources.update("clusterroles", "", admin)

    await ensure_bootstrap_policy(resources)
    node = await resources.get("clusterroles", "", "system:node")
    assert uncovered(list(node.rules), ROLES["system:node"].rules) == []
    assert node.rules[-1] == taken  # appended again
    assert node.rules[-2] == rbac_pb2.PolicyRule(
        verbs=["get"], api_groups=[""], resources=["persistentvolumes"])  # kept
    assert node.metadata.labels["team"] == "platform"
    assert node.metadata.labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
    binding = await resources.get("clusterrolebindings", "", "system:public-info-viewer")
    assert [s.name for s in binding.subjects] == [
        "system:unauthenticated", "alice", "system:authenticated"]
    admin = await resources.get("clusterroles", "", "cluster-admin")
    assert not admin.HasField("aggregation_rule")

    before = await _versions(resources)
    await ensure_bootstrap_policy(resources)
    assert await _versions(resources) == before


async def test_aggregated_rules_are_left_to_the_controller(resources: Resources) -> None:
    await ensure_bootstrap_policy(resources)
    view = await resources.get("clusterroles", "", "view")
    view.rules.extend(ROLES["system:aggregate-to-view"].rules)  # as the controller does
    await resources.update("clusterroles", "", view)
    before = await _versions(resources)
    await ensure_bootstrap_policy(resources)
    assert await _versions(resources) == before


async def test_autoupdate_false_is_respected(resources: Resources) -> None:
    await ensure_bootstrap_policy(resources)
    role = await resources.get("clusterroles", "", "system:kube-scheduler")
    role.metadata.annotations[AUTOUPDATE_ANNOTATION] = "false"
    del role.rules[:]
    await resources.update("clusterroles", "", role)
    binding = await resources.get("clusterrolebindings", "", "cluster-admin")
    binding.metadata.annotations[AUTOUPDATE_ANNOTATION] = "false"
    del binding.subjects[:]
    await resources.update("clusterrolebindings", "", binding)
    before = await _versions(resources)

    await ensure_bootstrap_policy(resources)
    assert await _versions(resources) == before
    assert not (await resources.get("clusterroles", "", "system:kube-scheduler")).rules
    assert not (await resources.get("clusterrolebindings", "", "cluster-admin")).subjects


async def test_a_binding_with_another_role_is_recreated(resources: Resources) -> None:
    await ensure_bootstrap_policy(resources)
    await resources.delete("clusterrolebindings", "", "system:kube-dns")
    await resources.create("clusterrolebindings", "", rbac_pb2.ClusterRoleBinding(
        metadata={"name": "system:kube-dns"},
        role_ref={"kind": "ClusterRole", "name": "view"},
        subjects=[{"kind": "User", "name": "mallory"}]))
    await ensure_bootstrap_policy(resources)
    got = await resources.get("clusterrolebindings", "", "system:kube-dns")
    assert got.role_ref == BINDINGS["system:kube-dns"].role_ref
    assert list(got.subjects) == list(BINDINGS["system:kube-dns"].subjects)


async def test_api_servers_starting_together(resources: Resources,
                                             store: StoreCluster) -> None:
    dbs = [EtcdStore(store.endpoints) for _ in range(2)]
    servers = [Resources(db) for db in dbs]
    try:
        for res in servers:
            await res.start()
        await asyncio.gather(*(ensure_bootstrap_policy(r) for r in [resources, *servers]))
        assert len(await _versions(resources)) == len(ROLES) + len(BINDINGS)
        before = await _versions(resources)
        await asyncio.gather(*(ensure_bootstrap_policy(r) for r in servers))
        assert await _versions(resources) == before
    finally:
        for res in servers:
            await res.stop()
        for db in dbs:
            await db.close()
