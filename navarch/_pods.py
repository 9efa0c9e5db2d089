"""Pod facts that the API server, the controllers, the scheduler and navctl share."""

from __future__ import annotations

from collections.abc import Mapping

from navarch import _labels
from navarch.v1 import core_pb2, policy_pb2

__all__ = ["DEFAULT_CONTAINER", "budget_selects", "default_container", "pod_ready",
           "set_condition"]

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


def pod_ready(pod: core_pb2.Pod) -> bool:
    """The pod's Ready condition is True."""
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def budget_selects(pdb: policy_pb2.PodDisruptionBudget, labels: Mapping[str, str]) -> bool:
    """Whether a PodDisruptionBudget covers a pod with ``labels`` (policy/v1): an empty
    selector covers every pod of its namespace, an unset or invalid one none."""
    if not pdb.spec.HasField("selector"):
        return False
    try:
        return _labels.label_selector(pdb.spec.selector).matches(dict(labels))
    except _labels.SelectorError:
        return False
