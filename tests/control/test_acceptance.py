"""Issue 4's acceptance, end to end: real API server over raftstore, and the real
``navarch simnodes``, ``navarch scheduler`` and ``navarch controllers`` processes.

- the Kubernetes tutorial flow (create a 1-replica Deployment, scale to 4, set image with
  maxSurge 1 / maxUnavailable 1, roll back) leaves the ReplicaSet history Kubernetes does;
- killing a simulated node evicts its pods and they come back on other nodes;
- a DaemonSet covers every untainted node and no tainted one;
- a Job with backoffLimit fails after backoffLimit + 1 failed pods;
- killing the active scheduler and controller manager hands over to the standbys, with
  no pod bound twice and no replica created twice.

(A CronJob firing on schedule is tested with an injected clock in tests/unit.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import navarch
from tests.api.util import eventually, obj
from tests.control.conftest import Daemons
from tests.store.cluster import REPO

pytestmark = pytest.mark.asyncio

REVISION = "deployment.kubernetes.io/revision"
FAST_NODES = ("--startup-delay", "0.1", "--heartbeat-interval", "1")
TEST_LABEL = "navarch.test/namespace"


def sim(daemons: Daemons, ns: str, count: int, prefix: str, *args: str, name: str = ""
        ) -> Any:
    """Simulated nodes labelled for this test only: earlier tests' nodes (dead or alive)
    stay in the module's cluster, and pods here select this test's nodes."""
    return daemons.start("simnodes", "--count", str(count), "--name-prefix", prefix,
                         "--labels", f"{TEST_LABEL}={ns}", *FAST_NODES, *args,
                         name=name or prefix.rstrip("-"))
FAST_ELECTION = ("--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                 "--leader-elect-retry-period", "0.5")


def control_plane(daemons: Daemons, *controllers: str, lease: str = "") -> None:
    """A scheduler and a controller manager (with ``controllers``)."""
    suffix = ("--lease-name", lease) if lease else ()
    daemons.start("scheduler", *FAST_ELECTION, *(("--lease-name", f"s-{lease}")
                                                  if lease else ()))
    daemons.start("controllers", "--controllers", ",".join(controllers), *FAST_ELECTION,
                  *suffix)


def deployment(name: str, ns: str, replicas: int, image: str, **spec: Any) -> Any:
    labels = {"app": name}
    body: dict[str, Any] = {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"nodeSelector": {TEST_LABEL: ns},
                              "containers": [{"name": "app", "image": image,
                                              "resources": {"requests": {"cpu": "10m"}}}]}}}
    body.update(spec)
    return obj({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns}, "spec": body})


async def rolled_out(client: navarch.Client, ns: str, name: str, replicas: int,
                     within: float = 60.0) -> Any:
    """The Deployment once its rollout is complete at ``replicas``."""
    async def done() -> Any:
        d = await client.deployments(ns).get(name)
        st = d.status
        ok = (st.observed_generation >= d.metadata.generation
              and st.updated_replicas == replicas and st.replicas == replicas
              and st.available_replicas == replicas)
        return d if ok else None
    return await eventually(done, within, f"deployment {name} rolled out at {replicas}")


async def replicasets(client: navarch.Client, ns: str) -> dict[str, Any]:
    """image -> ReplicaSet."""
    listed = await client.replicasets(ns).list()
    return {rs.spec.template.spec.containers[0].image: rs for rs in listed.items}


async def navctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch._navctl", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_tutorial_rollout_and_rollback_leave_kubernetes_replicaset_history(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    sim(daemons, ns, 3, f"{ns}-")
    control_plane(daemons, "replicaset", "deployment")
    deploys = client.deployments(ns)
    v1, v2 = "localhost/kubernetes-bootcamp:v1", "localhost/kubernetes-bootcamp:v2"
    strategy = {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    await deploys.create(deployment("bootcamp", ns, 1, v1, strategy=strategy))
    await rolled_out(client, ns, "bootcamp", 1)
    await deploys.scale("bootcamp", 4)
    await rolled_out(client, ns, "bootcamp", 4)
    first = (await replicasets(client, ns))[v1]
    assert first.metadata.annotations[REVISION] == "1"

    await navctl("--server", daemons.api.address, "-n", ns, "set", "image",
                 "deployment/bootcamp", f"app={v2}")
    await rolled_out(client, ns, "bootcamp", 4)
    sets = await replicasets(client, ns)
    assert set(sets) == {v1, v2}
    assert (sets[v1].spec.replicas, sets[v1].metadata.annotations[REVISION]) == (0, "1")
    assert (sets[v2].spec.replicas, sets[v2].metadata.annotations[REVISION]) == (4, "2")

    await navctl("--server", daemons.api.address, "-n", ns, "rollout", "undo",
                 "deployment/bootcamp")
    d = await rolled_out(client, ns, "bootcamp", 4)
    sets = await replicasets(client, ns)
    assert set(sets) == {v1, v2}  # the first ReplicaSet is reused, not recreated
    assert sets[v1].metadata.uid == first.metadata.uid
    assert (sets[v1].spec.replicas, sets[v1].metadata.annotations[REVISION]) == (4, "3")
    assert (sets[v2].spec.replicas, sets[v2].metadata.annotations[REVISION]) == (0, "2")
    assert d.metadata.annotations[REVISION] == "3"
    pods = (await client.pods(ns).list()).items
    live = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]
    assert len(live) == 4
    assert {p.spec.containers[0].image for p in live} == {v1}

    async def terminated() -> bool:  # v2's pods leave once their grace period is over
        return {p.metadata.name for p in (await client.pods(ns).list()).items} == {
            p.metadata.name for p in live}
    await eventually(terminated, 60, "the rolled-back pods to finish terminating")
    history = await navctl("--server", daemons.api.address, "-n", ns, "rollout", "history",
                           "deployment/bootcamp")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]


async def test_a_dead_node_s_pods_are_evicted_and_come_back_elsewhere(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    doomed = sim(daemons, ns, 1, f"{ns}-a-")
    # a short grace period; pods tolerate the unreachable taint for 2 s only
    daemons.start("scheduler", *FAST_ELECTION)
    daemons.start("controllers", "--controllers", "replicaset,deployment,nodelifecycle",
                  "--node-monitor-grace-period", "3", *FAST_ELECTION)
    tolerations = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 2}
                   for k in ("unreachable", "not-ready")]
    d = deployment("web", ns, 3, "localhost/web:1")
    d.spec.template.spec.MergeFrom(obj({"apiVersion": "v1", "kind": "Pod",
                                        "spec": {"tolerations": tolerations}}).spec)
    await client.deployments(ns).create(d)
    await rolled_out(client, ns, "web", 3)
    before = {p.metadata.name for p in (await client.pods(ns).list()).items}
    assert {p.spec.node_name for p in (await client.pods(ns).list()).items} == {f"{ns}-a-0000"}

    sim(daemons, ns, 2, f"{ns}-b-")
    doomed.kill()

    async def unreachable() -> bool:
        node = await client.nodes().get(f"{ns}-a-0000")
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        taints = {(t.key, t.effect) for t in node.spec.taints}
        return (bool(ready) and ready[0].status == "Unknown"
                and ("node.kubernetes.io/unreachable", "NoExecute") in taints)
    await eventually(unreachable, 30, "the dead node to be marked unreachable")

    async def moved() -> bool:
        pods = (await client.pods(ns).list()).items
        live = [p for p in pods if not p.metadata.HasField("deletion_timestamp")]
        return (len(live) == 3 and not {p.metadata.name for p in live} & before
                and all(p.spec.node_name.startswith(f"{ns}-b-") for p in live))
    await eventually(moved, 60, "the pods to be evicted and recreated on live nodes")
    await rolled_out(client, ns, "web", 3)


async def test_a_daemonset_covers_every_untainted_node(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    sim(daemons, ns, 3, f"{ns}-u-")
    sim(daemons, ns, 1, f"{ns}-t-", "--taints", "dedicated=gpu:NoSchedule")
    control_plane(daemons, "daemonset")
    labels = {"app": "agent"}
    await client.daemonsets(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": ns},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": {TEST_LABEL: ns},
                                       "containers": [{"name": "a",
                                                       "image": "localhost/agent:1"}]}}}}))

    async def covered() -> Any:
        ds = await client.daemonsets(ns).get("agent")
        return ds if ds.status.number_ready == 3 else None
    ds = await eventually(covered, 60, "the DaemonSet to be ready on 3 nodes")
    assert ds.status.desired_number_scheduled == 3
    status = await navctl("--server", daemons.api.address, "-n", ns, "rollout", "status",
                          "daemonset/agent", "--timeout=60s")
    assert status.splitlines()[-1] == 'daemon set "agent" successfully rolled out'
    pods = (await client.pods(ns).list()).items
    ours = sorted(p.spec.node_name for p in pods)
    mine = sorted(n.metadata.name for n in (await client.nodes().list()).items
                  if n.metadata.name.startswith(f"{ns}-u-"))
    assert ours == mine


async def test_a_job_fails_after_backoff_limit_plus_one_failures(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    sim(daemons, ns, 2, f"{ns}-")
    control_plane(daemons, "job")
    await client.jobs(ns).create(obj({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "flaky", "namespace": ns},
        "spec": {"backoffLimit": 1, "template": {
            "metadata": {"annotations": {"simnodes.navarch.io/exit-code": "1"}},
            "spec": {"restartPolicy": "Never", "nodeSelector": {TEST_LABEL: ns},
                     "containers": [{"name": "c", "image": "localhost/fail:1"}]}}}}))

    async def failed() -> Any:
        job = await client.jobs(ns).get("flaky")
        conds = {c.type: c for c in job.status.conditions}
        return job if "Failed" in conds and conds["Failed"].status == "True" else None
    job = await eventually(failed, 90, "the Job to fail")
    conds = {c.type: c for c in job.status.conditions}
    assert conds["Failed"].reason == "BackoffLimitExceeded"
    assert job.status.failed == 2
    pods = (await client.pods(ns).list()).items
    assert sorted(p.status.phase for p in pods) == ["Failed", "Failed"]


@contextlib.asynccontextmanager
async def pod_history(client: navarch.Client, ns: str) -> AsyncIterator[dict[str, Any]]:
    """Every pod created in ``ns`` and every node each was ever bound to, while open."""
    seen: dict[str, Any] = {"created": set(), "bindings": {}}
    rv = (await client.pods(ns).list()).resource_version

    async def follow() -> None:
        stream = client.pods(ns).watch(resource_version=rv)
        async with contextlib.aclosing(stream):
            async for ev in stream:
                p = ev.object
                seen["created"].add(p.metadata.uid)
                if p.spec.node_name:
                    seen["bindings"].setdefault(p.metadata.uid, set()).add(p.spec.node_name)

    task = asyncio.create_task(follow())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_killing_the_active_replicas_hands_over_without_double_work(
        daemons: Daemons, client: navarch.Client, ns: str) -> None:
    sim(daemons, ns, 3, f"{ns}-")
    lease = ns
    replicas = []
    for i in range(2):
        replicas.append((
            daemons.start("scheduler", *FAST_ELECTION, "--lease-name", f"s-{lease}",
                          "--identity", f"sched-{i}", name=f"sched-{i}"),
            daemons.start("controllers", "--controllers", "replicaset,deployment",
                          *FAST_ELECTION, "--lease-name", f"c-{lease}",
                          "--identity", f"cm-{i}", name=f"cm-{i}")))
    leases = client.leases("kube-system")

    async def holders() -> tuple[str, str]:
        s = (await leases.get(f"s-{lease}")).spec.holder_identity
        c = (await leases.get(f"c-{lease}")).spec.holder_identity
        return (s, c) if s and c else None  # type: ignore[return-value]
    sched_holder, cm_holder = await eventually(holders, 20, "both leases to be held")
    async with pod_history(client, ns) as seen:
        await client.deployments(ns).create(deployment("web", ns, 30, "localhost/web:1"))
        # kill both leaders while the deployment's pods are being created and bound
        await eventually(lambda: _some(seen["created"]), 20, "the first pods")
        killed_at = time.monotonic()
        for (s, c), i in zip(replicas, range(2), strict=True):
            if f"sched-{i}" == sched_holder:
                s.kill()
            if f"cm-{i}" == cm_holder:
                c.kill()

        async def new_holders() -> bool:
            s = (await leases.get(f"s-{lease}")).spec.holder_identity
            c = (await leases.get(f"c-{lease}")).spec.holder_identity
            return s not in ("", sched_holder) and c not in ("", cm_holder)
        await eventually(new_holders, 15, "the standbys to take over")
        takeover = time.monotonic() - killed_at
        assert takeover <= 4 + 1.5  # the lease duration, plus a retry period or so
        await rolled_out(client, ns, "web", 30, within=90)
        await asyncio.sleep(0)  # let the watch deliver what it has
    assert len(seen["created"]) == 30, "a replica was created twice"
    assert all(len(nodes) == 1 for nodes in seen["bindings"].values()), "a pod bound twice"


async def _some(items: set[str]) -> bool:
    return bool(items)
