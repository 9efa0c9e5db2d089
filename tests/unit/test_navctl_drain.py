"""``navctl drain``: its choice of pods (navarch/_navctl/drain.py), as kubectl's filter
chain makes it, pure, from pods and the DaemonSets that exist; and how it removes them
(evict.py): evictions retried while a disruption budget refuses, kubectl's messages, the
global timeout, against a fake API and a fake clock."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import grpc
import pytest

from navarch._errors import Forbidden, Invalid, NotFound, TooManyRequests
from navarch._navctl.context import Context
from navarch._navctl.drain import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    DrainOptions,
    drain_plan,
)
from navarch._navctl.evict import (
    Removal,
    aggregate,
    delete_pods,
    evict_pods,
    eviction_supported,
)
from navarch.v1 import api_pb2, core_pb2, meta_pb2

DAEMONSETS = frozenset({("kube-system", "proxy")})


def pod(name: str, owner: str = "", *, phase: str = "Running", empty_dir: bool = False,
        mirror: bool = False, namespace: str = "default") -> core_pb2.Pod:
    p = core_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace))
    if owner:
        kind, _, owner_name = owner.partition("/")
        p.metadata.owner_references.add(kind=kind, name=owner_name, controller=True)
    if mirror:
        p.metadata.annotations["kubernetes.io/config.mirror"] = "abc"
    if empty_dir:
        p.spec.volumes.add(name="scratch").empty_dir.SetInParent()
    p.status.phase = phase
    return p


def plan(pods: list[core_pb2.Pod], **opts: Any) -> tuple[list[str], dict[str, list[str]],
                                                        dict[str, list[str]]]:
    got = drain_plan(pods, DrainOptions(**opts), DAEMONSETS)
    return [p.metadata.name for p in got.delete], got.warnings, got.errors


def test_replicated_pods_are_deleted_and_mirror_pods_left_alone() -> None:
    assert plan([pod("web-1", "ReplicaSet/web"), pod("static", mirror=True)]) == (
        ["web-1"], {}, {})


@pytest.mark.parametrize(("opts", "outcome"), [
    ({}, ([], {}, {DAEMONSET_FATAL: ["kube-system/proxy-1"]})),
    ({"ignore_daemonsets": True}, ([], {DAEMONSET_WARNING: ["kube-system/proxy-1"]}, {})),
])
def test_daemonset_pods(opts: dict[str, Any], outcome: Any) -> None:
    assert plan([pod("proxy-1", "DaemonSet/proxy", namespace="kube-system")], **opts) == outcome


def test_a_daemonset_pod_whose_daemonset_is_gone_needs_force() -> None:
    orphan = pod("old-1", "DaemonSet/old")
    message = 'daemonsets.apps "old" not found'
    assert plan([orphan], ignore_daemonsets=True) == ([], {}, {message: ["default/old-1"]})
    # deleted; as in kubectl, the later filters' "okay" replaces the warning
    assert plan([orphan], force=True) == (["old-1"], {}, {})


def test_unmanaged_pods_need_force() -> None:
    assert plan([pod("lonely")]) == ([], {}, {UNMANAGED_FATAL: ["default/lonely"]})
    assert plan([pod("lonely")], force=True) == (
        ["lonely"], {UNMANAGED_WARNING: ["default/lonely"]}, {})


def test_local_storage_needs_its_flag_and_a_later_verdict_replaces_its_warning() -> None:
    cache = pod("cache-1", "ReplicaSet/cache", empty_dir=True)
    assert plan([cache]) == ([], {}, {LOCAL_STORAGE_FATAL: ["default/cache-1"]})
    # kubectl's chain: the unreplicated filter's "okay" replaces the storage warning
    assert plan([cache], delete_emptydir_data=True) == (["cache-1"], {}, {})
    scratch = pod("scratch", empty_dir=True)
    assert plan([scratch], delete_emptydir_data=True, force=True) == (
        ["scratch"], {UNMANAGED_WARNING: ["default/scratch"]}, {})


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_always_go(phase: str) -> None:
    pods = [pod("job-done", phase=phase, empty_dir=True),
            pod("ds-done", "DaemonSet/proxy", phase=phase, namespace="kube-system")]
    assert plan(pods) == (["job-done", "ds-done"], {}, {})


def test_several_refusals_are_listed_together() -> None:
    got = drain_plan([pod("a"), pod("b"), pod("c", "ReplicaSet/x", empty_dir=True)],
                     DrainOptions(), DAEMONSETS)
    assert got.delete == []
    assert got.error_text() == (f"[{UNMANAGED_FATAL}: default/a, default/b, "
                                f"{LOCAL_STORAGE_FATAL}: default/c]")


# --- removing the pods (navarch/_navctl/evict.py), against a fake API and a fake clock ------

BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."


class FakeClock:
    """Time that moves only when slept through."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FakePods:
    def __init__(self, api: FakeApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    async def get(self, name: str) -> core_pb2.Pod:
        found = self.api.pods_by_key.get((self.namespace, name))
        if found is None:
            raise NotFound(grpc.StatusCode.NOT_FOUND, f'pods "{name}" not found')
        return found

    async def delete(self, name: str, *, grace_period_seconds: int | None = None,
                     uid: str = "", dry_run: bool = False) -> core_pb2.Pod:
        self.api.calls.append(("delete", name, grace_period_seconds, uid, dry_run))
        found = await self.get(name)
        if not dry_run:
            del self.api.pods_by_key[(self.namespace, name)]
        return found


class FakeApi:
    """Pods, and each pod's scripted answers to evictions: None allows (the pod goes
    unless ``linger``), an exception refuses; the last answer repeats."""

    def __init__(self, pods: list[core_pb2.Pod], answers: dict[str, list[Any]] | None = None,
                 *, linger: bool = False, eviction: bool = True) -> None:
        self.pods_by_key = {(p.metadata.namespace, p.metadata.name): p for p in pods}
        self.answers = answers or {}
        self.linger = linger
        self.eviction = eviction
        self.calls: list[tuple[Any, ...]] = []

    def pods(self, namespace: str = "default") -> FakePods:
        return FakePods(self, namespace)

    async def evict(self, namespace: str, pod: str, *, grace_period_seconds: int | None = None,
                    dry_run: bool = False) -> core_pb2.Pod:
        self.calls.append(("evict", pod, grace_period_seconds, dry_run))
        script = self.answers.get(pod, [None])
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        found = await self.pods(namespace).get(pod)
        if not dry_run and not self.linger:
            del self.pods_by_key[(namespace, pod)]
        return found

    async def api_resources(self) -> list[api_pb2.APIResource]:
        subresources = ["status", "binding"] + (["eviction"] if self.eviction else [])
        return [api_pb2.APIResource(name="pods", version="v1", subresources=subresources),
                api_pb2.APIResource(name="deployments", group="apps", version="v1")]


def refused(message: str = BUDGET) -> TooManyRequests:
    return TooManyRequests(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def run_removal(fn: Any, api: FakeApi, pods: list[core_pb2.Pod], **how: Any
                ) -> tuple[str, list[str], list[str], FakeClock]:
    """(error, stdout lines, stderr lines, clock) of one removal."""
    clock = FakeClock()
    ctx = Context(out=io.StringIO(), err=io.StringIO())
    problem = asyncio.run(fn(ctx, api, pods, Removal(clock=clock, sleep=clock.sleep, **how)))
    assert isinstance(ctx.out, io.StringIO) and isinstance(ctx.err, io.StringIO)
    return problem, ctx.out.getvalue().splitlines(), ctx.err.getvalue().splitlines(), clock


def test_eviction_is_retried_every_5s_while_the_budget_refuses() -> None:
    web = pod("web-1", "ReplicaSet/web")
    api = FakeApi([web], {"web-1": [refused(), refused(), None]})
    problem, out, err, clock = run_removal(evict_pods, api, [web], grace_period=30)
    assert problem == ""
    assert out == ["evicting pod default/web-1"] * 3 + ["pod/web-1 evicted"]
    assert err == [f'error when evicting pods/"web-1" -n "default" (will retry after 5s): '
                   f"{BUDGET}"] * 2
    assert clock.now == 10.0
    assert api.calls == [("evict", "web-1", 30, False)] * 3


def test_eviction_gives_up_at_the_global_timeout_and_the_pod_stays() -> None:
    web = pod("web-1", "ReplicaSet/web")
    api = FakeApi([web], {"web-1": [refused()]})
    problem, out, err, clock = run_removal(evict_pods, api, [web], timeout=12.0)
    # refused at 0, 5 and 10 s; the last sleep stops at the deadline, then kubectl's
    # loop says "evicting" once more before it notices the time
    assert problem == 'error when evicting pods/"web-1" -n "default": global timeout ' \
                      "reached: 12s"
    assert out == ["evicting pod default/web-1"] * 4
    assert len(err) == 3
    assert clock.now == 12.0
    assert ("default", "web-1") in api.pods_by_key


def test_evictions_run_concurrently() -> None:
    slow, quick = pod("web-1", "ReplicaSet/web"), pod("web-2", "ReplicaSet/web")
    api = FakeApi([slow, quick], {"web-1": [refused(), None]})
    problem, out, _, _ = run_removal(evict_pods, api, [slow, quick])
    assert problem == ""
    # web-2 goes while web-1 waits for its retry
    assert out == ["evicting pod default/web-1", "evicting pod default/web-2",
                   "pod/web-2 evicted", "evicting pod default/web-1", "pod/web-1 evicted"]


def test_a_pod_already_gone_is_done_and_other_refusals_are_errors() -> None:
    gone, stuck, locked = (pod("gone", "ReplicaSet/a"), pod("stuck", "ReplicaSet/b"),
                           pod("locked", "ReplicaSet/c"))
    forbidden = Forbidden(grpc.StatusCode.PERMISSION_DENIED, "pods/eviction is forbidden")
    api = FakeApi([stuck, locked], {
        "stuck": [Invalid(grpc.StatusCode.INVALID_ARGUMENT, "This pod has more than one "
                          "PodDisruptionBudget, which the eviction subresource does not "
                          "support.")],
        "locked": [forbidden]})
    problem, out, err, _ = run_removal(evict_pods, api, [gone, stuck, locked])
    assert problem == (
        '[error when evicting pods/"stuck" -n "default": This pod has more than one '
        "PodDisruptionBudget, which the eviction subresource does not support., "
        'error when evicting pods/"locked" -n "default": pods/eviction is forbidden]')
    assert out == ["evicting pod default/gone", "evicting pod default/stuck",
                   "evicting pod default/locked"]  # nothing "evicted": gone was not seen
    assert err == []


def test_an_evicted_pod_is_waited_for_until_gone_or_replaced() -> None:
    web = pod("web-1", "StatefulSet/web")
    web.metadata.uid = "uid-1"
    api = FakeApi([web], linger=True)
    problem, out, _, clock = run_removal(evict_pods, api, [web], timeout=30.0)
    assert problem == 'error when waiting for pod "web-1" in namespace "default" to ' \
                      "terminate: context deadline exceeded"
    assert out == ["evicting pod default/web-1"]
    assert clock.now == 30.0

    replaced = core_pb2.Pod()
    replaced.CopyFrom(web)
    replaced.metadata.uid = "uid-2"  # a StatefulSet's new pod of the same name
    api = FakeApi([web], linger=True)

    async def evict_then_replace(*args: Any, **kwargs: Any) -> core_pb2.Pod:
        api.pods_by_key[("default", "web-1")] = replaced
        return web
    api.evict = evict_then_replace  # type: ignore[method-assign]
    problem, out, _, _ = run_removal(evict_pods, api, [web], timeout=30.0)
    assert (problem, out) == ("", ["evicting pod default/web-1", "pod/web-1 evicted"])


def test_server_dry_run_evicts_nothing_and_waits_for_nothing() -> None:
    web = pod("web-1", "ReplicaSet/web")
    api = FakeApi([web])
    problem, out, _, _ = run_removal(evict_pods, api, [web], server_dry_run=True)
    assert (problem, out) == ("", ["evicting pod default/web-1 (server dry run)"])
    assert api.calls == [("evict", "web-1", None, True)]
    assert ("default", "web-1") in api.pods_by_key


def test_disable_eviction_deletes_without_asking_the_budget() -> None:
    a, b = pod("a", "ReplicaSet/x"), pod("b", "ReplicaSet/x")
    a.metadata.uid, b.metadata.uid = "uid-a", "uid-b"
    api = FakeApi([a, b], {"a": [refused()]})
    problem, out, err, _ = run_removal(delete_pods, api, [a, b], grace_period=0)
    assert (problem, sorted(out), err) == ("", ["pod/a deleted", "pod/b deleted"], [])
    assert api.calls == [("delete", "a", 0, "uid-a", False), ("delete", "b", 0, "uid-b", False)]
    api = FakeApi([a])
    problem, out, _, _ = run_removal(delete_pods, api, [a], server_dry_run=True)
    assert (problem, out, list(api.pods_by_key)) == ("", [], [("default", "a")])


@pytest.mark.parametrize(("errors", "text"), [
    ([], ""), (["a"], "a"), (["a", "a"], "a"), (["a", "b", "a"], "[a, b]"),
])
def test_errors_aggregate_as_kubectl(errors: list[str], text: str) -> None:
    assert aggregate(errors) == text


def test_eviction_support_comes_from_discovery() -> None:
    assert asyncio.run(eviction_supported(FakeApi([])))
    assert not asyncio.run(eviction_supported(FakeApi([], eviction=False)))
