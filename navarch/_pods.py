"""Pod facts that the API server, the scheduler and navctl share."""

from __future__ import annotations

from navarch.v1 import core_pb2

__all__ = ["DEFAULT_CONTAINER", "default_container", "set_condition"]

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def default_container(pod: core_pb2.Pod) -> str:
    """The container logs and exec mean when none is named, as kubectl picks it: the
    default-container annotation, else the first regular container (init containers
    are only ever named explicitly)."""
    named = pod.metadata.annotations.get(DEFAULT_CONTAINER, "")
    if named:
        return named
    return pod.spec.containers[0].name if pod.spec.containers else ""


def set_condition(pod: core_pb2.Pod, cond_type: str, status: str, now: float,
                  reason: str = "", message: str = "") -> core_pb2.PodCondition:
    """Set (or add) the pod condition ``cond_type``; its lastTransitionTime moves to
    ``now`` (whole seconds, as metav1.Time) only when the status changes."""
    for cond in pod.status.conditions:
        if cond.type == cond_type:
            break
    else:
        cond = pod.status.conditions.add(type=cond_type)
    if cond.status != status:
        cond.last_transition_time.FromSeconds(int(now))
    cond.status, cond.reason, cond.message = status, reason, message
    return cond
