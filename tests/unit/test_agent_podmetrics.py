"""The agent's PodMetrics from CRI stats (node_agent/podmetrics.py), pure parts."""

from __future__ import annotations

from cri_api.v1 import api_pb2

from navarch._quantity import parse_quantity
from navarch.v1 import core_pb2
from node_agent import cri
from node_agent.podmetrics import pod_metrics, usage_by_pod
from node_agent.server import CpuRates


def stat(cid: str, uid: str, name: str, at_s: float, cpu_s: float, memory: int,
         rate: int = 0) -> api_pb2.ContainerStats:
    s = api_pb2.ContainerStats()
    s.attributes.id = cid
    s.attributes.labels[cri.POD_UID] = uid
    s.attributes.labels[cri.CONTAINER_NAME] = name
    s.cpu.timestamp = int(at_s * 1e9)
    s.cpu.usage_core_nano_seconds.value = int(cpu_s * 1e9)
    s.cpu.usage_nano_cores.value = rate
    s.memory.working_set_bytes.value = memory
    return s


def pod(*containers: str) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = "web", "prod", "u1"
    p.metadata.labels["app"] = "web"
    for name in containers:
        p.spec.containers.add(name=name)
    return p


def test_a_rate_needs_two_samples_unless_cri_gives_one() -> None:
    rates = CpuRates()
    first = [stat("a", "u1", "app", 10.0, 5.0, 1 << 20), stat("b", "u1", "side", 10.0, 1.0,
                                                                   2 << 20, rate=7_000_000)]
    rates.observe(first)
    assert usage_by_pod(first, rates) == {"u1": {"side": (7_000_000, 2 << 20)}}
    second = [stat("a", "u1", "app", 12.0, 5.5, 3 << 20), first[1]]
    rates.observe(second)
    assert usage_by_pod(second, rates) == {
        "u1": {"app": (250_000_000, 3 << 20), "side": (7_000_000, 2 << 20)}}


def test_pod_metrics_as_metrics_server_writes_them() -> None:
    m = pod_metrics(pod("app", "side"), {"app": (250_000_000, 3 << 20),
                                         "side": (7_000_000, 2 << 20)}, 1000.7, 15.0)
    assert m is not None
    assert (m.api_version, m.kind) == ("metrics.k8s.io/v1beta1", "PodMetrics")
    assert (m.metadata.namespace, m.metadata.name) == ("prod", "web")
    assert dict(m.metadata.labels) == {"app": "web"}
    assert (m.timestamp.seconds, m.window.seconds) == (1000, 15)
    usage = {c.name: dict(c.usage) for c in m.containers}
    assert usage == {"app": {"cpu": "250000000n", "memory": "3072Ki"},
                     "side": {"cpu": "7000000n", "memory": "2048Ki"}}
    assert parse_quantity(usage["app"]["cpu"]).milli_value() == 250


def test_a_pod_with_an_unmeasured_container_has_no_metrics() -> None:
    assert pod_metrics(pod("app", "side"), {"app": (1, 1)}, 0.0, 15.0) is None
    assert pod_metrics(pod(), {}, 0.0, 15.0) is None
