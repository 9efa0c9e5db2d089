"""apps/v1: Deployments, ReplicaSets, DaemonSets, StatefulSets, ControllerRevisions.

Every controller of this group owns the pods its selector matches, so the selector must be
present, non-empty, match the template's labels and (apps/v1) never change; the pods it
creates restart Always and run indefinitely (no activeDeadlineSeconds).
"""

from __future__ import annotations

from google.protobuf.message import Message

from navarch import _codec, _names
from navarch.v1 import apps_pb2, core_pb2, meta_pb2

from ..errors import forbidden, immutable, invalid, required
from .cluster import check_claim_spec
from .common import (
    Errors,
    changed_fields,
    check_int_or_percent,
    check_label_selector,
    check_names,
    check_nonnegative,
    check_value,
    copy_field,
    describe_labels,
    describe_selector,
    int_or_percent_is_zero,
    selector_matches,
)
from .meta import check_object_meta
from .pod import check_pod_template_spec

__all__ = [
    "check_workload_template", "optional_string", "validate_controller_revision",
    "validate_controller_revision_update", "validate_daemon_set", "validate_deployment",
    "validate_replica_set", "validate_selector_update", "validate_stateful_set",
    "validate_stateful_set_update",
]

_DEPLOYMENT_STRATEGIES = ("Recreate", "RollingUpdate")
_DAEMON_SET_STRATEGIES = ("OnDelete", "RollingUpdate")
_POD_MANAGEMENT = ("OrderedReady", "Parallel")
_RETENTION = ("Retain", "Delete")
_STATEFUL_SET_MUTABLE = ("replicas", "ordinals", "template", "update_strategy",
                         "persistent_volume_claim_retention_policy", "min_ready_seconds",
                         "revision_history_limit")


def optional_string(msg: Message, name: str) -> str | None:
    """A string field's value, None when unset (absent, or empty without presence)."""
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.has_presence:
        return getattr(msg, name) if msg.HasField(name) else None
    value = getattr(msg, name)
    return value if value else None


def _check_selector(path: str, has: bool, selector: meta_pb2.LabelSelector,
                    kind: str) -> Errors:
    if not has:
        return [required(f"{path}.selector")]
    errors = check_label_selector(f"{path}.selector", selector)
    if not selector.match_labels and not selector.match_expressions:
        errors.append(invalid(f"{path}.selector", "{}", f"empty selector is invalid for {kind}"))
    return errors


def check_workload_template(kind: str, has_selector: bool, selector: meta_pb2.LabelSelector,
                            template: core_pb2.PodTemplateSpec, *, path: str = "spec",
                            restart_policies: tuple[str, ...] = ("Always",),
                            selector_required: bool = True) -> Errors:
    """The selector and pod template of a ``kind`` controller whose spec is at ``path``:
    a selector that matches the template's labels, a valid template whose restartPolicy is
    one of ``restart_policies``."""
    errors: Errors = []
    if selector_required or has_selector:
        errors += _check_selector(path, has_selector, selector, kind)
    errors += check_pod_template_spec(f"{path}.template", template,
                                      restart_policies=restart_policies)
    nonempty = selector.match_labels or selector.match_expressions
    labels = template.metadata.labels
    if has_selector and nonempty and not check_label_selector("", selector) \
            and not selector_matches(selector, labels):
        errors.append(invalid(f"{path}.template.metadata.labels", describe_labels(labels),
                              f"`selector` ({describe_selector(selector)}) does not match "
                              "template `labels`"))
    return errors


def _check_no_deadline(kind: str, template: core_pb2.PodTemplateSpec) -> Errors:
    if template.spec.HasField("active_deadline_seconds"):
        return [forbidden("spec.template.spec.activeDeadlineSeconds",
                          f"may not be set in the pod template of a {kind}: its pods run "
                          "until replaced")]
    return []


def _check_optional_nonnegative(spec: Message, fields: tuple[tuple[str, str], ...]) -> Errors:
    errors: Errors = []
    for name, json in fields:
        if spec.HasField(name):
            errors += check_nonnegative(f"spec.{json}", getattr(spec, name))
    return errors


def _check_rolling(path: str, max_unavailable: str | None, max_surge: str | None) -> Errors:
    errors: Errors = []
    if max_unavailable is not None:
        errors += check_int_or_percent(f"{path}.maxUnavailable", max_unavailable)
    if max_surge is not None:
        errors += check_int_or_percent(f"{path}.maxSurge", max_surge, at_most_100=False)
    if int_or_percent_is_zero(max_unavailable or "") and int_or_percent_is_zero(max_surge or ""):
        errors.append(invalid(f"{path}.maxUnavailable", _shown(max_unavailable or "0"),
                              "may not be 0 when `maxSurge` is 0"))
    return errors


def _shown(value: str) -> int | str:
    return _codec.int_or_string(value)


# --- Deployment ---------------------------------------------------------------------------

def validate_deployment(obj: apps_pb2.Deployment) -> Errors:
    """Every problem with a Deployment."""
    spec = obj.spec
    errors = check_object_meta("Deployment", obj.metadata)
    errors += _check_optional_nonnegative(spec, (("replicas", "replicas"),
                                                 ("revision_history_limit",
                                                  "revisionHistoryLimit"),
                                                 ("progress_deadline_seconds",
                                                  "progressDeadlineSeconds")))
    errors += check_nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    errors += check_workload_template("deployment", spec.HasField("selector"), spec.selector,
                                      spec.template)
    errors += _check_no_deadline("Deployment", spec.template)
    errors += _check_deployment_strategy(spec.strategy)
    if spec.HasField("progress_deadline_seconds") and spec.progress_deadline_seconds >= 0 \
            and spec.progress_deadline_seconds <= spec.min_ready_seconds:
        errors.append(invalid("spec.progressDeadlineSeconds", spec.progress_deadline_seconds,
                              "must be greater than minReadySeconds"))
    return errors


def _check_deployment_strategy(strategy: apps_pb2.DeploymentStrategy) -> Errors:
    errors = check_value("spec.strategy.type", strategy.type, _DEPLOYMENT_STRATEGIES)
    has_rolling = strategy.HasField("rolling_update")
    if strategy.type == "Recreate" and has_rolling:
        errors.append(forbidden("spec.strategy.rollingUpdate",
                                "may not be specified when strategy `type` is 'Recreate'"))
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update
        errors += _check_rolling("spec.strategy.rollingUpdate",
                                 optional_string(rolling, "max_unavailable"),
                                 optional_string(rolling, "max_surge"))
    return errors


def validate_selector_update(new: Message, old: Message) -> Errors:
    """apps/v1 selectors are immutable."""
    a, b = new.spec.selector, old.spec.selector  # type: ignore[attr-defined]
    if a != b:
        return [immutable("spec.selector", describe_selector(a))]
    return []


# --- ReplicaSet ---------------------------------------------------------------------------

def validate_replica_set(obj: apps_pb2.ReplicaSet) -> Errors:
    """Every problem with a ReplicaSet."""
    spec = obj.spec
    errors = check_object_meta("ReplicaSet", obj.metadata)
    errors += _check_optional_nonnegative(spec, (("replicas", "replicas"),))
    errors += check_nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    errors += check_workload_template("replicaset", spec.HasField("selector"), spec.selector,
                                      spec.template)
    errors += _check_no_deadline("ReplicaSet", spec.template)
    return errors


# --- DaemonSet ----------------------------------------------------------------------------

def validate_daemon_set(obj: apps_pb2.DaemonSet) -> Errors:
    """Every problem with a DaemonSet."""
    spec = obj.spec
    errors = check_object_meta("DaemonSet", obj.metadata)
    errors += _check_optional_nonnegative(spec, (("revision_history_limit",
                                                  "revisionHistoryLimit"),))
    errors += check_nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    errors += check_workload_template("daemonset", spec.HasField("selector"), spec.selector,
                                      spec.template)
    errors += _check_no_deadline("DaemonSet", spec.template)
    strategy = spec.update_strategy
    errors += check_value("spec.updateStrategy.type", strategy.type, _DAEMON_SET_STRATEGIES)
    if strategy.type == "RollingUpdate":
        rolling = strategy.rolling_update
        unavailable = optional_string(rolling, "max_unavailable")
        surge = optional_string(rolling, "max_surge")
        errors += _check_rolling("spec.updateStrategy.rollingUpdate", unavailable, surge)
        if not int_or_percent_is_zero(unavailable or "") and \
                not int_or_percent_is_zero(surge or ""):
            errors.append(invalid("spec.updateStrategy.rollingUpdate.maxSurge",
                                  _shown(surge or ""),
                                  "may not be set when maxUnavailable is non-zero"))
    elif strategy.type == "OnDelete" and strategy.HasField("rolling_update"):
        errors.append(forbidden("spec.updateStrategy.rollingUpdate",
                                "may not be specified when `type` is 'OnDelete'"))
    return errors


# --- StatefulSet --------------------------------------------------------------------------

def validate_stateful_set(obj: apps_pb2.StatefulSet) -> Errors:
    """Every problem with a StatefulSet."""
    spec = obj.spec
    errors = check_object_meta("StatefulSet", obj.metadata)
    errors += _check_optional_nonnegative(spec, (("replicas", "replicas"),
                                                 ("revision_history_limit",
                                                  "revisionHistoryLimit")))
    errors += check_nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    errors += check_workload_template("statefulset", spec.HasField("selector"), spec.selector,
                                      _with_claim_volumes(spec))
    errors += _check_no_deadline("StatefulSet", spec.template)
    if spec.service_name:
        errors += check_names("spec.serviceName", spec.service_name, _names.dns1035_label)
    errors += check_value("spec.podManagementPolicy", spec.pod_management_policy,
                          _POD_MANAGEMENT)
    errors += _check_stateful_strategy(spec.update_strategy)
    if spec.HasField("persistent_volume_claim_retention_policy"):
        policy = spec.persistent_volume_claim_retention_policy
        p = "spec.persistentVolumeClaimRetentionPolicy"
        errors += check_value(f"{p}.whenDeleted", policy.when_deleted, _RETENTION)
        errors += check_value(f"{p}.whenScaled", policy.when_scaled, _RETENTION)
    if spec.HasField("ordinals"):
        errors += check_nonnegative("spec.ordinals.start", spec.ordinals.start)
    errors += _check_claim_templates(spec)
    return errors


def _with_claim_volumes(spec: apps_pb2.StatefulSetSpec) -> core_pb2.PodTemplateSpec:
    """The template as the StatefulSet's pods will have it: each volume claim template
    appended as a persistentVolumeClaim volume, so that mounts of claims resolve. Claims
    whose names are invalid or taken are left out (reported on the claim itself)."""
    template = core_pb2.PodTemplateSpec()
    template.CopyFrom(spec.template)
    taken = {v.name for v in template.spec.volumes}
    for claim in spec.volume_claim_templates:
        name = claim.metadata.name
        if name and name not in taken and not _names.dns1123_label(name):
            template.spec.volumes.add(name=name).persistent_volume_claim.claim_name = name
            taken.add(name)
    return template


def _check_stateful_strategy(strategy: apps_pb2.StatefulSetUpdateStrategy) -> Errors:
    p = "spec.updateStrategy"
    errors = check_value(f"{p}.type", strategy.type, _DAEMON_SET_STRATEGIES)
    if strategy.type == "OnDelete" and strategy.HasField("rolling_update"):
        errors.append(forbidden(f"{p}.rollingUpdate",
                                "only allowed for updateStrategy 'RollingUpdate'"))
    if strategy.type == "RollingUpdate" and strategy.HasField("rolling_update"):
        rolling = strategy.rolling_update
        if rolling.HasField("partition"):
            errors += check_nonnegative(f"{p}.rollingUpdate.partition", rolling.partition)
        unavailable = optional_string(rolling, "max_unavailable")
        if unavailable is not None:
            errors += check_int_or_percent(f"{p}.rollingUpdate.maxUnavailable", unavailable)
            if int_or_percent_is_zero(unavailable):
                errors.append(invalid(f"{p}.rollingUpdate.maxUnavailable", _shown(unavailable),
                                      "must be greater than 0"))
    return errors


def _check_claim_templates(spec: apps_pb2.StatefulSetSpec) -> Errors:
    errors: Errors = []
    names: set[str] = set()
    volumes = {v.name for v in spec.template.spec.volumes}
    for i, claim in enumerate(spec.volume_claim_templates):
        at = f"spec.volumeClaimTemplates[{i}]"
        if not claim.metadata.name:
            errors.append(required(f"{at}.metadata.name"))
        else:
            errors += check_names(f"{at}.metadata.name", claim.metadata.name,
                                  _names.dns1123_subdomain)
            if claim.metadata.name in names or claim.metadata.name in volumes:
                errors.append(invalid(f"{at}.metadata.name", claim.metadata.name,
                                      "must be unique among volume claim templates and the "
                                      "template's volumes"))
            names.add(claim.metadata.name)
        errors += check_claim_spec(f"{at}.spec", claim.spec)
    return errors


def validate_stateful_set_update(new: apps_pb2.StatefulSet, old: apps_pb2.StatefulSet) -> Errors:
    """Only replicas, ordinals, template, updateStrategy, the PVC retention policy,
    minReadySeconds and revisionHistoryLimit may change."""
    probe = apps_pb2.StatefulSetSpec()
    probe.CopyFrom(new.spec)
    for name in _STATEFUL_SET_MUTABLE:
        copy_field(probe, old.spec, name)
    if probe == old.spec:
        return []
    changed = ", ".join(changed_fields(probe, old.spec, "spec"))
    return [forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                      "'ordinals', 'template', 'updateStrategy', "
                      "'persistentVolumeClaimRetentionPolicy', 'minReadySeconds' and "
                      f"'revisionHistoryLimit' are forbidden; changed: {changed}")]


# --- ControllerRevision -------------------------------------------------------------------

def validate_controller_revision(obj: apps_pb2.ControllerRevision) -> Errors:
    """Data is mandatory; the revision is not negative."""
    errors = check_object_meta("ControllerRevision", obj.metadata)
    if not obj.HasField("data"):
        errors.append(required("data", "data is mandatory"))
    errors += check_nonnegative("revision", obj.revision)
    return errors


def validate_controller_revision_update(new: apps_pb2.ControllerRevision,
                                        old: apps_pb2.ControllerRevision) -> Errors:
    """The data of a revision never changes."""
    if new.data != old.data:
        return [immutable("data")]
    return []
