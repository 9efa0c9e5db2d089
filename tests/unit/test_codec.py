"""Kubernetes-style JSON for the protobuf kinds (navarch/_codec.py)."""

from __future__ import annotations

from typing import Any

import pytest

from navarch import _codec
from navarch.v1 import apps_pb2, core_pb2


def test_numbers_become_quantities_and_int_or_strings() -> None:
    pod = _codec.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{
            "name": "c", "image": "i",
            "resources": {"requests": {"cpu": 1, "memory": "64Mi"}, "limits": {"cpu": 0.5}},
            "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
        }]},
    }, core_pb2.Pod)
    c = pod.spec.containers[0]
    assert dict(c.resources.requests) == {"cpu": "1", "memory": "64Mi"}
    assert c.resources.limits["cpu"] == "0.5"
    assert c.liveness_probe.http_get.port == "8080"


def test_output_prints_numbers_where_kubernetes_does() -> None:
    doc = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "generation": 3},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 81, "targetPort": "web"}]},
    }
    out = _codec.to_dict(_codec.from_dict(doc, core_pb2.Service))
    assert out == doc


def test_round_trip_keeps_explicit_zero_replicas() -> None:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 0}}
    assert _codec.to_dict(_codec.from_dict(doc, apps_pb2.Deployment)) == doc


def test_acronym_fields_use_kubernetes_spelling() -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "status": {"podIP": "10.244.1.5", "hostIP": "172.30.0.2"}}
    pod = _codec.from_dict(doc, core_pb2.Pod)
    assert pod.status.pod_ip == "10.244.1.5"
    assert _codec.to_dict(pod) == doc


@pytest.mark.parametrize(("doc", "path", "reason"), [
    ({"spec": {"containers": [{"name": "c", "imagePullPolice": "x"}]}},
     "spec.containers[0].imagePullPolice", "unknown field"),
    ({"spec": {"containers": {"name": "c"}}}, "spec.containers", "expected a list"),
    ({"spec": {"restartPolicy": 3}}, "spec.restartPolicy", "expected a string"),
    ({"spec": {"hostNetwork": "yes"}}, "spec.hostNetwork", "expected a boolean"),
    ({"spec": {"terminationGracePeriodSeconds": "30"}}, "spec.terminationGracePeriodSeconds",
     "expected an integer"),
    ({"metadata": {"labels": {"a": 1}}}, "metadata.labels.a", "expected a string"),
    ({"spec": {"containers": [{"ports": [{"containerPort": 80.5}]}]}},
     "spec.containers[0].ports[0].containerPort", "expected an integer"),
    ({"spec": {"containers": [{"livenessProbe": {"tcpSocket": {"port": 1.5}}}]}},
     "spec.containers[0].livenessProbe.tcpSocket.port", "an integer or a string"),
    ({"container_port": 1}, "container_port", "unknown field"),
])
def test_errors_name_the_path(doc: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(_codec.FieldError) as info:
        _codec.from_dict({"apiVersion": "v1", "kind": "Pod", **doc}, core_pb2.Pod)
    assert info.value.path == path
    assert reason in info.value.reason


def test_decoding_does_not_mutate_its_input() -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i",
                                    "resources": {"limits": {"cpu": 2}}}]}}
    before = repr(doc)
    _codec.from_dict(doc, core_pb2.Pod)
    assert repr(doc) == before


def test_secret_data_is_base64_like_kubernetes() -> None:
    secret = _codec.from_dict({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                               "data": {"password": "czNjcjN0"}}, core_pb2.Secret)
    assert secret.data["password"] == b"s3cr3t"
    with pytest.raises(_codec.FieldError, match="base64"):
        _codec.from_dict({"apiVersion": "v1", "kind": "Secret", "data": {"p": 1}},
                         core_pb2.Secret)


@pytest.mark.parametrize(("value", "expected"), [
    ("8080", 8080), ("http", "http"), ("25%", "25%"), ("-1", -1), ("", ""),
])
def test_int_or_string(value: str, expected: int | str) -> None:
    assert _codec.int_or_string(value) == expected
