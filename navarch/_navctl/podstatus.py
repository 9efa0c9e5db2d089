"""The STATUS, READY and RESTARTS of a pod, computed the way kubectl computes them.

The phase alone says too little (a Running pod may be crash-looping), so kubectl looks at
every container: the first unfinished init container decides while the pod initializes
(``Init:0/2``, ``Init:CrashLoopBackOff``), then the regular containers' waiting or
terminated reasons (``ContainerCreating``, ``CrashLoopBackOff``, ``Completed``,
``ExitCode:1``), and a pending deletion shows as ``Terminating``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from navarch._navctl.values import Obj, dig, items, parse_time

__all__ = ["PodSummary", "pod_summary"]

_TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodSummary:
    """What ``get pods`` shows of one pod."""

    status: str
    ready: int
    total: int
    restarts: int
    last_restart: datetime | None


@dataclass
class _Tally:
    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None

    def restarted(self, container_status: Obj) -> None:
        """Count the restarts of one container and remember its last one."""
        self.restarts += int(container_status.get("restartCount") or 0)
        finished = parse_time(dig(container_status, "lastState.terminated.finishedAt"))
        if finished is not None and (self.last_restart is None or finished > self.last_restart):
            self.last_restart = finished


def _condition_true(pod: Obj, cond_type: str) -> bool:
    return any(c.get("type") == cond_type and c.get("status") == "True"
               for c in items(pod, "status.conditions"))


def _terminated_reason(terminated: Obj, prefix: str = "") -> str:
    if terminated.get("reason"):
        return prefix + str(terminated["reason"])
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _init_containers(pod: Obj, tally: _Tally, sidecars: set[str]) -> bool:
    """Walks the init containers; True while the pod is still initializing."""
    specs = items(pod, "spec.initContainers")
    for index, cs in enumerate(items(pod, "status.initContainerStatuses")):
        tally.restarted(cs)
        terminated = dig(cs, "state.terminated")
        waiting = dig(cs, "state.waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if cs.get("name") in sidecars and cs.get("started"):
            if cs.get("ready"):
                tally.ready += 1
            continue
        if terminated is not None:
            tally.reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and waiting.get("reason") and \
                waiting.get("reason") != "PodInitializing":
            tally.reason = f"Init:{waiting['reason']}"
        else:
            tally.reason = f"Init:{index}/{len(specs)}"
        return True
    return False


def _regular_containers(pod: Obj, tally: _Tally) -> None:
    running = False
    # kubectl walks them last to first, so the first container's reason wins.
    for cs in reversed(items(pod, "status.containerStatuses")):
        tally.restarted(cs)
        waiting = dig(cs, "state.waiting")
        terminated = dig(cs, "state.terminated")
        if waiting is not None and waiting.get("reason"):
            tally.reason = str(waiting["reason"])
        elif terminated is not None:
            tally.reason = _terminated_reason(terminated)
        elif cs.get("ready") and dig(cs, "state.running") is not None:
            running = True
            tally.ready += 1
    if tally.reason == "Completed" and running:
        tally.reason = "Running" if _condition_true(pod, "Ready") else "NotReady"


def pod_summary(pod: Obj) -> PodSummary:
    """STATUS, READY and RESTARTS of ``pod`` (its Kubernetes JSON form)."""
    phase = str(dig(pod, "status.phase", ""))
    tally = _Tally(str(dig(pod, "status.reason", "")) or phase)
    for cond in items(pod, "status.conditions"):
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"
    sidecars = {str(c.get("name")) for c in items(pod, "spec.initContainers")
                if c.get("restartPolicy") == "Always"}
    total = len(items(pod, "spec.containers")) + len(sidecars)
    initializing = _init_containers(pod, tally, sidecars)
    if not initializing or _condition_true(pod, "Initialized"):
        # Once initialized, restarts of finished init containers no longer count.
        tally.restarts, tally.last_restart = 0, None
        for cs in items(pod, "status.initContainerStatuses"):
            if cs.get("name") in sidecars:
                tally.restarted(cs)
        _regular_containers(pod, tally)
    if dig(pod, "metadata.deletionTimestamp") is not None:
        if dig(pod, "status.reason") == "NodeLost":
            tally.reason = "Unknown"
        elif phase not in _TERMINAL_PHASES:
            tally.reason = "Terminating"
    return PodSummary(tally.reason, tally.ready, total, tally.restarts, tally.last_restart)
