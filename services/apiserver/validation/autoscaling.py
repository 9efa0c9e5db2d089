"""autoscaling/v2 HorizontalPodAutoscalers and coordination.k8s.io Leases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from navarch import _names
from navarch.v1 import autoscaling_pb2, coordination_pb2

from ..errors import FieldViolation, forbidden, invalid, required
from .common import (
    Errors,
    check_label_selector,
    check_names,
    check_nonnegative,
    check_quantity,
    check_value,
    parse_quantity,
)
from .meta import check_object_meta, path_segment_name

__all__ = ["validate_hpa", "validate_lease"]

_METRIC_SOURCES = {
    "ContainerResource": ("container_resource", "containerResource"),
    "External": ("external", "external"),
    "Object": ("object", "object"),
    "Pods": ("pods", "pods"),
    "Resource": ("resource", "resource"),
}
_TARGET_TYPES = ("AverageValue", "Utilization", "Value")
_SELECT_POLICIES = ("Disabled", "Max", "Min")
_POLICY_TYPES = ("Percent", "Pods")
_MAX_STABILIZATION = 3600
_MAX_POLICY_PERIOD = 1800
_LEASE_STRATEGIES = ("OldestEmulationVersion",)


def validate_hpa(hpa: autoscaling_pb2.HorizontalPodAutoscaler) -> Errors:
    """Every problem with a HorizontalPodAutoscaler."""
    spec = hpa.spec
    errors = check_object_meta("HorizontalPodAutoscaler", hpa.metadata)
    errors += _check_reference("spec.scaleTargetRef", spec.scale_target_ref)
    if spec.HasField("min_replicas") and spec.min_replicas < 1:
        errors.append(invalid("spec.minReplicas", spec.min_replicas,
                              "must be greater than or equal to 1"))
    if spec.max_replicas < 1:
        errors.append(invalid("spec.maxReplicas", spec.max_replicas, "must be greater than 0"))
    elif spec.HasField("min_replicas") and spec.max_replicas < spec.min_replicas:
        errors.append(invalid("spec.maxReplicas", spec.max_replicas,
                              "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.metrics):
        errors += _check_metric(f"spec.metrics[{i}]", metric)
    if spec.HasField("behavior"):
        for name, json in (("scale_up", "scaleUp"), ("scale_down", "scaleDown")):
            if spec.behavior.HasField(name):
                errors += _check_rules(f"spec.behavior.{json}", getattr(spec.behavior, name))
    return errors


def _check_reference(p: str, ref: autoscaling_pb2.CrossVersionObjectReference) -> Errors:
    errors: Errors = []
    for name in ("kind", "name"):
        value = getattr(ref, name)
        if not value:
            errors.append(required(f"{p}.{name}"))
        else:
            errors += check_names(f"{p}.{name}", value, path_segment_name)
    return errors


def _check_metric(at: str, metric: autoscaling_pb2.MetricSpec) -> Errors:
    if not metric.type:
        return [required(f"{at}.type", "must specify a metric source type")]
    errors = check_value(f"{at}.type", metric.type, tuple(sorted(_METRIC_SOURCES)))
    wanted = _METRIC_SOURCES.get(metric.type)
    for name, json in _METRIC_SOURCES.values():
        if metric.HasField(name) and (wanted is None or name != wanted[0]):
            errors.append(forbidden(f"{at}.{json}", "must populate the given metric source "
                                    "only"))
    if wanted is None:
        return errors
    name, json = wanted
    if not metric.HasField(name):
        errors.append(required(f"{at}.{json}", "must populate information for the given "
                               "metric source"))
        return errors
    return errors + _SOURCE_CHECKS[name](f"{at}.{json}", getattr(metric, name))


def _check_identifier(p: str, metric: autoscaling_pb2.MetricIdentifier) -> Errors:
    errors = [] if metric.name else [required(f"{p}.name", "must specify a metric name")]
    if metric.HasField("selector"):
        errors += check_label_selector(f"{p}.selector", metric.selector)
    return errors


def _check_target(p: str, target: autoscaling_pb2.MetricTarget, allowed: tuple[str, ...]) -> Errors:
    errors = check_value(f"{p}.type", target.type, allowed)
    needs = {"Utilization": ("averageUtilization", target.HasField("average_utilization")),
             "Value": ("value", bool(target.value)),
             "AverageValue": ("averageValue", bool(target.average_value))}
    if target.type in needs and target.type in allowed:
        field, present = needs[target.type]
        if not present:
            errors.append(required(f"{p}.{field}", f"must be set when the target type is "
                                   f"{target.type}"))
    if target.HasField("average_utilization") and target.average_utilization < 1:
        errors.append(invalid(f"{p}.averageUtilization", target.average_utilization,
                              "must be greater than 0"))
    for value, json in ((target.value, "value"), (target.average_value, "averageValue")):
        if not value:
            continue
        problems = check_quantity(f"{p}.{json}", value, nonnegative=False)
        quantity = parse_quantity(value)
        if not problems and quantity is not None and quantity <= 0:
            problems = [invalid(f"{p}.{json}", value, "must be positive")]
        errors += problems
    return errors


def _check_resource(p: str, src: autoscaling_pb2.ResourceMetricSource) -> Errors:
    errors = [] if src.name else [required(f"{p}.name", "must specify a resource name")]
    return errors + _check_target(f"{p}.target", src.target, ("AverageValue", "Utilization"))


def _check_container_resource(p: str,
                              src: autoscaling_pb2.ContainerResourceMetricSource) -> Errors:
    errors = [] if src.name else [required(f"{p}.name", "must specify a resource name")]
    if not src.container:
        errors.append(required(f"{p}.container", "must specify a container"))
    else:
        errors += check_names(f"{p}.container", src.container, _names.dns1123_label)
    return errors + _check_target(f"{p}.target", src.target, ("AverageValue", "Utilization"))


def _check_pods(p: str, src: autoscaling_pb2.PodsMetricSource) -> Errors:
    return (_check_identifier(f"{p}.metric", src.metric)
            + _check_target(f"{p}.target", src.target, ("AverageValue",)))


def _check_object(p: str, src: autoscaling_pb2.ObjectMetricSource) -> Errors:
    return (_check_reference(f"{p}.describedObject", src.described_object)
            + _check_identifier(f"{p}.metric", src.metric)
            + _check_target(f"{p}.target", src.target, ("AverageValue", "Value")))


def _check_external(p: str, src: autoscaling_pb2.ExternalMetricSource) -> Errors:
    return (_check_identifier(f"{p}.metric", src.metric)
            + _check_target(f"{p}.target", src.target, ("AverageValue", "Value")))


_SOURCE_CHECKS: dict[str, Callable[[str, Any], Errors]] = {
    "resource": _check_resource,
    "container_resource": _check_container_resource,
    "pods": _check_pods,
    "object": _check_object,
    "external": _check_external,
}


def _check_rules(p: str, rules: autoscaling_pb2.HPAScalingRules) -> Errors:
    errors: list[FieldViolation] = []
    if rules.HasField("stabilization_window_seconds"):
        window = rules.stabilization_window_seconds
        errors += check_nonnegative(f"{p}.stabilizationWindowSeconds", window)
        if window > _MAX_STABILIZATION:
            errors.append(invalid(f"{p}.stabilizationWindowSeconds", window,
                                  f"must be less than or equal to {_MAX_STABILIZATION}"))
    if rules.HasField("select_policy"):
        errors += check_value(f"{p}.selectPolicy", rules.select_policy, _SELECT_POLICIES)
    if not rules.policies:
        errors.append(required(f"{p}.policies", "must specify at least one policy"))
    for i, policy in enumerate(rules.policies):
        at = f"{p}.policies[{i}]"
        errors += check_value(f"{at}.type", policy.type, _POLICY_TYPES)
        if policy.value <= 0:
            errors.append(invalid(f"{at}.value", policy.value, "must be greater than zero"))
        if not 0 < policy.period_seconds <= _MAX_POLICY_PERIOD:
            errors.append(invalid(f"{at}.periodSeconds", policy.period_seconds,
                                  f"must be greater than zero and at most {_MAX_POLICY_PERIOD}"))
    if rules.tolerance:
        errors += check_quantity(f"{p}.tolerance", rules.tolerance)
    return errors


def validate_lease(lease: coordination_pb2.Lease) -> Errors:
    """A positive duration, non-negative transitions, a known strategy."""
    spec = lease.spec
    errors = check_object_meta("Lease", lease.metadata)
    if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds <= 0:
        errors.append(invalid("spec.leaseDurationSeconds", spec.lease_duration_seconds,
                              "must be greater than 0"))
    if spec.HasField("lease_transitions"):
        errors += check_nonnegative("spec.leaseTransitions", spec.lease_transitions)
    if spec.HasField("strategy"):
        errors += check_value("spec.strategy", spec.strategy, _LEASE_STRATEGIES)
    if spec.HasField("preferred_holder") and not spec.HasField("strategy"):
        errors.append(forbidden("spec.preferredHolder", "may only be set with a strategy"))
    return errors
