"""ObjectMeta validation: per-kind names, generateName, namespace scope, labels,
annotations, owner references, finalizers; and the dispatcher's contracts."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import core_pb2, meta_pb2
from services.apiserver import validation
from tests.unit.apiserver_cases import assert_problems, build

CONFIG_MAP: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "settings"}}


def meta_problems(kind: str, meta: dict[str, Any], **extra: Any) -> list[tuple[str, str]]:
    doc = {"metadata": meta, **extra}
    msg = build(kind, doc, defaulted=False, uid="")
    return [(v.path, v.message) for v in validation.validate(kind, msg)
            if v.path.startswith("metadata")]


NAMES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("ConfigMap", "app.config-1", []),
    ("ConfigMap", "App", [("metadata.name", "RFC 1123 subdomain")]),
    ("ConfigMap", "a" * 254, [("metadata.name", "no more than 253 characters")]),
    ("Namespace", "team-a", []),
    ("Namespace", "team.a", [("metadata.name", "must not contain dots")]),
    ("Service", "web", []),
    ("Service", "1web", [("metadata.name", "DNS-1035 label")]),
    ("StatefulSet", "db.v1", [("metadata.name", "must not contain dots")]),
    ("Node", "node-1.example.com", []),
    ("HorizontalPodAutoscaler", "Web_HPA", []),
    ("HorizontalPodAutoscaler", "web/hpa", [("metadata.name", "may not contain '/'")]),
    ("HorizontalPodAutoscaler", "..", [("metadata.name", "may not be '..'")]),
]


@pytest.mark.parametrize(("kind", "name", "expected"), NAMES)
def test_names_per_kind(kind: str, name: str, expected: list[tuple[str, str]]) -> None:
    assert_problems(meta_problems(kind, {"name": name}), expected)


def test_name_is_required() -> None:
    assert_problems(meta_problems("ConfigMap", {}),
                    [("metadata.name", "Required value: name or generateName is required")])


@pytest.mark.parametrize(("kind", "prefix", "expected"), [
    ("ConfigMap", "web-", []),
    ("Service", "web-", []),
    ("Service", "1-", [("metadata.generateName", "DNS-1035 label"),
                       ("metadata.name", "DNS-1035 label")]),
    ("ConfigMap", "Web-", [("metadata.generateName", "RFC 1123 subdomain"),
                           ("metadata.name", "RFC 1123 subdomain")]),
])
def test_generate_name(kind: str, prefix: str, expected: list[tuple[str, str]]) -> None:
    assert_problems(meta_problems(kind, {"name": prefix + "abcde", "generateName": prefix}),
                    expected)


def test_namespaced_kind_needs_a_namespace() -> None:
    msg = core_pb2.ConfigMap(metadata=meta_pb2.ObjectMeta(name="settings"))
    found = [(v.path, v.message) for v in validation.validate("ConfigMap", msg)]
    assert found == [("metadata.namespace", "Required value")]


def test_namespace_name_is_a_label() -> None:
    msg = core_pb2.ConfigMap(metadata=meta_pb2.ObjectMeta(name="s", namespace="Team.A"))
    assert_problems([(v.path, v.message) for v in validation.validate("ConfigMap", msg)],
                    [("metadata.namespace", "RFC 1123 label")])


def test_cluster_scoped_kind_refuses_a_namespace() -> None:
    assert_problems(meta_problems("Node", {"name": "n1", "namespace": "default"}),
                    [("metadata.namespace", "Forbidden: not allowed on this type")])


META: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("labels", {"labels": {"app.kubernetes.io/name": "web", "tier": ""}}, []),
    ("label key", {"labels": {"-app": "web"}}, [("metadata.labels", 'Invalid value: "-app"')]),
    ("label prefix", {"labels": {"Example.com/app": "web"}},
     [("metadata.labels", "prefix part")]),
    ("label value", {"labels": {"app": "web server"}},
     [("metadata.labels", 'Invalid value: "web server"')]),
    ("long label value", {"labels": {"app": "a" * 64}},
     [("metadata.labels", "no more than 63 characters")]),
    ("annotations", {"annotations": {"Example.com/Owner": "me", "note": "any text at all"}}, []),
    ("annotation key", {"annotations": {"a b": "x"}},
     [("metadata.annotations", 'Invalid value: "a b"')]),
    ("annotations too large", {"annotations": {"big": "x" * (256 * 1024)}},
     [("metadata.annotations", "Too long: may not be more than 262144 bytes")]),
    ("owner reference", {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web-1", "uid": "u1",
                                              "controller": True}]}, []),
    ("owner reference fields", {"ownerReferences": [{"kind": "ReplicaSet"}]},
     [("metadata.ownerReferences[0].apiVersion", "Required value"),
      ("metadata.ownerReferences[0].name", "Required value"),
      ("metadata.ownerReferences[0].uid", "Required value")]),
    ("two controllers", {"ownerReferences": [
        {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]},
     [("metadata.ownerReferences", "only one reference can have controller set to true")]),
    ("finalizers", {"finalizers": ["example.com/cleanup", "kubernetes"]}, []),
    ("finalizer name", {"finalizers": ["example.com/clean up"]},
     [("metadata.finalizers[0]", "name part")]),
    ("orphan and foreground", {"finalizers": ["orphan", "foregroundDeletion"]},
     [("metadata.finalizers", "cannot both be set")]),
]


@pytest.mark.parametrize(("meta", "expected"), [(m, e) for _, m, e in META],
                         ids=[n for n, _, _ in META])
def test_metadata(meta: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert_problems(meta_problems("ConfigMap", {"name": "settings", **meta}), expected)


def test_unknown_kind_gets_metadata_checks() -> None:
    msg = core_pb2.ConfigMap(metadata=meta_pb2.ObjectMeta(name="Bad", namespace="default"))
    found = validation.validate("Widget", msg)
    assert [v.path for v in found] == ["metadata.name"]


def test_wrong_message_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match=r"navarch\.v1\.Pod"):
        validation.validate("Pod", core_pb2.ConfigMap())


def test_name_and_namespace_are_immutable() -> None:
    old = build("ConfigMap", CONFIG_MAP)
    new = build("ConfigMap", {"metadata": {"name": "other", "namespace": "kube-system"}})
    found = [(v.path, v.message) for v in validation.validate_update("ConfigMap", new, old)]
    assert_problems(found, [("metadata.name", "field is immutable"),
                            ("metadata.namespace", "field is immutable")])


def test_validation_does_not_mutate() -> None:
    msg = build("ConfigMap", {"metadata": {"name": "Bad", "labels": {"a b": "c"}}})
    before = msg.SerializeToString(deterministic=True)
    validation.validate("ConfigMap", msg)
    validation.validate_update("ConfigMap", msg, msg)
    assert msg.SerializeToString(deterministic=True) == before
