"""``navctl drain``'s choice of pods (navarch/_navctl/drain.py), as kubectl's filter chain
makes it: pure, from pods and the DaemonSets that exist."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._navctl.drain import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    DrainOptions,
    drain_plan,
)
from navarch.v1 import core_pb2, meta_pb2

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
