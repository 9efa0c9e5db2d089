"""A container's environment as kubelet builds it (node_agent.env): tables, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import core_pb2
from node_agent.env import ConfigError, container_env, expand, service_env
from tests.api.util import obj


class Lookup:
    def __init__(self, cms: dict[str, dict[str, str]] | None = None,
                 secrets: dict[str, dict[str, bytes]] | None = None) -> None:
        self.cms = cms or {}
        self.secrets = secrets or {}

    def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        if name not in self.cms:
            return None
        return core_pb2.ConfigMap(data=self.cms[name])

    def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        if name not in self.secrets:
            return None
        return core_pb2.Secret(data=self.secrets[name])


def make_pod(container: dict[str, Any]) -> core_pb2.Pod:
    pod = obj({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                            "labels": {"app": "web"}, "annotations": {"team": "a"}},
               "spec": {"nodeName": "node-1", "serviceAccountName": "sa",
                        "containers": [{"name": "c", "image": "i", **container}]}})
    assert isinstance(pod, core_pb2.Pod)
    return pod


@pytest.mark.parametrize(("text", "variables", "expected"), [
    ("$(A)", {"A": "1"}, "1"),
    ("x-$(A)-$(B)", {"A": "1", "B": "2"}, "x-1-2"),
    ("$(MISSING)", {}, "$(MISSING)"),
    ("$$(A)", {"A": "1"}, "$(A)"),
    ("$$", {}, "$"),
    ("cost $5", {}, "cost $5"),
    ("$(A", {"A": "1"}, "$(A"),
    ("$", {}, "$"),
])
def test_expand(text: str, variables: dict[str, str], expected: str) -> None:
    assert expand(text, variables) == expected


def service(name: str, ip: str, *ports: tuple[str, int, str], ns: str = "shop"
            ) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, ns
    svc.spec.cluster_ip = ip
    for pname, port, proto in ports:
        svc.spec.ports.add(name=pname, port=port, protocol=proto)
    return svc


def test_service_variables_are_docker_link_style() -> None:
    env = dict(service_env([service("redis-primary", "10.0.0.11", ("", 6379, "TCP"))]))
    assert env == {
        "REDIS_PRIMARY_SERVICE_HOST": "10.0.0.11",
        "REDIS_PRIMARY_SERVICE_PORT": "6379",
        "REDIS_PRIMARY_PORT": "tcp://10.0.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP": "tcp://10.0.0.11:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_PRIMARY_PORT_6379_TCP_PORT": "6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR": "10.0.0.11",
    }


@pytest.mark.parametrize(("svc", "present"), [
    (service("web", "10.0.0.5", ("http", 80, "TCP"), ("dns", 53, "UDP")), True),
    (service("headless", "None", ("http", 80, "TCP")), False),
    (service("noip", "", ("http", 80, "TCP")), False),
])
def test_only_services_with_a_cluster_ip_get_variables(svc: core_pb2.Service,
                                                       present: bool) -> None:
    env = dict(service_env([svc]))
    assert bool(env) is present
    if present:
        assert env["WEB_SERVICE_PORT_HTTP"] == "80"
        assert env["WEB_SERVICE_PORT_DNS"] == "53"
        assert env["WEB_PORT_53_UDP_PROTO"] == "udp"


def test_disabled_service_links_keep_only_the_kubernetes_service() -> None:
    services = [service("web", "10.0.0.5", ("", 80, "TCP")),
                service("kubernetes", "10.96.0.1", ("https", 443, "TCP"), ns="default")]
    env = dict(service_env(services, enable_links=False))
    assert "KUBERNETES_SERVICE_HOST" in env and "WEB_SERVICE_HOST" not in env


LOOKUP = Lookup(cms={"cfg": {"greeting": "hello", "port": "8080"}},
                secrets={"creds": {"password": b"s3cret"}})


@pytest.mark.parametrize(("env", "expected"), [
    ([{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-2"}], {"A": "1", "B": "1-2"}),
    ([{"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
     {"G": "hello"}),
    ([{"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}],
     {"P": "s3cret"}),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                      "optional": True}}}], {}),
    ([{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
      {"name": "U", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
      {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
      {"name": "AN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
      {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
      {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
      {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}],
     {"N": "web-1", "NS": "shop", "U": "u-1", "L": "web", "AN": "a", "NODE": "node-1",
      "SA": "sa", "IP": "10.244.1.7", "HOST": "172.30.0.11"}),
])
def test_env_values(env: list[dict[str, Any]], expected: dict[str, str]) -> None:
    pod = make_pod({"env": env})
    got = container_env(pod, pod.spec.containers[0], LOOKUP, pod_ips=["10.244.1.7"],
                        host_ip="172.30.0.11")
    assert dict(got) == expected


@pytest.mark.parametrize(("resources", "field", "divisor", "expected"), [
    ({"limits": {"cpu": "500m"}}, "limits.cpu", "", "1"),
    ({"limits": {"cpu": "500m"}}, "limits.cpu", "1m", "500"),
    ({"limits": {"memory": "64Mi"}}, "limits.memory", "1Mi", "64"),
    ({"requests": {"memory": "32Mi"}}, "requests.memory", "", str(32 << 20)),
    ({}, "limits.cpu", "", "2"),  # no limit: the node's allocatable
])
def test_resource_field_refs(resources: dict[str, Any], field: str, divisor: str,
                             expected: str) -> None:
    ref: dict[str, Any] = {"resource": field}
    if divisor:
        ref["divisor"] = divisor
    pod = make_pod({"resources": resources,
                    "env": [{"name": "R", "valueFrom": {"resourceFieldRef": ref}}]})
    got = container_env(pod, pod.spec.containers[0], LOOKUP,
                        node_allocatable={"cpu": "2", "memory": "8Gi"})
    assert dict(got) == {"R": expected}


def test_env_from_with_prefix_then_env_overrides_and_services_come_first() -> None:
    pod = make_pod({"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                                {"secretRef": {"name": "creds"}}],
                    "env": [{"name": "CFG_PORT", "value": "9090"}]})
    got = container_env(pod, pod.spec.containers[0], LOOKUP,
                        [("WEB_SERVICE_HOST", "10.0.0.5"), ("CFG_PORT", "1")])
    # keys keep their case; a later definition of a name wins, in the first one's place
    assert got[:2] == [("WEB_SERVICE_HOST", "10.0.0.5"), ("CFG_PORT", "9090")]
    assert dict(got) == {"WEB_SERVICE_HOST": "10.0.0.5", "CFG_PORT": "9090",
                         "CFG_greeting": "hello", "CFG_port": "8080", "password": "s3cret"}


@pytest.mark.parametrize(("container", "message"), [
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]},
     'configmap "nope" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
     "couldn't find key k in ConfigMap shop/cfg"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
     'secret "nope" not found'),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]},
     "couldn't find key k in Secret shop/creds"),
    ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
])
def test_missing_sources_are_config_errors(container: dict[str, Any], message: str) -> None:
    pod = make_pod(container)
    with pytest.raises(ConfigError) as err:
        container_env(pod, pod.spec.containers[0], LOOKUP)
    assert err.value.reason == "CreateContainerConfigError"
    assert err.value.message == message
