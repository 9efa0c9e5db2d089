"""Kubernetes' strategic merge patch (navarch/_strategicpatch.py) on objects in JSON form,
with the protobuf descriptors telling which lists merge."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest

import navarch.v1
from navarch._patch import PatchError
from navarch._strategicpatch import MERGE_KEYS, PRIMITIVE_MERGE, apply_strategic_merge_patch
from navarch.v1 import apps_pb2, core_pb2

DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                 "finalizers": ["a"]},
    "spec": {"replicas": 2, "template": {"spec": {
        "containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "side:1"}],
        "tolerations": [{"key": "x", "operator": "Exists"}]}}},
}


def smp(patch: dict[str, Any], target: dict[str, Any] = DEPLOYMENT) -> dict[str, Any]:
    result = apply_strategic_merge_patch(target, patch, apps_pb2.Deployment.DESCRIPTOR)
    assert isinstance(result, dict)
    return result


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_a_container_is_patched_by_name_and_the_others_are_kept() -> None:
    """kubectl patch deployment web -p '{"spec":{"template":{"spec":{"containers":
    [{"name":"web","image":"web:2"}]}}}}' changes one image and nothing else."""
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "web:2"}]}}}})
    assert [(c["name"], c["image"]) for c in containers(out)] == [
        ("web", "web:2"), ("sidecar", "side:1")]
    assert containers(out)[0]["ports"] == [{"containerPort": 8080}]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"


def test_nested_merge_lists_and_appends() -> None:
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
         "ports": [{"containerPort": 9090, "name": "metrics"}]},
        {"name": "new", "image": "new:1"}]}}}})
    web = containers(out)[0]
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                          {"name": "C", "value": "4"}]
    assert [p["containerPort"] for p in web["ports"]] == [8080, 9090]
    assert [c["name"] for c in containers(out)] == ["web", "sidecar", "new"]


def test_delete_and_replace_directives() -> None:
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c["name"] for c in containers(out)] == ["web"]
    out = smp({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}}})
    assert containers(out) == [{"name": "only", "image": "o:1"}]
    out = smp({"metadata": {"labels": {"$patch": "replace", "app": "new"}}})
    assert out["metadata"]["labels"] == {"app": "new"}
    out = smp({"spec": {"template": {"spec": {"$retainKeys": ["containers"],
                                              "containers": []}}}})
    assert set(out["spec"]["template"]["spec"]) == {"containers"}


def test_lists_without_a_strategy_are_replaced_and_maps_merge() -> None:
    out = smp({"metadata": {"labels": {"tier": None, "env": "prod"}},
               "spec": {"template": {"spec": {"tolerations": [{"key": "y",
                                                               "operator": "Exists"}]}}}})
    assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "y",
                                                               "operator": "Exists"}]


def test_primitive_merge_lists() -> None:
    out = smp({"metadata": {"finalizers": ["b", "a"]}})
    assert out["metadata"]["finalizers"] == ["a", "b"]
    out = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == []


def test_service_ports_merge_by_port_and_pod_conditions_by_type() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "name": "http"}]}},
                                      core_pb2.Service.DESCRIPTOR)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "name": "http"},
                                    {"port": 443}]
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    out = apply_strategic_merge_patch(pod, {"status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}},
        core_pb2.Pod.DESCRIPTOR)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "Initialized", "status": "True"}]


@pytest.mark.parametrize(("patch", "why"), [
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
     'containers: each item of a strategic merge patch needs its merge key "name"'),
    ({"metadata": {"labels": {"$patch": "explode"}}}, "unknown \\$patch directive"),
])
def test_bad_patches_say_why(patch: dict[str, Any], why: str) -> None:
    with pytest.raises(PatchError, match=why):
        smp(patch)


def test_every_table_entry_names_a_real_list_field() -> None:
    fields: set[tuple[str, str]] = set()
    for module in pkgutil.iter_modules(navarch.v1.__path__):
        if not module.name.endswith("_pb2"):
            continue
        mod = importlib.import_module(f"navarch.v1.{module.name}")
        stack = list(mod.DESCRIPTOR.message_types_by_name.values())
        while stack:
            message = stack.pop()
            stack.extend(message.nested_types)
            fields |= {(message.name, f.json_name) for f in message.fields
                       if f.is_repeated}
    assert set(MERGE_KEYS) - fields == set()
    assert set(PRIMITIVE_MERGE) - fields == set()
