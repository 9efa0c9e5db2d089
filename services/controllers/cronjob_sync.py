"""The CronJob controller's decisions: which scheduled time is due, whether to start a
Job for it, which Jobs to delete, and the status to write (Kubernetes' CronJob v2
controller), as plain data.

Rules:

- Schedules are read with ``services/apiserver/validation/cron.parse_schedule`` in
  ``spec.timeZone`` (unset: the controller's local time zone).
- The due time is the most recent scheduled time after ``status.lastScheduleTime`` (or
  the CronJob's creation), not after now; with ``startingDeadlineSeconds`` only times
  within that many seconds count. More than 100 missed times records TooManyMissedTimes;
  a due time older than the starting deadline is skipped with MissSchedule.
- A Job is named ``<cronjob>-<scheduled time in minutes since the epoch>``, so a time is
  never run twice; it carries the annotation
  ``batch.kubernetes.io/cronjob-scheduled-timestamp``.
- concurrencyPolicy: Allow runs alongside active Jobs; Forbid skips while one is active
  (JobAlreadyActive); Replace deletes the active Jobs first.
- ``suspend`` starts nothing; finished Jobs beyond successfulJobsHistoryLimit (3) and
  failedJobsHistoryLimit (1) are deleted, oldest first.
"""

from __future__ import annotations

import time
import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from navarch.v1 import batch_pb2
from services.apiserver.validation.cron import CronError, CronSchedule, parse_schedule

from .job_sync import is_finished
from .workloads import controller_ref, fmt_time, seconds

__all__ = [
    "SCHEDULED_TIMESTAMP", "CronEvent", "CronJobPlan", "job_name", "most_recent_time",
    "new_cron_job", "next_time", "plan_cronjob", "time_zone",
]

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
_WINDOWS = (3600.0, 86400.0, 32 * 86400.0, 366 * 86400.0, 8 * 366 * 86400.0)


@dataclass(frozen=True)
class CronEvent:
    """An event to record on the CronJob."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class CronJobPlan:
    """What to do for one CronJob.

    ``keep_active`` names the Jobs that stay in ``status.active``; ``create`` is the
    scheduled time to start a Job for (0: none); ``delete`` names Jobs to delete (Replace
    or history limits).
    """

    keep_active: tuple[str, ...] = ()
    create: float = 0.0
    create_name: str = ""
    delete: tuple[str, ...] = ()
    last_schedule_time: float = 0.0
    last_successful_time: float = 0.0
    events: tuple[CronEvent, ...] = ()
    requeue_after: float | None = None


def time_zone(name: str) -> tzinfo | None:
    """The zone named ``name``; None (local time) when empty; ValueError when unknown."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _moment(when: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(when, tz)  # naive local time when tz is None


def next_time(schedule: CronSchedule, tz: tzinfo | None, after: float) -> float | None:
    """The first scheduled time strictly after ``after`` (seconds since the epoch)."""
    found = schedule.next_after(_moment(after, tz))
    return None if found is None else found.timestamp()


def most_recent_time(schedule: CronSchedule, tz: tzinfo | None, earliest: float,
                     now: float) -> tuple[float | None, int]:
    """(the latest scheduled time in (earliest, now], how many there are), the count
    stopping at MAX_MISSED + 1."""
    count, last, cursor = 0, None, earliest
    while True:
        found = next_time(schedule, tz, cursor)
        if found is None or found > now:
            return last, count
        last, cursor, count = found, found, count + 1
        if count > MAX_MISSED:
            return _latest_in_windows(schedule, tz, cursor, now) or last, count


def _latest_in_windows(schedule: CronSchedule, tz: tzinfo | None, earliest: float,
                       now: float) -> float | None:
    """The latest scheduled time in (earliest, now], searching back through growing
    windows so that a frequent schedule is not walked over a long gap."""
    for window in _WINDOWS:
        cursor = max(earliest, now - window)
        last = None
        while (found := next_time(schedule, tz, cursor)) is not None and found <= now:
            last = cursor = found
        if last is not None:
            return last
    return None


def job_name(cronjob: str, scheduled: float) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``."""
    return f"{cronjob}-{int(scheduled // 60)}"


def new_cron_job(cj: batch_pb2.CronJob, scheduled: float) -> batch_pb2.Job:
    """The Job ``cj`` starts for ``scheduled``, owned by it."""
    job = batch_pb2.Job(api_version="batch/v1", kind="Job")
    template = cj.spec.job_template
    job.metadata.name = job_name(cj.metadata.name, scheduled)
    job.metadata.namespace = cj.metadata.namespace
    job.metadata.labels.update(template.metadata.labels)
    job.metadata.annotations.update(template.metadata.annotations)
    job.metadata.annotations[SCHEDULED_TIMESTAMP] = fmt_time(scheduled)
    job.metadata.owner_references.append(controller_ref(cj, "CronJob", "batch/v1"))
    job.spec.CopyFrom(template.spec)
    return job


def _start(job: batch_pb2.Job) -> float:
    return seconds(job.status.start_time) or seconds(job.metadata.creation_timestamp)


def _history(jobs: list[batch_pb2.Job], spec: batch_pb2.CronJobSpec) -> list[str]:
    """Finished Jobs beyond the history limits, oldest first."""
    doomed: list[str] = []
    for outcome, limit_field, default in (("Complete", "successful_jobs_history_limit", 3),
                                          ("Failed", "failed_jobs_history_limit", 1)):
        limit = getattr(spec, limit_field) if spec.HasField(limit_field) else default
        done = sorted((j for j in jobs if is_finished(j) == outcome
                       and not j.metadata.HasField("deletion_timestamp")),
                      key=lambda j: (_start(j), j.metadata.name))
        doomed += [j.metadata.name for j in done[:max(0, len(done) - limit)]]
    return doomed


def plan_cronjob(cj: batch_pb2.CronJob, jobs: list[batch_pb2.Job], now: float) -> CronJobPlan:
    """Decide what to do for ``cj`` owning ``jobs`` at time ``now``."""
    spec, status = cj.spec, cj.status
    events: list[CronEvent] = []
    by_name = {j.metadata.name: j for j in jobs}
    active: list[str] = []
    for ref in status.active:
        found = by_name.get(ref.name)
        if found is None or (ref.uid and found.metadata.uid != ref.uid):
            events.append(CronEvent("Normal", "MissingJob",
                                    f"Active job went missing: {ref.name}"))
        elif is_finished(found):
            events.append(CronEvent("Normal", "SawCompletedJob",
                                    f"Saw completed job: {ref.name}, status: "
                                    f"{is_finished(found)}"))
        else:
            active.append(ref.name)
    for job in sorted(jobs, key=lambda j: j.metadata.name):
        # a Job this controller made whose status write was lost: track it again
        if (job.metadata.name not in active and not is_finished(job)
                and SCHEDULED_TIMESTAMP in job.metadata.annotations
                and not job.metadata.HasField("deletion_timestamp")):
            active.append(job.metadata.name)
    last_success = max([seconds(status.last_successful_time)]
                       + [seconds(j.status.completion_time) for j in jobs
                          if is_finished(j) == "Complete"])
    doomed = _history(jobs, spec)
    last_schedule = seconds(status.last_schedule_time)
    plan = CronJobPlan(keep_active=tuple(active), delete=tuple(doomed),
                       last_schedule_time=last_schedule, last_successful_time=last_success)

    def done(**changes: object) -> CronJobPlan:
        return replace(plan, events=tuple(events), **changes)  # type: ignore[arg-type]

    if cj.metadata.HasField("deletion_timestamp") or (spec.HasField("suspend")
                                                      and spec.suspend):
        return done()
    try:
        tz = time_zone(spec.time_zone if spec.HasField("time_zone") else "")
    except ValueError:
        events.append(CronEvent("Warning", "UnknownTimeZone",
                                f"invalid timeZone: {spec.time_zone!r}"))
        return done()
    try:
        schedule = parse_schedule(spec.schedule)
    except CronError as exc:
        events.append(CronEvent("Warning", "UnparseableSchedule",
                                f"unparseable schedule: {spec.schedule!r} : {exc}"))
        return done()

    upcoming = next_time(schedule, tz, now)
    requeue = None if upcoming is None else max(upcoming - now, 0.0)
    earliest = last_schedule or seconds(cj.metadata.creation_timestamp)
    deadline = spec.starting_deadline_seconds if spec.HasField(
        "starting_deadline_seconds") else None
    if deadline is not None:
        earliest = max(earliest, now - deadline)
    scheduled, missed = most_recent_time(schedule, tz, earliest, now)
    if scheduled is None:
        return done(requeue_after=requeue)
    if missed > MAX_MISSED:
        events.append(CronEvent(
            "Warning", "TooManyMissedTimes",
            f"too many missed start times: {missed}. Set or decrease "
            ".spec.startingDeadlineSeconds or check clock skew"))
    if deadline is not None and scheduled + deadline < now:
        events.append(CronEvent("Warning", "MissSchedule",
                                "Missed scheduled time to start a job: "
                                + time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                time.gmtime(scheduled))))
        return done(requeue_after=requeue)
    name = job_name(cj.metadata.name, scheduled)
    if name in by_name:
        return done(requeue_after=requeue)
    policy = spec.concurrency_policy or "Allow"
    if policy == "Forbid" and active:
        events.append(CronEvent(
            "Normal", "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy "
            "is Forbid"))
        return done(requeue_after=requeue)
    delete = list(doomed)
    if policy == "Replace" and active:
        delete += [n for n in active if n not in delete]
        active = []
    return done(keep_active=tuple(active), delete=tuple(delete), create=scheduled,
                create_name=name, last_schedule_time=scheduled, requeue_after=requeue)

