"""Defaulting: Kubernetes' defaults per kind, never overriding what the user set, and
idempotent (applying twice equals applying once)."""

from __future__ import annotations

from typing import Any

import pytest

from navarch import _codec
from services.apiserver import defaults
from tests.unit import (
    test_validation_autoscaling as autoscaling_cases,
)
from tests.unit import (
    test_validation_batch as batch_cases,
)
from tests.unit import (
    test_validation_core as core_cases,
)
from tests.unit import (
    test_validation_pod as pod_cases,
)
from tests.unit import (
    test_validation_service as service_cases,
)
from tests.unit import (
    test_validation_workloads as workload_cases,
)
from tests.unit.apiserver_cases import UID, build, load, mutate

MISSING = object()


def get(doc: Any, path: str) -> Any:
    """The value at a dotted path of ``doc`` (list indexes as numbers), or MISSING."""
    node = doc
    for part in path.split("."):
        if isinstance(node, list):
            index = int(part)
            if index >= len(node):
                return MISSING
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return MISSING
    return node


def defaulted(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    return _codec.to_dict(build(kind, doc))


POD = {"metadata": {"name": "web"},
       "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                                "ports": [{"containerPort": 80}]}]}}
C = "spec.containers.0"
T = "spec.template.spec"

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("Pod", "pod spec", POD, {
        "spec.restartPolicy": "Always", "spec.dnsPolicy": "ClusterFirst",
        "spec.schedulerName": "default-scheduler", "spec.terminationGracePeriodSeconds": 30,
        "spec.securityContext": {}, "spec.enableServiceLinks": True, "spec.priority": 0,
        "spec.serviceAccountName": "default", "spec.serviceAccount": "default",
        f"{C}.imagePullPolicy": "IfNotPresent",
        f"{C}.terminationMessagePath": "/dev/termination-log",
        f"{C}.terminationMessagePolicy": "File", f"{C}.ports.0.protocol": "TCP",
        f"{C}.ports.0.hostPort": MISSING}),
    ("Pod", "user values kept", mutate(POD, ("spec.restartPolicy", "Never"),
                                       ("spec.dnsPolicy", "Default"),
                                       ("spec.terminationGracePeriodSeconds", 0),
                                       ("spec.enableServiceLinks", False),
                                       ("spec.serviceAccountName", "robot"),
                                       (f"{C}.imagePullPolicy", "Never"),
                                       (f"{C}.ports.0.protocol", "UDP")), {
        "spec.restartPolicy": "Never", "spec.dnsPolicy": "Default",
        "spec.terminationGracePeriodSeconds": 0, "spec.enableServiceLinks": False,
        "spec.serviceAccountName": "robot", "spec.serviceAccount": "robot",
        f"{C}.imagePullPolicy": "Never", f"{C}.ports.0.protocol": "UDP"}),
    ("Pod", "deprecated serviceAccount", mutate(POD, ("spec.serviceAccount", "builder")),
     {"spec.serviceAccountName": "builder"}),
    ("Pod", "host network ports", mutate(POD, ("spec.hostNetwork", True)),
     {f"{C}.ports.0.hostPort": 80}),
    ("Pod", "requests from limits", mutate(POD, (f"{C}.resources", {
        "limits": {"cpu": "0.5", "memory": "128Mi"}, "requests": {"memory": "64Mi"}})),
     {f"{C}.resources.requests": {"cpu": "500m", "memory": "64Mi"},
      f"{C}.resources.limits": {"cpu": "500m", "memory": "128Mi"}}),
    ("Pod", "quantities canonical", mutate(POD, (f"{C}.resources", {
        "requests": {"cpu": "1000m", "memory": "1.5Gi", "ephemeral-storage": "0.0001"}})),
     {f"{C}.resources.requests": {"cpu": "1", "memory": "1536Mi",
                                  "ephemeral-storage": "1m"}}),
    ("Pod", "probes", mutate(POD, (f"{C}.livenessProbe", {"httpGet": {"port": 8080}}),
                             (f"{C}.readinessProbe", {"tcpSocket": {"port": 80},
                                                      "periodSeconds": 3}),
                             (f"{C}.lifecycle", {"preStop": {"httpGet": {"port": 80}}})), {
        f"{C}.livenessProbe": {"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
                               "timeoutSeconds": 1, "periodSeconds": 10,
                               "successThreshold": 1, "failureThreshold": 3},
        f"{C}.readinessProbe.periodSeconds": 3,
        f"{C}.lifecycle.preStop.httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}}),
    ("Pod", "env field ref", mutate(POD, (f"{C}.env", [{"name": "N", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}])),
     {f"{C}.env.0.valueFrom.fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}),
    ("Pod", "volumes", mutate(POD, ("spec.volumes", [
        {"name": "a"}, {"name": "b", "configMap": {"name": "c"}},
        {"name": "c", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "d", "downwardAPI": {"items": [{"path": "l", "fieldRef": {
            "fieldPath": "metadata.labels"}}]}},
        {"name": "e", "hostPath": {"path": "/x"}},
        {"name": "f", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}])), {
        "spec.volumes.0.emptyDir": {}, "spec.volumes.1.configMap.defaultMode": 420,
        "spec.volumes.2.secret.defaultMode": 256, "spec.volumes.3.downwardAPI.defaultMode": 420,
        "spec.volumes.3.downwardAPI.items.0.fieldRef.apiVersion": "v1",
        "spec.volumes.4.hostPath.type": "",
        "spec.volumes.5.projected.defaultMode": 420,
        "spec.volumes.5.projected.sources.0.serviceAccountToken.expirationSeconds": 3600}),
    ("PodTemplate", "template only gets spec defaults", {
        "metadata": {"name": "t"}, "template": {"spec": POD["spec"]}}, {
        "template.spec.restartPolicy": "Always",
        "template.spec.containers.0.imagePullPolicy": "IfNotPresent",
        "template.spec.enableServiceLinks": MISSING, "template.spec.priority": MISSING,
        "template.spec.serviceAccountName": MISSING}),
    ("Service", "cluster IP service", {"metadata": {"name": "web"},
                                       "spec": {"ports": [{"port": 80}]}}, {
        "spec.type": "ClusterIP", "spec.sessionAffinity": "None",
        "spec.ports.0.protocol": "TCP", "spec.ports.0.targetPort": 80,
        "spec.ipFamilies": ["IPv4"], "spec.ipFamilyPolicy": "SingleStack",
        "spec.internalTrafficPolicy": "Cluster", "spec.externalTrafficPolicy": MISSING}),
    ("Service", "node port service", {"metadata": {"name": "web"}, "spec": {
        "type": "NodePort", "sessionAffinity": "ClientIP",
        "ports": [{"port": 80, "targetPort": "http"}]}}, {
        "spec.externalTrafficPolicy": "Cluster", "spec.ports.0.targetPort": "http",
        "spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
    ("Service", "load balancer", {"metadata": {"name": "web"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 80}]}},
     {"spec.allocateLoadBalancerNodePorts": True, "spec.externalTrafficPolicy": "Cluster"}),
    ("Service", "IPv6 cluster IP", {"metadata": {"name": "web"}, "spec": {
        "clusterIP": "fd00::10", "ports": [{"port": 80}]}}, {"spec.ipFamilies": ["IPv6"]}),
    ("Service", "external name", {"metadata": {"name": "db"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com", "ipFamilies": ["IPv4"]}},
     {"spec.ipFamilies": MISSING, "spec.ipFamilyPolicy": MISSING,
      "spec.internalTrafficPolicy": MISSING}),
    ("Endpoints", "port protocol", {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}]},
     {"subsets.0.ports.0.protocol": "TCP"}),
    ("Secret", "type and stringData", {"metadata": {"name": "s"}, "data": {"a": "YQ=="},
                                       "stringData": {"b": "bee", "a": "override"}},
     {"type": "Opaque", "data": {"a": "b3ZlcnJpZGU=", "b": "YmVl"}, "stringData": MISSING}),
    ("Namespace", "finalizer and name label", {"metadata": {"name": "team-a"}}, {
        "spec.finalizers": ["kubernetes"], "status.phase": "Active",
        "metadata.labels": {"kubernetes.io/metadata.name": "team-a"}}),
    ("Namespace", "finalizer kept empty while deleting", {"metadata": {
        "name": "team-a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
        "status": {"phase": "Terminating"}},
     {"spec.finalizers": MISSING, "status.phase": "Terminating"}),
    ("Node", "allocatable from capacity", {"metadata": {"name": "n1"}, "status": {
        "capacity": {"cpu": "4000m", "memory": "8Gi"}}},
     {"status.allocatable": {"cpu": "4", "memory": "8Gi"}}),
    ("PersistentVolume", "volume", {"metadata": {"name": "pv"}, "spec": {
        "capacity": {"storage": "10Gi"}, "hostPath": {"path": "/d"}}}, {
        "spec.persistentVolumeReclaimPolicy": "Retain", "spec.volumeMode": "Filesystem",
        "status.phase": "Pending"}),
    ("PersistentVolumeClaim", "claim", {"metadata": {"name": "c"}, "spec": {
        "resources": {"requests": {"storage": "1Gi"}}}},
     {"spec.volumeMode": "Filesystem", "status.phase": "Pending"}),
    ("Deployment", "deployment", {"metadata": {"name": "d"}, "spec": {
        "template": {"spec": POD["spec"]}}}, {
        "spec.replicas": 1, "spec.strategy": {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": "25%", "maxSurge": "25%"}},
        "spec.revisionHistoryLimit": 10, "spec.progressDeadlineSeconds": 600,
        f"{T}.restartPolicy": "Always", f"{T}.containers.0.imagePullPolicy": "IfNotPresent",
        f"{T}.enableServiceLinks": MISSING}),
    ("Deployment", "replicas zero kept, recreate", {"metadata": {"name": "d"}, "spec": {
        "replicas": 0, "strategy": {"type": "Recreate"}, "template": {"spec": POD["spec"]}}},
     {"spec.replicas": 0, "spec.strategy": {"type": "Recreate"}}),
    ("ReplicaSet", "replica set", {"metadata": {"name": "r"}, "spec": {
        "template": {"spec": POD["spec"]}}}, {"spec.replicas": 1}),
    ("DaemonSet", "daemon set", {"metadata": {"name": "ds"}, "spec": {
        "template": {"spec": POD["spec"]}}}, {
        "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": 1, "maxSurge": 0}},
        "spec.revisionHistoryLimit": 10}),
    ("StatefulSet", "stateful set", {"metadata": {"name": "web"}, "spec": {
        "template": {"spec": POD["spec"]}, "volumeClaimTemplates": [{
            "metadata": {"name": "www"}, "spec": {"resources": {"requests": {
                "storage": "1Gi"}}}}]}}, {
        "spec.replicas": 1, "spec.podManagementPolicy": "OrderedReady",
        "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "spec.revisionHistoryLimit": 10,
        "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                      "whenScaled": "Retain"},
        "spec.volumeClaimTemplates.0.spec.volumeMode": "Filesystem",
        "spec.volumeClaimTemplates.0.status.phase": "Pending"}),
    ("Job", "job", {"metadata": {"name": "pi"}, "spec": {"template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}, {
        "spec.completions": 1, "spec.parallelism": 1, "spec.backoffLimit": 6,
        "spec.completionMode": "NonIndexed", "spec.suspend": False,
        "spec.podReplacementPolicy": "TerminatingOrFailed",
        "spec.selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
        "spec.template.metadata.labels": {
            "batch.kubernetes.io/controller-uid": UID, "controller-uid": UID,
            "batch.kubernetes.io/job-name": "pi", "job-name": "pi"},
        "metadata.labels": {
            "batch.kubernetes.io/controller-uid": UID, "controller-uid": UID,
            "batch.kubernetes.io/job-name": "pi", "job-name": "pi"},
        "spec.manualSelector": MISSING, f"{T}.containers.0.imagePullPolicy": "Always"}),
    ("Job", "job without restart policy gets none", {"metadata": {"name": "pi"}, "spec": {
        "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}},
     {f"{T}.restartPolicy": MISSING, f"{T}.dnsPolicy": "ClusterFirst"}),
    ("Job", "job labels kept", {"metadata": {"name": "pi", "labels": {"team": "a"}}, "spec": {
        "parallelism": 4, "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {
            "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}, {
        "metadata.labels": {"team": "a"}, "spec.template.metadata.labels.app": "pi",
        "spec.parallelism": 4, "spec.completions": MISSING}),
    ("Job", "manual selector", {"metadata": {"name": "pi"}, "spec": {
        "manualSelector": True, "selector": {"matchLabels": {"app": "pi"}},
        "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {
            "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}, {
        "spec.selector": {"matchLabels": {"app": "pi"}},
        "spec.template.metadata.labels": {"app": "pi"}}),
    ("Job", "failure policy", {"metadata": {"name": "pi"}, "spec": {
        "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
            {"type": "DisruptionTarget"}]}]},
        "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}],
                              "restartPolicy": "Never"}}}}, {
        "spec.podReplacementPolicy": "Failed", "spec.backoffLimit": 2147483647,
        "spec.podFailurePolicy.rules.0.onPodConditions.0.status": "True"}),
    ("CronJob", "cron job", {"metadata": {"name": "hello"}, "spec": {
        "schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "hello", "image": "busybox:1.28"}]}}}}}}, {
        "spec.concurrencyPolicy": "Allow", "spec.suspend": False,
        "spec.successfulJobsHistoryLimit": 3, "spec.failedJobsHistoryLimit": 1,
        "spec.jobTemplate.spec.template.spec.restartPolicy": MISSING,
        "spec.jobTemplate.spec.template.spec.schedulerName": "default-scheduler",
        "spec.jobTemplate.spec.backoffLimit": MISSING,
        "spec.jobTemplate.spec.selector": MISSING}),
    ("HorizontalPodAutoscaler", "default metric", {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}}, {
        "spec.minReplicas": 1, "spec.metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        "spec.behavior": MISSING}),
    ("HorizontalPodAutoscaler", "behavior", {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}, {
        "spec.behavior.scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                  "policies": [
                                      {"type": "Pods", "value": 4, "periodSeconds": 15},
                                      {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "spec.behavior.scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                    "policies": [
                                        {"type": "Percent", "value": 100,
                                         "periodSeconds": 15}]}}),
]


@pytest.mark.parametrize(("kind", "doc", "expected"), [(k, d, e) for k, _, d, e in CASES],
                         ids=[f"{k}: {n}" for k, n, _, _ in CASES])
def test_defaults(kind: str, doc: dict[str, Any], expected: dict[str, Any]) -> None:
    out = defaulted(kind, doc)
    for path, value in expected.items():
        assert get(out, path) == value, path


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/web", "Always"), ("localhost:5000/web:v2", "IfNotPresent"),
    ("127.0.0.1:5000/team/web:latest", "Always"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("", "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    out = defaulted("Pod", mutate(POD, (f"{C}.image", image)))
    assert get(out, f"{C}.imagePullPolicy") == policy


def test_job_without_uid_gets_no_selector() -> None:
    job = build("Job", {"metadata": {"name": "pi"}, "spec": {"template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}, uid="")
    assert not job.spec.HasField("selector")  # type: ignore[attr-defined]


def test_job_with_a_long_name_gets_only_uid_labels() -> None:
    out = defaulted("Job", {"metadata": {"name": "j" * 64}, "spec": {"template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}})
    assert sorted(get(out, "spec.template.metadata.labels")) == [
        "batch.kubernetes.io/controller-uid", "controller-uid"]


def test_unknown_kind_is_left_alone() -> None:
    msg = build("ConfigMap", {"metadata": {"name": "c"}}, defaulted=False)
    before = msg.SerializeToString(deterministic=True)
    defaults.apply("Widget", msg)
    assert msg.SerializeToString(deterministic=True) == before


def test_wrong_message_type_is_a_programming_error() -> None:
    msg = build("ConfigMap", {"metadata": {"name": "c"}}, defaulted=False)
    with pytest.raises(TypeError, match=r"navarch\.v1\.Pod"):
        defaults.apply("Pod", msg)


# --- idempotence: every manifest of the validation tables, defaulted twice ------------------

def _manifests() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = [(k, d) for k, _, d, _ in CASES]
    found += [("Pod", load(text)) for text in pod_cases.DOC_PODS.values()]
    found += [("Service", load(text)) for text in service_cases.DOC_SERVICES.values()]
    found += [("Endpoints", service_cases.ENDPOINTS)]
    found += list(workload_cases.VALID.items())
    found += list(batch_cases.VALID)
    found += list(core_cases.VALID)
    found += [("HorizontalPodAutoscaler", autoscaling_cases.HPA),
              ("HorizontalPodAutoscaler", autoscaling_cases.HPA_METRICS),
              ("Lease", autoscaling_cases.LEASE)]
    found += [("Pod", mutate(pod_cases.POD, *changes)) for _, changes, _ in pod_cases.INVALID]
    found += [(kind, mutate(workload_cases.VALID[kind], *changes))
              for kind, _, changes, _ in workload_cases.CASES]
    found += [(kind, mutate(base, *changes)) for kind, base, _, changes, _ in batch_cases.CASES]
    found += [(kind, mutate(base, *changes)) for kind, base, _, changes, _ in core_cases.CASES]
    return found


MANIFESTS = _manifests()


@pytest.mark.parametrize(("kind", "doc"), MANIFESTS,
                         ids=[f"{i}-{k}" for i, (k, _) in enumerate(MANIFESTS)])
def test_defaulting_is_idempotent(kind: str, doc: dict[str, Any]) -> None:
    once = build(kind, doc)
    twice = type(once)()
    twice.CopyFrom(once)
    defaults.apply(kind, twice)
    assert _codec.to_dict(twice) == _codec.to_dict(once)
    assert twice == once


def test_defaulting_round_trips_through_the_codec() -> None:
    """A client that reads a defaulted object and writes it back changes nothing."""
    for kind, doc in MANIFESTS:
        once = build(kind, doc)
        echoed = build(kind, _codec.to_dict(once))
        assert echoed == once, kind

