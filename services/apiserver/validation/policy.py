"""policy/v1 PodDisruptionBudgets."""

from __future__ import annotations

from navarch.v1 import policy_pb2

from ..errors import invalid
from .common import (
    Errors,
    check_int_or_percent,
    check_label_selector,
    check_nonnegative,
    check_value,
)
from .meta import check_object_meta

__all__ = ["UNHEALTHY_POD_EVICTION_POLICIES", "validate_pdb"]

UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def validate_pdb(pdb: policy_pb2.PodDisruptionBudget) -> Errors:
    """Every problem with a PodDisruptionBudget (spec and status)."""
    spec = pdb.spec
    errors = check_object_meta("PodDisruptionBudget", pdb.metadata)
    if spec.min_available and spec.max_unavailable:
        errors.append(invalid("spec", f"minAvailable={spec.min_available}, maxUnavailable="
                              f"{spec.max_unavailable}",
                              "minAvailable and maxUnavailable cannot be both set"))
    if spec.min_available:
        errors += check_int_or_percent("spec.minAvailable", spec.min_available)
    if spec.max_unavailable:
        errors += check_int_or_percent("spec.maxUnavailable", spec.max_unavailable)
    if spec.HasField("selector"):
        errors += check_label_selector("spec.selector", spec.selector)
    errors += check_value("spec.unhealthyPodEvictionPolicy",
                          spec.unhealthy_pod_eviction_policy,
                          UNHEALTHY_POD_EVICTION_POLICIES, optional=True)
    status = pdb.status
    for json, value in (("disruptionsAllowed", status.disruptions_allowed),
                        ("currentHealthy", status.current_healthy),
                        ("desiredHealthy", status.desired_healthy),
                        ("expectedPods", status.expected_pods)):
        errors += check_nonnegative(f"status.{json}", value)
    return errors

