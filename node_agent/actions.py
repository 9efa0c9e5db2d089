"""Pure: what to do next for one pod, from its spec and what CRI reports (kubelet's
``computePodActions``).

    desired (Pod) + observed (sandboxes, container attempts, probe verdicts, back-off)
        ──compute_pod_actions──▶ PodActions (kill / create sandbox / start / wait)

Rules, in kubelet's order:

1. A pod needs a (new) sandbox when it has none, when its newest is not ready, or when
   that one lost its IP. A new sandbox starts the pod over: everything running is killed
   and init containers run again. With restartPolicy Never a pod whose containers already
   ran gets no new sandbox (it is over).
2. Init containers run one at a time, in order; the next starts when the previous exited 0.
   A failed init container is restarted (with back-off) unless restartPolicy is Never,
   which fails the pod.
3. Then every container: started when it has no attempt yet; restarted when its attempt
   exited and the restart policy says so (Always; OnFailure with a non-zero exit code),
   after the crash back-off; killed and restarted when its spec changed (a new hash, as
   after ``set image``) or its liveness probe failed.
4. A pod all of whose containers have ended for good (Succeeded or Failed) has its sandbox
   stopped (its IP freed); the exited containers stay, for ``logs`` and status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cri_api.v1 import api_pb2

from navarch.v1 import core_pb2

from . import cri
from .runtime_spec import container_hash

CREATED, RUNNING, EXITED = cri.CREATED, cri.RUNNING, cri.EXITED


@dataclass(frozen=True)
class KillContainer:
    """Stop a running container (then it may be started again, by the same actions)."""

    container_id: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class PodActions:
    """The next step for one pod; empty when the pod is where it should be."""

    kill_pod: bool = False  # stop every container and the old sandbox first
    create_sandbox: bool = False
    sandbox_attempt: int = 0
    kill: tuple[KillContainer, ...] = ()
    start_init: str | None = None  # the init container to start now
    start: tuple[str, ...] = ()  # containers to start now, in spec order
    # container name -> (reason, message): why it waits (CrashLoopBackOff, …)
    waiting: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # seconds until a back-off ends (the worker syncs again then); 0 when none
    retry_after: float = 0.0
    stop_sandbox: bool = False  # the pod is over: free the sandbox, keep the containers
    init_failed: bool = False  # an init container failed for good (restartPolicy Never)

    @property
    def idle(self) -> bool:
        return not (self.kill_pod or self.create_sandbox or self.kill or self.start_init
                    or self.start or self.stop_sandbox)


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether an exited container starts again under the pod's restartPolicy."""
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return exit_code != 0
    return True  # Always (the default)


def _newest(attempts: Sequence[api_pb2.ContainerStatus]) -> api_pb2.ContainerStatus | None:
    return attempts[0] if attempts else None


def sandbox_ready(sandbox: api_pb2.PodSandboxStatus | None, host_network: bool) -> bool:
    return (sandbox is not None and sandbox.state == cri.SANDBOX_READY
            and (host_network or bool(sandbox.network.ip)))


def _crash_wait(pod: core_pb2.Pod, name: str, delay: float) -> tuple[str, str]:
    """kubelet's waiting reason and message; ``delay`` is the back-off (10 s, 20 s, …)."""
    meta = pod.metadata
    return ("CrashLoopBackOff",
            f"back-off {round(delay)}s restarting failed container={name} "
            f"pod={meta.name}_{meta.namespace}({meta.uid})")


def pod_finished(pod: core_pb2.Pod,
                 containers: Mapping[str, Sequence[api_pb2.ContainerStatus]]) -> bool:
    """Whether every container has exited for good (the pod Succeeded or Failed)."""
    policy = pod.spec.restart_policy or "Always"
    for container in pod.spec.containers:
        last = _newest(containers.get(container.name, ()))
        if last is None or last.state != EXITED or should_restart(policy, last.exit_code):
            return False
    return bool(pod.spec.containers)


def compute_pod_actions(
    pod: core_pb2.Pod,
    sandboxes: Sequence[api_pb2.PodSandboxStatus],
    containers: Mapping[str, Sequence[api_pb2.ContainerStatus]],
    *,
    backoff_remaining: Callable[[str], float],
    liveness_failed: Mapping[str, str] | None = None,
    backoff_delay: Callable[[str], float] | None = None,
) -> PodActions:
    """The next step for ``pod``.

    ``sandboxes``: the pod's sandboxes, newest first. ``containers``: container name →
    its attempts in the newest sandbox, newest first. ``backoff_remaining(name)``: seconds
    of crash back-off left for that container. ``liveness_failed``: container id → probe
    message ("liveness probe failed: …" or "startup probe failed: …"), for running
    containers whose probe failed. ``backoff_delay(name)``: the back-off itself, for the
    CrashLoopBackOff message (default: what remains of it).
    """
    delay_of = backoff_delay or backoff_remaining
    spec = pod.spec
    policy = spec.restart_policy or "Always"
    liveness_failed = liveness_failed or {}
    sandbox = sandboxes[0] if sandboxes else None
    ever_ran = any(containers.get(c.name) for c in [*spec.init_containers, *spec.containers])
    if pod_finished(pod, containers):
        return PodActions(stop_sandbox=sandbox is not None
                          and sandbox.state == cri.SANDBOX_READY)

    if not sandbox_ready(sandbox, spec.host_network):
        if sandbox is not None and policy == "Never" and ever_ran:
            # the sandbox died under a pod that never restarts: it is over
            return PodActions(stop_sandbox=sandbox.state == cri.SANDBOX_READY)
        attempt = sandbox.metadata.attempt + 1 if sandbox is not None else 0
        first = spec.init_containers[0].name if spec.init_containers else None
        return PodActions(kill_pod=sandbox is not None, create_sandbox=True,
                          sandbox_attempt=attempt, start_init=first,
                          start=() if first else tuple(c.name for c in spec.containers))

    waiting: dict[str, tuple[str, str]] = {}
    retry = 0.0
    # init containers, one at a time
    for init in spec.init_containers:
        last = _newest(containers.get(init.name, ()))
        if last is None or last.state == CREATED:
            return PodActions(start_init=init.name)
        if last.state == RUNNING:
            if last.id in liveness_failed:
                return PodActions(kill=(KillContainer(last.id, init.name, "Unhealthy",
                                                      liveness_failed[last.id]),),
                                  start_init=init.name)
            return PodActions()
        if last.state == EXITED and last.exit_code == 0:
            continue
        if policy == "Never":
            return PodActions(init_failed=True, stop_sandbox=True)
        remaining = backoff_remaining(init.name)
        if remaining > 0:
            return PodActions(waiting={init.name: _crash_wait(pod, init.name,
                                                              delay_of(init.name))},
                              retry_after=remaining)
        return PodActions(start_init=init.name)

    kill: list[KillContainer] = []
    start: list[str] = []
    finished = 0
    for container in spec.containers:
        attempts = containers.get(container.name, ())
        last = _newest(attempts)
        if last is None or last.state == CREATED:
            start.append(container.name)
            continue
        if last.state == RUNNING:
            changed = last.annotations.get(cri.CONTAINER_HASH) != container_hash(container)
            if changed:
                kill.append(KillContainer(last.id, container.name, "Killing",
                                          f"Container {container.name} definition changed, "
                                          "will be restarted"))
                start.append(container.name)
            elif last.id in liveness_failed:
                kind = "startup" if liveness_failed[last.id].startswith("startup") \
                    else "liveness"
                kill.append(KillContainer(
                    last.id, container.name, "Unhealthy",
                    f"Container {container.name} failed {kind} probe, will be restarted"))
                if policy != "Never":
                    start.append(container.name)
            continue
        # exited (or unknown: treated as exited with its code)
        changed = last.annotations.get(cri.CONTAINER_HASH) != container_hash(container)
        if not changed and not should_restart(policy, last.exit_code):
            finished += 1
            continue
        remaining = 0.0 if changed else backoff_remaining(container.name)
        if remaining > 0:
            waiting[container.name] = _crash_wait(pod, container.name,
                                                  delay_of(container.name))
            retry = remaining if not retry else min(retry, remaining)
            continue
        start.append(container.name)
    over = finished == len(spec.containers) and not kill and not start
    return PodActions(kill=tuple(kill), start=tuple(start), waiting=waiting,
                      retry_after=retry, stop_sandbox=over)
