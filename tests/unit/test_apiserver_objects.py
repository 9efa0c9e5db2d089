"""Storage keys, resourceVersion splicing and continue tokens (services/apiserver/objects.py)."""

from __future__ import annotations

import pytest

from navarch._kinds import KINDS, storage_kind
from navarch.v1 import core_pb2, meta_pb2
from services.apiserver import objects
from services.apiserver.errors import ApiError


def test_every_kind_keeps_metadata_at_field_3() -> None:
    for kind in KINDS:
        field = kind.message.DESCRIPTOR.fields_by_name["metadata"]
        assert field.number == objects.METADATA_FIELD, kind.kind
        assert field.message_type.full_name == "navarch.v1.ObjectMeta"


@pytest.mark.parametrize(("resource", "namespace", "name", "key"), [
    ("pods", "default", "web", b"/registry/pods/default/web"),
    ("nodes", "", "n1", b"/registry/nodes/n1"),
    ("nodes", "ignored", "n1", b"/registry/nodes/n1"),
    ("deployments", "prod", "api", b"/registry/deployments/prod/api"),
])
def test_object_keys(resource: str, namespace: str, name: str, key: bytes) -> None:
    assert objects.object_key(storage_kind(resource), namespace, name) == key


def test_namespace_prefix_does_not_match_longer_namespaces() -> None:
    kind = storage_kind("pods")
    prefix = objects.resource_prefix(kind, "default")
    assert not objects.object_key(kind, "default2", "x").startswith(prefix)


@pytest.mark.parametrize(("prefix", "end"), [
    (b"/a/", b"/a0"), (b"a\xff", b"b"), (b"\xff\xff", b"\0"),
])
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    assert objects.prefix_end(prefix) == end


@pytest.mark.parametrize("revision", [1, 127, 128, 300, 2**40])
def test_with_resource_version_splices_without_decoding(revision: int) -> None:
    pod = core_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="web", namespace="ns",
                                                    labels={"a": "b"}))
    pod.spec.node_name = "n1"
    stored = objects.encode(pod)
    spliced = core_pb2.Pod.FromString(objects.with_resource_version(stored, revision))
    expected = core_pb2.Pod()
    expected.CopyFrom(pod)
    expected.metadata.resource_version = str(revision)
    assert spliced == expected


def test_encode_drops_resource_version_and_keeps_the_object() -> None:
    pod = core_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="web", resource_version="42"))
    stored = objects.encode(pod)
    assert pod.metadata.resource_version == "42"
    assert core_pb2.Pod.FromString(stored).metadata.resource_version == ""


def test_continue_token_round_trip_and_rejections() -> None:
    token = objects.ContinueToken(17, b"/registry/pods/default/web\0")
    parsed = objects.ContinueToken.decode(token.encode(), b"/registry/pods/")
    assert parsed == token
    with pytest.raises(ApiError, match="continue token"):
        objects.ContinueToken.decode(token.encode(), b"/registry/secrets/")
    for garbage in ("", "abc", "!!!", "e30"):
        with pytest.raises(ApiError, match="continue token"):
            objects.ContinueToken.decode(garbage, b"/registry/pods/")


@pytest.mark.parametrize(("value", "revision"), [("", 0), ("0", 0), ("15", 15)])
def test_parse_resource_version(value: str, revision: int) -> None:
    assert objects.parse_resource_version(value) == revision


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_parse_resource_version_rejects(value: str) -> None:
    with pytest.raises(ApiError, match="resourceVersion"):
        objects.parse_resource_version(value)


@pytest.mark.parametrize(("resources", "expected"), [
    ([{}], "BestEffort"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
    ([{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}],
     "Guaranteed"),
    ([{"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}}], "Burstable"),
    ([{"requests": {"cpu": "100m"}}], "Burstable"),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
])
def test_qos_class(resources: list[dict[str, dict[str, str]]], expected: str) -> None:
    from navarch import from_dict
    from services.apiserver.strategy import qos_class

    spec = from_dict({"containers": [{"name": f"c{i}", "image": "i", "resources": r}
                                     for i, r in enumerate(resources)]}, core_pb2.PodSpec)
    assert qos_class(spec) == expected


def test_hpa_versions_round_trip() -> None:
    from navarch import from_dict, to_dict
    from navarch._kinds import kind_for
    from navarch.v1 import autoscaling_pb2
    from services.apiserver import conversion

    v1_doc = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "web"},
              "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                       "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}
    stored = conversion.to_storage(storage_kind("horizontalpodautoscalers"),
                                   from_dict(v1_doc, autoscaling_pb2.HorizontalPodAutoscalerV1))
    assert stored.spec.metrics[0].resource.target.average_utilization == 50
    v1 = kind_for("autoscaling/v1", "HorizontalPodAutoscaler")
    assert to_dict(conversion.from_storage(stored, v1)) == v1_doc
    assert conversion.served_kind(storage_kind("horizontalpodautoscalers"), "") is \
        storage_kind("horizontalpodautoscalers")
    with pytest.raises(ApiError, match="not served"):
        conversion.served_kind(storage_kind("pods"), "v2")
