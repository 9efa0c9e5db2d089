"""Pod → CRI configs (node_agent.runtime_spec): cgroups by QoS, resources, DNS, ports."""

from __future__ import annotations

import pytest
from cri_api.v1 import api_pb2

from navarch.v1 import core_pb2
from node_agent import cri
from node_agent.runtime_spec import (
    container_config,
    container_hash,
    container_resources,
    cpu_shares,
    pod_cgroup_parent,
    sandbox_config,
)


def pod_with(requests=None, limits=None, **spec) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web", "shop", "u1"
    c = pod.spec.containers.add(name="app", image="r/web:1")
    c.resources.requests.update(requests or {})
    c.resources.limits.update(limits or {})
    for k, v in spec.items():
        setattr(pod.spec, k, v)
    return pod


@pytest.mark.parametrize(("requests", "limits", "parent"), [
    ({}, {}, "/nv-n1/besteffort/podu1"),
    ({"cpu": "100m"}, {}, "/nv-n1/burstable/podu1"),
    ({"cpu": "1", "memory": "64Mi"}, {"cpu": "1", "memory": "64Mi"}, "/nv-n1/podu1"),
])
def test_cgroup_parent_follows_the_qos_class(requests, limits, parent):
    assert pod_cgroup_parent(pod_with(requests, limits), "/nv-n1") == parent


@pytest.mark.parametrize(("milli", "shares"), [(0, 2), (1, 2), (100, 102), (1000, 1024),
                                               (2500, 2560)])
def test_cpu_shares_as_kubelet_computes_them(milli, shares):
    assert cpu_shares(milli) == shares


@pytest.mark.parametrize(("requests", "limits", "shares", "quota", "memory"), [
    ({}, {}, 2, 0, 0),
    ({"cpu": "250m"}, {}, 256, 0, 0),
    ({}, {"cpu": "500m", "memory": "64Mi"}, 512, 50_000, 64 << 20),
    ({"cpu": "100m"}, {"cpu": "2"}, 102, 200_000, 0),
])
def test_container_resources(requests, limits, shares, quota, memory):
    c = pod_with(requests, limits).spec.containers[0]
    r = container_resources(c)
    assert (r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes) == (shares, quota, memory)
    assert r.cpu_period == (100_000 if quota else 0)


def test_sandbox_config_labels_logs_ports_and_cluster_dns():
    pod = pod_with()
    pod.spec.containers[0].ports.add(container_port=8080, host_port=30080, protocol="TCP")
    cfg = sandbox_config(pod, log_directory="/l", cgroup_root="/nv", cluster_dns=["10.96.0.10"],
                         attempt=2)
    assert cfg.metadata.attempt == 2 and cfg.hostname == "web"
    assert cfg.labels[cri.POD_UID] == "u1" and cfg.labels[cri.POD_NAMESPACE] == "shop"
    assert [(p.container_port, p.host_port) for p in cfg.port_mappings] == [(8080, 30080)]
    assert list(cfg.dns_config.servers) == ["10.96.0.10"]
    assert list(cfg.dns_config.searches) == ["shop.svc.cluster.local", "svc.cluster.local",
                                             "cluster.local"]
    assert list(cfg.dns_config.options) == ["ndots:5"]
    assert cfg.linux.security_context.namespace_options.network == api_pb2.POD


def test_dns_policy_default_uses_the_nodes_resolv_conf():
    pod = pod_with(dns_policy="Default")
    cfg = sandbox_config(pod, log_directory="/l", cgroup_root="/nv",
                         cluster_dns=["10.96.0.10"],
                         host_resolv="nameserver 192.0.2.1\nsearch corp\noptions edns0\n")
    assert list(cfg.dns_config.servers) == ["192.0.2.1"]
    assert list(cfg.dns_config.searches) == ["corp"]


def test_host_network_pods_share_the_nodes_network():
    cfg = sandbox_config(pod_with(host_network=True), log_directory="/l", cgroup_root="/nv")
    assert cfg.linux.security_context.namespace_options.network == api_pb2.NODE


def test_container_config_carries_attempt_log_path_and_hash():
    pod = pod_with()
    c = pod.spec.containers[0]
    cfg = container_config(pod, c, restart_count=3, image="sha256:abc", env=[("A", "1")],
                           command=["sh"], args=["-c", "x"], mounts=[])
    assert cfg.metadata.attempt == 3 and cfg.log_path == "app/3.log"
    assert cfg.annotations[cri.RESTART_COUNT] == "3"
    assert cfg.annotations[cri.CONTAINER_HASH] == container_hash(c)
    assert [(kv.key, kv.value) for kv in cfg.envs] == [("A", "1")]
    c2 = core_pb2.Container()
    c2.CopyFrom(c)
    c2.image = "r/web:2"
    assert container_hash(c2) != container_hash(c)


@pytest.mark.parametrize(("spec", "pid"), [
    ({}, api_pb2.CONTAINER),
    ({"share_process_namespace": True}, api_pb2.POD),
    ({"host_pid": True}, api_pb2.NODE),
])
def test_a_container_sees_only_its_own_processes_unless_the_pod_shares(spec, pid):
    pod = pod_with(**spec)
    cfg = container_config(pod, pod.spec.containers[0], restart_count=0, image="i", env=[],
                           command=[], args=[], mounts=[])
    assert cfg.linux.security_context.namespace_options.pid == pid
