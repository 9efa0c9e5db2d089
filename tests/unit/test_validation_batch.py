"""batch/v1 validation: Jobs (generated selectors, completion modes, failure policies,
updates), CronJobs, and the cron schedule syntax."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.apiserver import validation
from services.apiserver.validation.cron import CronError, parse_schedule
from tests.unit.apiserver_cases import (
    DELETE,
    UID,
    assert_problems,
    build,
    load,
    mutate,
    problems,
    update_problems,
)

JOB = load("""
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl",  "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
  backoffLimit: 4
""")

INDEXED_JOB = load("""
apiVersion: batch/v1
kind: Job
metadata:
  name: 'indexed-job'
spec:
  completions: 5
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: 'worker'
        image: 'docker.io/library/busybox'
        command: ["rev", "/input/data.txt"]
""")

FAILURE_POLICY_JOB = load("""
apiVersion: batch/v1
kind: Job
metadata:
  name: job-pod-failure-policy-example
spec:
  completions: 12
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: docker.io/library/bash:5
        command: ["bash"]
        args:
        - -c
        - echo "Hello world!" && sleep 5 && exit 42
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes:
        containerName: main
        operator: In
        values: [42]
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
""")

MANUAL_JOB = mutate(JOB, ("spec.manualSelector", True),
                    ("spec.selector", {"matchLabels": {"app": "pi"}}),
                    ("spec.template.metadata", {"labels": {"app": "pi"}}))

CRON_JOB = load("""
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
""")

VALID = [("Job", JOB), ("Job", INDEXED_JOB), ("Job", FAILURE_POLICY_JOB), ("Job", MANUAL_JOB),
         ("CronJob", CRON_JOB),
         ("CronJob", mutate(CRON_JOB, ("spec.schedule", "@hourly"),
                            ("spec.timeZone", "Europe/Paris"),
                            ("spec.concurrencyPolicy", "Forbid")))]


@pytest.mark.parametrize(("kind", "doc"), VALID, ids=[f"{k}/{d['metadata']['name']}-{i}"
                                                     for i, (k, d) in enumerate(VALID)])
def test_documentation_examples_are_valid(kind: str, doc: dict[str, Any]) -> None:
    assert problems(kind, doc) == []


LABELS = "spec.template.metadata.labels"
CASES: list[tuple[str, dict[str, Any], str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("Job", JOB, "no restart policy", [("spec.template.spec.restartPolicy", DELETE)],
     [("spec.template.spec.restartPolicy",
       'Required value: supported values: "OnFailure", "Never"')]),
    ("Job", JOB, "restart Always", [("spec.template.spec.restartPolicy", "Always")],
     [("spec.template.spec.restartPolicy",
       'Unsupported value: "Always": supported values: "OnFailure", "Never"')]),
    ("Job", JOB, "negative counts", [("spec.parallelism", -1), ("spec.completions", -1),
                                     ("spec.backoffLimit", -1)],
     [("spec.parallelism", "greater than or equal to 0"),
      ("spec.completions", "greater than or equal to 0"),
      ("spec.backoffLimit", "greater than or equal to 0")]),
    ("Job", JOB, "generated label changed", [(f"{LABELS}.job-name", "other")],
     [(f"{LABELS}[job-name]", "must be 'pi'")]),
    ("Job", JOB, "selector not generated", [("spec.selector", {"matchLabels": {"app": "pi"}}),
                                            (f"{LABELS}.app", "pi")],
     [("spec.selector", "`selector` not auto-generated")]),
    ("Job", JOB, "name too long for a label", [("metadata.name", "p" * 64)],
     [("metadata.name", "must be no more than 63 characters")]),
    ("Job", MANUAL_JOB, "manual selector missing", [("spec.selector", DELETE)],
     [("spec.selector", "Required value")]),
    ("Job", MANUAL_JOB, "manual selector mismatch", [("spec.template.metadata.labels.app", "x")],
     [(LABELS, "does not match template `labels`")]),
    ("Job", JOB, "completion mode", [("spec.completionMode", "Sometimes")],
     [("spec.completionMode", 'Unsupported value: "Sometimes"')]),
    ("Job", INDEXED_JOB, "indexed without completions", [("spec.completions", DELETE)],
     [("spec.completions", "when completion mode is Indexed")]),
    ("Job", JOB, "per-index backoff without index", [("spec.backoffLimitPerIndex", 1)],
     [("spec.backoffLimitPerIndex", "requires indexed completion mode")]),
    ("Job", INDEXED_JOB, "max failed indexes alone", [("spec.maxFailedIndexes", 1)],
     [("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified")]),
    ("Job", JOB, "replacement policy", [("spec.podReplacementPolicy", "Never")],
     [("spec.podReplacementPolicy", 'Unsupported value: "Never"')]),
    ("Job", FAILURE_POLICY_JOB, "failure policy needs Never",
     [("spec.template.spec.restartPolicy", "OnFailure")],
     [("spec.template.spec.restartPolicy", 'only "Never" is supported')]),
    ("Job", FAILURE_POLICY_JOB, "rule action", [("spec.podFailurePolicy.rules.0.action", "Retry")],
     [("spec.podFailurePolicy.rules[0].action", 'Unsupported value: "Retry"')]),
    ("Job", FAILURE_POLICY_JOB, "rule with both", [
        ("spec.podFailurePolicy.rules.0.onPodConditions", [{"type": "DisruptionTarget"}])],
     [("spec.podFailurePolicy.rules[0]", "exactly one of `onExitCodes` and `onPodConditions`")]),
    ("Job", FAILURE_POLICY_JOB, "exit code container", [
        ("spec.podFailurePolicy.rules.0.onExitCodes.containerName", "sidecar")],
     [("spec.podFailurePolicy.rules[0].onExitCodes.containerName", "must be one of")]),
    ("Job", FAILURE_POLICY_JOB, "exit codes", [
        ("spec.podFailurePolicy.rules.0.onExitCodes.values", [0, 42, 42])],
     [("spec.podFailurePolicy.rules[0].onExitCodes.values[0]", "must not be 0"),
      ("spec.podFailurePolicy.rules[0].onExitCodes.values[2]", "must be ordered")]),
    ("CronJob", CRON_JOB, "no schedule", [("spec.schedule", DELETE)],
     [("spec.schedule", "Required value")]),
    ("CronJob", CRON_JOB, "bad schedule", [("spec.schedule", "* * * *")],
     [("spec.schedule", "expected exactly 5 fields")]),
    ("CronJob", CRON_JOB, "minute out of range", [("spec.schedule", "60 * * * *")],
     [("spec.schedule", "60 is above the maximum 59")]),
    ("CronJob", CRON_JOB, "TZ in schedule", [("spec.schedule", "TZ=UTC 0 * * * *")],
     [("spec.schedule", "use the timeZone field")]),
    ("CronJob", CRON_JOB, "unknown time zone", [("spec.timeZone", "Mars/Olympus")],
     [("spec.timeZone", "unknown time zone")]),
    ("CronJob", CRON_JOB, "Local time zone", [("spec.timeZone", "Local")],
     [("spec.timeZone", "explicit time zone")]),
    ("CronJob", CRON_JOB, "concurrency", [("spec.concurrencyPolicy", "Queue")],
     [("spec.concurrencyPolicy", 'Unsupported value: "Queue"')]),
    ("CronJob", CRON_JOB, "history limits", [("spec.successfulJobsHistoryLimit", -1)],
     [("spec.successfulJobsHistoryLimit", "greater than or equal to 0")]),
    ("CronJob", CRON_JOB, "name too long", [("metadata.name", "h" * 53)],
     [("metadata.name", "must be no more than 52 characters")]),
    ("CronJob", CRON_JOB, "template restart policy", [
        ("spec.jobTemplate.spec.template.spec.restartPolicy", "Always")],
     [("spec.jobTemplate.spec.template.spec.restartPolicy", 'Unsupported value: "Always"')]),
    ("CronJob", CRON_JOB, "template manual selector", [
        ("spec.jobTemplate.spec.manualSelector", True)],
     [("spec.jobTemplate.spec.manualSelector", "Unsupported value: true")]),
    ("CronJob", CRON_JOB, "template container", [
        ("spec.jobTemplate.spec.template.spec.containers.0.name", "Hello")],
     [("spec.jobTemplate.spec.template.spec.containers[0].name", "RFC 1123 label")]),
]


@pytest.mark.parametrize(("kind", "base", "changes", "expected"),
                         [(k, b, c, e) for k, b, _, c, e in CASES],
                         ids=[f"{k}: {n}" for k, _, n, _, _ in CASES])
def test_invalid_batch(kind: str, base: dict[str, Any], changes: list[tuple[str, Any]],
                       expected: list[tuple[str, str]]) -> None:
    assert_problems(problems(kind, mutate(base, *changes)), expected)


def test_job_without_uid_is_invalid() -> None:
    job = build("Job", JOB, uid="")
    found = [(v.path, v.message) for v in validation.validate("Job", job)]
    assert ("metadata.uid", "Required value") in found


SUSPENDED = mutate(JOB, ("spec.suspend", True))
UPDATES: list[tuple[str, dict[str, Any], list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("unchanged", JOB, [], []),
    ("backoff and deadline", JOB, [("spec.backoffLimit", 10),
                                   ("spec.activeDeadlineSeconds", 100)], []),
    ("parallelism", JOB, [("spec.parallelism", 3), ("spec.completions", 1)], []),
    ("completions", JOB, [("spec.completions", 3)], [("spec.completions", "field is immutable")]),
    ("elastic indexed", mutate(INDEXED_JOB, ("spec.parallelism", 5)),
     [("spec.completions", 8), ("spec.parallelism", 8)], []),
    ("completion mode", INDEXED_JOB, [("spec.completionMode", "NonIndexed")],
     [("spec.completionMode", "field is immutable")]),
    ("template image", JOB, [("spec.template.spec.containers.0.image", "perl:5.36")],
     [("spec.template", "field is immutable; changed: "
       "spec.template.spec.containers[0].image")]),
    ("suspended never started: scheduling", SUSPENDED,
     [("spec.template.spec.nodeSelector", {"disk": "ssd"}),
      ("spec.template.metadata.annotations", {"a": "b"})], []),
    ("suspended never started: image", SUSPENDED,
     [("spec.template.spec.containers.0.image", "perl:5.36")],
     [("spec.template", "while the Job is suspended and has never started")]),
]


@pytest.mark.parametrize(("old", "changes", "expected"), [(o, c, e) for _, o, c, e in UPDATES],
                         ids=[n for n, _, _, _ in UPDATES])
def test_job_updates(old: dict[str, Any], changes: list[tuple[str, Any]],
                     expected: list[tuple[str, str]]) -> None:
    assert_problems(update_problems("Job", old, mutate(old, *changes)), expected)


def test_manual_selector_cannot_be_turned_on() -> None:
    old = build("Job", JOB)
    new = type(old)()
    new.CopyFrom(old)
    new.spec.manual_selector = True  # type: ignore[attr-defined]
    found = [(v.path, v.message) for v in validation.validate_update("Job", new, old)]
    assert found == [("spec.manualSelector", "field is immutable")]


def test_job_selector_change_is_refused() -> None:
    old = build("Job", MANUAL_JOB)
    new = build("Job", mutate(MANUAL_JOB, ("spec.selector.matchLabels.tier", "x"),
                              ("spec.template.metadata.labels.tier", "x")))
    found = [(v.path, v.message) for v in validation.validate_update("Job", new, old)]
    assert ("spec.selector", "field is immutable") in found
    assert old.metadata.uid == UID


# --- cron ---------------------------------------------------------------------------------

VALID_SCHEDULES = ["* * * * *", "*/15 * * * *", "0 9-17/2 * * MON-FRI", "30 2 1,15 * *",
                   "0 0 1 jan,jul *", "5 4 * * sun", "0 0 ? * *", "@daily", "@Weekly",
                   "@every 1h30m", "@every 90s", "  0 0 * * *  "]


@pytest.mark.parametrize("schedule", VALID_SCHEDULES)
def test_valid_schedules(schedule: str) -> None:
    parse_schedule(schedule)


INVALID_SCHEDULES = [
    ("", "empty schedule"), ("* * *", "expected exactly 5 fields"),
    ("* * * * * *", "expected exactly 5 fields"), ("61 * * * *", "61 is above the maximum 59"),
    ("* 24 * * *", "24 is above the maximum 23"), ("* * 0 * *", "0 is below the minimum 1"),
    ("* * * 13 *", "13 is above the maximum 12"), ("* * * * 7", "7 is above the maximum 6"),
    ("5-1 * * * *", "starts after it ends"), ("*/0 * * * *", "step must be a positive"),
    ("a * * * *", "'a' is not a number"), ("* * * FOO *", "or a name (JAN-DEC)"),
    ("@fortnightly", "unrecognized descriptor"), ("@every", "@every needs a duration"),
    ("@every 10ms", "at least 1s"), ("@daily 5", "unrecognized descriptor"),
]


@pytest.mark.parametrize(("schedule", "fragment"), INVALID_SCHEDULES)
def test_invalid_schedules(schedule: str, fragment: str) -> None:
    with pytest.raises(CronError) as info:
        parse_schedule(schedule)
    assert fragment in str(info.value)


NEXT = [
    ("*/15 * * * *", datetime(2024, 1, 1, 10, 7, 30), datetime(2024, 1, 1, 10, 15)),
    ("0 * * * *", datetime(2024, 1, 1, 10, 0), datetime(2024, 1, 1, 11, 0)),
    ("0 0 * * MON", datetime(2024, 1, 3, 12, 0), datetime(2024, 1, 8, 0, 0)),
    ("0 0 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29)),
    ("0 0 13 * FRI", datetime(2024, 9, 1), datetime(2024, 9, 6)),  # either day field
    ("0 0 13 * *", datetime(2024, 9, 1), datetime(2024, 9, 13)),
    ("@every 90s", datetime(2024, 1, 1, 0, 0, 10), datetime(2024, 1, 1, 0, 1, 40)),
]


@pytest.mark.parametrize(("schedule", "after", "expected"), NEXT)
def test_next_run(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(schedule).next_after(after) == expected


def test_impossible_schedule_never_runs() -> None:
    assert parse_schedule("0 0 30 2 *").next_after(datetime(2024, 1, 1)) is None
