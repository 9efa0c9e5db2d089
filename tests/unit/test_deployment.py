"""Deployment decisions (table-driven) and navctl rollout's pure parts; a whole rollout
over the fake API."""

from __future__ import annotations

import pytest

from navarch._navctl.errors import NavctlError
from navarch._navctl.rollout import (
    history_lines,
    rollback_template,
    rollout_status_message,
    set_images,
)
from navarch.v1 import apps_pb2
from services.controllers.deployment import DeploymentController
from services.controllers.deployment_sync import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    REVISION,
    Fenceposts,
    cleanup_victims,
    deployment_status,
    fenceposts,
    find_new_rs,
    is_scaling_event,
    new_rs_for,
    new_rs_target,
    old_scale_downs,
    proportional_targets,
)
from services.controllers.workloads import timestamp
from tests.unit.workload_harness import NOW, Harness


def deploy(replicas: int = 4, surge: str = "1", unavailable: str = "1", image: str = "v1",
           strategy: str = "RollingUpdate", history: int = 10) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name, d.metadata.namespace, d.metadata.uid = "web", "default", "d-uid"
    d.metadata.generation = 1
    d.spec.replicas = replicas
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        d.spec.strategy.rolling_update.max_surge = surge
        d.spec.strategy.rolling_update.max_unavailable = unavailable
    d.spec.revision_history_limit = history
    d.spec.progress_deadline_seconds = 600
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    c = d.spec.template.spec.containers.add()
    c.name, c.image = "app", image
    return d


def rs_of(d: apps_pb2.Deployment, replicas: int, available: int, revision: int,
          created: float) -> apps_pb2.ReplicaSet:
    rs = new_rs_for(d, revision, replicas)
    rs.metadata.uid = f"uid-{rs.metadata.name}"
    rs.metadata.creation_timestamp.CopyFrom(timestamp(created))
    rs.status.replicas = replicas
    rs.status.ready_replicas = rs.status.available_replicas = available
    return rs


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (4, "1", "1", Fenceposts(1, 1)),
    (10, "25%", "25%", Fenceposts(3, 2)),  # surge rounds up, unavailable down
    (1, "25%", "25%", Fenceposts(1, 0)),
    (4, "0", "0", Fenceposts(0, 1)),  # both zero: one may be unavailable
    (3, "0%", "50%", Fenceposts(0, 1)),
])
def test_fenceposts(replicas: int, surge: str, unavailable: str, expected: Fenceposts) -> None:
    assert fenceposts(deploy(replicas, surge, unavailable)) == expected


def test_recreate_has_no_surge_and_all_may_go() -> None:
    assert fenceposts(deploy(3, strategy="Recreate")) == Fenceposts(0, 3)


def test_the_tutorial_rollout_steps_like_kubernetes() -> None:
    """4 replicas, maxSurge 1, maxUnavailable 1, v1 -> v2: each step the controller takes,
    with every pod becoming available between steps."""
    old_d, new_d = deploy(image="v1"), deploy(image="v2")
    old = rs_of(old_d, 4, 4, 1, NOW - 100)
    new = rs_of(new_d, 0, 0, 2, NOW)
    steps = []
    for _ in range(20):
        sets = [old, new]
        target = new_rs_target(new_d, new, sets)
        if target != new.spec.replicas:
            new = rs_of(new_d, target, new.status.available_replicas, 2, NOW)
            steps.append(("new", target))
            continue
        downs = old_scale_downs(new_d, new, [old])
        if downs:
            (count,) = downs.values()
            old = rs_of(old_d, count, count, 1, NOW - 100)
            steps.append(("old", count))
            continue
        if new.status.available_replicas < new.spec.replicas:  # pods become ready
            new = rs_of(new_d, new.spec.replicas, new.spec.replicas, 2, NOW)
            continue
        break
    # never more than 5 pods, never fewer than 3 available; new pods turn available only
    # when the controller cannot step without them
    assert steps == [("new", 1), ("old", 3), ("new", 2), ("old", 1), ("new", 4), ("old", 0)]


def test_old_unhealthy_replicas_go_first_even_below_availability() -> None:
    d = deploy(image="v2")
    broken = rs_of(deploy(image="v1"), 4, 1, 1, NOW - 100)  # 3 unavailable
    new = rs_of(d, 1, 0, 2, NOW)
    # 5 pods, 3 must stay available, the new one is unavailable: 1 may go, and it is an
    # unavailable old one (Kubernetes' cleanupUnhealthyReplicas)
    assert old_scale_downs(d, new, [broken]) == {broken.metadata.name: 3}


def test_the_new_rs_is_found_by_template_ignoring_the_hash_label() -> None:
    d = deploy(image="v1")
    rs = rs_of(d, 1, 1, 1, NOW)
    assert rs.spec.template.metadata.labels[HASH_LABEL]
    assert find_new_rs(d, [rs]) is rs
    assert find_new_rs(deploy(image="v2"), [rs]) is None
    assert rs.metadata.name == f"web-{rs.metadata.labels[HASH_LABEL]}"
    assert new_rs_for(d, 1, 1).metadata.name == rs.metadata.name  # stable across calls


def test_a_scaling_event_is_detected_from_desired_replicas() -> None:
    d = deploy(replicas=4)
    rs = rs_of(d, 4, 4, 1, NOW)
    assert not is_scaling_event(d, [rs])
    rs.metadata.annotations[DESIRED_REPLICAS] = "1"
    assert is_scaling_event(d, [rs])


@pytest.mark.parametrize(("replicas", "sizes", "expected"), [
    (10, [4, 2], {"a": 7, "b": 4}),  # 10+1 allowed, 5 to add: 3 and 1, leftover to newest
    (2, [4, 2], {"a": 2, "b": 1}),  # 2+1 allowed, 3 to remove
])
def test_proportional_scaling(replicas: int, sizes: list[int],
                              expected: dict[str, int]) -> None:
    d = deploy(replicas=replicas)
    sets = []
    for i, (name, size) in enumerate(zip("ab", sizes, strict=True)):
        rs = rs_of(deploy(image=name), size, size, i + 1, NOW - 100 + i)
        rs.metadata.name = name
        sets.append(rs)
    assert proportional_targets(d, sets, None) == expected


def test_cleanup_keeps_revision_history_limit_empty_sets() -> None:
    d = deploy(history=2)
    old = [rs_of(deploy(image=f"v{i}"), 0, 0, i, NOW + i) for i in range(1, 6)]
    old.append(rs_of(deploy(image="busy"), 1, 1, 6, NOW))
    victims = cleanup_victims(d, old)
    assert victims == [old[0].metadata.name, old[1].metadata.name, old[2].metadata.name]


def test_status_sums_replicasets_and_sets_kubernetes_conditions() -> None:
    d = deploy(replicas=4, image="v2")
    new = rs_of(d, 4, 4, 2, NOW)
    old = rs_of(deploy(image="v1"), 0, 0, 1, NOW - 100)
    st = deployment_status(d, new, [old, new], NOW)
    assert (st.replicas, st.updated_replicas, st.available_replicas,
            st.unavailable_replicas, st.observed_generation) == (4, 4, 4, 0, 1)
    conds = {c.type: (c.status, c.reason) for c in st.conditions}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"),
                     "Progressing": ("True", "NewReplicaSetAvailable")}


def test_no_progress_past_the_deadline_is_reported() -> None:
    d = deploy(replicas=4, image="v2")
    new = rs_of(d, 1, 0, 2, NOW)
    old = rs_of(deploy(image="v1"), 4, 4, 1, NOW - 100)
    d.status.CopyFrom(deployment_status(d, new, [old, new], NOW, created_new=True))
    d.status.CopyFrom(deployment_status(d, new, [old, new], NOW + 300))
    assert {c.type: c.reason for c in d.status.conditions}["Progressing"] == \
        "NewReplicaSetCreated"
    st = deployment_status(d, new, [old, new], NOW + 601)
    assert {c.type: (c.status, c.reason) for c in st.conditions}["Progressing"] == (
        "False", "ProgressDeadlineExceeded")


# --- navctl rollout, pure parts --------------------------------------------------------


def test_rollout_status_messages_read_like_kubectl() -> None:
    d = deploy(replicas=3)
    d.status.observed_generation = 1
    d.status.updated_replicas = 1
    assert rollout_status_message(d) == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been '
        "updated...", False)
    d.status.updated_replicas, d.status.replicas = 3, 4
    assert "1 old replicas are pending termination" in rollout_status_message(d)[0]
    d.status.replicas, d.status.available_replicas = 3, 2
    assert "2 of 3 updated replicas are available" in rollout_status_message(d)[0]
    d.status.available_replicas = 3
    assert rollout_status_message(d) == ('deployment "web" successfully rolled out', True)
    d.status.conditions.add(type="Progressing", status="False",
                            reason="ProgressDeadlineExceeded")
    with pytest.raises(NavctlError, match="exceeded its progress deadline"):
        rollout_status_message(d)


def test_history_and_rollback_pick_revisions() -> None:
    v1, v2 = deploy(image="v1"), deploy(image="v2")
    sets = [rs_of(v1, 0, 0, 1, NOW), rs_of(v2, 4, 4, 2, NOW)]
    assert history_lines("deployment.apps/web", sets) == [
        "deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         <none>",
        "2         <none>", ""]
    template = rollback_template(v2, sets, 0)
    assert template is not None and template.spec.containers[0].image == "v1"
    assert HASH_LABEL not in template.metadata.labels
    assert rollback_template(v2, sets, 2) is None  # already there
    with pytest.raises(NavctlError, match="revision 7"):
        rollback_template(v2, sets, 7)


def test_set_images_by_name_or_star() -> None:
    d = deploy()
    assert set_images(d.spec.template, {"app": "v9"}) == []
    assert d.spec.template.spec.containers[0].image == "v9"
    assert set_images(d.spec.template, {"nope": "x"}) == ["nope"]
    assert set_images(d.spec.template, {"*": "v10"}) == []
    assert d.spec.template.spec.containers[0].image == "v10"


# --- the controller over the fake API ---------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_deployment_gets_revision_one_replicaset_and_status() -> None:
    h = Harness(DeploymentController, [deploy(replicas=3)])
    await h.start()
    (rs,) = h.client.stored("replicasets")
    assert rs.spec.replicas == 3
    assert rs.metadata.annotations[REVISION] == "1"
    assert rs.metadata.owner_references[0].kind == "Deployment"
    (d,) = h.client.stored("deployments")
    assert d.metadata.annotations[REVISION] == "1"
    assert {c.type: c.reason for c in d.status.conditions}["Progressing"] == \
        "NewReplicaSetCreated"
    assert "ScalingReplicaSet" in h.reasons()
    await h.step()
    assert len([w for w in h.client.writes("create") if w[1] == "replicasets"]) == 1
    await h.stop()
