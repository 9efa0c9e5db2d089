"""Pure parts of ``navarch simnodes``: flags, the Node and Lease it writes, pod life
steps and statuses, metrics; and the thin layer over the fake API with a fake clock."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from navarch._clock import FakeClock
from navarch._codec import from_dict
from navarch.v1 import core_pb2
from services.simnodes.agent import SimNodes
from services.simnodes.config import (
    ConfigError,
    SimConfig,
    TaintSpec,
    add_arguments,
    parse_images,
    parse_labels,
    parse_taints,
)
from services.simnodes.metrics import container_usage, pod_metrics
from services.simnodes.nodes import (
    build_lease,
    build_node,
    heartbeat_node,
    host_ip,
    pod_ip,
    renewed_lease,
    set_time,
)
from services.simnodes.pods import (
    Behaviour,
    Step,
    crash_backoff,
    exited_status,
    next_step,
    parse_behaviour,
    restarted_status,
    should_restart,
    started_status,
)
from tests.fakeapi import FakeClient

NOW = 1_700_000_000.0


def parse(*argv: str) -> SimConfig:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return SimConfig.from_args(p.parse_args(list(argv)))


# --- flags --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want"), [
    ("", ()),
    ("disk=ssd", (("disk", "ssd"),)),
    ("a=1, example.com/b=two,c=", (("a", "1"), ("example.com/b", "two"), ("c", ""))),
])
def test_parse_labels(text: str, want: tuple[tuple[str, str], ...]) -> None:
    assert parse_labels(text) == want


@pytest.mark.parametrize(("text", "error"), [
    ("disk", "'disk' has no '='"),
    ("=x", "key ''"),
    ("bad key=x", "key 'bad key'"),
    ("a=" + "v" * 64, "value"),
])
def test_parse_labels_errors(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match="--labels") as exc:
        parse_labels(text)
    assert error in str(exc.value)


@pytest.mark.parametrize(("text", "want"), [
    ("", ()),
    ("dedicated=gpu:NoSchedule", (TaintSpec("dedicated", "gpu", "NoSchedule"),)),
    ("a:NoExecute,b=1:PreferNoSchedule",
     (TaintSpec("a", "", "NoExecute"), TaintSpec("b", "1", "PreferNoSchedule"))),
    ("example.com/k=v:NoSchedule", (TaintSpec("example.com/k", "v", "NoSchedule"),)),
])
def test_parse_taints(text: str, want: tuple[TaintSpec, ...]) -> None:
    assert parse_taints(text) == want


@pytest.mark.parametrize(("text", "error"), [
    ("dedicated=gpu", "has no effect"),
    (":NoSchedule", "has no effect"),
    ("a=b:NoRun", "unknown effect 'NoRun'"),
    ("a b=c:NoSchedule", "key 'a b'"),
])
def test_parse_taints_errors(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match="--taints") as exc:
        parse_taints(text)
    assert error in str(exc.value)


def test_parse_images() -> None:
    assert parse_images("nginx:1.25, busybox") == ("nginx:1.25", "busybox")
    with pytest.raises(ConfigError, match="--images"):
        parse_images("nginx 1.25")


@pytest.mark.parametrize(("argv", "error"), [
    (("--count", "-1"), "--count"),
    (("--name-prefix", "Bad_"), "--name-prefix"),
    (("--cpu", "lots"), "--cpu"),
    (("--memory", "0"), "--memory"),
    (("--pods", "0"), "--pods"),
    (("--zones", "0"), "--zones"),
    (("--startup-delay", "-1"), "--startup-delay"),
    (("--heartbeat-interval", "0"), "--heartbeat-interval"),
    (("--status-interval", "-5"), "--status-interval"),
    (("--taints", "x"), "--taints"),
])
def test_bad_flags_name_the_flag(argv: tuple[str, ...], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse(*argv)


def test_defaults_and_names() -> None:
    cfg = parse("--count", "3")
    assert (cfg.cpu, cfg.memory, cfg.pods, cfg.startup_delay, cfg.heartbeat_interval,
            cfg.status_interval) == ("4", "16Gi", 110, 0.5, 10.0, 60.0)
    assert cfg.node_names() == ["sim-0000", "sim-0001", "sim-0002"]


# --- nodes ----------------------------------------------------------------------------------

def test_build_node() -> None:
    cfg = parse("--count", "5", "--zones", "2", "--labels", "disk=ssd", "--cpu", "8",
                "--memory", "32Gi", "--pods", "50", "--taints", "gpu=yes:NoSchedule",
                "--images", "nginx:1.25")
    node = build_node(cfg, 3, NOW)
    assert node.metadata.name == "sim-0003"
    assert dict(node.metadata.labels) == {
        "disk": "ssd", "kubernetes.io/hostname": "sim-0003", "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-1"}
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        ("gpu", "yes", "NoSchedule")]
    assert dict(node.status.capacity) == dict(node.status.allocatable) == {
        "cpu": "8", "memory": "32Gi", "pods": "50", "ephemeral-storage": "100Gi"}
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions == {"Ready": "True", "MemoryPressure": "False",
                          "DiskPressure": "False", "PIDPressure": "False"}
    assert all(c.last_heartbeat_time.seconds == int(NOW) for c in node.status.conditions)
    assert [(a.type, a.address) for a in node.status.addresses] == [
        ("InternalIP", "172.30.0.4"), ("Hostname", "sim-0003")]
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert node.status.node_info.kubelet_version
    assert node.status.node_info.operating_system == "linux"
    assert [list(i.names) for i in node.status.images] == [["nginx:1.25"]]


@pytest.mark.parametrize(("index", "want"), [
    (0, "172.30.0.1"), (254, "172.30.0.255"), (255, "172.30.1.0"), (4999, "172.30.19.136"),
])
def test_host_ip(index: int, want: str) -> None:
    assert host_ip(index) == want


@pytest.mark.parametrize(("cidr", "index", "seq", "want"), [
    ("10.244.3.0/24", 7, 0, "10.244.3.1"),
    ("10.244.3.0/24", 7, 9, "10.244.3.10"),
    ("10.244.3.0/24", 7, 254, "10.244.3.1"),  # wraps after the usable range
    ("", 0, 0, "10.128.0.1"),
    ("", 4999, 5, "10.147.135.6"),
    ("not-a-cidr", 1, 0, "10.128.1.1"),
])
def test_pod_ip(cidr: str, index: int, seq: int, want: str) -> None:
    assert pod_ip(cidr, index, seq) == want


def test_heartbeat_revives_an_unknown_node_and_keeps_transition_times() -> None:
    node = build_node(parse(), 0, NOW)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    ready.status = "Unknown"
    beat = heartbeat_node(node, NOW + 100)
    after = {c.type: c for c in beat.status.conditions}
    assert after["Ready"].status == "True"
    assert after["Ready"].last_transition_time.seconds == int(NOW) + 100
    assert after["DiskPressure"].last_transition_time.seconds == int(NOW)
    assert after["DiskPressure"].last_heartbeat_time.seconds == int(NOW) + 100
    assert ready.status == "Unknown"  # the input was not touched


def test_lease_build_and_renew() -> None:
    lease = build_lease("sim-0000", NOW, 40)
    assert (lease.metadata.namespace, lease.spec.holder_identity,
            lease.spec.lease_duration_seconds) == ("kube-node-lease", "sim-0000", 40)
    renewed = renewed_lease(lease, "sim-0000", NOW + 10, 40)
    assert renewed.spec.renew_time.seconds == int(NOW) + 10
    assert renewed.spec.acquire_time == lease.spec.acquire_time
    assert lease.spec.renew_time.seconds == int(NOW)


# --- pods -----------------------------------------------------------------------------------

def make_pod(annotations: dict[str, str] | None = None, restart: str = "Always",
             containers: int = 1, **status: Any) -> core_pb2.Pod:
    pod = from_dict({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                     "annotations": annotations or {}},
        "spec": {"nodeName": "sim-0000", "restartPolicy": restart,
                 "initContainers": [{"name": "init", "image": "busybox"}],
                 "containers": [{"name": f"c{i}", "image": "nginx",
                                 "resources": {"requests": {"cpu": "500m",
                                                            "memory": "100Mi"}}}
                                for i in range(containers)]},
        "status": status,
    }, core_pb2.Pod)
    return pod


@pytest.mark.parametrize(("annotations", "want"), [
    ({}, Behaviour()),
    ({"simnodes.navarch.io/exit-code": "1"}, Behaviour(1, None)),
    ({"simnodes.navarch.io/exit-code": "0",
      "simnodes.navarch.io/run-seconds": "2.5"}, Behaviour(0, 2.5)),
    ({"simnodes.navarch.io/run-seconds": "3"}, Behaviour(None, 3.0)),
])
def test_parse_behaviour(annotations: dict[str, str], want: Behaviour) -> None:
    assert parse_behaviour(annotations) == want


@pytest.mark.parametrize("annotations", [
    {"simnodes.navarch.io/exit-code": "x"}, {"simnodes.navarch.io/exit-code": "256"},
    {"simnodes.navarch.io/run-seconds": "-1"}, {"simnodes.navarch.io/run-seconds": "nan"},
])
def test_parse_behaviour_errors(annotations: dict[str, str]) -> None:
    got = parse_behaviour(annotations)
    assert got.error and not got.exits


@pytest.mark.parametrize(("policy", "code", "want"), [
    ("Always", 0, True), ("Always", 1, True), ("", 0, True),
    ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_should_restart(policy: str, code: int, want: bool) -> None:
    assert should_restart(policy, code) is want


@pytest.mark.parametrize(("restarts", "want"), [(1, 10.0), (2, 20.0), (5, 160.0),
                                                 (6, 300.0), (20, 300.0)])
def test_crash_backoff(restarts: int, want: float) -> None:
    assert crash_backoff(restarts) == want


def _running(pod: core_pb2.Pod, at: float) -> core_pb2.Pod:
    out = core_pb2.Pod()
    out.CopyFrom(pod)
    out.status.CopyFrom(started_status(pod, "172.30.0.1", "10.0.0.1", at))
    return out


def _deleting(pod: core_pb2.Pod, requested: float, grace: int) -> core_pb2.Pod:
    out = core_pb2.Pod()
    out.CopyFrom(pod)
    set_time(out.metadata.deletion_timestamp, requested + grace)
    out.metadata.deletion_grace_period_seconds = grace
    return out


SEEN = NOW + 1
STEPS: list[tuple[str, core_pb2.Pod, Step]] = [
    ("new pod: start after the startup delay", make_pod(), Step("start", SEEN + 0.5)),
    ("new pod with an exit code: exits after the startup delay",
     make_pod({"simnodes.navarch.io/exit-code": "1"}), Step("exit", SEEN + 0.5)),
    ("new pod with run-seconds: starts first",
     make_pod({"simnodes.navarch.io/run-seconds": "1"}), Step("start", SEEN + 0.5)),
    ("running forever: nothing", _running(make_pod(), NOW + 2), Step("none")),
    ("running with run-seconds: exit then",
     _running(make_pod({"simnodes.navarch.io/run-seconds": "3"}), NOW + 2),
     Step("exit", NOW + 5)),
    ("exit-code and no run-seconds: exit as soon as started",
     _running(make_pod({"simnodes.navarch.io/exit-code": "1"}), NOW + 2),
     Step("exit", NOW + 2)),
    ("succeeded: nothing", make_pod(phase="Succeeded"), Step("none")),
    ("failed: nothing", make_pod(phase="Failed"), Step("none")),
    ("deleting with grace 30: after the stop delay",
     _deleting(_running(make_pod(), NOW), NOW + 10, 30), Step("delete", NOW + 10.2)),
    ("deleting with grace 0: at once", _deleting(make_pod(), NOW + 10, 0),
     Step("delete", NOW + 10)),
    ("deleting a finished pod still deletes it",
     _deleting(make_pod(phase="Failed"), NOW + 10, 5), Step("delete", NOW + 10.2)),
]


@pytest.mark.parametrize(("case", "pod", "want"), STEPS, ids=[s[0] for s in STEPS])
def test_next_step(case: str, pod: core_pb2.Pod, want: Step) -> None:
    got = next_step(pod, parse_behaviour(pod.metadata.annotations), SEEN, 0.5, 0.2)
    assert got.action == want.action
    assert got.due == pytest.approx(want.due, abs=1e-5)


def test_started_status() -> None:
    pod = make_pod(containers=2)
    status = started_status(pod, "172.30.0.1", "10.0.0.7", NOW)
    assert (status.phase, status.host_ip, status.pod_ip) == ("Running", "172.30.0.1",
                                                             "10.0.0.7")
    assert [i.ip for i in status.pod_ips] == ["10.0.0.7"]
    assert status.start_time.seconds == int(NOW)
    assert {c.type: c.status for c in status.conditions} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
        "ContainersReady": "True", "PodScheduled": "True"}
    assert [(s.name, s.ready, s.started, s.restart_count, s.state.HasField("running"))
            for s in status.container_statuses] == [("c0", True, True, 0, True),
                                                    ("c1", True, True, 0, True)]
    assert status.container_statuses[0].image_id.startswith("sha256:")
    (init,) = status.init_container_statuses
    assert (init.state.terminated.exit_code, init.state.terminated.reason) == (0, "Completed")
    assert not pod.status.container_statuses  # the input was not touched


@pytest.mark.parametrize(("policy", "code", "phase", "waiting", "reason"), [
    ("Never", 1, "Failed", "", "Error"),
    ("Never", 0, "Succeeded", "", "Completed"),
    ("OnFailure", 0, "Succeeded", "", "Completed"),
    ("OnFailure", 3, "Running", "CrashLoopBackOff", "Error"),
    ("Always", 0, "Running", "CrashLoopBackOff", "Completed"),
])
def test_exited_status(policy: str, code: int, phase: str, waiting: str,
                       reason: str) -> None:
    pod = _running(make_pod(restart=policy), NOW)
    status = exited_status(pod, "172.30.0.1", "10.0.0.1", NOW + 5, code)
    assert status.phase == phase
    (c,) = status.container_statuses
    assert not c.ready
    assert {x.type: x.status for x in status.conditions}["Ready"] == "False"
    done = c.last_state.terminated if waiting else c.state.terminated
    assert (done.exit_code, done.reason) == (code, reason)
    assert done.started_at.seconds == int(NOW) and done.finished_at.seconds == int(NOW) + 5
    assert c.state.waiting.reason == waiting
    assert c.restart_count == (1 if waiting else 0)
    assert status.start_time.seconds == int(NOW)


def test_crash_loop_then_restart() -> None:
    pod = _running(make_pod({"simnodes.navarch.io/exit-code": "1"}), NOW)
    crashed = core_pb2.Pod()
    crashed.CopyFrom(pod)
    crashed.status.CopyFrom(exited_status(pod, "h", "10.0.0.1", NOW + 1, 1))
    step = next_step(crashed, parse_behaviour(crashed.metadata.annotations), NOW, 0.5, 0.2)
    assert step == Step("restart", pytest.approx(NOW + 11))
    back = restarted_status(crashed, "h", "10.0.0.1", NOW + 11)
    (c,) = back.container_statuses
    assert (c.ready, c.restart_count, c.state.running.started_at.seconds,
            c.last_state.terminated.exit_code) == (True, 1, int(NOW) + 11, 1)
    assert back.phase == "Running"


# --- metrics --------------------------------------------------------------------------------

@pytest.mark.parametrize(("annotations", "containers", "want"), [
    ({}, 1, {"c0": {"cpu": "50m", "memory": "10485760"}}),
    ({"simnodes.navarch.io/cpu-usage": "250m"}, 1, {"c0": {"cpu": "250m",
                                                          "memory": "10485760"}}),
    ({"simnodes.navarch.io/cpu-usage": "1"}, 2, {"c0": {"cpu": "500m", "memory": "10485760"},
                                                 "c1": {"cpu": "500m",
                                                        "memory": "10485760"}}),
])
def test_container_usage(annotations: dict[str, str], containers: int,
                         want: dict[str, dict[str, str]]) -> None:
    assert container_usage(make_pod(annotations, containers=containers)) == want


def test_pod_metrics() -> None:
    m = pod_metrics(make_pod(), NOW, 15)
    assert (m.metadata.name, m.metadata.namespace, m.timestamp.seconds,
            m.window.seconds) == ("p", "ns", int(NOW), 15)
    assert [c.name for c in m.containers] == ["c0"]


# --- the thin layer over the fake API -------------------------------------------------------

async def _settle(clock: FakeClock, seconds: float, step: float = 0.1) -> None:
    for _ in range(int(seconds / step)):
        await clock.advance(step)
        for _ in range(5):
            await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_sim_nodes_over_the_fake_api() -> None:
    clock = FakeClock(NOW)
    api = FakeClient(now=NOW)
    cfg = SimConfig(count=2, startup_delay=0.5, heartbeat_interval=1.0, status_interval=5.0,
                    concurrency=4)
    sim = SimNodes(api, cfg, clock)
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.registered.wait(), 5)
        assert [n.metadata.name for n in api.stored("nodes")] == ["sim-0000", "sim-0001"]
        assert api.stored("leases", "kube-node-lease") == []  # with the first heartbeat
        await _settle(clock, 0.6)
        assert [le.metadata.name for le in api.stored("leases", "kube-node-lease")] == [
            "sim-0000", "sim-0001"]
        await asyncio.wait_for(sim.pods.synced.wait(), 5)

        api.seed(make_pod())  # bound to sim-0000
        other = make_pod()
        other.metadata.name, other.metadata.uid, other.spec.node_name = "x", "u2", "elsewhere"
        api.seed(other)
        await _settle(clock, 0.3)
        assert api.stored("pods", "ns")[0].status.phase == ""  # not yet: startup delay
        await _settle(clock, 0.6)
        pod, foreign = api.stored("pods", "ns")
        assert pod.status.phase == "Running" and pod.status.pod_ip == "10.128.0.1"
        assert foreign.status.phase == ""  # not one of ours

        await _settle(clock, 1.5)  # leases renewed
        assert sim.stats["lease_renewals"] >= 2
        renewed = api.stored("leases", "kube-node-lease")[0]
        assert renewed.spec.renew_time.seconds > int(NOW)

        writes_before = len(api.writes("update"))
        await _settle(clock, 1.0)
        pod_writes = [w for w in api.writes("update")[writes_before:] if w[1] == "pods/status"]
        assert pod_writes == []  # a running pod is written once

        await api.pods("ns").delete("p")  # FakeClient deletes at once: forgotten
        await _settle(clock, 0.3)
        assert "ns/p" not in sim.seen
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_metrics_created_then_updated_and_deleted_nodes_ignored() -> None:
    clock = FakeClock(NOW)
    api = FakeClient(now=NOW)
    sim = SimNodes(api, SimConfig(count=2, concurrency=2), clock)
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.registered.wait(), 5)
        await asyncio.wait_for(sim.pods.synced.wait(), 5)
        api.seed(_running(make_pod(), NOW))
        await _settle(clock, 0.2)
        await sim.publish_metrics()
        await sim.publish_metrics()
        assert [w for w in api.writes() if w[1] == "podmetrics"] == [
            ("create", "podmetrics", "ns/p"), ("update", "podmetrics", "ns/p")]

        await api.nodes().delete("sim-0001")
        await _settle(clock, 0.2)
        assert "sim-0001" in sim.gone
        orphan = make_pod()
        orphan.metadata.name, orphan.metadata.uid, orphan.spec.node_name = "o", "u3", "sim-0001"
        api.seed(orphan)
        await _settle(clock, 2.0)
        assert api.stored("pods", "ns")[0].status.phase == ""  # "o": its node is gone
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
