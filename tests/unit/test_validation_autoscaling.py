"""HorizontalPodAutoscaler (autoscaling/v2) and Lease validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.apiserver_cases import DELETE, assert_problems, load, mutate, problems

HPA = load("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: php-apache
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: php-apache
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
""")

HPA_METRICS = load("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: php-apache
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: php-apache
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: AverageValue
        averageValue: 500m
  - type: Pods
    pods:
      metric:
        name: packets-per-second
      target:
        type: AverageValue
        averageValue: 1k
  - type: Object
    object:
      metric:
        name: requests-per-second
      describedObject:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        name: main-route
      target:
        type: Value
        value: 10k
  - type: External
    external:
      metric:
        name: queue_messages_ready
        selector:
          matchLabels:
            queue: "worker_tasks"
      target:
        type: AverageValue
        averageValue: 30
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
      - type: Pods
        value: 4
        periodSeconds: 60
      - type: Percent
        value: 10
        periodSeconds: 60
      selectPolicy: Min
""")

LEASE = load("""
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: node-1
  namespace: kube-node-lease
spec:
  holderIdentity: node-1
  leaseDurationSeconds: 40
  renewTime: "2024-01-01T00:00:00.000000Z"
""")


@pytest.mark.parametrize(("kind", "doc"), [("HorizontalPodAutoscaler", HPA),
                                           ("HorizontalPodAutoscaler", HPA_METRICS),
                                           ("HorizontalPodAutoscaler", mutate(HPA, (
                                               "spec.metrics", DELETE))),
                                           ("Lease", LEASE)],
                         ids=["php-apache", "metrics-and-behavior", "default-metric", "lease"])
def test_documentation_examples_are_valid(kind: str, doc: dict[str, Any]) -> None:
    assert problems(kind, doc) == []


M0 = "spec.metrics.0"
P0 = "spec.metrics[0]"
CASES: list[tuple[str, dict[str, Any], str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("HorizontalPodAutoscaler", HPA, "target kind", [("spec.scaleTargetRef.kind", DELETE)],
     [("spec.scaleTargetRef.kind", "Required value")]),
    ("HorizontalPodAutoscaler", HPA, "target name", [("spec.scaleTargetRef.name", "a/b")],
     [("spec.scaleTargetRef.name", "may not contain '/'")]),
    ("HorizontalPodAutoscaler", HPA, "min replicas", [("spec.minReplicas", 0)],
     [("spec.minReplicas", "greater than or equal to 1")]),
    ("HorizontalPodAutoscaler", HPA, "max replicas", [("spec.maxReplicas", 0)],
     [("spec.maxReplicas", "must be greater than 0")]),
    ("HorizontalPodAutoscaler", HPA, "max below min", [("spec.minReplicas", 5),
                                                       ("spec.maxReplicas", 3)],
     [("spec.maxReplicas", "greater than or equal to `minReplicas`")]),
    ("HorizontalPodAutoscaler", HPA, "metric type", [(f"{M0}.type", "Custom")],
     [(f"{P0}.type", 'Unsupported value: "Custom"'),
      (f"{P0}.resource", "must populate the given metric source only")]),
    ("HorizontalPodAutoscaler", HPA, "missing source", [(f"{M0}.type", "Pods")],
     [(f"{P0}.pods", "must populate information"),
      (f"{P0}.resource", "must populate the given metric source only")]),
    ("HorizontalPodAutoscaler", HPA, "utilization", [(f"{M0}.resource.target.averageUtilization",
                                                      0)],
     [(f"{P0}.resource.target.averageUtilization", "must be greater than 0")]),
    ("HorizontalPodAutoscaler", HPA, "utilization missing", [
        (f"{M0}.resource.target.averageUtilization", DELETE)],
     [(f"{P0}.resource.target.averageUtilization", "must be set when the target type is "
       "Utilization")]),
    ("HorizontalPodAutoscaler", HPA, "value target on a resource", [
        (f"{M0}.resource.target", {"type": "Value", "value": "1"})],
     [(f"{P0}.resource.target.type", 'Unsupported value: "Value"')]),
    ("HorizontalPodAutoscaler", HPA, "resource name", [(f"{M0}.resource.name", DELETE)],
     [(f"{P0}.resource.name", "Required value")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "pods metric name",
     [("spec.metrics.1.pods.metric.name", DELETE)],
     [("spec.metrics[1].pods.metric.name", "Required value")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "non-positive value",
     [("spec.metrics.2.object.target.value", "-1")],
     [("spec.metrics[2].object.target.value", "must be positive")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "described object",
     [("spec.metrics.2.object.describedObject.kind", DELETE)],
     [("spec.metrics[2].object.describedObject.kind", "Required value")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "policy",
     [("spec.behavior.scaleDown.policies.0", {"type": "Nodes", "value": 0, "periodSeconds": 0})],
     [("spec.behavior.scaleDown.policies[0].type", 'Unsupported value: "Nodes"'),
      ("spec.behavior.scaleDown.policies[0].value", "greater than zero"),
      ("spec.behavior.scaleDown.policies[0].periodSeconds", "greater than zero")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "stabilization window",
     [("spec.behavior.scaleDown.stabilizationWindowSeconds", 3601)],
     [("spec.behavior.scaleDown.stabilizationWindowSeconds", "less than or equal to 3600")]),
    ("HorizontalPodAutoscaler", HPA_METRICS, "select policy",
     [("spec.behavior.scaleDown.selectPolicy", "Avg")],
     [("spec.behavior.scaleDown.selectPolicy", 'Unsupported value: "Avg"')]),
    ("Lease", LEASE, "duration", [("spec.leaseDurationSeconds", 0)],
     [("spec.leaseDurationSeconds", "must be greater than 0")]),
    ("Lease", LEASE, "transitions", [("spec.leaseTransitions", -1)],
     [("spec.leaseTransitions", "greater than or equal to 0")]),
    ("Lease", LEASE, "preferred holder alone", [("spec.preferredHolder", "node-2")],
     [("spec.preferredHolder", "may only be set with a strategy")]),
]


@pytest.mark.parametrize(("kind", "base", "changes", "expected"),
                         [(k, b, c, e) for k, b, _, c, e in CASES],
                         ids=[f"{k}: {n}" for k, _, n, _, _ in CASES])
def test_invalid(kind: str, base: dict[str, Any], changes: list[tuple[str, Any]],
                 expected: list[tuple[str, str]]) -> None:
    assert_problems(problems(kind, mutate(base, *changes)), expected)
