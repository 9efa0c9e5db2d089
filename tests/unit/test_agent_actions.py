"""kubelet's computePodActions, as node_agent.actions decides it: table-driven, no I/O."""

from __future__ import annotations

import pytest
from cri_api.v1 import api_pb2

from navarch.v1 import core_pb2
from node_agent import cri
from node_agent.actions import compute_pod_actions, should_restart
from node_agent.runtime_spec import container_hash


def make_pod(containers=("app",), init=(), policy="") -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "p", "default", "u1"
    pod.spec.restart_policy = policy
    for name in init:
        pod.spec.init_containers.add(name=name, image="busybox")
    for name in containers:
        pod.spec.containers.add(name=name, image="busybox")
    return pod


def sandbox(ready=True, ip="10.244.1.5", attempt=0) -> api_pb2.PodSandboxStatus:
    sb = api_pb2.PodSandboxStatus(id=f"sb{attempt}",
                                  state=cri.SANDBOX_READY if ready else api_pb2.SANDBOX_NOTREADY)
    sb.metadata.attempt = attempt
    sb.network.ip = ip
    return sb


def attempt(pod, name, state, exit_code=0, cid=None, changed=False):
    spec = {c.name: c for c in [*pod.spec.init_containers, *pod.spec.containers]}[name]
    status = api_pb2.ContainerStatus(id=cid or f"{name}-id", state=state, exit_code=exit_code)
    status.metadata.name = name
    status.annotations[cri.CONTAINER_HASH] = "other" if changed else container_hash(spec)
    return status


R, E, C = cri.RUNNING, cri.EXITED, cri.CREATED


def no_backoff(_name: str) -> float:
    return 0.0


@pytest.mark.parametrize(("policy", "code", "restart"), [
    ("Always", 0, True), ("Always", 1, True), ("", 0, True),
    ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_restart_policy(policy, code, restart):
    assert should_restart(policy, code) is restart


def test_a_new_pod_gets_a_sandbox_and_its_first_init_container():
    pod = make_pod(init=("i1", "i2"))
    a = compute_pod_actions(pod, [], {}, backoff_remaining=no_backoff)
    assert (a.create_sandbox, a.kill_pod, a.sandbox_attempt, a.start_init) == \
        (True, False, 0, "i1")
    assert a.start == ()


def test_a_new_pod_without_init_containers_starts_every_container():
    pod = make_pod(containers=("a", "b"))
    a = compute_pod_actions(pod, [], {}, backoff_remaining=no_backoff)
    assert a.create_sandbox and a.start == ("a", "b")


def test_a_dead_sandbox_is_replaced_and_the_pod_starts_over():
    pod = make_pod()
    old = sandbox(ready=False, attempt=2)
    a = compute_pod_actions(pod, [old], {"app": [attempt(pod, "app", E, 137)]},
                            backoff_remaining=no_backoff)
    assert (a.kill_pod, a.create_sandbox, a.sandbox_attempt, a.start) == \
        (True, True, 3, ("app",))


def test_a_sandbox_without_an_ip_is_not_ready():
    pod = make_pod()
    a = compute_pod_actions(pod, [sandbox(ip="")], {}, backoff_remaining=no_backoff)
    assert a.create_sandbox


def test_restart_never_pod_whose_sandbox_died_after_running_is_over():
    pod = make_pod(policy="Never")
    a = compute_pod_actions(pod, [sandbox(ready=False)], {"app": [attempt(pod, "app", R)]},
                            backoff_remaining=no_backoff)
    assert not a.create_sandbox and a.idle


@pytest.mark.parametrize(("states", "expected"), [
    ({}, "i1"),
    ({"i1": [(R, 0)]}, None),
    ({"i1": [(E, 0)]}, "i2"),
    ({"i1": [(E, 0)], "i2": [(E, 0)]}, "main"),
    ({"i1": [(E, 1)]}, "i1"),
    ({"i1": [(C, 0)]}, "i1"),
])
def test_init_containers_run_one_at_a_time_in_order(states, expected):
    pod = make_pod(containers=("main",), init=("i1", "i2"))
    observed = {n: [attempt(pod, n, s, c) for s, c in v] for n, v in states.items()}
    a = compute_pod_actions(pod, [sandbox()], observed, backoff_remaining=no_backoff)
    if expected == "main":
        assert a.start == ("main",) and a.start_init is None
    else:
        assert a.start_init == expected and a.start == ()


def test_a_failed_init_container_fails_a_never_pod():
    pod = make_pod(init=("i1",), policy="Never")
    a = compute_pod_actions(pod, [sandbox()], {"i1": [attempt(pod, "i1", E, 1)]},
                            backoff_remaining=no_backoff)
    assert a.init_failed and a.stop_sandbox and a.start_init is None


def test_a_failed_init_container_waits_out_its_backoff():
    pod = make_pod(init=("i1",))
    a = compute_pod_actions(pod, [sandbox()], {"i1": [attempt(pod, "i1", E, 1)]},
                            backoff_remaining=lambda n: 20.0)
    assert a.start_init is None and a.retry_after == 20.0
    assert a.waiting["i1"][0] == "CrashLoopBackOff"


@pytest.mark.parametrize(("policy", "code", "backoff", "start", "waiting", "over"), [
    ("Always", 0, 0.0, ("app",), False, False),
    ("Always", 1, 10.0, (), True, False),
    ("OnFailure", 1, 0.0, ("app",), False, False),
    ("OnFailure", 0, 0.0, (), False, True),
    ("Never", 1, 0.0, (), False, True),
])
def test_exited_containers_restart_by_policy_after_backoff(policy, code, backoff, start,
                                                           waiting, over):
    pod = make_pod(policy=policy)
    a = compute_pod_actions(pod, [sandbox()], {"app": [attempt(pod, "app", E, code)]},
                            backoff_remaining=lambda n: backoff)
    assert a.start == start
    assert ("app" in a.waiting) is waiting
    assert a.stop_sandbox is over
    if waiting:
        reason, message = a.waiting["app"]
        assert reason == "CrashLoopBackOff"
        assert message == "back-off 10s restarting failed container=app pod=p_default(u1)"


def test_a_finished_pod_whose_sandbox_stopped_gets_no_new_one():
    pod = make_pod(policy="OnFailure")
    a = compute_pod_actions(pod, [sandbox(ready=False)], {"app": [attempt(pod, "app", E, 0)]},
                            backoff_remaining=no_backoff)
    assert a.idle


def test_a_changed_container_is_killed_and_started_again():
    pod = make_pod()
    a = compute_pod_actions(pod, [sandbox()], {"app": [attempt(pod, "app", R, changed=True)]},
                            backoff_remaining=lambda n: 100.0)
    assert [k.container_id for k in a.kill] == ["app-id"] and a.start == ("app",)


@pytest.mark.parametrize(("policy", "restarts"), [("Always", True), ("Never", False)])
def test_a_failed_liveness_probe_kills_the_container(policy, restarts):
    pod = make_pod(policy=policy)
    a = compute_pod_actions(pod, [sandbox()], {"app": [attempt(pod, "app", R)]},
                            backoff_remaining=no_backoff,
                            liveness_failed={"app-id": "HTTP probe failed with statuscode: 500"})
    assert [(k.container_id, k.reason) for k in a.kill] == [("app-id", "Unhealthy")]
    assert (a.start == ("app",)) is restarts


def test_a_running_pod_is_left_alone():
    pod = make_pod(containers=("a", "b"))
    a = compute_pod_actions(pod, [sandbox()], {"a": [attempt(pod, "a", R)],
                                               "b": [attempt(pod, "b", R)]},
                            backoff_remaining=no_backoff)
    assert a.idle and not a.waiting
