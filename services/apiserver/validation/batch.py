"""batch/v1: Jobs and CronJobs.

Unless ``manualSelector`` is true, the server generates a Job's selector from its uid
(defaults.py); validation then checks that the generated labels are on the template and
that the selector still selects exactly them, so that a Job only ever adopts its own pods.
"""

from __future__ import annotations

import zoneinfo

from navarch import _names
from navarch.v1 import batch_pb2

from ..errors import FieldViolation, forbidden, immutable, invalid, not_supported, required
from .common import (
    Errors,
    changed_fields,
    check_labels,
    check_names,
    check_nonnegative,
    check_value,
    copy_field,
    key,
    selector_matches,
)
from .cron import CronError, parse_schedule
from .meta import check_annotations, check_object_meta
from .workloads import check_workload_template

__all__ = [
    "CONTROLLER_UID_LABEL", "JOB_NAME_LABEL", "LEGACY_CONTROLLER_UID_LABEL",
    "LEGACY_JOB_NAME_LABEL", "check_job_spec", "job_labels", "validate_cron_job",
    "validate_job", "validate_job_update",
]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"

_JOB_RESTART_POLICIES = ("OnFailure", "Never")
_COMPLETION_MODES = ("NonIndexed", "Indexed")
_REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
_FAILURE_ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")
_EXIT_CODE_OPERATORS = ("In", "NotIn")
_CONDITION_STATUSES = ("True", "False", "Unknown")
_CONCURRENCY = ("Allow", "Forbid", "Replace")
_MAX_INDEXED = 100_000
_MAX_RULES = 20
_MAX_EXIT_CODES = 255
_MAX_CRONJOB_NAME = 52
_MAX_LABEL_VALUE = 63


def _manual(spec: batch_pb2.JobSpec) -> bool:
    return spec.HasField("manual_selector") and spec.manual_selector


# --- Job ----------------------------------------------------------------------------------

def validate_job(job: batch_pb2.Job) -> Errors:
    """Every problem with a Job."""
    errors = check_object_meta("Job", job.metadata)
    errors += check_job_spec("spec", job.spec)
    if not _manual(job.spec):
        errors += _check_generated_selector(job)
    return errors


def check_job_spec(path: str, spec: batch_pb2.JobSpec, *, in_template: bool = False) -> Errors:
    """A Job's spec at ``path`` (``spec`` or a CronJob's ``spec.jobTemplate.spec``)."""
    errors: Errors = []
    for name, json in (("parallelism", "parallelism"), ("completions", "completions"),
                       ("active_deadline_seconds", "activeDeadlineSeconds"),
                       ("backoff_limit", "backoffLimit"),
                       ("backoff_limit_per_index", "backoffLimitPerIndex"),
                       ("max_failed_indexes", "maxFailedIndexes"),
                       ("ttl_seconds_after_finished", "ttlSecondsAfterFinished")):
        if spec.HasField(name):
            errors += check_nonnegative(f"{path}.{json}", getattr(spec, name))
    if in_template and _manual(spec):
        errors.append(not_supported(f"{path}.manualSelector", True, ("nil", "false")))
    errors += check_workload_template("job", spec.HasField("selector"), spec.selector,
                                      spec.template, path=path,
                                      restart_policies=_JOB_RESTART_POLICIES,
                                      selector_required=not in_template)
    errors += _check_completion(path, spec)
    if spec.HasField("pod_replacement_policy"):
        errors += check_value(f"{path}.podReplacementPolicy", spec.pod_replacement_policy,
                              _REPLACEMENT_POLICIES)
    if spec.HasField("pod_failure_policy"):
        errors += _check_failure_policy(path, spec)
    if spec.HasField("success_policy"):
        errors += _check_success_policy(path, spec)
    if spec.HasField("managed_by"):
        errors += _check_managed_by(f"{path}.managedBy", spec.managed_by)
    return errors


def _check_managed_by(p: str, value: str) -> Errors:
    if "/" not in value:
        return [invalid(p, value, "must be a domain-prefixed path (such as 'acme.io/foo')")]
    errors = check_names(p, value.split("/", 1)[0], _names.dns1123_subdomain)
    if len(value) > _MAX_LABEL_VALUE:
        errors.append(invalid(p, value, f"must be no more than {_MAX_LABEL_VALUE} characters"))
    return errors


def _check_success_policy(path: str, spec: batch_pb2.JobSpec) -> Errors:
    p = f"{path}.successPolicy"
    if spec.completion_mode != "Indexed":
        return [forbidden(p, "requires indexed completion mode")]
    errors: Errors = []
    if not spec.success_policy.rules:
        errors.append(required(f"{p}.rules", "at least one rules must be specified when "
                               "successPolicy is specified"))
    for i, rule in enumerate(spec.success_policy.rules):
        at = f"{p}.rules[{i}]"
        if not rule.HasField("succeeded_indexes") and not rule.HasField("succeeded_count"):
            errors.append(required(at, "at least one of succeededCount or succeededIndexes "
                                   "must be specified"))
        if rule.HasField("succeeded_count"):
            count = rule.succeeded_count
            errors += check_nonnegative(f"{at}.succeededCount", count)
            if spec.HasField("completions") and count > spec.completions:
                errors.append(invalid(f"{at}.succeededCount", count,
                                      "must be less than or equal to completions"))
    return errors


def _check_completion(path: str, spec: batch_pb2.JobSpec) -> Errors:
    mode = spec.completion_mode if spec.HasField("completion_mode") else "NonIndexed"
    errors = check_value(f"{path}.completionMode", mode, _COMPLETION_MODES)
    if mode == "Indexed":
        if not spec.HasField("completions"):
            errors.append(required(f"{path}.completions", "when completion mode is Indexed"))
        for name, json in (("completions", "completions"), ("parallelism", "parallelism")):
            value = getattr(spec, name)
            if spec.HasField(name) and value > _MAX_INDEXED:
                errors.append(invalid(f"{path}.{json}", value, "must be less than or equal "
                                      f"to {_MAX_INDEXED} when completion mode is Indexed"))
    if spec.HasField("backoff_limit_per_index") and mode != "Indexed":
        errors.append(invalid(f"{path}.backoffLimitPerIndex", spec.backoff_limit_per_index,
                              "requires indexed completion mode"))
    if spec.HasField("max_failed_indexes"):
        if not spec.HasField("backoff_limit_per_index"):
            errors.append(required(f"{path}.backoffLimitPerIndex",
                                   "when maxFailedIndexes is specified"))
        if spec.HasField("completions") and spec.max_failed_indexes > spec.completions:
            errors.append(invalid(f"{path}.maxFailedIndexes", spec.max_failed_indexes,
                                  "must be less than or equal to completions"))
    return errors


def _check_failure_policy(path: str, spec: batch_pb2.JobSpec) -> Errors:
    p = f"{path}.podFailurePolicy"
    rules = spec.pod_failure_policy.rules
    errors: Errors = []
    if spec.template.spec.restart_policy != "Never":
        errors.append(invalid(f"{path}.template.spec.restartPolicy",
                              spec.template.spec.restart_policy,
                              'only "Never" is supported when podFailurePolicy is specified'))
    if spec.HasField("pod_replacement_policy") and spec.pod_replacement_policy != "Failed":
        errors.append(invalid(f"{path}.podReplacementPolicy", spec.pod_replacement_policy,
                              'must be "Failed" when podFailurePolicy is specified'))
    if len(rules) > _MAX_RULES:
        errors.append(FieldViolation(f"{p}.rules", f"Too many: {len(rules)}: must have at "
                                     f"most {_MAX_RULES} items"))
    containers = {c.name for c in spec.template.spec.containers}
    containers |= {c.name for c in spec.template.spec.init_containers}
    for i, rule in enumerate(rules):
        at = f"{p}.rules[{i}]"
        errors += check_value(f"{at}.action", rule.action, _FAILURE_ACTIONS)
        if rule.action == "FailIndex" and not spec.HasField("backoff_limit_per_index"):
            errors.append(forbidden(f"{at}.action",
                                    "the FailIndex action requires backoffLimitPerIndex"))
        has_codes = rule.HasField("on_exit_codes")
        if has_codes == bool(rule.on_pod_conditions):
            errors.append(invalid(at, "", "specify exactly one of `onExitCodes` and "
                                  "`onPodConditions`"))
        if has_codes:
            errors += _check_exit_codes(f"{at}.onExitCodes", rule.on_exit_codes, containers)
        for j, cond in enumerate(rule.on_pod_conditions):
            c = f"{at}.onPodConditions[{j}]"
            if not cond.type:
                errors.append(required(f"{c}.type"))
            else:
                errors += check_names(f"{c}.type", cond.type, _names.qualified_name)
            errors += check_value(f"{c}.status", cond.status, _CONDITION_STATUSES)
    return errors


def _check_exit_codes(p: str, req: batch_pb2.PodFailurePolicyOnExitCodesRequirement,
                      containers: set[str]) -> Errors:
    errors = check_value(f"{p}.operator", req.operator, _EXIT_CODE_OPERATORS)
    if req.HasField("container_name") and req.container_name not in containers:
        errors.append(invalid(f"{p}.containerName", req.container_name,
                              "must be one of the container or initContainer names in the "
                              "pod template"))
    values = list(req.values)
    if not values:
        errors.append(required(f"{p}.values", "at least one exit code"))
    if len(values) > _MAX_EXIT_CODES:
        errors.append(FieldViolation(f"{p}.values", f"Too many: {len(values)}: must have at "
                                     f"most {_MAX_EXIT_CODES} items"))
    for j, value in enumerate(values):
        if j and value <= values[j - 1]:
            errors.append(invalid(f"{p}.values[{j}]", value,
                                  "must be ordered, without duplicates"))
        if value == 0 and req.operator == "In":
            errors.append(invalid(f"{p}.values[{j}]", 0, "must not be 0 for the In operator"))
    return errors


def _check_generated_selector(job: batch_pb2.Job) -> Errors:
    """The labels the server generated are still there and still what is selected."""
    meta, spec = job.metadata, job.spec
    errors: Errors = []
    if not meta.uid:
        errors.append(required("metadata.uid"))
    expected_labels = [(LEGACY_CONTROLLER_UID_LABEL, meta.uid), (CONTROLLER_UID_LABEL, meta.uid)]
    if len(meta.name) > _MAX_LABEL_VALUE:
        errors.append(invalid("metadata.name", meta.name, "must be no more than "
                              f"{_MAX_LABEL_VALUE} characters: it is the value of the "
                              f"{JOB_NAME_LABEL} label"))
    else:
        expected_labels += [(LEGACY_JOB_NAME_LABEL, meta.name), (JOB_NAME_LABEL, meta.name)]
    labels = spec.template.metadata.labels
    path = "spec.template.metadata.labels"
    for label, expected in expected_labels:
        if label not in labels:
            errors.append(required(key(path, label), f"must be '{expected}'"))
        elif labels[label] != expected:
            errors.append(invalid(key(path, label), labels[label], f"must be '{expected}'"))
    if spec.HasField("selector") and not selector_matches(
            spec.selector, {CONTROLLER_UID_LABEL: meta.uid, JOB_NAME_LABEL: meta.name}):
        errors.append(invalid("spec.selector", "", "`selector` not auto-generated: set "
                              "manualSelector to true to choose your own"))
    return errors


_SUSPENDED_MUTABLE = ("node_selector", "affinity", "tolerations", "scheduling_gates")


def validate_job_update(new: batch_pb2.Job, old: batch_pb2.Job) -> Errors:
    """The selector, the completion mode, the failure policy and (while the Job has ever
    run) the pod template are fixed; completions change only for elastic indexed Jobs."""
    a, b = new.spec, old.spec
    errors: Errors = []
    if a.selector != b.selector:
        errors.append(immutable("spec.selector"))
    for name, json in (("completion_mode", "completionMode"),
                       ("pod_failure_policy", "podFailurePolicy"),
                       ("backoff_limit_per_index", "backoffLimitPerIndex"),
                       ("manual_selector", "manualSelector"),
                       ("managed_by", "managedBy")):
        if _field_differs(a, b, name):
            errors.append(immutable(f"spec.{json}"))
    if _field_differs(a, b, "completions") and not _elastic(a, b):
        errors.append(immutable("spec.completions", a.completions))
    errors += _check_template_update(new, old)
    return errors


def _field_differs(a: batch_pb2.JobSpec, b: batch_pb2.JobSpec, name: str) -> bool:
    return a.HasField(name) != b.HasField(name) or getattr(a, name) != getattr(b, name)


def _elastic(a: batch_pb2.JobSpec, b: batch_pb2.JobSpec) -> bool:
    """An indexed Job whose completions track its parallelism may be resized."""
    return (a.completion_mode == "Indexed" and a.HasField("completions")
            and a.completions == a.parallelism and b.completions == b.parallelism)


def _check_template_update(new: batch_pb2.Job, old: batch_pb2.Job) -> Errors:
    probe = type(new.spec.template)()
    probe.CopyFrom(new.spec.template)
    never_ran = old.spec.suspend and not old.status.HasField("start_time")
    if never_ran:
        copy_field(probe, old.spec.template, "metadata")
        for name in _SUSPENDED_MUTABLE:
            copy_field(probe.spec, old.spec.template.spec, name)
    if probe == old.spec.template:
        return []
    changed = ", ".join(changed_fields(probe, old.spec.template, "spec.template"))
    allowed = ("" if not never_ran else " (except labels, annotations, nodeSelector, "
               "affinity, tolerations and schedulingGates while the Job is suspended and has "
               "never started)")
    return [FieldViolation("spec.template",
                           f"field is immutable{allowed}; changed: {changed}")]


# --- CronJob ------------------------------------------------------------------------------

def validate_cron_job(cj: batch_pb2.CronJob) -> Errors:
    """Every problem with a CronJob."""
    spec = cj.spec
    errors = check_object_meta("CronJob", cj.metadata)
    if len(cj.metadata.name) > _MAX_CRONJOB_NAME:
        errors.append(invalid("metadata.name", cj.metadata.name,
                              f"must be no more than {_MAX_CRONJOB_NAME} characters"))
    errors += _check_schedule(spec.schedule)
    if spec.HasField("time_zone"):
        errors += _check_time_zone(spec.time_zone)
    errors += check_value("spec.concurrencyPolicy", spec.concurrency_policy, _CONCURRENCY)
    for name, json in (("starting_deadline_seconds", "startingDeadlineSeconds"),
                       ("successful_jobs_history_limit", "successfulJobsHistoryLimit"),
                       ("failed_jobs_history_limit", "failedJobsHistoryLimit")):
        if spec.HasField(name):
            errors += check_nonnegative(f"spec.{json}", getattr(spec, name))
    template = spec.job_template
    errors += check_labels("spec.jobTemplate.metadata.labels", template.metadata.labels)
    errors += check_annotations("spec.jobTemplate.metadata.annotations",
                                template.metadata.annotations)
    errors += check_job_spec("spec.jobTemplate.spec", template.spec, in_template=True)
    return errors


def _check_schedule(schedule: str) -> Errors:
    if not schedule:
        return [required("spec.schedule")]
    if schedule.startswith(("TZ=", "CRON_TZ=")):
        return [invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, "
                        "use the timeZone field instead")]
    try:
        parse_schedule(schedule)
    except CronError as exc:
        return [invalid("spec.schedule", schedule, str(exc))]
    return []


def _check_time_zone(tz: str) -> Errors:
    if not tz:
        return [invalid("spec.timeZone", tz, "must be unset or a time zone name")]
    if tz.lower() == "local":
        return [invalid("spec.timeZone", tz, "must be an explicit time zone as defined in "
                        "https://www.iana.org/time-zones (e.g. 'Europe/Paris')")]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid("spec.timeZone", tz, "unknown time zone: use a name from the IANA "
                        "time zone database (e.g. 'Etc/UTC', 'America/New_York')")]
    return []


def job_labels(uid: str, name: str) -> dict[str, str]:
    """The labels the server puts on the pods of a Job without a manual selector."""
    return {CONTROLLER_UID_LABEL: uid, LEGACY_CONTROLLER_UID_LABEL: uid,
            JOB_NAME_LABEL: name, LEGACY_JOB_NAME_LABEL: name}
