"""Create, get, update, patch: identity, versions, conflicts, subresources, bad input."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import navarch
from tests.api.util import configmap, deployment, next_events, obj, pod


async def test_create_sets_identity_and_reads_back(client: navarch.Client, ns: str) -> None:
    created = await client.configmaps(ns).create(configmap("cfg", ns, {"a": "1"}))
    meta = created.metadata
    assert meta.uid and meta.resource_version.isdigit() and meta.creation_timestamp.seconds > 0
    assert created.api_version == "v1" and created.kind == "ConfigMap"
    got = await client.configmaps(ns).get("cfg")
    assert got == created
    assert dict(got.data) == {"a": "1"}


async def test_create_twice_is_already_exists(client: navarch.Client, ns: str) -> None:
    await client.configmaps(ns).create(configmap("dup", ns))
    with pytest.raises(navarch.AlreadyExists, match='configmaps "dup" already exists'):
        await client.configmaps(ns).create(configmap("dup", ns))


async def test_get_missing_is_not_found(client: navarch.Client, ns: str) -> None:
    with pytest.raises(navarch.NotFound, match='pods "nope" not found'):
        await client.pods(ns).get("nope")


async def test_errors_name_a_grouped_resource_with_its_group(client: navarch.Client,
                                                            ns: str) -> None:
    """As Kubernetes: ``deployments.apps "x" not found``, ``Deployment.apps "x" is
    invalid``; the core group has no suffix (above)."""
    deployments = client.deployments(ns)
    with pytest.raises(navarch.NotFound, match=r'^deployments\.apps "nope" not found$'):
        await deployments.get("nope")
    made = await deployments.create(deployment("web", ns))
    with pytest.raises(navarch.AlreadyExists,
                       match=r'^deployments\.apps "web" already exists$'):
        await deployments.create(deployment("web", ns))
    made.spec.replicas = -1
    with pytest.raises(navarch.Invalid, match=r'^Deployment\.apps "web" is invalid: '):
        await deployments.update(made)


async def test_create_in_missing_namespace_is_not_found(client: navarch.Client) -> None:
    with pytest.raises(navarch.NotFound, match='namespaces "no-such-ns" not found'):
        await client.configmaps("no-such-ns").create(configmap("c", "no-such-ns"))


async def test_namespace_mismatch_is_rejected(client: navarch.Client, ns: str) -> None:
    with pytest.raises(navarch.Invalid, match=r"does not match the namespace"):
        await client.configmaps(ns).create(configmap("c", "default"))


async def test_generate_name(client: navarch.Client, ns: str) -> None:
    body = configmap("", ns)
    body.metadata.generate_name = "web-"
    a = await client.configmaps(ns).create(body)
    b = await client.configmaps(ns).create(body)
    assert a.metadata.name.startswith("web-") and len(a.metadata.name) == 9
    assert a.metadata.name != b.metadata.name


async def test_invalid_object_names_every_bad_field(client: navarch.Client, ns: str) -> None:
    bad = obj({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "Bad_Name", "namespace": ns},
               "spec": {"containers": [{"name": "c"}]}})
    with pytest.raises(navarch.Invalid) as info:
        await client.pods(ns).create(bad)
    fields = {v.field for v in info.value.violations}
    assert "metadata.name" in fields
    assert "spec.containers[0].image" in fields
    assert 'Pod "Bad_Name" is invalid' in info.value.message
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("Bad_Name")


async def test_wrong_message_type_for_resource(client: navarch.Client, ns: str) -> None:
    with pytest.raises(navarch.Invalid, match=r"holds navarch\.v1\.Pod"):
        await client.resource("pods", ns).create(configmap("x", ns))


async def test_unknown_resource(client: navarch.Client) -> None:
    from navarch.v1 import api_pb2

    with pytest.raises(navarch.NotFound, match="doesn't have a resource type"):
        await client.call("Get", api_pb2.GetRequest(resource="widgets", name="x"))


async def test_update_conflict_on_stale_version(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    first = await cms.create(configmap("c", ns, {"v": "1"}))
    stale = type(first)()
    stale.CopyFrom(first)
    first.data["v"] = "2"
    second = await cms.update(first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    stale.data["v"] = "3"
    with pytest.raises(navarch.Conflict, match="the object has been modified"):
        await cms.update(stale)
    assert (await cms.get("c")).data["v"] == "2"


async def test_unconditional_update_and_noop(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns, {"v": "1"}))
    same = await cms.update(created)
    assert same.metadata.resource_version == created.metadata.resource_version
    created.metadata.resource_version = ""
    created.data["v"] = "2"
    updated = await cms.update(created)
    assert updated.data["v"] == "2"
    assert updated.metadata.uid == created.metadata.uid


async def test_update_cannot_change_identity(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns))
    created.metadata.uid = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(navarch.Invalid, match=r"metadata\.uid"):
        await cms.update(created)


async def test_generation_follows_spec_changes(client: navarch.Client, ns: str) -> None:
    deps = client.deployments(ns)
    d = await deps.create(deployment("web", ns))
    assert d.metadata.generation == 1
    d.metadata.labels["touched"] = "yes"
    d = await deps.update(d)
    assert d.metadata.generation == 1
    d.spec.replicas = 3
    d = await deps.update(d)
    assert d.metadata.generation == 2


async def test_status_subresource_separates_spec_and_status(client: navarch.Client,
                                                            ns: str) -> None:
    deps = client.deployments(ns)
    d = await deps.create(deployment("web", ns, replicas=2))
    d.status.replicas = 2
    d.spec.replicas = 5
    after_status = await deps.update_status(d)
    assert after_status.status.replicas == 2 and after_status.spec.replicas == 2
    after_status.status.replicas = 7
    after_status.spec.replicas = 4
    after_main = await deps.update(after_status)
    assert after_main.spec.replicas == 4 and after_main.status.replicas == 2


async def test_merge_patch_and_json_patch(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    await cms.create(configmap("c", ns, {"a": "1", "b": "2"}, labels={"x": "1"}))
    patched = await cms.patch("c", {"metadata": {"labels": {"y": "2", "x": None}},
                                    "data": {"b": None, "c": "3"}})
    assert dict(patched.metadata.labels) == {"y": "2"}
    assert dict(patched.data) == {"a": "1", "c": "3"}
    patched = await cms.patch("c", [{"op": "replace", "path": "/data/a", "value": "9"}],
                              patch_type="json")
    assert patched.data["a"] == "9"
    with pytest.raises(navarch.Invalid, match="does not apply"):
        await cms.patch("c", [{"op": "remove", "path": "/data/zzz"}], patch_type="json")


async def test_patch_with_bad_field_names_it(client: navarch.Client, ns: str) -> None:
    deps = client.deployments(ns)
    await deps.create(deployment("web", ns))
    with pytest.raises(navarch.Invalid) as info:
        await deps.patch("web", {"spec": {"replicas": "three"}})
    assert info.value.violations[0].field == "spec.replicas"
    with pytest.raises(navarch.Invalid) as info:
        await deps.patch("web", {"spec": {"replicaz": 3}})
    assert info.value.violations[0].field == "spec.replicaz"
    assert (await deps.get("web")).spec.replicas == 1


async def test_patch_pinned_version_conflicts(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    created = await cms.create(configmap("c", ns))
    await cms.patch("c", {"data": {"k": "2"}})
    with pytest.raises(navarch.Conflict):
        await cms.patch("c", {"metadata": {"resourceVersion": created.metadata.resource_version},
                              "data": {"k": "3"}})


async def test_concurrent_patches_all_land(client: navarch.Client, ns: str) -> None:
    cms = client.configmaps(ns)
    await cms.create(configmap("c", ns, {}))
    await asyncio.gather(*(cms.patch("c", {"data": {f"k{i}": str(i)}}) for i in range(20)))
    assert len((await cms.get("c")).data) == 20


async def test_dry_run_stores_nothing(client: navarch.Client, ns: str) -> None:
    result = await client.pods(ns).create(pod("dry", ns), dry_run=True)
    assert result.metadata.uid
    with pytest.raises(navarch.NotFound):
        await client.pods(ns).get("dry")


async def test_scale_subresource(client: navarch.Client, ns: str) -> None:
    deps = client.deployments(ns)
    await deps.create(deployment("web", ns, replicas=2))
    scale = await deps.get_scale("web")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    scaled = await deps.scale("web", 5)
    assert scaled.spec.replicas == 5
    d = await deps.get("web")
    assert d.spec.replicas == 5 and d.metadata.generation == 2
    with pytest.raises(navarch.Invalid, match=r"spec\.replicas"):
        await deps.scale("web", -1)
    with pytest.raises(navarch.Conflict):
        await deps.scale("web", 3, resource_version=scale.metadata.resource_version)
    patched = await deps.patch("web", {"spec": {"replicas": 7}}, subresource="scale")
    assert patched.spec.replicas == 7


async def test_pod_binding(client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("p", ns))
    bound = await client.bind(ns, "p", "node-1")
    assert bound.spec.node_name == "node-1"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in bound.status.conditions)
    with pytest.raises(navarch.Conflict, match="already assigned"):
        await client.bind(ns, "p", "node-2")
    assert (await client.pods(ns).get("p")).spec.node_name == "node-1"


async def test_pod_create_resets_status(client: navarch.Client, ns: str) -> None:
    body = pod("p", ns)
    body.status.phase = "Running"
    created = await client.pods(ns).create(body)
    assert created.status.phase == "Pending"


async def test_discovery_and_version(client: navarch.Client) -> None:
    resources = {r.name: r for r in await client.api_resources()}
    assert resources["deployments"].group == "apps"
    assert "deploy" in resources["deployments"].short_names
    assert resources["nodes"].namespaced is False
    assert "scale" in resources["deployments"].subresources
    version = await client.version()
    assert version.version == navarch.__version__


async def test_update_that_only_omits_defaults_changes_nothing(client: navarch.Client,
                                                               ns: str) -> None:
    """Sending the manifest again (without the server's defaults, without status) is a
    no-op: same resourceVersion, same generation."""
    deps = client.deployments(ns)
    created = await deps.create(deployment("web", ns))
    again = await deps.update(deployment("web", ns))
    assert again.metadata.resource_version == created.metadata.resource_version
    assert again.metadata.generation == 1
    patched = await deps.patch("web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "localhost/web:1"}]}}}})
    assert patched.metadata.resource_version == created.metadata.resource_version


async def test_hpa_is_served_in_v1_and_v2(client: navarch.Client, ns: str) -> None:
    """An autoscaling/v1 HPA is stored as v2, and read and patched back as v1 by a client
    that asks for v1 (so re-applying a v1 manifest is a no-op)."""
    v1 = obj({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "web", "namespace": ns},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "web"},
                       "minReplicas": 1, "maxReplicas": 5,
                       "targetCPUUtilizationPercentage": 50}})
    as_v1 = client.for_object(v1)
    created = await as_v1.create(v1)
    assert created.api_version == "autoscaling/v1"
    assert created.spec.target_cpu_utilization_percentage == 50
    stored = await client.horizontalpodautoscalers(ns).get("web")
    assert stored.api_version == "autoscaling/v2"
    assert stored.spec.metrics[0].resource.target.average_utilization == 50
    patched = await as_v1.patch("web", {"spec": {"targetCPUUtilizationPercentage": 70}})
    assert patched.spec.target_cpu_utilization_percentage == 70
    stored = await client.horizontalpodautoscalers(ns).get("web")
    assert stored.spec.metrics[0].resource.target.average_utilization == 70
    listed = await as_v1.list()
    assert [h.spec.target_cpu_utilization_percentage for h in listed.items] == [70]
    stream = as_v1.watch(resource_version=listed.resource_version)
    await as_v1.patch("web", {"spec": {"targetCPUUtilizationPercentage": 80}})
    async with contextlib.aclosing(stream):
        events = await next_events(stream, 1)
    assert events[0].object.api_version == "autoscaling/v1"
    assert events[0].object.spec.target_cpu_utilization_percentage == 80
    from navarch.v1 import api_pb2

    with pytest.raises(navarch.Invalid, match="not served"):
        await client.call("Get", api_pb2.GetRequest(
            resource="horizontalpodautoscalers", namespace=ns, name="web",
            api_version="autoscaling/v9"))
