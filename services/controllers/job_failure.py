"""A Job's podFailurePolicy: which rule, if any, a failed pod matches, and what follows
(Kubernetes' ``matchPodFailurePolicy``). Pure functions.

Rules are tried in order and the first match decides: ``FailJob`` fails the Job at once
(reason PodFailurePolicy), ``Ignore`` does not count the failure (a replacement is made
with no backoff), ``Count`` (and ``FailIndex``, which needs per-index limits, not
supported here) counts it as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from navarch.v1 import batch_pb2, core_pb2

__all__ = ["FailureVerdict", "failure_verdict", "judge_failures"]


@dataclass(frozen=True)
class FailureVerdict:
    """The action of the rule a failed pod matched, and Kubernetes' message for it."""

    action: str
    message: str


def _exit_code_match(rule: batch_pb2.PodFailurePolicyRule, pod: core_pb2.Pod,
                     index: int) -> str | None:
    req = rule.on_exit_codes
    statuses = [*pod.status.init_container_statuses, *pod.status.container_statuses]
    for status in statuses:
        if req.HasField("container_name") and status.name != req.container_name:
            continue
        if not status.state.HasField("terminated"):
            continue
        code = status.state.terminated.exit_code
        if code == 0:
            continue
        if (req.operator == "In") == (code in req.values):
            return (f"Container {status.name} for pod {pod.metadata.namespace}/"
                    f"{pod.metadata.name} failed with exit code {code} matching "
                    f"{rule.action} rule at index {index}")
    return None


def _condition_match(rule: batch_pb2.PodFailurePolicyRule, pod: core_pb2.Pod,
                     index: int) -> str | None:
    for pattern in rule.on_pod_conditions:
        for cond in pod.status.conditions:
            if cond.type == pattern.type and cond.status == (pattern.status or "True"):
                return (f"Pod {pod.metadata.namespace}/{pod.metadata.name} has condition "
                        f"{cond.type} matching {rule.action} rule at index {index}")
    return None


def failure_verdict(policy: batch_pb2.PodFailurePolicy,
                    pod: core_pb2.Pod) -> FailureVerdict | None:
    """The first rule of ``policy`` the failed ``pod`` matches, None when none does."""
    for index, rule in enumerate(policy.rules):
        if rule.HasField("on_exit_codes"):
            message = _exit_code_match(rule, pod, index)
        else:
            message = _condition_match(rule, pod, index)
        if message is not None:
            return FailureVerdict(rule.action, message)
    return None


def judge_failures(spec: batch_pb2.JobSpec, pods: list[core_pb2.Pod]
                   ) -> tuple[set[str], str]:
    """(names of failed pods to ignore, the message of the first FailJob match or "")."""
    if not spec.HasField("pod_failure_policy") or not spec.pod_failure_policy.rules:
        return set(), ""
    ignored: set[str] = set()
    fail_job = ""
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        if pod.status.phase != "Failed":
            continue
        verdict = failure_verdict(spec.pod_failure_policy, pod)
        if verdict is None:
            continue
        if verdict.action == "Ignore":
            ignored.add(pod.metadata.name)
        elif verdict.action == "FailJob" and not fail_job:
            fail_job = verdict.message
    return ignored, fail_job
