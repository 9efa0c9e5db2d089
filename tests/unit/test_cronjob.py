"""The CronJob controller: schedule arithmetic and decisions (table-driven), and the
controller over a fake API with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from navarch.v1 import batch_pb2
from services.apiserver.validation.cron import parse_schedule
from services.controllers.cronjob import CronJobController
from services.controllers.cronjob_sync import (
    SCHEDULED_TIMESTAMP,
    job_name,
    most_recent_time,
    new_cron_job,
    next_time,
    plan_cronjob,
    time_zone,
)
from services.controllers.workloads import timestamp
from tests.unit.workload_harness import Harness

UTC_ZONE = time_zone("Etc/UTC")


def at(text: str) -> float:
    """Seconds since the epoch of a UTC "YYYY-mm-dd HH:MM[:SS]"."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()


T0 = at("2024-03-01 10:02:30")


def cronjob(schedule: str = "*/5 * * * *", *, created: float = T0 - 3600,
            last: float | None = None, active: list[str] = (),  # type: ignore[assignment]
            **spec: Any) -> batch_pb2.CronJob:
    cj = batch_pb2.CronJob(api_version="batch/v1", kind="CronJob")
    cj.metadata.name, cj.metadata.namespace, cj.metadata.uid = "hello", "default", "cj-uid"
    cj.metadata.creation_timestamp.CopyFrom(timestamp(created))
    cj.spec.schedule = schedule
    cj.spec.time_zone = spec.pop("time_zone", "Etc/UTC")
    for field, value in spec.items():
        setattr(cj.spec, field, value)
    tpl = cj.spec.job_template
    tpl.metadata.labels["app"] = "hello"
    tpl.spec.template.spec.restart_policy = "Never"
    tpl.spec.template.spec.containers.add(name="c", image="localhost/hello:1")
    if last is not None:
        cj.status.last_schedule_time.CopyFrom(timestamp(last))
    for name in active:
        cj.status.active.add(kind="Job", name=name, namespace="default")
    return cj


def child(scheduled: float, outcome: str = "", *, created: float | None = None
          ) -> batch_pb2.Job:
    job = new_cron_job(cronjob(), scheduled)
    job.metadata.creation_timestamp.CopyFrom(timestamp(created or scheduled))
    if outcome:
        job.status.conditions.add(type=outcome, status="True")
        if outcome == "Complete":
            job.status.completion_time.CopyFrom(timestamp(scheduled + 30))
    return job


# --- schedule arithmetic -------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "after", "expected", "zone"), [
    ("*/5 * * * *", "2024-03-01 10:02:30", "2024-03-01 10:05", "Etc/UTC"),
    ("*/5 * * * *", "2024-03-01 10:05:00", "2024-03-01 10:10", "Etc/UTC"),
    ("0 * * * *", "2024-03-01 10:02", "2024-03-01 11:00", "Etc/UTC"),
    ("@daily", "2024-03-01 10:02", "2024-03-02 00:00", "Etc/UTC"),
    ("0 9 * * *", "2024-03-01 10:02", "2024-03-02 08:00", "Europe/Paris"),
    ("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00", "Etc/UTC"),
])
def test_next_time(schedule: str, after: str, expected: str, zone: str) -> None:
    assert next_time(parse_schedule(schedule), time_zone(zone), at(after)) == at(expected)


@pytest.mark.parametrize(("schedule", "earliest", "now", "expected", "count"), [
    ("*/5 * * * *", "2024-03-01 10:00:30", "2024-03-01 10:04:59", None, 0),
    ("*/5 * * * *", "2024-03-01 10:00:30", "2024-03-01 10:05:00", "2024-03-01 10:05", 1),
    ("*/5 * * * *", "2024-03-01 10:00:30", "2024-03-01 10:31:00", "2024-03-01 10:30", 6),
    ("* * * * *", "2024-03-01 00:00", "2024-03-03 00:00:30", "2024-03-03 00:00", 101),
    ("0 0 1 * *", "2023-01-01 00:00", "2024-03-03 00:00", "2024-03-01 00:00", 14),
])
def test_most_recent_time(schedule: str, earliest: str, now: str, expected: str | None,
                          count: int) -> None:
    found, missed = most_recent_time(parse_schedule(schedule), UTC_ZONE, at(earliest), at(now))
    assert found == (at(expected) if expected else None)
    assert missed == count


def test_job_names_count_minutes_since_the_epoch() -> None:
    assert job_name("hello", at("2024-03-01 10:05")) == f"hello-{int(at('2024-03-01 10:05')) // 60}"
    job = new_cron_job(cronjob(), at("2024-03-01 10:05"))
    assert job.metadata.annotations[SCHEDULED_TIMESTAMP] == "2024-03-01T10:05:00Z"
    assert job.metadata.owner_references[0].kind == "CronJob"
    assert job.metadata.labels["app"] == "hello"


# --- decisions ---------------------------------------------------------------------------

TEN = at("2024-03-01 10:00")
FIVE_PAST = at("2024-03-01 10:05")

CASES: list[tuple[str, batch_pb2.CronJob, list[batch_pb2.Job], float, dict[str, Any]]] = [
    ("nothing due yet: wait for the next time",
     cronjob(last=TEN), [], at("2024-03-01 10:03"),
     {"create": 0.0, "requeue_after": 120.0}),
    ("a due time starts a job",
     cronjob(last=TEN), [], at("2024-03-01 10:05:01"),
     {"create": FIVE_PAST, "create_name": job_name("hello", FIVE_PAST),
      "last_schedule_time": FIVE_PAST, "requeue_after": 299.0}),
    ("a job already made for the time is not made again",
     cronjob(last=TEN), [child(FIVE_PAST)], at("2024-03-01 10:05:01"),
     {"create": 0.0, "keep_active": (job_name("hello", FIVE_PAST),)}),
    ("suspended: nothing starts",
     cronjob(last=TEN, suspend=True), [], at("2024-03-01 10:06"),
     {"create": 0.0, "requeue_after": None}),
    ("Forbid with a running job skips the run",
     cronjob(last=TEN, concurrency_policy="Forbid", active=[job_name("hello", TEN)]),
     [child(TEN)], at("2024-03-01 10:05:01"),
     {"create": 0.0, "events": ["JobAlreadyActive"]}),
    ("Allow with a running job runs both",
     cronjob(last=TEN, concurrency_policy="Allow", active=[job_name("hello", TEN)]),
     [child(TEN)], at("2024-03-01 10:05:01"),
     {"create": FIVE_PAST, "keep_active": (job_name("hello", TEN),)}),
    ("Replace deletes the running job first",
     cronjob(last=TEN, concurrency_policy="Replace", active=[job_name("hello", TEN)]),
     [child(TEN)], at("2024-03-01 10:05:01"),
     {"create": FIVE_PAST, "keep_active": (), "delete": (job_name("hello", TEN),)}),
    ("a time older than startingDeadlineSeconds is missed",
     cronjob(last=TEN, starting_deadline_seconds=200), [], at("2024-03-01 10:08:30"),
     {"create": 0.0, "events": []}),
    ("startingDeadlineSeconds still open: the run starts late",
     cronjob(last=TEN, starting_deadline_seconds=200), [], at("2024-03-01 10:07:30"),
     {"create": FIVE_PAST}),
    ("more than 100 missed times: an event, then the latest runs",
     cronjob("* * * * *", last=TEN), [], at("2024-03-01 12:00:30"),
     {"create": at("2024-03-01 12:00"), "events": ["TooManyMissedTimes"]}),
    ("a finished job leaves the active list and sets lastSuccessfulTime",
     cronjob(last=TEN, active=[job_name("hello", TEN)]), [child(TEN, "Complete")],
     at("2024-03-01 10:03"),
     {"keep_active": (), "last_successful_time": TEN + 30, "events": ["SawCompletedJob"]}),
    ("a vanished active job is dropped",
     cronjob(last=TEN, active=["hello-1"]), [], at("2024-03-01 10:03"),
     {"keep_active": (), "events": ["MissingJob"]}),
    ("history limits delete the oldest finished jobs",
     cronjob(last=TEN, successful_jobs_history_limit=1, failed_jobs_history_limit=1),
     [child(TEN - 900, "Complete"), child(TEN - 600, "Complete"), child(TEN - 300, "Failed"),
      child(TEN, "Failed")], at("2024-03-01 10:03"),
     {"delete": (job_name("hello", TEN - 900), job_name("hello", TEN - 300))}),
    ("an unknown time zone is reported",
     cronjob(last=TEN, time_zone="Mars/Olympus"), [], at("2024-03-01 10:06"),
     {"create": 0.0, "events": ["UnknownTimeZone"]}),
    ("an unparseable schedule is reported",
     cronjob("every tuesday", last=TEN), [], at("2024-03-01 10:06"),
     {"create": 0.0, "events": ["UnparseableSchedule"]}),
    ("the first run counts from the creation time",
     cronjob(created=at("2024-03-01 10:04")), [], at("2024-03-01 10:05:10"),
     {"create": FIVE_PAST}),
]


@pytest.mark.parametrize(("cj", "jobs", "now", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan_cronjob(cj: batch_pb2.CronJob, jobs: list[batch_pb2.Job], now: float,
                      expected: dict[str, Any]) -> None:
    plan = plan_cronjob(cj, jobs, now)
    for key, want in expected.items():
        if key == "events":
            assert [e.reason for e in plan.events] == want
        else:
            assert getattr(plan, key) == want, key


# --- the controller with an injected clock ---------------------------------------------------

async def test_cronjob_fires_when_the_clock_passes_the_minute_not_before() -> None:
    start = at("2024-03-01 10:02:30")
    h = Harness(CronJobController, [cronjob(created=start)], now=start)
    await h.start()
    try:
        assert h.client.stored("jobs") == []
        await h.advance(149)  # 10:04:59
        assert h.client.stored("jobs") == []
        await h.advance(1.2)  # 10:05:00.2
        jobs = h.client.stored("jobs")
        assert [j.metadata.name for j in jobs] == [job_name("hello", FIVE_PAST)]
        assert jobs[0].metadata.annotations[SCHEDULED_TIMESTAMP] == "2024-03-01T10:05:00Z"
        cj = h.client.stored("cronjobs")[0]
        assert cj.status.last_schedule_time.seconds == int(FIVE_PAST)
        assert [r.name for r in cj.status.active] == [jobs[0].metadata.name]
        assert "SuccessfulCreate" in h.reasons()
        await h.advance(298)  # 10:09:58
        assert len(h.client.stored("jobs")) == 1
        await h.advance(3)  # 10:10:01
        assert len(h.client.stored("jobs")) == 2
    finally:
        await h.stop()


async def test_forbid_waits_for_the_running_job_and_history_is_pruned() -> None:
    start = at("2024-03-01 10:04:50")
    cj = cronjob(created=start, concurrency_policy="Forbid", successful_jobs_history_limit=1)
    h = Harness(CronJobController, [cj], now=start)
    await h.start()
    try:
        await h.advance(11)  # 10:05:01: first job
        first = h.client.stored("jobs")[0].metadata.name
        await h.advance(300)  # 10:10:01: still running → skipped
        assert len(h.client.stored("jobs")) == 1
        assert "JobAlreadyActive" in h.reasons()
        # the job completes: the 10:10 run, still the most recent, starts now
        job = await h.client.jobs("default").get(first)
        job.status.conditions.add(type="Complete", status="True")
        job.status.completion_time.CopyFrom(timestamp(h.clock.now()))
        await h.client.jobs("default").update_status(job)
        await h.step()
        names = [j.metadata.name for j in h.client.stored("jobs")]
        assert job_name("hello", at("2024-03-01 10:10")) in names
        stored = h.client.stored("cronjobs")[0]
        assert stored.status.last_successful_time.seconds == int(h.clock.now())
        # a second completed job pushes the first out of the history (limit 1)
        second = await h.client.jobs("default").get(job_name("hello", at("2024-03-01 10:10")))
        second.status.conditions.add(type="Complete", status="True")
        await h.client.jobs("default").update_status(second)
        await h.step()
        assert [j.metadata.name for j in h.client.stored("jobs")] == [second.metadata.name]
    finally:
        await h.stop()
