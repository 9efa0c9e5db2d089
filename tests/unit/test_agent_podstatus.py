"""The PodStatus the agent reports (node_agent.podstatus), as kubelet computes it: phase
rules, conditions, container states. Pure, table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from cri_api.v1 import api_pb2

from navarch._nodes import set_time
from navarch.v1 import core_pb2
from node_agent import cri
from node_agent.podstatus import PodObservation, pod_phase, pod_status, qos_class

NOW = 1_700_000_000.0
R, E, C, U = cri.RUNNING, cri.EXITED, cri.CREATED, cri.UNKNOWN


def make_pod(containers: tuple[str, ...] = ("app",), init: tuple[str, ...] = (),
             policy: str = "", **probes: str) -> core_pb2.Pod:
    """``probes``: container name -> "readiness" / "startup" probe it has."""
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web-1", "default", "u1"
    pod.spec.restart_policy = policy
    for name in init:
        pod.spec.init_containers.add(name=name, image="localhost/busybox:1")
    for name in containers:
        c = pod.spec.containers.add(name=name, image="localhost/web:1")
        if name in probes:
            getattr(c, f"{probes[name]}_probe").exec.command.append("true")
    return pod


def attempt(name: str, state: int, exit_code: int = 0, restarts: int = 0,
            reason: str = "", started: float = NOW - 60, finished: float = NOW - 30
            ) -> api_pb2.ContainerStatus:
    s = api_pb2.ContainerStatus(id=f"{name}-{restarts}", state=state, exit_code=exit_code,
                                reason=reason, image_ref="localhost/web@sha256:abc",
                                created_at=int((started - 1) * 1e9))
    s.metadata.name = name
    s.annotations[cri.RESTART_COUNT] = str(restarts)
    if state != C:
        s.started_at = int(started * 1e9)
    if state == E:
        s.finished_at = int(finished * 1e9)
    return s


def observe(pod: core_pb2.Pod, old: core_pb2.PodStatus | None = None, **kw: Any
            ) -> core_pb2.PodStatus:
    kw.setdefault("sandbox_ready", True)
    kw.setdefault("pod_ips", ("10.244.1.5",))
    kw.setdefault("host_ip", "172.30.0.2")
    return pod_status(pod, PodObservation(old=old or core_pb2.PodStatus(), **kw), NOW)


def cond(status: core_pb2.PodStatus, type_: str) -> core_pb2.PodCondition:
    return next(c for c in status.conditions if c.type == type_)


def state_of(cs: core_pb2.ContainerStatus) -> str:
    which = None
    for name in ("waiting", "running", "terminated"):
        if cs.state.HasField(name):
            which = name
    if which == "waiting":
        return f"waiting:{cs.state.waiting.reason}"
    if which == "terminated":
        return f"terminated:{cs.state.terminated.reason}:{cs.state.terminated.exit_code}"
    return str(which)


CLB = ("CrashLoopBackOff", "back-off 20s restarting failed container=app pod=web-1_default(u1)")


# --- phase ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "containers", "attempts", "waiting", "phase", "states"), [
    pytest.param("", ("app",), {}, {}, "Pending", ["waiting:ContainerCreating"],
                 id="nothing created yet"),
    pytest.param("", ("app",), {"app": [attempt("app", C)]}, {}, "Pending",
                 ["waiting:ContainerCreating"], id="created, not started"),
    pytest.param("", ("app",), {"app": [attempt("app", R)]}, {}, "Running", ["running"],
                 id="running"),
    pytest.param("", ("a", "b"), {"a": [attempt("a", R)]}, {"b": ("ErrImagePull", "x")},
                 "Pending", ["running", "waiting:ErrImagePull"],
                 id="one running, one still pulling"),
    pytest.param("Always", ("app",), {"app": [attempt("app", E, 0)]}, {}, "Running",
                 ["terminated:Completed:0"], id="Always: exited 0, restarting"),
    pytest.param("Always", ("app",), {"app": [attempt("app", E, 1, 2)]},
                 {"app": CLB}, "Running", ["waiting:CrashLoopBackOff"],
                 id="Always: crash loop is Running"),
    pytest.param("OnFailure", ("app",), {"app": [attempt("app", E, 0)]}, {}, "Succeeded",
                 ["terminated:Completed:0"], id="OnFailure: exit 0 succeeds"),
    pytest.param("OnFailure", ("app",), {"app": [attempt("app", E, 3)]}, {"app": CLB},
                 "Running", ["waiting:CrashLoopBackOff"], id="OnFailure: failure restarts"),
    pytest.param("OnFailure", ("app",), {"app": [attempt("app", E, 0)]}, {"app": CLB},
                 "Succeeded", ["terminated:Completed:0"],
                 id="OnFailure: a stale waiting reason does not revive a success"),
    pytest.param("Never", ("app",), {"app": [attempt("app", E, 0)]}, {}, "Succeeded",
                 ["terminated:Completed:0"], id="Never: Job pod succeeded"),
    pytest.param("Never", ("app",), {"app": [attempt("app", E, 2)]}, {}, "Failed",
                 ["terminated:Error:2"], id="Never: Job pod failed"),
    pytest.param("Never", ("app",), {"app": [attempt("app", E, 137, reason="OOMKilled")]},
                 {}, "Failed", ["terminated:OOMKilled:137"], id="Never: OOMKilled"),
    pytest.param("Never", ("a", "b"), {"a": [attempt("a", E, 1)], "b": [attempt("b", R)]},
                 {}, "Running", ["terminated:Error:1", "running"],
                 id="Never: one failed, one still running"),
    pytest.param("Never", ("a", "b"), {"a": [attempt("a", E, 0)], "b": [attempt("b", E, 1)]},
                 {}, "Failed", ["terminated:Completed:0", "terminated:Error:1"],
                 id="Never: all done, one failed"),
])
def test_phase_and_states(policy: str, containers: tuple[str, ...],
                          attempts: dict[str, list[api_pb2.ContainerStatus]],
                          waiting: dict[str, tuple[str, str]], phase: str,
                          states: list[str]) -> None:
    pod = make_pod(containers, policy=policy)
    status = observe(pod, containers=attempts, waiting=waiting)
    assert status.phase == phase
    assert [state_of(cs) for cs in status.container_statuses] == states


@pytest.mark.parametrize(("policy", "init_attempts", "waiting", "phase", "init_states",
                          "app_state", "initialized"), [
    pytest.param("", {}, {}, "Pending", ["waiting:PodInitializing", "waiting:PodInitializing"],
                 "waiting:PodInitializing", "containers with incomplete status: [i1 i2]",
                 id="nothing ran yet"),
    pytest.param("", {"i1": [attempt("i1", E, 0)], "i2": [attempt("i2", R)]}, {}, "Pending",
                 ["terminated:Completed:0", "running"], "waiting:PodInitializing",
                 "containers with incomplete status: [i2]", id="second init running"),
    pytest.param("Always", {"i1": [attempt("i1", E, 1)]}, {"i1": CLB}, "Pending",
                 ["waiting:CrashLoopBackOff", "waiting:PodInitializing"],
                 "waiting:PodInitializing", "containers with incomplete status: [i1 i2]",
                 id="failed init restarts under Always"),
    pytest.param("Never", {"i1": [attempt("i1", E, 1)]}, {}, "Failed",
                 ["terminated:Error:1", "waiting:PodInitializing"], "waiting:PodInitializing",
                 "containers with incomplete status: [i1 i2]", id="failed init fails Never"),
    pytest.param("", {"i1": [attempt("i1", E, 0)], "i2": [attempt("i2", E, 0)]}, {},
                 "Pending", ["terminated:Completed:0"] * 2, "waiting:PodInitializing", "",
                 id="initialized, app not created yet"),
])
def test_init_containers(policy: str, init_attempts: dict[str, list[api_pb2.ContainerStatus]],
                         waiting: dict[str, tuple[str, str]], phase: str,
                         init_states: list[str], app_state: str, initialized: str) -> None:
    pod = make_pod(init=("i1", "i2"), policy=policy)
    status = observe(pod, containers=init_attempts, waiting=waiting)
    assert status.phase == phase
    assert [state_of(s) for s in status.init_container_statuses] == init_states
    assert state_of(status.container_statuses[0]) == app_state
    c = cond(status, "Initialized")
    assert (c.status, c.message) == ("False" if initialized else "True", initialized)
    assert c.reason == ("ContainersNotInitialized" if initialized else "")
    done = [s.ready for s in status.init_container_statuses]
    assert done == [s.startswith("terminated:Completed") for s in init_states]


def test_a_terminal_phase_is_final_and_keeps_reason_and_ips() -> None:
    pod = make_pod(policy="Never")
    old = core_pb2.PodStatus(phase="Failed", reason="DeadlineExceeded", message="too slow",
                             pod_ip="10.244.1.5")
    old.pod_ips.add(ip="10.244.1.5")
    status = observe(pod, old, containers={"app": [attempt("app", R)]}, sandbox_ready=False,
                     pod_ips=())
    assert (status.phase, status.reason, status.message) == \
        ("Failed", "DeadlineExceeded", "too slow")
    assert status.pod_ip == "10.244.1.5" and [p.ip for p in status.pod_ips] == ["10.244.1.5"]


def test_pod_phase_alone() -> None:
    pod = make_pod(policy="OnFailure")
    done = core_pb2.ContainerStatus(name="app")
    done.state.terminated.exit_code = 0
    assert pod_phase(pod, [], [done]) == "Succeeded"


# --- container status details ------------------------------------------------------------

def test_crash_loop_back_off_shows_the_last_run_as_last_state() -> None:
    pod = make_pod()
    status = observe(pod, containers={"app": [attempt("app", E, 1, restarts=2),
                                              attempt("app", E, 1, restarts=1)]},
                     waiting={"app": CLB})
    cs = status.container_statuses[0]
    assert (cs.state.waiting.reason, cs.state.waiting.message) == CLB
    t = cs.last_state.terminated
    assert (t.exit_code, t.reason, t.container_id) == (1, "Error", "containerd://app-2")
    assert (t.started_at.seconds, t.finished_at.seconds) == (NOW - 60, NOW - 30)
    assert (cs.restart_count, cs.ready, cs.started) == (2, False, False)
    assert (cs.image, cs.image_id, cs.container_id) == \
        ("localhost/web:1", "localhost/web@sha256:abc", "containerd://app-2")


def test_a_restarted_running_container_has_its_previous_run_as_last_state() -> None:
    pod = make_pod()
    status = observe(pod, containers={"app": [attempt("app", R, restarts=1),
                                              attempt("app", E, 2, restarts=0)]})
    cs = status.container_statuses[0]
    assert cs.state.running.started_at.seconds == NOW - 60
    assert (cs.last_state.terminated.exit_code, cs.restart_count) == (2, 1)
    assert cs.last_state.terminated.container_id == "containerd://app-0"


@pytest.mark.parametrize(("probe", "started", "ready", "want_started", "want_ready"), [
    pytest.param("", {}, {}, True, True, id="no probes: started and ready"),
    pytest.param("readiness", {}, {}, True, False, id="readiness not yet passed"),
    pytest.param("readiness", {}, {"app-0": True}, True, True, id="readiness passed"),
    pytest.param("startup", {}, {}, False, False, id="startup not yet passed"),
    pytest.param("startup", {"app-0": True}, {"app-0": True}, True, True, id="started"),
])
def test_started_and_ready(probe: str, started: dict[str, bool], ready: dict[str, bool],
                           want_started: bool, want_ready: bool) -> None:
    pod = make_pod(**({"app": probe} if probe else {}))
    status = observe(pod, containers={"app": [attempt("app", R)]}, started=started,
                     readiness=ready)
    cs = status.container_statuses[0]
    assert (cs.HasField("started"), cs.started, cs.ready) == (True, want_started, want_ready)
    assert cond(status, "Ready").status == ("True" if want_ready else "False")


def test_what_the_old_status_carries_when_attempts_are_gone() -> None:
    """A new sandbox has no attempts yet: a terminated status stays whole; a running one
    becomes ContainerStatusUnknown in lastState with one more restart (kubelet)."""
    pod = make_pod(("done", "was"), policy="OnFailure")
    old = core_pb2.PodStatus(phase="Running")
    d = old.container_statuses.add(name="done", restart_count=1, container_id="containerd://x")
    d.state.terminated.exit_code = 0
    w = old.container_statuses.add(name="was", restart_count=3)
    set_time(w.state.running.started_at, NOW - 100)
    status = observe(pod, old, containers={})
    done, was = status.container_statuses
    assert (done.state, done.restart_count, done.container_id) == \
        (d.state, 1, "containerd://x")
    assert state_of(was) == "waiting:ContainerCreating" and was.restart_count == 4
    assert (was.last_state.terminated.reason, was.last_state.terminated.exit_code) == \
        ("ContainerStatusUnknown", 137)


def test_the_sandbox_trouble_is_the_message_of_the_default_wait() -> None:
    pod = make_pod(("a", "b"))
    status = observe(pod, containers={}, waiting={"b": ("CreateContainerConfigError",
                                                        'configmap "c" not found')},
                     pending=("FailedMount", "MountVolume.SetUp failed: no such secret"),
                     sandbox_ready=False, pod_ips=())
    a, b = status.container_statuses
    assert (a.state.waiting.reason, a.state.waiting.message) == \
        ("ContainerCreating", "MountVolume.SetUp failed: no such secret")
    assert (b.state.waiting.reason, b.state.waiting.message) == \
        ("CreateContainerConfigError", 'configmap "c" not found')
    assert cond(status, "PodReadyToStartContainers").status == "False"
    assert status.pod_ip == "" and not status.pod_ips


# --- conditions ----------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "attempts", "ready", "want"), [
    pytest.param("", {"a": [attempt("a", R)], "b": [attempt("b", R)]}, {"b-0": False},
                 {"ContainersReady": ("False", "ContainersNotReady",
                                      "containers with unready status: [b]"),
                  "Ready": ("False", "ContainersNotReady",
                            "containers with unready status: [b]")},
                 id="one unready"),
    pytest.param("", {}, {}, {"Ready": ("False", "ContainersNotReady",
                                        "containers with unready status: [a b]")},
                 id="none started"),
    pytest.param("", {"a": [attempt("a", R)], "b": [attempt("b", R)]}, {"b-0": True},
                 {"Ready": ("True", "", ""), "ContainersReady": ("True", "", ""),
                  "Initialized": ("True", "", "")}, id="all ready"),
    pytest.param("Never", {"a": [attempt("a", E, 0)], "b": [attempt("b", E, 0)]}, {},
                 {"Ready": ("False", "PodCompleted", ""),
                  "ContainersReady": ("False", "PodCompleted", ""),
                  "Initialized": ("True", "PodCompleted", "")}, id="succeeded"),
    pytest.param("Never", {"a": [attempt("a", E, 0)], "b": [attempt("b", E, 1)]}, {},
                 {"Ready": ("False", "PodFailed", ""),
                  "ContainersReady": ("False", "PodFailed", "")}, id="failed"),
])
def test_ready_conditions(policy: str, attempts: dict[str, list[api_pb2.ContainerStatus]],
                          ready: dict[str, bool],
                          want: dict[str, tuple[str, str, str]]) -> None:
    pod = make_pod(("a", "b"), policy=policy, b="readiness")
    status = observe(pod, containers=attempts, readiness=ready)
    for type_, expected in want.items():
        c = cond(status, type_)
        assert (c.status, c.reason, c.message) == expected, type_


def test_conditions_order_and_transition_times() -> None:
    pod = make_pod()
    old = core_pb2.PodStatus(phase="Running")
    gate = old.conditions.add(type="example.com/lb", status="True")
    sched = old.conditions.add(type="PodScheduled", status="True")
    set_time(sched.last_transition_time, NOW - 500)
    ready = old.conditions.add(type="Ready", status="True")
    set_time(ready.last_transition_time, NOW - 100)
    init = old.conditions.add(type="Initialized", status="False")
    set_time(init.last_transition_time, NOW - 100)
    status = observe(pod, old, containers={"app": [attempt("app", R)]})
    assert [c.type for c in status.conditions] == [
        "example.com/lb", "PodReadyToStartContainers", "Initialized", "Ready",
        "ContainersReady", "PodScheduled"]
    times = {c.type: c.last_transition_time.seconds for c in status.conditions}
    assert times["PodScheduled"] == NOW - 500, "unchanged status keeps its time"
    assert times["Ready"] == NOW - 100
    assert times["Initialized"] == NOW, "False -> True is a transition"
    assert times["ContainersReady"] == NOW, "new condition"
    assert cond(status, "example.com/lb") == gate


@pytest.mark.parametrize(("gates", "want"), [
    pytest.param({"lb": "True"}, ("True", "", ""), id="gate True"),
    pytest.param({"lb": "False"}, ("False", "ReadinessGatesNotReady",
                                   'the status of pod readiness gate "lb" is not "True", '
                                   "but False"), id="gate False"),
    pytest.param({}, ("False", "ReadinessGatesNotReady",
                      'corresponding condition of pod readiness gate "lb" does not exist.'),
                 id="gate missing"),
])
def test_readiness_gates(gates: dict[str, str], want: tuple[str, str, str]) -> None:
    pod = make_pod()
    pod.spec.readiness_gates.add(condition_type="lb")
    old = core_pb2.PodStatus()
    for type_, value in gates.items():
        old.conditions.add(type=type_, status=value)
    status = observe(pod, old, containers={"app": [attempt("app", R)]})
    c = cond(status, "Ready")
    assert (c.status, c.reason, c.message) == want
    assert cond(status, "ContainersReady").status == "True"


# --- the rest --------------------------------------------------------------------------------

def test_addresses_start_time_and_qos() -> None:
    pod = make_pod()
    pod.spec.containers[0].resources.requests["cpu"] = "100m"
    first = observe(pod, containers={"app": [attempt("app", R)]})
    assert (first.pod_ip, [p.ip for p in first.pod_ips]) == ("10.244.1.5", ["10.244.1.5"])
    assert (first.host_ip, [h.ip for h in first.host_ips]) == ("172.30.0.2", ["172.30.0.2"])
    assert first.start_time.seconds == NOW
    assert first.qos_class == "Burstable" == qos_class(pod)
    old = core_pb2.PodStatus(qos_class="Guaranteed", nominated_node_name="n2")
    set_time(old.start_time, NOW - 1000)
    again = observe(pod, old, containers={"app": [attempt("app", R)]})
    assert (again.start_time.seconds, again.qos_class, again.nominated_node_name) == \
        (NOW - 1000, "Guaranteed", "n2")


def test_an_unknown_attempt_of_a_running_container_is_terminated_unknown() -> None:
    pod = make_pod()
    old = core_pb2.PodStatus(phase="Running")
    was = old.container_statuses.add(name="app", restart_count=0)
    set_time(was.state.running.started_at, NOW - 100)
    status = observe(pod, old, containers={"app": [attempt("app", U)]})
    cs = status.container_statuses[0]
    assert state_of(cs) == "terminated:ContainerStatusUnknown:137"
    assert cs.restart_count == 1
