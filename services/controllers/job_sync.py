"""The Job controller's decisions: from a Job and its pods, what to create, what to
delete, and the status to write (Kubernetes' ``syncJob``), as plain data.

Rules (as Kubernetes' Job controller):

- A finished Job (condition Complete or Failed True) creates nothing; any pod still
  active is deleted.
- Failure: more failed pods than ``backoffLimit`` (default 6) — or, with restartPolicy
  OnFailure, as many container restarts in active pods as the limit — fails the Job with
  reason BackoffLimitExceeded; running longer than ``activeDeadlineSeconds`` since
  ``status.startTime`` fails it with DeadlineExceeded (conditions FailureTarget and
  Failed). Active pods are then deleted.
- Success: ``completions`` pods succeeded (Indexed: every index has a succeeded pod);
  with completions unset (a work queue), any pod succeeded and none is active
  (conditions SuccessCriteriaMet and Complete, reason CompletionsReached).
- Otherwise the Job keeps ``min(parallelism, remaining completions)`` pods active.
  Replacements for failed pods wait an exponential backoff, 10 s · 2^(n-1) capped at
  6 minutes, n being the failures since the last success, counted from the last failure.
- podFailurePolicy (``job_failure``): a FailJob match fails the Job with reason
  PodFailurePolicy; Ignore matches are not counted at all.
- ``suspend`` deletes the active pods, sets the Suspended condition and clears
  ``startTime``; resuming sets a new ``startTime``.

Counts never go down: ``succeeded``/``failed`` are the larger of the status and the pods
seen (finished pods are kept, but a user may delete them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from navarch.v1 import batch_pb2, core_pb2
from services.apiserver.validation.batch import job_labels

from .job_failure import judge_failures
from .workloads import (
    controller_ref,
    count_pods,
    is_pod_active,
    is_pod_ready,
    pod_finish_time,
    seconds,
    timestamp,
)

__all__ = [
    "BACKOFF_BASE", "BACKOFF_MAX", "COMPLETION_INDEX", "Condition", "JobEvent", "JobPlan",
    "backoff_delay", "completed_indexes", "finished_at", "format_indexes", "is_finished",
    "job_status", "new_job_pod", "plan_job", "pod_index",
]

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETIONS_MESSAGE = "Reached expected number of succeeded pods"


@dataclass(frozen=True)
class Condition:
    """A Job condition as it should be stored; ``since`` is its lastTransitionTime."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class JobEvent:
    """An event to record on the Job."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class JobPlan:
    """What to do for one Job. ``create`` pods (NonIndexed) or ``create_indexes`` (one pod
    per index); ``delete`` names pods; the status fields are the full new status."""

    create: int = 0
    create_indexes: tuple[int, ...] = ()
    delete: tuple[str, ...] = ()
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0
    start_time: float = 0.0
    completion_time: float = 0.0
    completed_indexes: str = ""
    conditions: tuple[Condition, ...] = ()
    events: tuple[JobEvent, ...] = field(default=())
    requeue_after: float | None = None  # seconds until the decision may change by itself
    finished: bool = False


def backoff_delay(failures: int) -> float:
    """Seconds to wait before replacing a pod after ``failures`` failures in a row."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_BASE * 2.0 ** min(failures - 1, 30), BACKOFF_MAX))


def is_finished(job: batch_pb2.Job) -> str:
    """"Complete" or "Failed" when that condition is True, else ""."""
    for cond in job.status.conditions:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return cond.type
    return ""


def pod_index(pod: core_pb2.Pod) -> int | None:
    """The completion index of an Indexed Job's pod, None when missing or malformed."""
    text = pod.metadata.annotations.get(COMPLETION_INDEX) or pod.metadata.labels.get(
        COMPLETION_INDEX, "")
    return int(text) if text.isdigit() else None


def format_indexes(indexes: set[int]) -> str:
    """Ascending numbers and ranges: {1,3,4,5,7} → "1,3-5,7"."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def completed_indexes(pods: list[core_pb2.Pod], completions: int) -> set[int]:
    """Indexes (below ``completions``) with a succeeded pod."""
    found = set()
    for pod in pods:
        index = pod_index(pod)
        if pod.status.phase == "Succeeded" and index is not None and index < completions:
            found.add(index)
    return found


def _parallelism(spec: batch_pb2.JobSpec) -> int:
    return spec.parallelism if spec.HasField("parallelism") else 1


def _completions(spec: batch_pb2.JobSpec) -> int | None:
    """``completions``, None for a work queue (completions unset, parallelism set)."""
    if spec.HasField("completions"):
        return spec.completions
    return None if spec.HasField("parallelism") else 1


def _backoff_limit(spec: batch_pb2.JobSpec) -> int:
    return spec.backoff_limit if spec.HasField("backoff_limit") else 6


def _restarts(pods: list[core_pb2.Pod]) -> int:
    return sum(s.restart_count for p in pods if is_pod_active(p)
               for s in [*p.status.init_container_statuses, *p.status.container_statuses])


def _failures_since_success(pods: list[core_pb2.Pod]) -> tuple[int, float]:
    """(failed pods that finished after the last succeeded one, the last failure time)."""
    last_success = max((pod_finish_time(p) for p in pods if p.status.phase == "Succeeded"),
                       default=0.0)
    failures = [pod_finish_time(p) for p in pods if p.status.phase == "Failed"]
    recent = [t for t in failures if t >= last_success]
    return len(recent), max(recent, default=0.0)


def _with_condition(existing: tuple[Condition, ...], new: Condition) -> tuple[Condition, ...]:
    """``existing`` with ``new`` set: its transition time is kept when the status is
    unchanged."""
    out = []
    replaced = False
    for cond in existing:
        if cond.type == new.type:
            replaced = True
            if cond.status == new.status and cond.reason == new.reason:
                out.append(cond)
            else:
                out.append(new)
        else:
            out.append(cond)
    if not replaced:
        out.append(new)
    return tuple(out)


def _deletion_order(pods: list[core_pb2.Pod]) -> list[core_pb2.Pod]:
    """Pods to delete first come first: unscheduled, pending, not ready, newest."""
    def rank(p: core_pb2.Pod) -> tuple[int, int, int, float, str]:
        return (0 if not p.spec.node_name else 1,
                0 if p.status.phase == "Pending" else 1,
                0 if not is_pod_ready(p) else 1,
                -seconds(p.metadata.creation_timestamp), p.metadata.name)
    return sorted(pods, key=rank)


def plan_job(job: batch_pb2.Job, pods: list[core_pb2.Pod], now: float) -> JobPlan:
    """Decide what to do for ``job`` owning ``pods`` at time ``now``."""
    spec, status = job.spec, job.status
    conditions = tuple(Condition(c.type, c.status, c.reason, c.message,
                                 seconds(c.last_transition_time)) for c in status.conditions)
    ignored, fail_job = judge_failures(spec, pods)
    pods = [p for p in pods if p.metadata.name not in ignored]  # failures that do not count
    counts = count_pods(pods)
    active = [p for p in pods if is_pod_active(p)]
    indexed = spec.completion_mode == "Indexed"
    completions = _completions(spec)
    done_indexes = completed_indexes(pods, completions or 0) if indexed else set()
    succeeded = max(status.succeeded, counts.succeeded)
    if indexed:
        succeeded = max(status.succeeded, len(done_indexes))
    failed = max(status.failed, counts.failed)
    base = JobPlan(
        active=counts.active, ready=counts.ready, succeeded=succeeded, failed=failed,
        terminating=counts.terminating,
        start_time=seconds(status.start_time),
        completion_time=seconds(status.completion_time),
        completed_indexes=format_indexes(done_indexes) if indexed else "")

    finished = is_finished(job)
    if finished:
        return replace(base, delete=tuple(p.metadata.name for p in active),
                       conditions=conditions, finished=True)

    events: list[JobEvent] = []
    suspended = spec.HasField("suspend") and spec.suspend
    if suspended:
        return _suspend(conditions, active, now, base)
    if any(c.type == "Suspended" and c.status == "True" for c in conditions):
        conditions = _with_condition(conditions, Condition(
            "Suspended", "False", "JobResumed", "Job resumed", now))
        events.append(JobEvent("Normal", "Resumed", "Job resumed"))
        base = replace(base, start_time=now)
    if not base.start_time:
        base = replace(base, start_time=now)

    # --- failure --------------------------------------------------------------------------
    limit = _backoff_limit(spec)
    restart_on_failure = spec.template.spec.restart_policy == "OnFailure"
    past_restarts = restart_on_failure and (
        _restarts(active) >= limit if limit > 0 else _restarts(active) > 0)
    deadline = spec.active_deadline_seconds if spec.HasField("active_deadline_seconds") else 0
    reason = message = ""
    if fail_job:
        reason, message = "PodFailurePolicy", fail_job
    elif failed > limit or past_restarts:
        reason, message = "BackoffLimitExceeded", BACKOFF_MESSAGE
    elif deadline and now - base.start_time >= deadline:
        reason, message = "DeadlineExceeded", DEADLINE_MESSAGE
    if reason:
        # Kubernetes ≥ 1.31 notes FailureTarget, then Failed once the pods are gone;
        # here both are set at once (the pods' deletion follows)
        for type_ in ("FailureTarget", "Failed"):
            conditions = _with_condition(conditions, Condition(type_, "True", reason,
                                                               message, now))
        events.append(JobEvent("Warning", reason, message))
        return replace(base, delete=tuple(p.metadata.name for p in active),
                       conditions=conditions, events=tuple(events), finished=True)

    # --- success --------------------------------------------------------------------------
    if indexed:
        complete = completions is not None and len(done_indexes) >= completions
    elif completions is None:
        complete = succeeded > 0 and not active
    else:
        complete = succeeded >= completions
    if complete:
        for type_ in ("SuccessCriteriaMet", "Complete"):
            conditions = _with_condition(conditions, Condition(
                type_, "True", "CompletionsReached", COMPLETIONS_MESSAGE, now))
        events.append(JobEvent("Normal", "Completed", "Job completed"))
        base = replace(base, completion_time=now)
        return replace(base, delete=tuple(p.metadata.name for p in active),
                       conditions=conditions, events=tuple(events), finished=True)

    # --- keep the right number of pods active ------------------------------------------------
    deadline_in = (base.start_time + deadline - now) if deadline else None
    parallelism = _parallelism(spec)
    if indexed:
        return _plan_indexed(spec, pods, active, done_indexes, parallelism, now, conditions,
                             events, base, deadline_in)
    if completions is None:
        want = parallelism if succeeded == 0 else min(len(active), parallelism)
    else:
        want = max(0, min(parallelism, completions - succeeded))
    delete: tuple[str, ...] = ()
    create = 0
    requeue = deadline_in
    # podReplacementPolicy Failed: a terminating pod is replaced only once it has stopped
    waiting = counts.terminating if spec.pod_replacement_policy == "Failed" else 0
    if len(active) > want:
        delete = tuple(p.metadata.name for p in _deletion_order(active)[:len(active) - want])
    elif len(active) + waiting < want:
        create, wait = _after_backoff(pods, now, want - len(active) - waiting)
        requeue = _sooner(requeue, wait)
    return replace(base, create=create, delete=delete, conditions=conditions,
                   events=tuple(events), requeue_after=requeue)


def _after_backoff(pods: list[core_pb2.Pod], now: float, wanted: int) -> tuple[int, float | None]:
    """How many of ``wanted`` pods may be created now, and when to look again if none."""
    failures, last = _failures_since_success(pods)
    ready_at = last + backoff_delay(failures)
    if failures and now < ready_at:
        return 0, ready_at - now
    return wanted, None


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _suspend(conditions: tuple[Condition, ...], active: list[core_pb2.Pod], now: float,
             base: JobPlan) -> JobPlan:
    events: tuple[JobEvent, ...] = ()
    if not any(c.type == "Suspended" and c.status == "True" for c in conditions):
        conditions = _with_condition(conditions, Condition(
            "Suspended", "True", "JobSuspended", "Job suspended", now))
        events = (JobEvent("Normal", "Suspended", "Job suspended"),)
    return replace(base, start_time=0.0, delete=tuple(p.metadata.name for p in active),
                   conditions=conditions, events=events)


def _plan_indexed(spec: batch_pb2.JobSpec, pods: list[core_pb2.Pod],
                  active: list[core_pb2.Pod], done: set[int], parallelism: int, now: float,
                  conditions: tuple[Condition, ...], events: list[JobEvent],
                  base: JobPlan, deadline_in: float | None) -> JobPlan:
    completions = spec.completions
    delete: list[str] = []
    running: set[int] = set()
    for pod in sorted(active, key=lambda p: (seconds(p.metadata.creation_timestamp),
                                             p.metadata.name)):
        index = pod_index(pod)
        # malformed, out of range, already succeeded, or a duplicate: not needed
        if index is None or index >= completions or index in done or index in running:
            delete.append(pod.metadata.name)
        else:
            running.add(index)
    pending = [i for i in range(completions) if i not in done and i not in running]
    room = max(0, parallelism - len(running))
    create: tuple[int, ...] = ()
    requeue = deadline_in
    if len(running) > parallelism:
        extra = [p for p in _deletion_order(active) if p.metadata.name not in delete]
        delete += [p.metadata.name for p in extra[:len(running) - parallelism]]
    elif pending and room:
        n, wait = _after_backoff(pods, now, min(room, len(pending)))
        create = tuple(pending[:n])
        requeue = _sooner(requeue, wait)
    return replace(base, create_indexes=create, delete=tuple(delete), conditions=conditions,
                   events=tuple(events), requeue_after=requeue)


# --- what the plan turns into -----------------------------------------------------------------

def new_job_pod(job: batch_pb2.Job, index: int | None = None) -> core_pb2.Pod:
    """A pod of ``job`` from its template (``index`` for Indexed Jobs), owned by the Job
    and carrying its labels; the server names it from ``generateName``."""
    meta = job.metadata
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    template = job.spec.template
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.finalizers.extend(template.metadata.finalizers)
    pod.metadata.namespace = meta.namespace
    pod.metadata.generate_name = f"{meta.name}-" if index is None else f"{meta.name}-{index}-"
    if not (job.spec.HasField("manual_selector") and job.spec.manual_selector) and meta.uid:
        for label, value in job_labels(meta.uid, meta.name).items():
            if len(value) <= 63:
                pod.metadata.labels.setdefault(label, value)
    pod.metadata.owner_references.append(controller_ref(job, "Job", "batch/v1"))
    pod.spec.CopyFrom(template.spec)
    if index is not None:
        pod.metadata.annotations[COMPLETION_INDEX] = str(index)
        pod.metadata.labels[COMPLETION_INDEX] = str(index)
        for ctr in [*pod.spec.init_containers, *pod.spec.containers]:
            if not any(e.name == "JOB_COMPLETION_INDEX" for e in ctr.env):
                env = ctr.env.add()
                env.name = "JOB_COMPLETION_INDEX"
                env.value_from.field_ref.field_path = (
                    f"metadata.annotations['{COMPLETION_INDEX}']")
        if not pod.spec.hostname:
            pod.spec.hostname = f"{meta.name}-{index}"
    return pod


def job_status(plan: JobPlan, old: batch_pb2.JobStatus) -> batch_pb2.JobStatus:
    """The JobStatus ``plan`` describes (fields the plan does not own are kept)."""
    status = batch_pb2.JobStatus()
    status.CopyFrom(old)
    del status.conditions[:]
    for cond in plan.conditions:
        c = status.conditions.add(type=cond.type, status=cond.status, reason=cond.reason,
                                  message=cond.message)
        if cond.since:
            c.last_transition_time.CopyFrom(timestamp(cond.since))
            c.last_probe_time.CopyFrom(timestamp(cond.since))
    status.ClearField("start_time")
    if plan.start_time:
        status.start_time.CopyFrom(timestamp(plan.start_time))
    status.ClearField("completion_time")
    if plan.completion_time:
        status.completion_time.CopyFrom(timestamp(plan.completion_time))
    status.active, status.succeeded, status.failed = plan.active, plan.succeeded, plan.failed
    status.ready = plan.ready
    status.terminating = plan.terminating
    status.completed_indexes = plan.completed_indexes
    return status


def finished_at(job: batch_pb2.Job) -> float:
    """When a finished Job's Complete or Failed condition became True (0 if unfinished)."""
    for cond in job.status.conditions:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return seconds(cond.last_transition_time)
    return 0.0
