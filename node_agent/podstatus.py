"""Pure: the PodStatus the agent reports, computed as kubelet computes it
(``generateAPIPodStatus`` and ``getPhase``).

Input is a ``PodObservation``: what CRI shows of the pod's newest sandbox and of every
container attempt in it, the probe verdicts, and the waiting reasons the pod worker
decided (CrashLoopBackOff, ErrImagePull, CreateContainerConfigError…).

- Container states: running (startedAt), terminated (exitCode, reason Completed / Error /
  OOMKilled, startedAt, finishedAt), or waiting (a reason); ``lastState`` is the previous
  attempt's termination; ``restartCount`` is the newest attempt's number.
- Phase: Pending while init containers or containers wait to start; Running while one
  runs (or, with restartPolicy Always, or OnFailure after a failure, will run again);
  Succeeded when every container exited 0 for good; Failed when one failed for good, or
  an init container failed under restartPolicy Never. Succeeded and Failed are final.
- Conditions: PodScheduled (kept), Initialized, ContainersReady, Ready (reasons
  ContainersNotInitialized, ContainersNotReady, PodCompleted); a condition keeps its
  lastTransitionTime until its status changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cri_api.v1 import api_pb2

from navarch._nodes import set_time
from navarch.v1 import core_pb2

from . import cri
from .actions import should_restart
from .runtime_spec import qos_class

__all__ = ["PodObservation", "pod_status"]

FINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodObservation:
    """What the agent knows of one pod at one moment (see the module docstring)."""

    sandbox_ready: bool = False
    pod_ips: tuple[str, ...] = ()
    host_ip: str = ""
    # container name -> its attempts in the newest sandbox, newest first
    containers: Mapping[str, tuple[api_pb2.ContainerStatus, ...]] = field(default_factory=dict)
    readiness: Mapping[str, bool] = field(default_factory=dict)  # container id -> ready
    started: Mapping[str, bool] = field(default_factory=dict)  # container id -> started
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> why
    pending: tuple[str, str] | None = None  # why no container can start yet (sandbox)
    old: core_pb2.PodStatus = field(default_factory=core_pb2.PodStatus)


def _ts(ns: int) -> float:
    return ns / 1e9


def _terminated(state: core_pb2.ContainerStateTerminated, attempt: api_pb2.ContainerStatus
                ) -> None:
    state.exit_code = attempt.exit_code
    state.reason = attempt.reason or ("Completed" if attempt.exit_code == 0 else "Error")
    if attempt.message:
        state.message = attempt.message
    if attempt.started_at:
        set_time(state.started_at, _ts(attempt.started_at))
    if attempt.finished_at:
        set_time(state.finished_at, _ts(attempt.finished_at))
    state.container_id = f"containerd://{attempt.id}"


def _container_status(spec: core_pb2.Container, attempts: tuple[api_pb2.ContainerStatus, ...],
                      obs: PodObservation, default_wait: tuple[str, str]
                      ) -> core_pb2.ContainerStatus:
    out = core_pb2.ContainerStatus(name=spec.name, image=spec.image)
    newest = attempts[0] if attempts else None
    waiting = obs.waiting.get(spec.name)
    if newest is None or newest.state == cri.CREATED:
        reason, message = waiting or obs.pending or default_wait
        out.state.waiting.reason = reason if not obs.pending or waiting else default_wait[0]
        if message:
            out.state.waiting.message = message
        if newest is not None:
            out.restart_count = cri.restart_count_of(newest)
        previous = attempts[1] if len(attempts) > 1 else None
        if previous is not None and previous.state == cri.EXITED:
            _terminated(out.last_state.terminated, previous)
        out.started = False
        return out
    out.restart_count = cri.restart_count_of(newest)
    out.image_id = newest.image_ref
    out.container_id = f"containerd://{newest.id}"
    previous = attempts[1] if len(attempts) > 1 else None
    if newest.state == cri.RUNNING:
        set_time(out.state.running.started_at, _ts(newest.started_at))
        started = obs.started.get(newest.id, not spec.HasField("startup_probe"))
        out.started = started
        out.ready = started and obs.readiness.get(newest.id,
                                                  not spec.HasField("readiness_probe"))
        if previous is not None and previous.state == cri.EXITED:
            _terminated(out.last_state.terminated, previous)
        return out
    # exited
    out.started = False
    if waiting is not None:  # it will start again: waiting, with this run as lastState
        out.state.waiting.reason, out.state.waiting.message = waiting
        _terminated(out.last_state.terminated, newest)
        return out
    _terminated(out.state.terminated, newest)
    if previous is not None and previous.state == cri.EXITED:
        _terminated(out.last_state.terminated, previous)
    return out


def _init_progress(pod: core_pb2.Pod, obs: PodObservation) -> tuple[list[str], bool]:
    """(init containers not yet completed, whether one failed for good)."""
    policy = pod.spec.restart_policy or "Always"
    incomplete: list[str] = []
    failed = False
    for init in pod.spec.init_containers:
        attempts = obs.containers.get(init.name, ())
        newest = attempts[0] if attempts else None
        if newest is not None and newest.state == cri.EXITED and newest.exit_code == 0:
            continue
        incomplete.append(init.name)
        if newest is not None and newest.state == cri.EXITED and policy == "Never":
            failed = True
    return incomplete, failed


def pod_phase(pod: core_pb2.Pod, statuses: list[core_pb2.ContainerStatus],
              init_incomplete: list[str], init_failed: bool) -> str:
    """kubelet's getPhase over the computed container statuses."""
    if init_failed:
        return "Failed"
    if init_incomplete:
        return "Pending"
    policy = pod.spec.restart_policy or "Always"
    running = waiting = stopped = succeeded = 0
    for cs in statuses:
        if cs.state.HasField("running"):
            running += 1
        elif cs.state.HasField("terminated"):
            stopped += 1
            succeeded += cs.state.terminated.exit_code == 0
        elif cs.state.HasField("waiting"):
            if cs.last_state.HasField("terminated"):
                stopped += 1  # waiting to restart after a run
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _condition(old: core_pb2.PodStatus, type_: str, status: str, now: float,
               reason: str = "", message: str = "") -> core_pb2.PodCondition:
    cond = core_pb2.PodCondition(type=type_, status=status, reason=reason, message=message)
    prev = next((c for c in old.conditions if c.type == type_), None)
    if prev is not None and prev.status == status and prev.HasField("last_transition_time"):
        cond.last_transition_time.CopyFrom(prev.last_transition_time)
    else:
        set_time(cond.last_transition_time, now)
    return cond


def pod_status(pod: core_pb2.Pod, obs: PodObservation, now: float) -> core_pb2.PodStatus:
    """The status to report for ``pod`` given ``obs``."""
    old = obs.old
    status = core_pb2.PodStatus()
    incomplete, init_failed = _init_progress(pod, obs)
    init_wait = ("PodInitializing", "") if pod.spec.init_containers else \
        ("ContainerCreating", "")
    for init in pod.spec.init_containers:
        status.init_container_statuses.append(_container_status(
            init, obs.containers.get(init.name, ()), obs, ("PodInitializing", "")
            if init.name not in incomplete[:1] else ("ContainerCreating", "")))
    for c in pod.spec.containers:
        default = init_wait if incomplete else ("ContainerCreating", "")
        status.container_statuses.append(_container_status(
            c, obs.containers.get(c.name, ()), obs, default))
    phase = pod_phase(pod, list(status.container_statuses), incomplete, init_failed)
    if old.phase in FINAL:
        phase = old.phase  # terminal phases are final
    status.phase = phase
    if phase == "Failed" and init_failed:
        status.reason = ""
    # conditions
    scheduled = next((c for c in old.conditions if c.type == "PodScheduled"), None)
    if scheduled is not None:
        status.conditions.append(scheduled)
    else:
        status.conditions.append(_condition(old, "PodScheduled", "True", now))
    if incomplete:
        status.conditions.append(_condition(
            old, "Initialized", "False", now, "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]"))
    else:
        status.conditions.append(_condition(old, "Initialized", "True", now))
    unready = [cs.name for cs in status.container_statuses if not cs.ready]
    if phase == "Succeeded" or (phase == "Failed" and not unready):
        reason, message, ready = "PodCompleted", "", "False"
    elif unready:
        reason = "ContainersNotReady"
        message, ready = f"containers with unready status: [{' '.join(unready)}]", "False"
    else:
        reason, message, ready = "", "", "True"
    status.conditions.append(_condition(old, "ContainersReady", ready, now, reason, message))
    status.conditions.append(_condition(old, "Ready", ready, now, reason, message))
    # addresses, times, class
    ips = list(obs.pod_ips) or ([old.pod_ip] if old.pod_ip and phase in FINAL else [])
    if ips:
        status.pod_ip = ips[0]
        for ip in ips:
            status.pod_ips.add(ip=ip)
    if obs.host_ip:
        status.host_ip = obs.host_ip
        status.host_ips.add(ip=obs.host_ip)
    if old.HasField("start_time"):
        status.start_time.CopyFrom(old.start_time)
    else:
        set_time(status.start_time, now)
    status.qos_class = old.qos_class or qos_class(pod)
    if old.nominated_node_name:
        status.nominated_node_name = old.nominated_node_name
    return status


def should_run_again(pod: core_pb2.Pod, attempt: api_pb2.ContainerStatus) -> bool:
    """Whether an exited attempt is followed by another (the restart policy says so)."""
    return should_restart(pod.spec.restart_policy or "Always", attempt.exit_code)
