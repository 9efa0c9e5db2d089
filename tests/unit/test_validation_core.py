"""Validation of the other core kinds: ConfigMap, Secret, ServiceAccount, Namespace, Node,
PersistentVolume, PersistentVolumeClaim, Event — and their update rules."""

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

CONFIG_MAP = load("""
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
  user-interface.properties: |
    color.good=purple
    color.bad=yellow
    allow.textmode=true
""")

SECRET = load("""
apiVersion: v1
kind: Secret
metadata:
  name: mysecret
type: Opaque
data:
  username: YWRtaW4=
  password: MWYyZDFlMmU2N2Rm
""")

SECRET_STRING_DATA = load("""
apiVersion: v1
kind: Secret
metadata:
  name: mysecret
type: Opaque
stringData:
  config.yaml: |
    apiUrl: "https://my.api.com/api/v1"
    username: <user>
    password: <password>
""")

BASIC_AUTH = load("""
apiVersion: v1
kind: Secret
metadata:
  name: secret-basic-auth
type: kubernetes.io/basic-auth
stringData:
  username: admin
  password: t0p-Secret
""")

TLS = load("""
apiVersion: v1
kind: Secret
metadata:
  name: secret-tls
type: kubernetes.io/tls
data:
  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg==
""")

DOCKER_CONFIG = load("""
apiVersion: v1
kind: Secret
metadata:
  name: secret-dockercfg
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: eyJhdXRocyI6e319
""")

SA_TOKEN = load("""
apiVersion: v1
kind: Secret
metadata:
  name: secret-sa-sample
  annotations:
    kubernetes.io/service-account.name: "sa-name"
type: kubernetes.io/service-account-token
data:
  extra: YmFyCg==
""")

SERVICE_ACCOUNT = load("""
apiVersion: v1
kind: ServiceAccount
metadata:
  name: build-robot
automountServiceAccountToken: false
imagePullSecrets:
- name: myregistrykey
""")

NAMESPACE = load("""
apiVersion: v1
kind: Namespace
metadata:
  name: development
  labels:
    name: development
""")

NODE = load("""
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    kubernetes.io/hostname: node-1
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: ["10.244.1.0/24"]
  taints:
  - key: dedicated
    value: gpu
    effect: NoSchedule
  - key: dedicated
    value: gpu
    effect: NoExecute
status:
  capacity:
    cpu: "4"
    memory: 8Gi
    pods: "110"
  addresses:
  - type: InternalIP
    address: 172.30.0.11
""")

PV = load("""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: task-pv-volume
  labels:
    type: local
spec:
  storageClassName: manual
  capacity:
    storage: 10Gi
  accessModes:
    - ReadWriteOnce
  hostPath:
    path: "/mnt/data"
""")

LOCAL_PV = load("""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: example-pv
spec:
  capacity:
    storage: 100Gi
  volumeMode: Filesystem
  accessModes:
  - ReadWriteOnce
  persistentVolumeReclaimPolicy: Delete
  storageClassName: local-storage
  local:
    path: /mnt/disks/ssd1
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values:
          - example-node
""")

PVC = load("""
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: task-pv-claim
spec:
  storageClassName: manual
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 3Gi
""")

EVENT = load("""
apiVersion: v1
kind: Event
metadata:
  name: web.17a9b2c3d4e5f6a7
involvedObject:
  apiVersion: v1
  kind: Pod
  name: web
  namespace: default
reason: Scheduled
message: Successfully assigned default/web to node-1
type: Normal
source:
  component: default-scheduler
count: 1
""")

VALID = [("ConfigMap", CONFIG_MAP), ("Secret", SECRET), ("Secret", SECRET_STRING_DATA),
         ("Secret", BASIC_AUTH), ("Secret", TLS), ("Secret", DOCKER_CONFIG),
         ("Secret", SA_TOKEN), ("ServiceAccount", SERVICE_ACCOUNT), ("Namespace", NAMESPACE),
         ("Node", NODE), ("PersistentVolume", PV), ("PersistentVolume", LOCAL_PV),
         ("PersistentVolumeClaim", PVC), ("Event", EVENT)]


@pytest.mark.parametrize(("kind", "doc"), VALID,
                         ids=[f"{k}/{d['metadata']['name']}" for k, d in VALID])
def test_documentation_examples_are_valid(kind: str, doc: dict[str, Any]) -> None:
    assert problems(kind, doc) == []


CASES: list[tuple[str, dict[str, Any], str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("ConfigMap", CONFIG_MAP, "key", [("data.a b", "x")], [("data[a b]", 'Invalid value: "a b"')]),
    ("ConfigMap", CONFIG_MAP, "dot-dot key", [("data", {"..": "x"})],
     [("data[..]", "must not be '..'")]),
    ("ConfigMap", CONFIG_MAP, "key in both maps",
     [("binaryData", {"player_initial_lives": "Mw=="})],
     [("binaryData[player_initial_lives]", "duplicate of key present in data")]),
    ("ConfigMap", CONFIG_MAP, "too large", [("data", {"big": "x" * (1024 * 1024 + 1)})],
     [("data", "Too long: may not be more than 1048576 bytes")]),
    ("Secret", SECRET, "key", [("data", {"user name": "YQ=="})],
     [("data[user name]", 'Invalid value: "user name"')]),
    ("Secret", TLS, "tls without key", [("data", {"tls.crt": "eA=="})],
     [("data[tls.key]", "Required value")]),
    ("Secret", DOCKER_CONFIG, "docker config missing", [("data", {})],
     [("data[.dockerconfigjson]", "Required value")]),
    ("Secret", DOCKER_CONFIG, "docker config not JSON", [("data", {".dockerconfigjson": "e30K"
                                                                   "e30K"})],
     [("data[.dockerconfigjson]", "must be valid JSON")]),
    ("Secret", BASIC_AUTH, "basic auth empty", [("stringData", {})],
     [("data[username]", "Required value"), ("data[password]", "Required value")]),
    ("Secret", SA_TOKEN, "token without account", [("metadata.annotations", {})],
     [("metadata.annotations[kubernetes.io/service-account.name]", "Required value")]),
    ("Secret", SECRET, "ssh without key", [("type", "kubernetes.io/ssh-auth")],
     [("data[ssh-privatekey]", "Required value")]),
    ("ServiceAccount", SERVICE_ACCOUNT, "pull secret name", [("imagePullSecrets.0.name", "")],
     [("imagePullSecrets[0].name", "Required value")]),
    ("Namespace", NAMESPACE, "finalizer", [("spec", {"finalizers": ["cleanup"]})],
     [("spec.finalizers[0]", "name is neither a standard finalizer name")]),
    ("Node", NODE, "taint effect", [("spec.taints.0.effect", "NoRun")],
     [("spec.taints[0].effect", 'Unsupported value: "NoRun"')]),
    ("Node", NODE, "taint without effect", [("spec.taints.0.effect", DELETE)],
     [("spec.taints[0].effect", "Required value")]),
    ("Node", NODE, "taint key", [("spec.taints.0.key", DELETE)],
     [("spec.taints[0].key", "Required value")]),
    ("Node", NODE, "duplicate taint", [("spec.taints.1.effect", "NoSchedule")],
     [("spec.taints[1]", 'Duplicate value: "dedicated:NoSchedule"')]),
    ("Node", NODE, "pod CIDR", [("spec.podCIDR", "10.244.1.1/24"),
                                ("spec.podCIDRs", ["10.244.1.1/24"])],
     [("spec.podCIDR", "bits set beyond the prefix length"),
      ("spec.podCIDRs[0]", "bits set beyond the prefix length")]),
    ("Node", NODE, "pod CIDRs mismatch", [("spec.podCIDRs", ["10.244.2.0/24"])],
     [("spec.podCIDRs", "first element must match `podCIDR`")]),
    ("Node", NODE, "capacity", [("status.capacity.cpu", "four")],
     [("status.capacity[cpu]", 'Invalid value: "four"'),
      ("status.allocatable[cpu]", 'Invalid value: "four"')]),
    ("Node", NODE, "address type", [("status.addresses.0.type", "PodIP")],
     [("status.addresses[0].type", 'Unsupported value: "PodIP"')]),
    ("PersistentVolume", PV, "no capacity", [("spec.capacity", DELETE)],
     [("spec.capacity", "Required value")]),
    ("PersistentVolume", PV, "capacity key", [("spec.capacity.cpu", "1")],
     [("spec.capacity", 'supported values: "storage"')]),
    ("PersistentVolume", PV, "access modes", [("spec.accessModes", [])],
     [("spec.accessModes", "at least 1 access mode")]),
    ("PersistentVolume", PV, "access mode value", [("spec.accessModes", ["ReadWriteAll"])],
     [("spec.accessModes[0]", 'Unsupported value: "ReadWriteAll"')]),
    ("PersistentVolume", PV, "RWOP with others", [("spec.accessModes", ["ReadWriteOncePod",
                                                                       "ReadOnlyMany"])],
     [("spec.accessModes", "ReadWriteOncePod with other access modes")]),
    ("PersistentVolume", PV, "reclaim policy", [("spec.persistentVolumeReclaimPolicy", "Keep")],
     [("spec.persistentVolumeReclaimPolicy", 'Unsupported value: "Keep"')]),
    ("PersistentVolume", PV, "no source", [("spec.hostPath", DELETE)],
     [("spec", "must specify a volume type")]),
    ("PersistentVolume", PV, "two sources", [("spec.nfs", {"server": "nfs", "path": "/x"})],
     [("spec.nfs", "may not specify more than 1 volume type")]),
    ("PersistentVolume", LOCAL_PV, "local without affinity", [("spec.nodeAffinity", DELETE)],
     [("spec.nodeAffinity", "a local volume requires node affinity")]),
    ("PersistentVolume", PV, "volume mode", [("spec.volumeMode", "Raw")],
     [("spec.volumeMode", 'Unsupported value: "Raw"')]),
    ("PersistentVolumeClaim", PVC, "no storage", [("spec.resources.requests", {})],
     [("spec.resources.requests[storage]", "Required value")]),
    ("PersistentVolumeClaim", PVC, "zero storage", [("spec.resources.requests.storage", "0")],
     [("spec.resources.requests[storage]", "must be greater than zero")]),
    ("PersistentVolumeClaim", PVC, "no access modes", [("spec.accessModes", DELETE)],
     [("spec.accessModes", "at least 1 access mode is required")]),
    ("PersistentVolumeClaim", PVC, "storage class", [("spec.storageClassName", "Fast_SSD")],
     [("spec.storageClassName", "RFC 1123 subdomain")]),
    ("Event", EVENT, "namespace mismatch", [("involvedObject.namespace", "kube-system")],
     [("involvedObject.namespace", "does not match event.namespace")]),
    ("Event", EVENT, "no involved object", [("involvedObject", {"namespace": "default"})],
     [("involvedObject.kind", "Required value"), ("involvedObject.name", "Required value")]),
    ("Event", EVENT, "no reason", [("reason", DELETE)], [("reason", "Required value")]),
    ("Event", EVENT, "type", [("type", "Info")], [("type", 'Unsupported value: "Info"')]),
    ("Event", EVENT, "new-style without reporter", [("eventTime", "2024-01-01T00:00:00Z")],
     [("reportingComponent", "Required value"), ("reportingInstance", "Required value"),
      ("action", "Required value")]),
]


@pytest.mark.parametrize(("kind", "base", "changes", "expected"),
                         [(k, b, c, e) for k, b, _, c, e in CASES],
                         ids=[f"{k}: {n}" for k, _, n, _, _ in CASES])
def test_invalid(kind: str, base: dict[str, Any], changes: list[tuple[str, Any]],
                 expected: list[tuple[str, str]]) -> None:
    assert_problems(problems(kind, mutate(base, *changes)), expected)


IMMUTABLE_CM = mutate(CONFIG_MAP, ("immutable", True))
IMMUTABLE_SECRET = mutate(SECRET, ("immutable", True))
BOUND_PVC = mutate(PVC, ("spec.volumeName", "task-pv-volume"))

UPDATES: list[tuple[str, dict[str, Any], str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("ConfigMap", CONFIG_MAP, "data", [("data.player_initial_lives", "4")], []),
    ("ConfigMap", CONFIG_MAP, "made immutable", [("immutable", True)], []),
    ("ConfigMap", IMMUTABLE_CM, "data of an immutable map", [("data.player_initial_lives", "4")],
     [("data", "field is immutable when `immutable` is set")]),
    ("ConfigMap", IMMUTABLE_CM, "made mutable", [("immutable", False)],
     [("immutable", "field is immutable when `immutable` is set")]),
    ("ConfigMap", IMMUTABLE_CM, "labels of an immutable map", [("metadata.labels", {"a": "b"})],
     []),
    ("Secret", SECRET, "type", [("type", "kubernetes.io/basic-auth")],
     [("type", "field is immutable")]),
    ("Secret", IMMUTABLE_SECRET, "data of an immutable secret", [("data.username", "cm9vdA==")],
     [("data", "field is immutable when `immutable` is set")]),
    ("Node", NODE, "unschedulable", [("spec.unschedulable", True)], []),
    ("Node", mutate(NODE, ("spec.podCIDR", DELETE), ("spec.podCIDRs", DELETE)), "set pod CIDR",
     [("spec.podCIDR", "10.244.1.0/24"), ("spec.podCIDRs", ["10.244.1.0/24"])], []),
    ("Node", NODE, "change pod CIDR", [("spec.podCIDR", "10.244.2.0/24"),
                                       ("spec.podCIDRs", ["10.244.2.0/24"])],
     [("spec.podCIDRs", "may not change podCIDR")]),
    ("PersistentVolume", PV, "reclaim policy", [("spec.persistentVolumeReclaimPolicy", "Delete")],
     []),
    ("PersistentVolume", PV, "source", [("spec.hostPath.path", "/mnt/other")],
     [("spec.hostPath", "the volume source is immutable")]),
    ("PersistentVolumeClaim", PVC, "bind", [("spec.volumeName", "task-pv-volume")], []),
    ("PersistentVolumeClaim", BOUND_PVC, "grow", [("spec.resources.requests.storage", "5Gi")], []),
    ("PersistentVolumeClaim", BOUND_PVC, "shrink", [("spec.resources.requests.storage", "1Gi")],
     [("spec.resources.requests[storage]", "can not be less than previous value")]),
    ("PersistentVolumeClaim", BOUND_PVC, "rebind", [("spec.volumeName", "other")],
     [("spec", "changed: spec.volumeName")]),
    ("PersistentVolumeClaim", PVC, "access modes", [("spec.accessModes", ["ReadOnlyMany"])],
     [("spec", "changed: spec.accessModes")]),
]


@pytest.mark.parametrize(("kind", "old", "changes", "expected"),
                         [(k, o, c, e) for k, o, _, c, e in UPDATES],
                         ids=[f"{k}: {n}" for k, _, n, _, _ in UPDATES])
def test_updates(kind: str, old: dict[str, Any], changes: list[tuple[str, Any]],
                 expected: list[tuple[str, str]]) -> None:
    assert_problems(update_problems(kind, old, mutate(old, *changes)), expected)
