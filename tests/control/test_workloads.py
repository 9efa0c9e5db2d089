"""The Job, CronJob, DaemonSet and StatefulSet controllers as a process
(``navarch controllers``) over the real API server. There is no scheduler or node here:
the test creates Node objects and plays the kubelet, binding pods and writing their
status by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import navarch
from navarch.v1 import core_pb2
from services.controllers.daemonset_sync import daemon_pod_node
from tests.api.util import eventually, obj
from tests.control.conftest import Daemons

pytestmark = pytest.mark.asyncio

REVISION = "controller-revision-hash"

CONTROLLERS = ("--controllers", "job,daemonset,statefulset,cronjob",
               "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
               "--leader-elect-retry-period", "0.5")


async def make_node(client: navarch.Client, name: str, labels: dict[str, str],
                    taints: list[dict[str, str]] = ()) -> None:  # type: ignore[assignment]
    await client.nodes().create(obj({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
        "spec": {"taints": list(taints)}}))


async def kubelet(client: navarch.Client, ns: str,
                  phase_of: Callable[[core_pb2.Pod], str | None]) -> list[core_pb2.Pod]:
    """One pass of a pretend kubelet over ``ns``: bind unbound pods (to the node their
    affinity names, else "n-any"), give each the phase ``phase_of`` returns (None: leave
    it), Ready when Running; finish graceful deletions. Returns the pods seen."""
    pods = client.pods(ns)
    seen = (await pods.list()).items
    for pod in seen:
        if pod.metadata.HasField("deletion_timestamp"):
            await pods.delete(pod.metadata.name, grace_period_seconds=0)
            continue
        phase = phase_of(pod)
        if phase is None or pod.status.phase == phase:
            continue
        if not pod.spec.node_name:
            pod = await client.bind(ns, pod.metadata.name, daemon_pod_node(pod) or "n-any")
        pod.status.phase = phase
        del pod.status.conditions[:]
        ready = pod.status.conditions.add(type="Ready",
                                          status="True" if phase == "Running" else "False")
        ready.last_transition_time.GetCurrentTime()
        await pods.update_status(pod)
    return seen


def conditions(obj_: Any) -> dict[str, str]:
    return {c.type: c.reason or c.status for c in obj_.status.conditions if c.status == "True"}


async def test_job_daemonset_statefulset_cronjob(daemons: Daemons, client: navarch.Client,
                                                 ns: str) -> None:
    daemons.start("controllers", *CONTROLLERS, "--lease-name", f"wl-{ns}")

    # --- DaemonSet: every untainted node of this test, not the tainted one ------------------
    mine = {"workloads-test": ns}
    await make_node(client, f"{ns}-a", mine)
    await make_node(client, f"{ns}-b", mine)
    await make_node(client, f"{ns}-t", mine,
                    [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    labels = {"app": "agent"}
    await client.daemonsets(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": ns},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": mine, "containers": [
                                  {"name": "a", "image": "localhost/agent:1"}]}}}}))

    def daemon_phase(p: core_pb2.Pod) -> str | None:
        return "Running" if p.metadata.labels.get("app") == "agent" else None

    async def ds_ready() -> Any:
        await kubelet(client, ns, daemon_phase)
        ds = await client.daemonsets(ns).get("agent")
        return ds if ds.status.number_ready == 2 else None
    ds = await eventually(ds_ready, 30, "the DaemonSet to be ready on 2 nodes")
    assert ds.status.desired_number_scheduled == 2
    assert ds.status.observed_generation == ds.metadata.generation
    agent = (await client.pods(ns).list(label_selector="app=agent")).items
    agent_nodes = sorted(p.spec.node_name for p in agent)
    assert agent_nodes == [f"{ns}-a", f"{ns}-b"]

    # --- Job: backoffLimit 0 fails at the first failure; a 2-completion job completes ------
    for name, limit in (("fails", 0), ("works", 6)):
        await client.jobs(ns).create(obj({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"backoffLimit": limit, "completions": 2 if name == "works" else 1,
                     "parallelism": 2, "template": {"metadata": {"labels": {"job": name}},
                                                    "spec": {"restartPolicy": "Never",
                                                             "containers": [{
                                                                 "name": "c",
                                                                 "image": "localhost/j:1"}]}}}}))

    def job_phase(p: core_pb2.Pod) -> str | None:
        job = p.metadata.labels.get("batch.kubernetes.io/job-name")
        return {"fails": "Failed", "works": "Succeeded"}.get(job or "")

    async def jobs_done() -> Any:
        await kubelet(client, ns, job_phase)
        fails, works = [await client.jobs(ns).get(n) for n in ("fails", "works")]
        done = "Failed" in conditions(fails) and "Complete" in conditions(works)
        return (fails, works) if done else None
    fails, works = await eventually(jobs_done, 30, "both Jobs to finish")
    assert conditions(fails) == {"FailureTarget": "BackoffLimitExceeded",
                                 "Failed": "BackoffLimitExceeded"}
    assert fails.status.failed == 1
    assert conditions(works) == {"SuccessCriteriaMet": "CompletionsReached",
                                 "Complete": "CompletionsReached"}
    assert works.status.succeeded == 2
    assert works.status.HasField("completion_time")

    # --- StatefulSet: web-0 (with its claim), then web-1 once web-0 is Ready ----------------
    await client.statefulsets(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 2, "serviceName": "nginx",
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "n",
                                                       "image": "localhost/nginx:1"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]}}))

    async def web_pods() -> list[str]:
        return sorted(p.metadata.name for p in (await client.pods(ns).list(
            label_selector="app=web")).items)
    await eventually(lambda: _equal(web_pods(), ["web-0"]), 20, "web-0")
    web0 = await client.pods(ns).get("web-0")
    assert (web0.spec.hostname, web0.spec.subdomain) == ("web-0", "nginx")
    assert web0.spec.volumes[0].persistent_volume_claim.claim_name == "www-web-0"
    await client.persistentvolumeclaims(ns).get("www-web-0")
    assert await web_pods() == ["web-0"], "web-1 waits for web-0"

    def web_phase(p: core_pb2.Pod) -> str | None:
        return "Running" if p.metadata.labels.get("app") == "web" else None

    async def sts_ready() -> Any:
        await kubelet(client, ns, web_phase)
        sts = await client.statefulsets(ns).get("web")
        return sts if sts.status.ready_replicas == 2 else None
    sts = await eventually(sts_ready, 30, "the StatefulSet to be ready")
    assert sts.status.current_revision == sts.status.update_revision
    assert await web_pods() == ["web-0", "web-1"]
    revisions = sorted(r.metadata.name for r in (await client.controllerrevisions(ns).list()).items)
    assert revisions == sorted([sts.status.update_revision,
                                f"agent-{agent[0].metadata.labels[REVISION]}"])

    # --- CronJob: "@every 2s" starts a Job on its own ----------------------------------------
    await client.cronjobs(ns).create(obj({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": ns},
        "spec": {"schedule": "@every 2s", "timeZone": "Etc/UTC",
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "localhost/tick:1"}]}}}}}}))

    async def ticked() -> Any:
        cj = await client.cronjobs(ns).get("tick")
        return cj if cj.status.active else None
    cj = await eventually(ticked, 20, "the CronJob to start a Job")
    job = await client.jobs(ns).get(cj.status.active[0].name)
    assert job.metadata.name.startswith("tick-")
    assert job.metadata.owner_references[0].kind == "CronJob"
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in job.metadata.annotations


async def _equal(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
