"""Validation: Kubernetes' rules for every kind, reporting every problem at once.

``validate(kind, obj)`` checks a whole object, ``validate_update(kind, new, old)`` what may
not change between two versions (the server calls both on update). Both return field
violations with paths spelled as Kubernetes prints them
(``spec.template.spec.containers[0].ports[1].containerPort``) and an empty list for a
valid object. They never mutate their arguments and expect defaults to be applied
already (defaults.py), as the server does.

Modules, one concern each::

    common      paths, quantities, ports, selectors, message diffs
    meta        ObjectMeta (per-kind name rules, namespace scope, labels, owners...)
    pod         PodSpec, pod templates, Pod, PodTemplate, pod updates
    containers  containers (ports, env, resources, mounts, probes, security)
    volumes     pod volumes and their sources
    scheduling  tolerations, affinity, topology spread
    service     Service, Endpoints
    config      ConfigMap, Secret, ServiceAccount
    cluster     Namespace, Node, PersistentVolume(Claim), Event
    workloads   Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision
    batch       Job, CronJob          (cron: the schedule syntax)
    autoscaling HorizontalPodAutoscaler, Lease
    policy      PodDisruptionBudget
    rbac        Role, ClusterRole, RoleBinding, ClusterRoleBinding
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from navarch.v1 import (
    apps_pb2,
    autoscaling_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    policy_pb2,
    rbac_pb2,
)

from ..errors import FieldViolation
from . import autoscaling as autoscaling
from . import batch as batch
from . import cluster as cluster
from . import config as config
from . import pod as pod
from . import policy as policy
from . import rbac as rbac
from . import service as service
from . import workloads as workloads
from .meta import check_object_meta, check_object_meta_update

__all__ = ["validate", "validate_update"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class _Rules:
    message: type[Message]
    create: Callable[[Any], list[FieldViolation]]
    update: Callable[[Any, Any], list[FieldViolation]] | None


_RULES: dict[str, _Rules] = {}


def _register(kind: str, message: type[M], create: Callable[[M], list[FieldViolation]],
              update: Callable[[M, M], list[FieldViolation]] | None = None) -> None:
    _RULES[kind] = _Rules(message, create, update)


_register("Namespace", core_pb2.Namespace, cluster.validate_namespace)
_register("Node", core_pb2.Node, cluster.validate_node, cluster.validate_node_update)
_register("Pod", core_pb2.Pod, pod.validate_pod, pod.validate_pod_update)
_register("PodTemplate", core_pb2.PodTemplate, pod.validate_pod_template)
_register("Service", core_pb2.Service, service.validate_service,
          service.validate_service_update)
_register("Endpoints", core_pb2.Endpoints, service.validate_endpoints)
_register("ConfigMap", core_pb2.ConfigMap, config.validate_config_map,
          config.validate_config_map_update)
_register("Secret", core_pb2.Secret, config.validate_secret, config.validate_secret_update)
_register("ServiceAccount", core_pb2.ServiceAccount, config.validate_service_account)
_register("Event", core_pb2.Event, cluster.validate_event)
_register("PersistentVolume", core_pb2.PersistentVolume, cluster.validate_persistent_volume,
          cluster.validate_persistent_volume_update)
_register("PersistentVolumeClaim", core_pb2.PersistentVolumeClaim,
          cluster.validate_persistent_volume_claim,
          cluster.validate_persistent_volume_claim_update)
_register("Deployment", apps_pb2.Deployment, workloads.validate_deployment,
          workloads.validate_selector_update)
_register("ReplicaSet", apps_pb2.ReplicaSet, workloads.validate_replica_set,
          workloads.validate_selector_update)
_register("DaemonSet", apps_pb2.DaemonSet, workloads.validate_daemon_set,
          workloads.validate_selector_update)
_register("StatefulSet", apps_pb2.StatefulSet, workloads.validate_stateful_set,
          workloads.validate_stateful_set_update)
_register("ControllerRevision", apps_pb2.ControllerRevision,
          workloads.validate_controller_revision, workloads.validate_controller_revision_update)
_register("Job", batch_pb2.Job, batch.validate_job, batch.validate_job_update)
_register("CronJob", batch_pb2.CronJob, batch.validate_cron_job)
_register("HorizontalPodAutoscaler", autoscaling_pb2.HorizontalPodAutoscaler,
          autoscaling.validate_hpa)
_register("Lease", coordination_pb2.Lease, autoscaling.validate_lease)
_register("PodDisruptionBudget", policy_pb2.PodDisruptionBudget, policy.validate_pdb)
_register("Role", rbac_pb2.Role, rbac.validate_role)
_register("ClusterRole", rbac_pb2.ClusterRole, rbac.validate_cluster_role)
_register("RoleBinding", rbac_pb2.RoleBinding, rbac.validate_role_binding,
          rbac.validate_role_binding_update)
_register("ClusterRoleBinding", rbac_pb2.ClusterRoleBinding,
          rbac.validate_cluster_role_binding, rbac.validate_cluster_role_binding_update)


def _rules(kind: str, obj: Message) -> _Rules | None:
    rules = _RULES.get(kind)
    if rules is not None and not isinstance(obj, rules.message):
        raise TypeError(f"{kind} is validated as {rules.message.DESCRIPTOR.full_name}, got "
                        f"{obj.DESCRIPTOR.full_name}")
    return rules


def validate(kind: str, obj: Message) -> list[FieldViolation]:
    """Every problem with ``obj``, a ``kind`` (empty when it is valid)."""
    rules = _rules(kind, obj)
    if rules is None:
        return check_object_meta(kind, obj.metadata)  # type: ignore[attr-defined]
    return rules.create(obj)


def validate_update(kind: str, new: Message, old: Message) -> list[FieldViolation]:
    """Every change from ``old`` to ``new`` that ``kind`` does not allow (``new`` itself is
    checked by ``validate``)."""
    rules = _rules(kind, new)
    _rules(kind, old)
    errors = check_object_meta_update(new.metadata, old.metadata)  # type: ignore[attr-defined]
    if rules is not None and rules.update is not None:
        errors += rules.update(new, old)
    return errors
