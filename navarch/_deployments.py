"""What the Deployment controller and ``navctl rollout`` both read off Deployments and
their ReplicaSets: Kubernetes' annotation and label names, revisions, and a pod template
without its pod-template-hash label (how a ReplicaSet's template is compared with its
Deployment's)."""

from __future__ import annotations

from navarch.v1 import apps_pb2, core_pb2

__all__ = ["CHANGE_CAUSE", "DESIRED_REPLICAS", "HASH_LABEL", "MAX_REPLICAS", "REVISION",
           "REVISION_HISTORY", "revision_of", "template_without_hash"]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"


def revision_of(rs: apps_pb2.ReplicaSet) -> int:
    """The ReplicaSet's revision annotation (0 when missing or bad)."""
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def template_without_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    """A copy of ``template`` without the pod-template-hash label."""
    t = core_pb2.PodTemplateSpec()
    t.CopyFrom(template)
    t.metadata.labels.pop(HASH_LABEL, None)
    return t
