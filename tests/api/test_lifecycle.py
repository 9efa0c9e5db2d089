"""Deletion (immediate, graceful, finalizers, preconditions) and namespace lifecycle."""

from __future__ import annotations

import pytest

import navarch
from tests.api.util import configmap, pod


async def test_delete_is_immediate_without_grace_or_finalizers(client: navarch.Client,
                                                               ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns))
    last = await cms.delete("c")
    assert last.metadata.uid == created.metadata.uid
    assert int(last.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(navarch.NotFound):
        await cms.get("c")
    with pytest.raises(navarch.NotFound):
        await cms.delete("c")


async def test_unbound_pod_is_deleted_at_once(client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("p", ns))
    await client.pods(ns).delete("p")
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("p")


async def test_bound_pod_is_deleted_gracefully(client: navarch.Client, ns: str) -> None:
    pods = client.pods(ns)
    await pods.create(pod("p", ns))
    await client.bind(ns, "p", "node-1")
    marked = await pods.delete("p")
    assert marked.metadata.HasField("deletion_timestamp")
    assert marked.metadata.deletion_grace_period_seconds == 30
    still = await pods.get("p")
    assert still.metadata.deletion_timestamp == marked.metadata.deletion_timestamp
    shorter = await pods.delete("p", grace_period_seconds=5)
    assert shorter.metadata.deletion_grace_period_seconds == 5
    longer = await pods.delete("p", grace_period_seconds=60)  # cannot be extended
    assert longer.metadata.deletion_grace_period_seconds == 5
    await pods.delete("p", grace_period_seconds=0)
    with pytest.raises(navarch.NotFound):
        await pods.get("p")


async def test_finalizers_hold_deletion_until_removed(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    body = configmap("c", ns)
    body.metadata.finalizers.append("example.com/cleanup")
    await cms.create(body)
    marked = await cms.delete("c")
    assert marked.metadata.HasField("deletion_timestamp")
    current = await cms.get("c")
    current.metadata.finalizers.append("example.com/another")
    with pytest.raises(navarch.Invalid, match="no new finalizers"):
        await cms.update(current)
    await cms.patch("c", {"metadata": {"finalizers": None}})
    with pytest.raises(navarch.NotFound):
        await cms.get("c")


@pytest.mark.parametrize(("policy", "finalizer"), [
    ("Orphan", "orphan"), ("Foreground", "foregroundDeletion"),
])
async def test_propagation_policy_adds_gc_finalizer(client: navarch.Client, ns: str,
                                                    policy: str, finalizer: str) -> None:
    cms = client.configmaps(ns)
    await cms.create(configmap("c", ns))
    marked = await cms.delete("c", propagation_policy=policy)
    assert list(marked.metadata.finalizers) == [finalizer]
    assert (await cms.get("c")).metadata.HasField("deletion_timestamp")


async def test_bad_propagation_policy(client: navarch.Client, ns: str) -> None:
    await client.configmaps(ns).create(configmap("c", ns))
    with pytest.raises(navarch.Invalid, match="Unsupported value"):
        await client.configmaps(ns).delete("c", propagation_policy="Sometimes")
    await client.configmaps(ns).get("c")


async def test_delete_preconditions(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns))
    with pytest.raises(navarch.Conflict, match="Precondition failed: UID"):
        await cms.delete("c", uid="something-else")
    await cms.patch("c", {"data": {"k": "2"}})
    with pytest.raises(navarch.Conflict, match="Precondition failed: ResourceVersion"):
        await cms.delete("c", resource_version=created.metadata.resource_version)
    await cms.delete("c", uid=created.metadata.uid)


async def test_system_namespaces_exist(client: navarch.Client) -> None:
    names = {n.metadata.name for n in (await client.namespaces().list()).items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    default = await client.namespaces().get("default")
    assert default.status.phase == "Active"


async def test_terminating_namespace_refuses_new_content(client: navarch.Client) -> None:
    body = navarch.v1.core_pb2.Namespace()
    body.metadata.name = "doomed"
    await client.namespaces().create(body)
    await client.configmaps("doomed").create(configmap("before", "doomed"))
    marked = await client.namespaces().delete("doomed")
    assert marked.status.phase == "Terminating"
    assert marked.metadata.HasField("deletion_timestamp")
    with pytest.raises(navarch.Forbidden, match="because it is being terminated"):
        await client.configmaps("doomed").create(configmap("after", "doomed"))
    await client.configmaps("doomed").get("before")  # emptying it is the controller's job


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_system_namespaces_may_not_be_deleted(client: navarch.Client, name: str) -> None:
    for dry_run in (True, False):
        with pytest.raises(navarch.Forbidden, match=f'namespaces "{name}" is forbidden: '
                           "this namespace may not be deleted"):
            await client.namespaces().delete(name, dry_run=dry_run)
    still = await client.namespaces().get(name)
    assert not still.metadata.HasField("deletion_timestamp")
    assert still.status.phase == "Active"
