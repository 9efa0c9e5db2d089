"""The StatefulSet controller: decisions (table-driven) and the controller over a fake
API."""

from __future__ import annotations

from typing import Any

import pytest

from navarch.v1 import apps_pb2, core_pb2
from services.controllers.revisions import history_to_prune, new_revision, revision_template
from services.controllers.statefulset import StatefulSetController
from services.controllers.statefulset_sync import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    NewPod,
    new_claim,
    new_stateful_pod,
    ordinal_of,
    plan_statefulset,
)
from services.controllers.workloads import REVISION_LABEL, timestamp
from tests.unit.workload_harness import NOW, Harness, pod_state

UPD, CUR = "web-new", "web-old"


def sts(replicas: int = 3, *, policy: str = "OrderedReady", strategy: str = "RollingUpdate",
        partition: int | None = None, claims: tuple[str, ...] = (), start: int = 0,
        current_replicas: int = 0, min_ready: int = 0) -> apps_pb2.StatefulSet:
    s = apps_pb2.StatefulSet(api_version="apps/v1", kind="StatefulSet")
    s.metadata.name, s.metadata.namespace, s.metadata.uid = "web", "default", "sts-uid"
    s.spec.replicas = replicas
    s.spec.service_name = "nginx"
    s.spec.selector.match_labels["app"] = "web"
    s.spec.template.metadata.labels["app"] = "web"
    s.spec.template.spec.containers.add(name="nginx", image="localhost/nginx:1")
    s.spec.template.spec.containers[0].ports.add(container_port=80, name="web")
    s.spec.pod_management_policy = policy
    s.spec.update_strategy.type = strategy
    if partition is not None:
        s.spec.update_strategy.rolling_update.partition = partition
    for name in claims:
        tpl = s.spec.volume_claim_templates.add()
        tpl.metadata.name = name
        tpl.spec.access_modes.append("ReadWriteOnce")
        tpl.spec.resources.requests["storage"] = "1Gi"
    s.spec.ordinals.start = start
    s.status.current_replicas = current_replicas
    s.spec.min_ready_seconds = min_ready
    return s


def spod(ordinal: int, *, rev: str = UPD, phase: str = "Running", ready: bool = True,
         terminating: bool = False, ready_since: float = NOW - 100) -> core_pb2.Pod:
    s = sts()
    p = new_stateful_pod(s, s.spec.template, ordinal, rev)
    pod_state(p, phase=phase, ready=ready, now=ready_since, node="n1")
    if terminating:
        p.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    return p


def test_pods_have_stable_identity_and_storage() -> None:
    s = sts(claims=("www",))
    p = new_stateful_pod(s, s.spec.template, 2, UPD)
    assert p.metadata.name == "web-2"
    assert (p.spec.hostname, p.spec.subdomain) == ("web-2", "nginx")
    assert p.metadata.labels[POD_NAME_LABEL] == "web-2"
    assert p.metadata.labels[POD_INDEX_LABEL] == "2"
    assert p.metadata.labels[REVISION_LABEL] == UPD
    assert [(v.name, v.persistent_volume_claim.claim_name) for v in p.spec.volumes] == [
        ("www", "www-web-2")]
    claim = new_claim(s, s.spec.volume_claim_templates[0], 2)
    assert claim.metadata.name == "www-web-2"
    assert claim.metadata.labels["app"] == "web"
    assert not claim.metadata.owner_references, "claims outlive the set by default"
    assert ordinal_of("web", p) == 2
    other = core_pb2.Pod()
    other.metadata.name = "web-x"
    assert ordinal_of("web", other) is None


def test_revisions_hold_the_template() -> None:
    s = sts()
    rev = new_revision(s, "StatefulSet", s.spec.template, "web-abc", "abc", 1)
    assert revision_template(rev) == s.spec.template
    assert rev.metadata.labels[REVISION_LABEL] == "abc"
    assert rev.metadata.owner_references[0].kind == "StatefulSet"


@pytest.mark.parametrize(("numbers", "in_use", "limit", "pruned"), [
    ([1, 2, 3], set(), 10, []),
    ([1, 2, 3], set(), 1, ["r1", "r2"]),
    ([1, 2, 3], {"r1"}, 1, ["r2"]),
    ([1, 2, 3], {"r1", "r2", "r3"}, 0, []),
])
def test_history_to_prune(numbers: list[int], in_use: set[str], limit: int,
                          pruned: list[str]) -> None:
    s = sts()
    revs = [new_revision(s, "StatefulSet", s.spec.template, f"r{n}", "h", n) for n in numbers]
    assert history_to_prune(reversed(revs), in_use, limit) == pruned


CASES: list[tuple[str, apps_pb2.StatefulSet, list[core_pb2.Pod], set[str], dict[str, Any]]] = [
    ("OrderedReady creates web-0 first", sts(), [], set(),
     {"create": (NewPod(0, UPD),), "delete": ()}),
    ("OrderedReady waits for web-0 to be Running and Ready",
     sts(), [spod(0, ready=False)], set(), {"create": (), "waiting_for":
                                            "web-0 is not running and ready"}),
    ("then web-1", sts(), [spod(0)], set(), {"create": (NewPod(1, UPD),)}),
    ("Parallel creates every missing pod", sts(policy="Parallel"), [spod(1, ready=False)],
     set(), {"create": (NewPod(0, UPD), NewPod(2, UPD))}),
    ("claims are created before their pods",
     sts(claims=("www", "logs")), [], set(),
     {"claims": ("www-web-0", "logs-web-0"), "create": (NewPod(0, UPD),)}),
    ("existing claims are not made again",
     sts(claims=("www",)), [], {"www-web-0"}, {"claims": ()}),
    ("scale down from the highest ordinal, one at a time",
     sts(1), [spod(0), spod(1), spod(2)], set(), {"delete": ("web-2",), "replicas": 3}),
    ("scale down waits while a pod is unhealthy",
     sts(1), [spod(0, ready=False), spod(1), spod(2)], set(), {"delete": ()}),
    ("scale down waits for the terminating pod",
     sts(1), [spod(0), spod(1), spod(2, terminating=True)], set(),
     {"delete": (), "replicas": 2}),
    ("Parallel scales down all at once",
     sts(1, policy="Parallel"), [spod(0), spod(1), spod(2)], set(),
     {"delete": ("web-2", "web-1")}),
    ("a failed pod is deleted to be recreated",
     sts(), [spod(0, phase="Failed")], set(), {"delete": ("web-0",), "create": ()}),
    ("rolling update starts from the highest ordinal",
     sts(), [spod(0, rev=CUR), spod(1, rev=CUR), spod(2, rev=CUR)], set(),
     {"delete": ("web-2",), "current": 3, "updated": 0}),
    ("rolling update waits for the updated pod to be healthy",
     sts(), [spod(0, rev=CUR), spod(1, rev=CUR), spod(2, ready=False)], set(),
     {"delete": ()}),
    ("rolling update continues downwards",
     sts(), [spod(0, rev=CUR), spod(1, rev=CUR), spod(2)], set(),
     {"delete": ("web-1",), "updated": 1, "current": 2}),
    ("partition keeps lower ordinals at the current revision",
     sts(partition=2), [spod(0, rev=CUR), spod(1, rev=CUR), spod(2)], set(),
     {"delete": (), "current_revision": CUR}),
    ("below the partition a pod is recreated at the current revision",
     sts(partition=2), [spod(1, rev=CUR), spod(2)], set(),
     {"create": (NewPod(0, CUR),)}),
    ("OnDelete never deletes for an update",
     sts(strategy="OnDelete"), [spod(0, rev=CUR), spod(1, rev=CUR), spod(2, rev=CUR)],
     set(), {"delete": ()}),
    ("all updated and ready: the update revision becomes current",
     sts(), [spod(0), spod(1), spod(2)], set(),
     {"current_revision": UPD, "current": 3, "updated": 3, "ready": 3, "available": 3}),
    ("minReadySeconds: ready pods become available later",
     sts(1, min_ready=30), [spod(0, ready_since=NOW - 10)], set(),
     {"ready": 1, "available": 0, "requeue_after": 20.0}),
    ("ordinals.start shifts the names",
     sts(2, start=5), [spod(5)], set(), {"create": (NewPod(6, UPD),)}),
]


@pytest.mark.parametrize(("s", "pods", "claims", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_plan_statefulset(s: apps_pb2.StatefulSet, pods: list[core_pb2.Pod], claims: set[str],
                          expected: dict[str, Any]) -> None:
    plan = plan_statefulset(s, pods, claims, UPD, CUR, NOW)
    for key, want in expected.items():
        assert getattr(plan, key) == want, key


# --- the controller over a fake API --------------------------------------------------------

async def test_web_1_is_created_only_once_web_0_is_ready() -> None:
    h = Harness(StatefulSetController, [sts(2, claims=("www",))])
    await h.start()
    try:
        assert [p.metadata.name for p in h.client.stored("pods")] == ["web-0"]
        assert [c.metadata.name for c in h.client.stored("persistentvolumeclaims")] == [
            "www-web-0"]
        await h.set_pod("web-0", phase="Running", ready=False)
        assert [p.metadata.name for p in h.client.stored("pods")] == ["web-0"]
        await h.set_pod("web-0", phase="Running", ready=True)
        assert [p.metadata.name for p in h.client.stored("pods")] == ["web-0", "web-1"]
        await h.set_pod("web-1", phase="Running", ready=True)
        s = h.client.stored("statefulsets")[0]
        assert (s.status.replicas, s.status.ready_replicas, s.status.updated_replicas,
                s.status.current_replicas) == (2, 2, 2, 2)
        assert s.status.current_revision == s.status.update_revision
        assert s.status.update_revision.startswith("web-")
        revs = h.client.stored("controllerrevisions")
        assert [r.metadata.name for r in revs] == [s.status.update_revision]
        # scale down to 0: web-1 first, and the claims stay
        s.spec.replicas = 0
        await h.client.statefulsets("default").update(s)
        await h.step()
        assert [p.metadata.name for p in h.client.stored("pods")] == []
        assert len(h.client.stored("persistentvolumeclaims")) == 2
        deletes = [a.name for a in h.client.actions if a.verb == "delete"
                   and a.resource == "pods"]
        assert deletes == ["web-1", "web-0"]
    finally:
        await h.stop()


async def test_rolling_update_in_reverse_ordinal_order() -> None:
    h = Harness(StatefulSetController, [sts(3, policy="Parallel")])
    await h.start()
    try:
        for name in ("web-0", "web-1", "web-2"):
            await h.set_pod(name, ready=True)
        s = await h.client.statefulsets("default").get("web")
        old_rev = s.status.update_revision
        s.spec.template.spec.containers[0].image = "localhost/nginx:2"
        await h.client.statefulsets("default").update(s)
        order = []
        for _ in range(3):
            await h.step()
            fresh = [p for p in h.client.stored("pods")
                     if p.spec.containers[0].image.endswith(":2") and not p.status.phase]
            assert len(fresh) == 1
            order.append(fresh[0].metadata.name)
            await h.set_pod(fresh[0].metadata.name, ready=True)
        assert order == ["web-2", "web-1", "web-0"]
        s = h.client.stored("statefulsets")[0]
        assert s.status.current_revision == s.status.update_revision != old_rev
        assert s.status.updated_replicas == 3
    finally:
        await h.stop()
