"""Pure: the PodStatus the agent reports, computed as kubelet computes it
(``generateAPIPodStatus``, ``convertToAPIContainerStatuses``, ``getPhase``, the status
manager's ``generate.go`` conditions).

    PodObservation (CRI attempts, probe verdicts, the worker's waiting reasons, old status)
        ──pod_status──▶ PodStatus (phase, conditions, container statuses, IPs, times, QoS)

Container statuses:

- The newest attempt gives the state: running (startedAt), terminated (exitCode, reason
  Completed / Error / OOMKilled as CRI says, startedAt, finishedAt, containerID), or
  waiting. ``lastState`` is the previous attempt's termination; ``restartCount`` is the
  attempt number the agent stamped on the newest. With no attempt, the container waits
  (ContainerCreating, or PodInitializing when the pod has init containers) and keeps
  restartCount and lastState from the old status; a terminated old state is kept whole.
- A container that will start again (kubelet's ShouldContainerBeRestarted) shows the
  reason the pod worker decided (CrashLoopBackOff, ErrImagePull, ImagePullBackOff,
  CreateContainerConfigError…), its last run moving to ``lastState``. Why no container can
  start yet (``pending``: sandbox or volume trouble) is the message of the default wait.
- ``started``: running and past its startup probe; ``ready``: started and past its
  readiness probe (an init container: exited 0).
- Deviation: a created, not yet started attempt shows the default waiting reason where
  kubelet shows an empty one.

Phase (getPhase): Failed when an init container failed under restartPolicy Never; Pending
while init containers are incomplete or a container waits to run for the first time;
Running while one runs, or all stopped but some will restart (Always; OnFailure after a
failure); Succeeded when all exited 0 for good; Failed when all exited, one at least in
failure, for good. Succeeded and Failed are final. ``reason``/``message`` are kept while
the phase does not change.

Conditions, in kubelet's order after the conditions it does not own (kept from the old
status): PodReadyToStartContainers (the sandbox is ready), Initialized (False:
ContainersNotInitialized "containers with incomplete status: [a b]"), Ready and
ContainersReady (False: ContainersNotReady "containers with unready status: [a b]",
PodCompleted, PodFailed, or ReadinessGatesNotReady for Ready), PodScheduled True. A
condition keeps its lastTransitionTime while its status does not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cri_api.v1 import api_pb2

from navarch._nodes import set_time
from navarch.v1 import core_pb2

from . import cri
from .runtime_spec import qos_class

__all__ = ["PodObservation", "container_statuses", "pod_phase", "pod_status", "qos_class"]

FINAL = ("Succeeded", "Failed")
CONTAINER_CREATING, POD_INITIALIZING = "ContainerCreating", "PodInitializing"
RUNTIME = "containerd"
#: conditions kubelet owns; the others (readiness gates, DisruptionTarget…) are kept
KUBELET_CONDITIONS = ("PodScheduled", "PodReadyToStartContainers", "Initialized",
                      "ContainersReady", "Ready")


@dataclass(frozen=True)
class PodObservation:
    """What the agent knows of one pod at one moment."""

    sandbox_ready: bool = False
    pod_ips: tuple[str, ...] = ()  # the sandbox's (or the node's, for hostNetwork)
    host_ip: str = ""
    # container name (init or regular) -> its attempts in the newest sandbox, newest first
    containers: Mapping[str, Sequence[api_pb2.ContainerStatus]] = field(default_factory=dict)
    readiness: Mapping[str, bool] = field(default_factory=dict)  # container id -> ready
    started: Mapping[str, bool] = field(default_factory=dict)  # container id -> started
    # container name -> (reason, message) the pod worker decided for its next start
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    pending: tuple[str, str] | None = None  # why no container can start yet (reason, msg)
    old: core_pb2.PodStatus = field(default_factory=core_pb2.PodStatus)


# --- container statuses --------------------------------------------------------------------


def _cid(attempt: api_pb2.ContainerStatus) -> str:
    return f"{RUNTIME}://{attempt.id}"


def _terminated(state: core_pb2.ContainerStateTerminated,
                attempt: api_pb2.ContainerStatus) -> None:
    state.exit_code = attempt.exit_code
    state.reason = attempt.reason or ("Completed" if attempt.exit_code == 0 else "Error")
    if attempt.message:
        state.message = attempt.message
    if attempt.started_at:
        set_time(state.started_at, attempt.started_at / 1e9)
    if attempt.finished_at:
        set_time(state.finished_at, attempt.finished_at / 1e9)
    state.container_id = _cid(attempt)


def _unknown_end(state: core_pb2.ContainerStateTerminated, message: str) -> None:
    """A container that was running and is gone without a trace (kubelet's wording)."""
    state.reason, state.message, state.exit_code = "ContainerStatusUnknown", message, 137


def _convert(spec: core_pb2.Container, attempt: api_pb2.ContainerStatus,
             old: core_pb2.ContainerStatus | None, default_reason: str
             ) -> core_pb2.ContainerStatus:
    """kubelet's convertContainerStatus: one CRI attempt as a ContainerStatus."""
    out = core_pb2.ContainerStatus(
        name=spec.name, image=attempt.image.user_specified_image or spec.image,
        image_id=attempt.image_ref, container_id=_cid(attempt),
        restart_count=cri.restart_count_of(attempt))
    if attempt.state == cri.RUNNING:
        set_time(out.state.running.started_at, attempt.started_at / 1e9)
    elif attempt.state == cri.EXITED:
        _terminated(out.state.terminated, attempt)
    elif attempt.state == cri.UNKNOWN and old is not None and old.state.HasField("running"):
        _unknown_end(out.state.terminated,
                     "The container could not be located when the pod was terminated")
        out.restart_count = old.restart_count + 1
    else:  # created, or unknown: waiting to run
        out.state.waiting.reason = default_reason
    return out


def _should_restart(pod: core_pb2.Pod, newest: api_pb2.ContainerStatus | None) -> bool:
    """kubelet's ShouldContainerBeRestarted, on the newest attempt."""
    if pod.metadata.HasField("deletion_timestamp"):
        return False
    if newest is None or newest.state in (cri.CREATED, cri.UNKNOWN):
        return True
    if newest.state == cri.RUNNING:
        return False
    policy = pod.spec.restart_policy or "Always"
    return policy == "Always" or (policy == "OnFailure" and newest.exit_code != 0)


def _container_status(pod: core_pb2.Pod, spec: core_pb2.Container, obs: PodObservation,
                      old: core_pb2.ContainerStatus | None, default_reason: str,
                      init: bool) -> core_pb2.ContainerStatus:
    attempts = obs.containers.get(spec.name, ())
    newest = attempts[0] if attempts else None
    if newest is not None:
        out = _convert(spec, newest, old, default_reason)
        previous = attempts[1] if len(attempts) > 1 else None
        if previous is not None and previous.state == cri.EXITED:
            _terminated(out.last_state.terminated, previous)
        elif previous is None and old is not None and old.restart_count == out.restart_count:
            out.last_state.CopyFrom(old.last_state)  # the previous attempt was removed
    elif old is not None and old.state.HasField("terminated"):
        out = core_pb2.ContainerStatus()
        out.CopyFrom(old)  # its container is gone (a new sandbox): what it was stays true
    else:
        out = core_pb2.ContainerStatus(name=spec.name, image=spec.image)
        out.state.waiting.reason = default_reason
        if old is not None:
            out.restart_count = old.restart_count
            out.last_state.CopyFrom(old.last_state)
            if old.state.HasField("running") and not out.last_state.HasField("terminated"):
                _unknown_end(out.last_state.terminated,
                             "The container could not be located when the pod was deleted."
                             "  The container used to be Running")
                if not pod.metadata.HasField("deletion_timestamp"):
                    out.restart_count += 1
    done = newest is not None and newest.state == cri.EXITED and newest.exit_code == 0
    why = obs.waiting.get(spec.name)
    if why is not None and not (init and done) and _should_restart(pod, newest):
        if out.state.HasField("terminated"):
            out.last_state.CopyFrom(out.state)
        out.state.Clear()
        out.state.waiting.reason, out.state.waiting.message = why
    elif obs.pending is not None and out.state.waiting.reason == default_reason \
            and not out.state.waiting.message:
        out.state.waiting.message = obs.pending[1]
    running = out.state.HasField("running")
    if init:
        out.started = running
        out.ready = out.state.HasField("terminated") and out.state.terminated.exit_code == 0
    else:
        cid = newest.id if newest is not None else ""
        out.started = running and obs.started.get(cid, not spec.HasField("startup_probe"))
        out.ready = out.started and obs.readiness.get(cid,
                                                      not spec.HasField("readiness_probe"))
    return out


def container_statuses(pod: core_pb2.Pod, obs: PodObservation, *, init: bool
                       ) -> list[core_pb2.ContainerStatus]:
    """The statuses of the pod's init (``init``) or regular containers, in spec order."""
    specs = pod.spec.init_containers if init else pod.spec.containers
    old_list = obs.old.init_container_statuses if init else obs.old.container_statuses
    old = {s.name: s for s in old_list}
    default = POD_INITIALIZING if pod.spec.init_containers else CONTAINER_CREATING
    return [_container_status(pod, spec, obs, old.get(spec.name), default, init)
            for spec in specs]


# --- phase ---------------------------------------------------------------------------------


def _ran(status: core_pb2.ContainerStatus) -> bool:
    """Waiting to run again after a run (or terminated)."""
    return status.state.HasField("terminated") or status.last_state.HasField("terminated")


def pod_phase(pod: core_pb2.Pod, init_statuses: Sequence[core_pb2.ContainerStatus],
              statuses: Sequence[core_pb2.ContainerStatus]) -> str:
    """kubelet's getPhase over the computed container statuses (init containers are all
    regular ones here: sidecars are not run as such)."""
    policy = pod.spec.restart_policy or "Always"
    pending_init = failed_init = 0
    for s in init_statuses:
        if s.state.HasField("terminated"):
            failed_init += s.state.terminated.exit_code != 0
        elif s.state.HasField("waiting") and s.last_state.HasField("terminated"):
            failed_init += s.last_state.terminated.exit_code != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        if s.state.HasField("running"):
            running += 1
        elif s.state.HasField("terminated"):
            stopped += 1
            succeeded += s.state.terminated.exit_code == 0
        elif _ran(s):
            stopped += 1
        else:
            waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    started = any(s.state.HasField("running") or s.state.HasField("terminated")
                  for s in statuses)
    if (pending_init and not started) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"  # every container is on its way back
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


# --- conditions ----------------------------------------------------------------------------


def _condition(old: core_pb2.PodStatus, now: float, type_: str, status: str,
               reason: str = "", message: str = "") -> core_pb2.PodCondition:
    cond = core_pb2.PodCondition(type=type_, status=status, reason=reason, message=message)
    prev = next((c for c in old.conditions if c.type == type_), None)
    if prev is not None and prev.status == status and prev.HasField("last_transition_time"):
        cond.last_transition_time.CopyFrom(prev.last_transition_time)
    else:
        set_time(cond.last_transition_time, now)
    return cond


def _names(names: Sequence[str]) -> str:
    return f"[{' '.join(names)}]"  # as Go prints a []string


def _containers_ready(phase: str, statuses: Sequence[core_pb2.ContainerStatus]
                      ) -> tuple[str, str, str]:
    """(status, reason, message) of ContainersReady."""
    if phase == "Succeeded":
        return "False", "PodCompleted", ""
    if phase == "Failed":
        return "False", "PodFailed", ""
    unready = [s.name for s in statuses if not s.ready]
    if unready:
        return "False", "ContainersNotReady", f"containers with unready status: {_names(unready)}"
    return "True", "", ""


def _initialized(phase: str, init_statuses: Sequence[core_pb2.ContainerStatus],
                 statuses: Sequence[core_pb2.ContainerStatus]) -> tuple[str, str, str]:
    """(status, reason, message) of Initialized."""
    if phase == "Succeeded":
        return "True", "PodCompleted", ""
    if any(s.state.HasField("running") or s.state.HasField("terminated") for s in statuses):
        return "True", "", ""  # a regular container ran: the pod was initialized
    incomplete = [s.name for s in init_statuses if not s.ready]
    if incomplete:
        return ("False", "ContainersNotInitialized",
                f"containers with incomplete status: {_names(incomplete)}")
    return "True", "", ""


def _ready(pod: core_pb2.Pod, containers_ready: tuple[str, str, str],
           kept: Sequence[core_pb2.PodCondition]) -> tuple[str, str, str]:
    """(status, reason, message) of Ready: ContainersReady and the readiness gates."""
    if containers_ready[0] != "True":
        return containers_ready
    by_type = {c.type: c for c in kept}
    unready = []
    for gate in pod.spec.readiness_gates:
        cond = by_type.get(gate.condition_type)
        if cond is None:
            unready.append(f'corresponding condition of pod readiness gate '
                           f'"{gate.condition_type}" does not exist.')
        elif cond.status != "True":
            unready.append(f'the status of pod readiness gate "{gate.condition_type}" is '
                           f'not "True", but {cond.status}')
    if unready:
        return "False", "ReadinessGatesNotReady", ", ".join(unready)
    return "True", "", ""


def _conditions(pod: core_pb2.Pod, status: core_pb2.PodStatus, obs: PodObservation,
                now: float) -> list[core_pb2.PodCondition]:
    old = obs.old
    kept = [c for c in old.conditions if c.type not in KUBELET_CONDITIONS]
    init, regular = status.init_container_statuses, status.container_statuses
    containers_ready = _containers_ready(status.phase, regular)
    out = list(kept)
    out.append(_condition(old, now, "PodReadyToStartContainers",
                          "True" if obs.sandbox_ready else "False"))
    out.append(_condition(old, now, "Initialized",
                          *_initialized(status.phase, init, regular)))
    out.append(_condition(old, now, "Ready", *_ready(pod, containers_ready, kept)))
    out.append(_condition(old, now, "ContainersReady", *containers_ready))
    out.append(_condition(old, now, "PodScheduled", "True"))
    return out


# --- the pod -------------------------------------------------------------------------------


def pod_status(pod: core_pb2.Pod, obs: PodObservation, now: float) -> core_pb2.PodStatus:
    """The status to report for ``pod`` given ``obs`` at ``now`` (seconds since the
    epoch); ``obs.old`` is the status the API server has."""
    old = obs.old
    status = core_pb2.PodStatus()
    status.init_container_statuses.extend(container_statuses(pod, obs, init=True))
    status.container_statuses.extend(container_statuses(pod, obs, init=False))
    phase = pod_phase(pod, status.init_container_statuses, status.container_statuses)
    if old.phase in FINAL:
        phase = old.phase  # pods never leave a terminal phase
    status.phase = phase
    if phase == old.phase:
        status.reason, status.message = old.reason, old.message
    status.conditions.extend(_conditions(pod, status, obs, now))
    ips = list(obs.pod_ips)
    if ips:
        status.pod_ip = ips[0]
        for ip in ips:
            status.pod_ips.add(ip=ip)
    elif phase in FINAL:  # the sandbox is gone; the pod had these addresses
        status.pod_ip = old.pod_ip
        status.pod_ips.extend(old.pod_ips)
    host_ip = obs.host_ip or old.host_ip
    if host_ip:
        status.host_ip = host_ip
        status.host_ips.add(ip=host_ip)
    if old.HasField("start_time"):
        status.start_time.CopyFrom(old.start_time)
    else:
        set_time(status.start_time, now)
    status.qos_class = old.qos_class or qos_class(pod)
    status.nominated_node_name = old.nominated_node_name
    return status
