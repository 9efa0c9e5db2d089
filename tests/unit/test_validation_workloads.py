"""apps/v1 validation: Deployments, ReplicaSets, DaemonSets, StatefulSets,
ControllerRevisions, and the PodTemplate kind."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.apiserver_cases import (
    DELETE,
    assert_problems,
    load,
    mutate,
    problems,
    update_problems,
)

DEPLOYMENT = load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
""")

REPLICA_SET = load("""
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: frontend
  labels:
    app: guestbook
    tier: frontend
spec:
  replicas: 3
  selector:
    matchLabels:
      tier: frontend
  template:
    metadata:
      labels:
        tier: frontend
    spec:
      containers:
      - name: php-redis
        image: us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5
""")

DAEMON_SET = load("""
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  namespace: kube-system
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      - key: node-role.kubernetes.io/master
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: quay.io/fluentd_elasticsearch/fluentd:v2.5.2
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
        volumeMounts:
        - name: varlog
          mountPath: /var/log
      terminationGracePeriodSeconds: 30
      volumes:
      - name: varlog
        hostPath:
          path: /var/log
""")

STATEFUL_SET = load("""
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "nginx"
  replicas: 3
  minReadySeconds: 10
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "my-storage-class"
      resources:
        requests:
          storage: 1Gi
""")

POD_TEMPLATE = load("""
apiVersion: v1
kind: PodTemplate
metadata:
  name: web-template
template:
  metadata:
    labels:
      app: web
  spec:
    containers:
    - name: web
      image: nginx:1.25
""")

CONTROLLER_REVISION = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                       "metadata": {"name": "web-6d4cf56db6"},
                       "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}},
                       "revision": 1}

VALID = {
    "Deployment": DEPLOYMENT, "ReplicaSet": REPLICA_SET, "DaemonSet": DAEMON_SET,
    "StatefulSet": STATEFUL_SET, "PodTemplate": POD_TEMPLATE,
    "ControllerRevision": CONTROLLER_REVISION,
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_documentation_examples_are_valid(kind: str) -> None:
    assert problems(kind, VALID[kind]) == []


TEMPLATE_SPEC = "spec.template.spec"
CASES: list[tuple[str, str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    # selector and template, common to the apps kinds
    ("Deployment", "no selector", [("spec.selector", DELETE)],
     [("spec.selector", "Required value")]),
    ("Deployment", "empty selector", [("spec.selector", {})],
     [("spec.selector", "empty selector is invalid for deployment")]),
    ("Deployment", "selector does not match", [("spec.template.metadata.labels.app", "apache")],
     [("spec.template.metadata.labels",
       'Invalid value: "app=apache": `selector` (app=nginx) does not match template `labels`')]),
    ("Deployment", "bad selector operator", [("spec.selector", {"matchExpressions": [
        {"key": "app", "operator": "Near", "values": ["nginx"]}]})],
     [("spec.selector.matchExpressions[0].operator", "unsupported operator")]),
    ("Deployment", "restart policy", [(f"{TEMPLATE_SPEC}.restartPolicy", "OnFailure")],
     [(f"{TEMPLATE_SPEC}.restartPolicy", 'Unsupported value: "OnFailure": supported values: '
       '"Always"')]),
    ("Deployment", "active deadline", [(f"{TEMPLATE_SPEC}.activeDeadlineSeconds", 10)],
     [(f"{TEMPLATE_SPEC}.activeDeadlineSeconds", "may not be set")]),
    ("Deployment", "template container", [(f"{TEMPLATE_SPEC}.containers.0.image", DELETE)],
     [(f"{TEMPLATE_SPEC}.containers[0].image", "Required value")]),
    ("Deployment", "template label", [("spec.template.metadata.labels.tier", "a b")],
     [("spec.template.metadata.labels", 'Invalid value: "a b"')]),
    # Deployment's own fields
    ("Deployment", "negative replicas", [("spec.replicas", -1)],
     [("spec.replicas", "greater than or equal to 0")]),
    ("Deployment", "strategy type", [("spec.strategy", {"type": "BlueGreen"})],
     [("spec.strategy.type", 'Unsupported value: "BlueGreen"')]),
    ("Deployment", "recreate with rolling update", [("spec.strategy", {
        "type": "Recreate", "rollingUpdate": {"maxSurge": 1}})],
     [("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is "
       "'Recreate'")]),
    ("Deployment", "both zero", [("spec.strategy", {"rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": "0%"}})],
     [("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")]),
    ("Deployment", "bad percentage", [("spec.strategy", {"rollingUpdate": {
        "maxUnavailable": "110%"}})],
     [("spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%")]),
    ("Deployment", "not a percentage", [("spec.strategy", {"rollingUpdate": {
        "maxSurge": "many"}})],
     [("spec.strategy.rollingUpdate.maxSurge", "integer or a percentage")]),
    ("Deployment", "negative history", [("spec.revisionHistoryLimit", -1)],
     [("spec.revisionHistoryLimit", "greater than or equal to 0")]),
    ("Deployment", "deadline below min ready", [("spec.minReadySeconds", 30),
                                                ("spec.progressDeadlineSeconds", 30)],
     [("spec.progressDeadlineSeconds", "must be greater than minReadySeconds")]),
    # ReplicaSet
    ("ReplicaSet", "negative replicas", [("spec.replicas", -2)],
     [("spec.replicas", "greater than or equal to 0")]),
    ("ReplicaSet", "selector does not match", [("spec.selector.matchLabels.tier", "backend")],
     [("spec.template.metadata.labels", "does not match")]),
    # DaemonSet
    ("DaemonSet", "update strategy", [("spec.updateStrategy", {"type": "Rolling"})],
     [("spec.updateStrategy.type", 'Unsupported value: "Rolling"')]),
    ("DaemonSet", "both non-zero", [("spec.updateStrategy", {"rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 1}})],
     [("spec.updateStrategy.rollingUpdate.maxSurge",
       "may not be set when maxUnavailable is non-zero")]),
    ("DaemonSet", "both zero", [("spec.updateStrategy", {"rollingUpdate": {
        "maxUnavailable": 0}})],
     [("spec.updateStrategy.rollingUpdate.maxUnavailable", "may not be 0")]),
    ("DaemonSet", "restart policy", [(f"{TEMPLATE_SPEC}.restartPolicy", "Never")],
     [(f"{TEMPLATE_SPEC}.restartPolicy", "Unsupported value")]),
    # StatefulSet
    ("StatefulSet", "name with dots", [("metadata.name", "web.v1")],
     [("metadata.name", "must not contain dots")]),
    ("StatefulSet", "service name", [("spec.serviceName", "Nginx")],
     [("spec.serviceName", "DNS-1035 label")]),
    ("StatefulSet", "pod management", [("spec.podManagementPolicy", "Random")],
     [("spec.podManagementPolicy", 'Unsupported value: "Random"')]),
    ("StatefulSet", "update strategy", [("spec.updateStrategy", {"type": "OnDelete",
                                                                 "rollingUpdate": {}})],
     [("spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'")]),
    ("StatefulSet", "partition", [("spec.updateStrategy", {"rollingUpdate": {"partition": -1}})],
     [("spec.updateStrategy.rollingUpdate.partition", "greater than or equal to 0")]),
    ("StatefulSet", "max unavailable zero", [("spec.updateStrategy", {
        "rollingUpdate": {"maxUnavailable": 0}})],
     [("spec.updateStrategy.rollingUpdate.maxUnavailable", "must be greater than 0")]),
    ("StatefulSet", "retention policy", [("spec.persistentVolumeClaimRetentionPolicy", {
        "whenDeleted": "Keep"})],
     [("spec.persistentVolumeClaimRetentionPolicy.whenDeleted", 'Unsupported value: "Keep"')]),
    ("StatefulSet", "claim without storage", [("spec.volumeClaimTemplates.0.spec.resources", {})],
     [("spec.volumeClaimTemplates[0].spec.resources.requests[storage]", "Required value")]),
    ("StatefulSet", "claim access mode", [("spec.volumeClaimTemplates.0.spec.accessModes",
                                           ["ReadWriteSometimes"])],
     [("spec.volumeClaimTemplates[0].spec.accessModes[0]", "Unsupported value")]),
    ("StatefulSet", "claim shadows a volume", [(f"{TEMPLATE_SPEC}.volumes", [
        {"name": "www", "emptyDir": {}}])],
     [("spec.volumeClaimTemplates[0].metadata.name", "must be unique")]),
    ("StatefulSet", "mount of an unknown claim", [
        (f"{TEMPLATE_SPEC}.containers.0.volumeMounts.0.name", "data")],
     [(f"{TEMPLATE_SPEC}.containers[0].volumeMounts[0].name", 'Not found: "data"')]),
    # ControllerRevision
    ("ControllerRevision", "no data", [("data", DELETE)], [("data", "data is mandatory")]),
    ("ControllerRevision", "negative revision", [("revision", -1)],
     [("revision", "greater than or equal to 0")]),
    # PodTemplate
    ("PodTemplate", "no containers", [("template.spec.containers", [])],
     [("template.spec.containers", "Required value")]),
]


def _base(kind: str) -> dict[str, Any]:
    return VALID[kind]


@pytest.mark.parametrize(("kind", "changes", "expected"), [(k, c, e) for k, _, c, e in CASES],
                         ids=[f"{k}: {n}" for k, n, _, _ in CASES])
def test_invalid_workloads(kind: str, changes: list[tuple[str, Any]],
                           expected: list[tuple[str, str]]) -> None:
    assert_problems(problems(kind, mutate(_base(kind), *changes)), expected)


UPDATES: list[tuple[str, str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("Deployment", "scale and new image", [("spec.replicas", 5),
                                           (f"{TEMPLATE_SPEC}.containers.0.image", "nginx:1.25")],
     []),
    ("Deployment", "selector change", [("spec.selector.matchLabels.tier", "web"),
                                       ("spec.template.metadata.labels.tier", "web")],
     [("spec.selector", 'Invalid value: "app=nginx,tier=web": field is immutable')]),
    ("ReplicaSet", "selector change", [("spec.selector.matchLabels", {"tier": "frontend",
                                                                      "x": "y"}),
                                       ("spec.template.metadata.labels.x", "y")],
     [("spec.selector", "field is immutable")]),
    ("DaemonSet", "selector change", [("spec.selector.matchLabels.name", "other"),
                                      ("spec.template.metadata.labels.name", "other")],
     [("spec.selector", "field is immutable")]),
    ("StatefulSet", "scale, template, strategy", [
        ("spec.replicas", 5), (f"{TEMPLATE_SPEC}.containers.0.image", "nginx:1.25"),
        ("spec.updateStrategy", {"type": "OnDelete"})], []),
    ("StatefulSet", "service name", [("spec.serviceName", "other")],
     [("spec", "changed: spec.serviceName")]),
    ("StatefulSet", "claim templates", [("spec.volumeClaimTemplates.0.spec.resources.requests"
                                         ".storage", "2Gi")],
     [("spec", "changed: spec.volumeClaimTemplates")]),
    ("ControllerRevision", "data", [("data.spec.template.metadata.labels.a", "c")],
     [("data", "field is immutable")]),
    ("ControllerRevision", "revision", [("revision", 2)], []),
]


@pytest.mark.parametrize(("kind", "changes", "expected"), [(k, c, e) for k, _, c, e in UPDATES],
                         ids=[f"{k}: {n}" for k, n, _, _ in UPDATES])
def test_workload_updates(kind: str, changes: list[tuple[str, Any]],
                          expected: list[tuple[str, str]]) -> None:
    old = _base(kind)
    assert_problems(update_problems(kind, old, mutate(old, *changes)), expected)
