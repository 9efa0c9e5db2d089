"""The life of a pod on a hollow node, as pure functions: what happens next and when
(``next_step``), and the status each transition writes.

A pod's story::

    bound ──startup-delay──▶ Running, Ready ──run-seconds──▶ exits with exit-code
      │                                                  ├─ restart? (Always; OnFailure
      │  (run-seconds 0 and an exit-code: exits at once) │   and code ≠ 0): waiting
      │                                                  │   CrashLoopBackOff, then Running
      │                                                  │   again after the backoff
      │                                                  └─ else Succeeded (0) / Failed
    deletionTimestamp set ──min(grace, stop delay)──▶ deleted with grace 0

Annotations that script it: ``simnodes.navarch.io/exit-code`` (the containers exit with
this code) and ``simnodes.navarch.io/run-seconds`` (they run this long first; default 0
when an exit code is given, else forever). Contracts: the functions never mutate the pod
they are given (it may be cached); the state of a pod is read from its status alone, so
that a restarted simnodes process picks up where the last one stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from navarch.v1 import core_pb2

from .nodes import set_time

__all__ = ["EXIT_CODE_ANNOTATION", "RUN_SECONDS_ANNOTATION", "Behaviour", "Step",
           "crash_backoff", "exited_status", "next_step", "parse_behaviour",
           "restarted_status", "should_restart", "started_status"]

EXIT_CODE_ANNOTATION = "simnodes.navarch.io/exit-code"
RUN_SECONDS_ANNOTATION = "simnodes.navarch.io/run-seconds"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 300.0  # the kubelet's CrashLoopBackOff

Action = Literal["none", "start", "exit", "restart", "delete"]


@dataclass(frozen=True)
class Behaviour:
    """What a pod's containers do once started: exit with ``exit_code`` after
    ``run_seconds``, or (exit_code None and run_seconds None) run until deleted."""

    exit_code: int | None = None
    run_seconds: float | None = None
    error: str = ""  # a bad annotation: the pod runs forever and this is logged

    @property
    def exits(self) -> bool:
        """Whether the containers ever exit by themselves."""
        return self.exit_code is not None or self.run_seconds is not None


@dataclass(frozen=True)
class Step:
    """The next thing to do to a pod, due at wall time ``due`` (act when due ≤ now)."""

    action: Action
    due: float = 0.0


def parse_behaviour(annotations: Mapping[str, str]) -> Behaviour:
    """The scripted behaviour from a pod's annotations; a bad value is reported in
    ``error`` and ignored."""
    code_text = annotations.get(EXIT_CODE_ANNOTATION)
    secs_text = annotations.get(RUN_SECONDS_ANNOTATION)
    code: int | None = None
    secs: float | None = None
    errors = []
    if code_text is not None:
        try:
            code = int(code_text)
            if not 0 <= code <= 255:
                raise ValueError
        except ValueError:
            errors.append(f"{EXIT_CODE_ANNOTATION}: {code_text!r} is not an exit code "
                          "(an integer 0-255)")
            code = None
    if secs_text is not None:
        try:
            secs = float(secs_text)
            if not secs >= 0:
                raise ValueError
        except ValueError:
            errors.append(f"{RUN_SECONDS_ANNOTATION}: {secs_text!r} is not a number of "
                          "seconds (0 or more)")
            secs = None
    return Behaviour(code, secs, "; ".join(errors))


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether the kubelet restarts a container that exited with ``exit_code``."""
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return exit_code != 0
    return True  # Always, the default


def crash_backoff(restarts: int) -> float:
    """Seconds before restart number ``restarts`` (1, 2…): 10 s doubling, at most 5 min."""
    return float(min(BACKOFF_BASE * 2 ** max(restarts - 1, 0), BACKOFF_MAX))


def _seconds(ts: object) -> float:
    return float(ts.ToMicroseconds()) / 1e6  # type: ignore[attr-defined]


def next_step(pod: core_pb2.Pod, behaviour: Behaviour, seen_at: float, startup_delay: float,
              stop_delay: float) -> Step:
    """What happens next to ``pod`` (bound to one of our nodes), first seen at
    ``seen_at``: its deletion, start, exit, restart, or nothing."""
    meta, status = pod.metadata, pod.status
    if meta.HasField("deletion_timestamp"):
        grace = max(meta.deletion_grace_period_seconds, 0)
        requested = _seconds(meta.deletion_timestamp) - grace
        return Step("delete", requested + min(float(grace), stop_delay))
    if status.phase in ("Succeeded", "Failed"):
        return Step("none")
    states = list(status.container_statuses)
    if not states or len(states) < len(pod.spec.containers) or any(
            not (s.state.HasField("running") or s.state.HasField("terminated")
                 or s.state.waiting.reason == "CrashLoopBackOff") for s in states):
        exits_at_once = behaviour.exits and not behaviour.run_seconds
        return Step("exit" if exits_at_once else "start", seen_at + startup_delay)
    waiting = [s for s in states if s.state.waiting.reason == "CrashLoopBackOff"]
    if waiting:
        last = max(_seconds(s.last_state.terminated.finished_at) for s in waiting)
        return Step("restart", last + crash_backoff(max(s.restart_count for s in waiting)))
    if not behaviour.exits:
        return Step("none")
    started = min(_seconds(s.state.running.started_at) for s in states
                  if s.state.HasField("running")) if any(
        s.state.HasField("running") for s in states) else seen_at
    return Step("exit", started + (behaviour.run_seconds or 0.0))


# --- statuses ---------------------------------------------------------------------------

def _condition(old: core_pb2.PodStatus, type_: str, value: str, now: float,
               reason: str = "") -> core_pb2.PodCondition:
    cond = core_pb2.PodCondition(type=type_, status=value, reason=reason)
    prev = next((c for c in old.conditions if c.type == type_), None)
    if prev is not None and prev.status == value and prev.HasField("last_transition_time"):
        cond.last_transition_time.CopyFrom(prev.last_transition_time)
    else:
        set_time(cond.last_transition_time, now)
    return cond


def _conditions(pod: core_pb2.Pod, now: float, ready: bool, reason: str = ""
                ) -> list[core_pb2.PodCondition]:
    old = pod.status
    value = "True" if ready else "False"
    return [_condition(old, "PodReadyToStartContainers", "True", now),
            _condition(old, "Initialized", "True", now),
            _condition(old, "Ready", value, now, "" if ready else reason),
            _condition(old, "ContainersReady", value, now, "" if ready else reason),
            _condition(old, "PodScheduled", "True", now)]


def image_id(image: str) -> str:
    """The simulated content digest of ``image``."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _container_id(pod: core_pb2.Pod, name: str, restarts: int) -> str:
    digest = hashlib.sha256(f"{pod.metadata.uid}/{name}/{restarts}".encode()).hexdigest()
    return f"simnodes://{digest[:32]}"


def _base(pod: core_pb2.Pod, host: str, ip: str, now: float, phase: str
          ) -> core_pb2.PodStatus:
    status = core_pb2.PodStatus(phase=phase, host_ip=host, pod_ip=ip,
                                qos_class=pod.status.qos_class,
                                nominated_node_name=pod.status.nominated_node_name)
    status.host_ips.add(ip=host)
    if ip:
        status.pod_ips.add(ip=ip)
    if pod.status.HasField("start_time"):
        status.start_time.CopyFrom(pod.status.start_time)
    else:
        set_time(status.start_time, now)
    for c in pod.spec.init_containers:
        s = status.init_container_statuses.add(name=c.name, image=c.image,
                                               image_id=image_id(c.image), ready=True,
                                               container_id=_container_id(pod, c.name, 0))
        s.started = False
        t = s.state.terminated
        t.exit_code, t.reason = 0, "Completed"
        t.container_id = s.container_id
        set_time(t.started_at, now)
        set_time(t.finished_at, now)
    return status


def started_status(pod: core_pb2.Pod, host: str, ip: str, now: float) -> core_pb2.PodStatus:
    """Running and Ready: init containers completed, every container running since now."""
    status = _base(pod, host, ip, now, "Running")
    for c in pod.spec.containers:
        s = status.container_statuses.add(name=c.name, image=c.image,
                                          image_id=image_id(c.image), ready=True,
                                          container_id=_container_id(pod, c.name, 0))
        s.started = True
        set_time(s.state.running.started_at, now)
    status.conditions.extend(_conditions(pod, now, True))
    return status


def exited_status(pod: core_pb2.Pod, host: str, ip: str, now: float, exit_code: int
                  ) -> core_pb2.PodStatus:
    """Every container exited with ``exit_code``: Succeeded/Failed when the restart policy
    keeps it down, else Running with containers waiting in CrashLoopBackOff."""
    restart = should_restart(pod.spec.restart_policy, exit_code)
    terminal = "Succeeded" if exit_code == 0 else "Failed"
    status = _base(pod, host, ip, now, "Running" if restart else terminal)
    old = {s.name: s for s in pod.status.container_statuses}
    reason = "Completed" if exit_code == 0 else "Error"
    for c in pod.spec.containers:
        prev = old.get(c.name)
        restarts = prev.restart_count if prev is not None else 0
        s = status.container_statuses.add(name=c.name, image=c.image,
                                          image_id=image_id(c.image), ready=False,
                                          restart_count=restarts)
        done = s.last_state.terminated if restart else s.state.terminated
        done.exit_code, done.reason = exit_code, reason
        done.container_id = _container_id(pod, c.name, restarts)
        if prev is not None and prev.state.HasField("running"):
            done.started_at.CopyFrom(prev.state.running.started_at)
        else:
            set_time(done.started_at, now)
        set_time(done.finished_at, now)
        if restart:
            s.restart_count = restarts + 1
            s.state.waiting.reason = "CrashLoopBackOff"
            s.state.waiting.message = (f"back-off {crash_backoff(restarts + 1):g}s "
                                       f"restarting failed container={c.name}")
            s.started = False
        else:
            s.container_id = done.container_id
            s.started = False
    status.conditions.extend(_conditions(
        pod, now, False, "ContainersNotReady" if restart else "PodCompleted"))
    return status


def restarted_status(pod: core_pb2.Pod, host: str, ip: str, now: float
                     ) -> core_pb2.PodStatus:
    """The containers back up after their CrashLoopBackOff: running since now, Ready,
    restartCount and lastState kept."""
    status = _base(pod, host, ip, now, "Running")
    old = {s.name: s for s in pod.status.container_statuses}
    for c in pod.spec.containers:
        prev = old.get(c.name)
        restarts = prev.restart_count if prev is not None else 0
        s = status.container_statuses.add(name=c.name, image=c.image,
                                          image_id=image_id(c.image), ready=True,
                                          restart_count=restarts,
                                          container_id=_container_id(pod, c.name, restarts))
        if prev is not None:
            s.last_state.CopyFrom(prev.last_state)
        s.started = True
        set_time(s.state.running.started_at, now)
    status.conditions.extend(_conditions(pod, now, True))
    return status
