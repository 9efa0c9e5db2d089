"""Helpers shared by the workload controllers: pod state, template hashes, expectations."""

from __future__ import annotations

import pytest

from navarch.v1 import core_pb2
from services.controllers.workloads import (
    Expectations,
    is_pod_active,
    is_pod_available,
    pod_finish_time,
    template_hash,
    timestamp,
)
from tests.unit.workload_harness import NOW, pod_state


def pod(phase: str = "Running", ready: bool = True, since: float = NOW - 10,
        terminating: bool = False) -> core_pb2.Pod:
    p = pod_state(core_pb2.Pod(), phase=phase, ready=ready, now=since)
    p.metadata.creation_timestamp.CopyFrom(timestamp(NOW - 1000))
    if terminating:
        p.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    return p


@pytest.mark.parametrize(("p", "active"), [
    (pod("Pending"), True), (pod("Running"), True), (pod("Succeeded"), False),
    (pod("Failed"), False), (pod("Running", terminating=True), False)])
def test_is_pod_active(p: core_pb2.Pod, active: bool) -> None:
    assert is_pod_active(p) is active


@pytest.mark.parametrize(("p", "min_ready", "available"), [
    (pod(ready=True, since=NOW - 10), 0, True),
    (pod(ready=True, since=NOW - 10), 5, True),
    (pod(ready=True, since=NOW - 10), 30, False),
    (pod(ready=False), 0, False)])
def test_is_pod_available(p: core_pb2.Pod, min_ready: int, available: bool) -> None:
    assert is_pod_available(p, min_ready, NOW) is available


def test_finish_time_is_the_last_container_termination() -> None:
    assert pod_finish_time(pod("Failed", since=NOW - 7)) == NOW - 7
    bare = core_pb2.Pod()
    bare.metadata.creation_timestamp.CopyFrom(timestamp(NOW - 99))
    assert pod_finish_time(bare) == NOW - 99


def test_template_hash_is_stable_and_follows_the_template() -> None:
    a = core_pb2.PodTemplateSpec()
    a.spec.containers.add(name="c", image="localhost/x:1")
    b = core_pb2.PodTemplateSpec()
    b.CopyFrom(a)
    assert template_hash(a) == template_hash(b)
    assert len(template_hash(a)) == 10
    b.spec.containers[0].image = "localhost/x:2"
    assert template_hash(a) != template_hash(b)
    assert template_hash(a, 1) != template_hash(a)


def test_expectations_hold_until_the_cache_shows_the_writes() -> None:
    exp = Expectations(ttl=300)
    assert exp.satisfied("ns/j", NOW)
    exp.expect("ns/j", NOW, adds=["p1", "p2"], deletes=["old"])
    assert not exp.satisfied("ns/j", NOW)
    exp.observed_add("ns/j", "p1")
    exp.observed_add("ns/j", "p2")
    assert not exp.satisfied("ns/j", NOW)
    exp.observed_delete("ns/j", "old")
    assert exp.satisfied("ns/j", NOW)
    exp.expect("ns/j", NOW, adds=["p3"])
    exp.lower("ns/j", adds=["p3"])
    assert exp.satisfied("ns/j", NOW)
    exp.expect("ns/j", NOW, adds=["lost"])
    assert not exp.satisfied("ns/j", NOW + 299)
    assert exp.satisfied("ns/j", NOW + 300), "expectations expire"
