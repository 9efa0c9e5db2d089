"""The Job controller: its decisions (table-driven) and the controller over a fake API."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import batch_pb2, core_pb2
from services.controllers.job import JobController
from services.controllers.job_sync import (
    COMPLETION_INDEX,
    backoff_delay,
    format_indexes,
    job_status,
    new_job_pod,
    plan_job,
)
from services.controllers.workloads import timestamp
from tests.unit.workload_harness import NOW, Harness, pod_state


def job(name: str = "pi", *, uid: str = "u1", start: float | None = None,
        conditions: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
        failed: int = 0, succeeded: int = 0, **spec: Any) -> batch_pb2.Job:
    j = batch_pb2.Job(api_version="batch/v1", kind="Job")
    j.metadata.name, j.metadata.namespace, j.metadata.uid = name, "default", uid
    for field, value in spec.items():
        setattr(j.spec, field, value)
    j.spec.template.metadata.labels["app"] = name
    if not j.spec.template.spec.restart_policy:
        j.spec.template.spec.restart_policy = "Never"
    j.spec.template.spec.containers.add(name="c", image="localhost/pi:1")
    if start is not None:
        j.status.start_time.CopyFrom(timestamp(start))
    for type_, status, reason in conditions:
        j.status.conditions.add(type=type_, status=status, reason=reason)
    j.status.failed, j.status.succeeded = failed, succeeded
    return j


def pod(name: str, phase: str = "Running", *, ready: bool = False, at: float = NOW,
        created: float = NOW - 100, restarts: int = 0, index: int | None = None,
        node: str = "n1", terminating: bool = False) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.metadata.creation_timestamp.CopyFrom(timestamp(created))
    if index is not None:
        p.metadata.annotations[COMPLETION_INDEX] = str(index)
    pod_state(p, phase=phase, ready=ready, now=at, restarts=restarts, node=node)
    if phase == "Pending":
        p.spec.node_name = ""
    if terminating:
        p.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    return p


# --- decisions ---------------------------------------------------------------------------

@pytest.mark.parametrize(("failures", "delay"), [
    (0, 0), (1, 10), (2, 20), (3, 40), (6, 320), (7, 360), (100, 360)])
def test_backoff_doubles_from_ten_seconds_up_to_six_minutes(failures: int, delay: float) -> None:
    assert backoff_delay(failures) == delay


@pytest.mark.parametrize(("indexes", "text"), [
    (set(), ""), ({0}, "0"), ({1, 3, 4, 5, 7}, "1,3-5,7"), ({0, 1, 2}, "0-2")])
def test_indexes_are_formatted_as_ranges(indexes: set[int], text: str) -> None:
    assert format_indexes(indexes) == text


DONE = [("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached")]


def failed(reason: str) -> list[tuple[str, str, str]]:
    return [("FailureTarget", "True", reason), ("Failed", "True", reason)]


CASES: list[tuple[str, batch_pb2.Job, list[core_pb2.Pod], dict[str, Any]]] = [
    ("a new job starts and creates its first pod", job(), [],
     {"create": 1, "start_time": NOW, "active": 0}),
    ("parallelism bounded by the completions left",
     job(parallelism=3, completions=5, start=NOW - 5),
     [pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c")],
     {"create": 2, "succeeded": 2, "active": 1}),
    ("enough successes complete the job", job(completions=2, start=NOW - 5),
     [pod("a", "Succeeded"), pod("b", "Succeeded")],
     {"finished": True, "completion_time": NOW, "conditions": DONE,
      "events": ["Completed"], "create": 0}),
    ("more failures than backoffLimit fail the job",
     job(backoff_limit=2, start=NOW - 5),
     [pod("a", "Failed"), pod("b", "Failed"), pod("c", "Failed"), pod("d")],
     {"finished": True, "delete": ("d",), "failed": 3,
      "conditions": failed("BackoffLimitExceeded"),
      "events": ["BackoffLimitExceeded"]}),
    ("failures up to backoffLimit wait the backoff: 2 failures → 20 s",
     job(backoff_limit=2, start=NOW - 60),
     [pod("a", "Failed", at=NOW - 30), pod("b", "Failed", at=NOW - 5)],
     {"create": 0, "requeue_after": 15.0, "failed": 2}),
    ("a replacement is created once the backoff has passed",
     job(backoff_limit=2, start=NOW - 60), [pod("a", "Failed", at=NOW - 10)],
     {"create": 1, "failed": 1}),
    ("a success resets the backoff",
     job(completions=3, start=NOW - 60),
     [pod("a", "Failed", at=NOW - 30), pod("b", "Succeeded", at=NOW - 20)],
     {"create": 1}),
    ("activeDeadlineSeconds passed: DeadlineExceeded, active pods deleted",
     job(active_deadline_seconds=60, start=NOW - 100), [pod("a")],
     {"finished": True, "delete": ("a",),
      "conditions": failed("DeadlineExceeded"),
      "events": ["DeadlineExceeded"]}),
    ("activeDeadlineSeconds ahead: wake up when it passes",
     job(active_deadline_seconds=60, start=NOW - 20), [pod("a")],
     {"create": 0, "requeue_after": 40.0}),
    ("suspend deletes active pods and clears startTime",
     job(suspend=True, start=NOW - 20), [pod("a"), pod("b", "Succeeded")],
     {"delete": ("a",), "start_time": 0.0, "conditions": [("Suspended", "True", "JobSuspended")],
      "events": ["Suspended"]}),
    ("resume restarts the clock and creates pods",
     job(suspend=False, conditions=[("Suspended", "True", "JobSuspended")]), [],
     {"create": 1, "start_time": NOW, "conditions": [("Suspended", "False", "JobResumed")],
      "events": ["Resumed"]}),
    ("lower parallelism deletes pending pods first",
     job(parallelism=1, completions=5, start=NOW - 5),
     [pod("a", ready=True), pod("b", "Pending"), pod("c")],
     {"delete": ("b", "c")}),
    ("a work queue stops creating once a pod succeeded",
     job(parallelism=2, start=NOW - 5), [pod("a", "Succeeded"), pod("b")],
     {"create": 0, "finished": False}),
    ("a work queue completes when a pod succeeded and none is active",
     job(parallelism=2, start=NOW - 5), [pod("a", "Succeeded"), pod("b", "Failed")],
     {"finished": True, "conditions": DONE}),
    ("indexed: only missing indexes are created",
     job(completion_mode="Indexed", completions=3, parallelism=2, start=NOW - 5),
     [pod("a", "Succeeded", index=0), pod("b", index=1)],
     {"create_indexes": (2,), "completed_indexes": "0"}),
    ("indexed: a duplicate index is deleted",
     job(completion_mode="Indexed", completions=3, parallelism=3, start=NOW - 5),
     [pod("a", index=1, created=NOW - 150), pod("b", index=1)],
     {"delete": ("b",), "create_indexes": (0, 2)}),
    ("OnFailure: container restarts count towards backoffLimit",
     job(backoff_limit=2, start=NOW - 5), [pod("a", restarts=2)],
     {"finished": True, "conditions": failed("BackoffLimitExceeded")}),
    ("a finished job only deletes pods still active",
     job(conditions=[("Complete", "True", "")], start=NOW - 5, succeeded=1),
     [pod("a", "Succeeded"), pod("b")],
     {"delete": ("b",), "events": [], "finished": True}),
    ("podReplacementPolicy Failed waits for the terminating pod to stop",
     job(pod_replacement_policy="Failed", start=NOW - 5), [pod("a", terminating=True)],
     {"create": 0, "terminating": 1, "active": 0}),
    ("TerminatingOrFailed replaces a terminating pod at once",
     job(pod_replacement_policy="TerminatingOrFailed", start=NOW - 5),
     [pod("a", terminating=True)], {"create": 1, "terminating": 1}),
    ("counts never go down when finished pods are deleted",
     job(failed=2, succeeded=1, completions=3, start=NOW - 500), [],
     {"failed": 2, "succeeded": 1, "create": 1}),
]


@pytest.mark.parametrize(("job_", "pods", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan_job(job_: batch_pb2.Job, pods: list[core_pb2.Pod],
                  expected: dict[str, Any]) -> None:
    if expected.get("conditions") == failed("BackoffLimitExceeded") and any(
            p.status.container_statuses[0].restart_count for p in pods):
        job_.spec.template.spec.restart_policy = "OnFailure"
    plan = plan_job(job_, pods, NOW)
    for key, want in expected.items():
        if key == "conditions":
            got = [(c.type, c.status, c.reason) for c in plan.conditions]
            assert got == want
        elif key == "events":
            assert [e.reason for e in plan.events] == want
        else:
            assert getattr(plan, key) == want, key


def with_policy(j: batch_pb2.Job, *rules: dict[str, Any]) -> batch_pb2.Job:
    for rule in rules:
        r = j.spec.pod_failure_policy.rules.add(action=rule["action"])
        if "codes" in rule:
            r.on_exit_codes.operator = rule.get("op", "In")
            r.on_exit_codes.values.extend(rule["codes"])
        if "condition" in rule:
            r.on_pod_conditions.add(type=rule["condition"], status="True")
    return j


def exited(name: str, code: int, condition: str = "") -> core_pb2.Pod:
    p = pod(name, "Failed")
    p.status.container_statuses[0].state.terminated.exit_code = code
    if condition:
        p.status.conditions.add(type=condition, status="True")
    return p


POLICY_CASES: list[tuple[str, list[dict[str, Any]], list[core_pb2.Pod], dict[str, Any]]] = [
    ("FailJob on exit code 42 fails the job at once",
     [{"action": "FailJob", "codes": [42]}], [exited("a", 42)],
     {"finished": True, "conditions": failed("PodFailurePolicy"), "failed": 1}),
    ("an exit code no rule names counts as usual",
     [{"action": "FailJob", "codes": [42]}], [exited("a", 1)],
     {"finished": False, "failed": 1}),
    ("NotIn matches the other codes",
     [{"action": "FailJob", "codes": [1, 2], "op": "NotIn"}], [exited("a", 3)],
     {"finished": True}),
    ("Ignore on a DisruptionTarget condition: not counted, replaced at once",
     [{"action": "Ignore", "condition": "DisruptionTarget"}],
     [exited("a", 137, "DisruptionTarget"), exited("b", 137, "DisruptionTarget")],
     {"finished": False, "failed": 0, "create": 1}),
    ("the first matching rule decides",
     [{"action": "Ignore", "codes": [42]}, {"action": "FailJob", "codes": [42]}],
     [exited("a", 42)], {"finished": False, "failed": 0}),
]


@pytest.mark.parametrize(("rules", "pods", "expected"), [c[1:] for c in POLICY_CASES],
                         ids=[c[0] for c in POLICY_CASES])
def test_pod_failure_policy(rules: list[dict[str, Any]], pods: list[core_pb2.Pod],
                            expected: dict[str, Any]) -> None:
    plan = plan_job(with_policy(job(backoff_limit=1, start=NOW - 5), *rules), pods, NOW)
    for key, want in expected.items():
        if key == "conditions":
            assert [(c.type, c.status, c.reason) for c in plan.conditions] == want
        else:
            assert getattr(plan, key) == want, key


def test_pod_failure_policy_message_is_kubernetes_wording() -> None:
    j = with_policy(job(start=NOW), {"action": "FailJob", "codes": [42]})
    plan = plan_job(j, [exited("a", 42)], NOW)
    assert plan.conditions[-1].message == (
        "Container c for pod default/a failed with exit code 42 matching FailJob rule at "
        "index 0")


def test_failed_job_message_is_kubernetes_wording() -> None:
    plan = plan_job(job(backoff_limit=0, start=NOW), [pod("a", "Failed")], NOW)
    assert plan.conditions[-1].message == "Job has reached the specified backoff limit"


def test_pods_carry_the_job_labels_owner_and_index() -> None:
    p = new_job_pod(job(completion_mode="Indexed", completions=2), 1)
    assert p.metadata.generate_name == "pi-1-"
    assert p.metadata.labels["batch.kubernetes.io/job-name"] == "pi"
    assert p.metadata.labels["batch.kubernetes.io/controller-uid"] == "u1"
    assert p.metadata.annotations[COMPLETION_INDEX] == "1"
    assert p.spec.hostname == "pi-1"
    ref = p.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Job", "pi", "u1", True)
    assert p.spec.containers[0].env[0].name == "JOB_COMPLETION_INDEX"


def test_status_keeps_transition_times_of_unchanged_conditions() -> None:
    j = job(conditions=[("Suspended", "False", "JobResumed")], start=NOW - 5)
    j.status.conditions[0].last_transition_time.CopyFrom(timestamp(NOW - 50))
    status = job_status(plan_job(j, [], NOW), j.status)
    assert status.conditions[0].last_transition_time.seconds == int(NOW - 50)
    assert status.start_time.seconds == int(NOW - 5)


# --- the controller over a fake API --------------------------------------------------------

async def test_backoff_limit_two_fails_after_exactly_three_failed_pods() -> None:
    h = Harness(JobController, [job(backoff_limit=2)])
    await h.start()
    try:
        for n in range(3):
            pods = [p for p in h.client.stored("pods") if p.status.phase != "Failed"]
            assert len(pods) == 1, f"round {n}: one pod running"
            await h.set_pod(pods[0].metadata.name, phase="Failed")
            # the replacement waits 10 s, then 20 s
            if n < 2:
                assert len(h.client.stored("pods")) == n + 1
                await h.advance(backoff_delay(n + 1) - 1)
                assert len(h.client.stored("pods")) == n + 1, "not before the backoff"
                await h.advance(1.5)
        stored = h.client.stored("jobs")[0]
        conds = {c.type: c for c in stored.status.conditions}
        assert conds["Failed"].status == "True"
        assert conds["Failed"].reason == "BackoffLimitExceeded"
        assert stored.status.failed == 3
        assert stored.status.active == 0
        assert len(h.client.stored("pods")) == 3
        await h.advance(400)
        assert len(h.client.stored("pods")) == 3, "a failed job creates no more pods"
        assert h.reasons().count("SuccessfulCreate") == 3
        assert "BackoffLimitExceeded" in h.reasons()
    finally:
        await h.stop()


async def test_job_completes_with_parallel_pods() -> None:
    h = Harness(JobController, [job(completions=3, parallelism=2)])
    await h.start()
    try:
        assert len(h.client.stored("pods")) == 2
        assert h.client.stored("jobs")[0].status.active == 2
        for p in h.client.stored("pods"):
            await h.set_pod(p.metadata.name, phase="Succeeded")
        assert len(h.client.stored("pods")) == 3
        last = next(p for p in h.client.stored("pods") if p.status.phase != "Succeeded")
        await h.set_pod(last.metadata.name, phase="Succeeded")
        stored = h.client.stored("jobs")[0]
        assert [(c.type, c.status) for c in stored.status.conditions] == [
            ("SuccessCriteriaMet", "True"), ("Complete", "True")]
        assert stored.status.succeeded == 3
        assert stored.status.completion_time.seconds == int(NOW)
        assert "Completed" in h.reasons()
    finally:
        await h.stop()


async def test_ttl_after_finished_deletes_the_job() -> None:
    j = job(ttl_seconds_after_finished=30, completions=1)
    h = Harness(JobController, [j])
    await h.start()
    try:
        await h.set_pod(h.client.stored("pods")[0].metadata.name, phase="Succeeded")
        assert h.client.stored("jobs")
        await h.advance(31)
        assert not h.client.stored("jobs")
    finally:
        await h.stop()
