"""ReplicaSet controller: the pure decisions (table-driven) and whole syncs over the fake
API (creations, deletions, adoption, release, status, no double creation)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from navarch._errors import Forbidden
from navarch.v1 import apps_pb2, core_pb2
from services.controllers.replicaset import ReplicaSetController
from services.controllers.replicaset_sync import (
    deletion_rank,
    plan_replicaset,
    replicaset_status,
    slow_start_batches,
)
from services.controllers.workloads import controller_ref, timestamp
from tests.unit.workload_harness import NOW, Harness, pod_state


def rs(name: str = "web", replicas: int = 3, uid: str = "rs-uid",
       min_ready: int = 0) -> apps_pb2.ReplicaSet:
    r = apps_pb2.ReplicaSet()
    r.metadata.name, r.metadata.namespace, r.metadata.uid = name, "default", uid
    r.metadata.generation = 2
    r.spec.replicas = replicas
    r.spec.min_ready_seconds = min_ready
    r.spec.selector.match_labels["app"] = name
    r.spec.template.metadata.labels["app"] = name
    c = r.spec.template.spec.containers.add()
    c.name, c.image = "web", "localhost/web:1"
    return r


def pod(name: str, owner: apps_pb2.ReplicaSet | None = None, labels: dict[str, str] | None
        = None, *, node: str = "", phase: str = "Running", ready: bool = True,
        created: float = NOW, ready_since: float = NOW - 100, restarts: int = 0,
        deleting: bool = False) -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.metadata.labels.update({"app": "web"} if labels is None else labels)
    p.metadata.creation_timestamp.CopyFrom(timestamp(created))
    if owner is not None:
        p.metadata.owner_references.append(controller_ref(owner, "ReplicaSet", "apps/v1"))
    if deleting:
        p.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    p.spec.node_name = node
    p.status.phase = phase
    cond = p.status.conditions.add()
    cond.type, cond.status = "Ready", "True" if ready else "False"
    cond.last_transition_time.CopyFrom(timestamp(ready_since))
    cs = p.status.container_statuses.add()
    cs.name, cs.restart_count = "web", restarts
    return p


R = rs()


@pytest.mark.parametrize(("pods", "replicas", "create", "delete"), [
    ([], 3, 3, ()),
    ([pod("a", R, node="n")], 3, 2, ()),
    ([pod("a", R, node="n"), pod("b", R, node="n"), pod("c", R, node="n")], 3, 0, ()),
    # terminating and finished pods do not count
    ([pod("a", R, node="n", deleting=True), pod("b", R, node="n", phase="Failed")], 2, 2, ()),
    # surplus: the unscheduled one goes first, then the pending, then the not ready
    ([pod("run", R, node="n"), pod("unsched", R, phase="Pending", ready=False),
      pod("pend", R, node="n", phase="Pending", ready=False),
      pod("notready", R, node="n", ready=False)], 1, 0, ("unsched", "pend", "notready")),
    # among ready pods: the one ready for less time, then more restarts, then newer
    ([pod("old", R, node="n", ready_since=NOW - 500),
      pod("young", R, node="n", ready_since=NOW - 5)], 1, 0, ("young",)),
    ([pod("calm", R, node="n", restarts=0), pod("crashy", R, node="n", restarts=4)], 1, 0,
     ("crashy",)),
])
def test_plan_counts_active_pods_and_picks_victims_like_kubernetes(
        pods: list[core_pb2.Pod], replicas: int, create: int, delete: tuple[str, ...]) -> None:
    r = rs(replicas=replicas)
    plan = plan_replicaset(r, pods)
    assert (plan.create, plan.delete) == (create, delete)


def test_plan_adopts_matching_orphans_and_releases_owned_pods_that_stopped_matching() -> None:
    other = rs("other", uid="other-uid")
    pods = [pod("orphan", None, node="n"), pod("owned", R, node="n"),
            pod("relabelled", R, {"app": "db"}, node="n"),
            pod("someone-elses", other, node="n"), pod("unrelated", None, {"app": "db"})]
    plan = plan_replicaset(R, pods)
    assert plan.adopt == ("orphan",)
    assert plan.release == ("relabelled",)
    assert sorted(p.metadata.name for p in plan.owned) == ["orphan", "owned"]
    assert plan.create == 1  # orphan + owned = 2 of 3


def test_no_scaling_while_expectations_are_pending() -> None:
    plan = plan_replicaset(R, [], may_scale=False)
    assert plan.create == 0 and plan.delete == ()


def test_a_replicaset_being_deleted_neither_creates_nor_adopts() -> None:
    r = rs()
    r.metadata.deletion_timestamp.CopyFrom(timestamp(NOW))
    plan = plan_replicaset(r, [pod("orphan", None, node="n")])
    assert (plan.create, plan.adopt) == (0, ())


@pytest.mark.parametrize(("count", "batches"), [(0, []), (1, [1]), (3, [1, 2]),
                                                (10, [1, 2, 4, 3]), (500, [1, 2, 4, 8, 16, 32,
                                                                           64, 128, 245])])
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches


def test_status_counts_ready_available_and_fully_labelled() -> None:
    r = rs(min_ready=30)
    owned = [pod("a", r, node="n", ready_since=NOW - 100),  # available
             pod("b", r, node="n", ready_since=NOW - 10),  # ready, not yet available
             pod("c", r, node="n", ready=False),
             pod("d", r, {"app": "web", "extra": "x"}, node="n", ready=False),
             pod("e", r, node="n", deleting=True)]
    owned[2].metadata.labels.clear()
    owned[2].metadata.labels["app"] = "web"
    st = replicaset_status(r, owned, NOW)
    assert (st.replicas, st.fully_labeled_replicas, st.ready_replicas,
            st.available_replicas, st.observed_generation) == (4, 4, 2, 1, 2)


def test_deletion_rank_orders_unassigned_first() -> None:
    assert deletion_rank(pod("x", R)) < deletion_rank(pod("y", R, node="n"))


# --- whole syncs over the fake API ------------------------------------------------------


async def started(*objects: Any) -> Harness:
    h = Harness(ReplicaSetController, list(objects))
    await h.start()
    return h


@pytest.mark.asyncio
async def test_creates_the_missing_replicas_once_with_owner_and_labels() -> None:
    h = await started(rs(replicas=3))
    pods = h.client.stored("pods")
    assert len(pods) == 3
    for p in pods:
        assert p.metadata.name.startswith("web-")
        assert p.metadata.labels["app"] == "web"
        (ref,) = p.metadata.owner_references
        assert (ref.kind, ref.name, ref.controller, ref.block_owner_deletion) == (
            "ReplicaSet", "web", True, True)
    await h.step()
    creates = [w for w in h.client.writes("create") if w[1] == "pods"]
    assert len(creates) == 3  # nothing created twice on later syncs
    assert h.reasons().count("SuccessfulCreate") == 3
    (stored,) = h.client.stored("replicasets")
    assert stored.status.replicas == 3
    await h.stop()


@pytest.mark.asyncio
async def test_scale_down_deletes_surplus_and_status_follows_readiness() -> None:
    h = await started(rs(replicas=3))
    names = [p.metadata.name for p in h.client.stored("pods")]
    for n in names:
        await h.set_pod(n, node="node-1", phase="Running", ready=True)
    (stored,) = h.client.stored("replicasets")
    assert (stored.status.ready_replicas, stored.status.available_replicas) == (3, 3)
    await h.client.replicasets("default").scale("web", 1)
    await h.step()
    assert len([w for w in h.client.writes("delete") if w[1] == "pods"]) == 2
    await h.stop()


@pytest.mark.asyncio
async def test_a_failed_create_is_reported_and_retried() -> None:
    h = Harness(ReplicaSetController, [rs(replicas=2)])
    h.client.fail[("create", "pods")] = Forbidden(grpc.StatusCode.FAILED_PRECONDITION,
                                                  "exceeded quota")
    await h.start()
    assert h.client.stored("pods") == []
    assert "FailedCreate" in h.reasons()
    (stored,) = h.client.stored("replicasets")
    assert [c.type for c in stored.status.conditions] == ["ReplicaFailure"]
    del h.client.fail[("create", "pods")]
    await h.advance(1)
    assert len(h.client.stored("pods")) == 2
    (stored,) = h.client.stored("replicasets")
    assert list(stored.status.conditions) == []
    await h.stop()


@pytest.mark.asyncio
async def test_adopts_an_orphan_instead_of_creating() -> None:
    orphan = pod("handmade", None, node="n")
    h = await started(orphan, rs(replicas=1))
    (p,) = h.client.stored("pods")
    assert p.metadata.name == "handmade"
    assert p.metadata.owner_references[0].name == "web"
    assert [w for w in h.client.writes("create") if w[1] == "pods"] == []
    await h.stop()


def _ready(p: core_pb2.Pod) -> core_pb2.Pod:
    pod_state(p, phase="Running", ready=True, now=NOW)
    return p
