"""The infrastructure controllers as a process over the real API server: Endpoints follow
pod readiness, the garbage collector carries out background, foreground and orphan
propagation for hand-made ReplicaSets and their pods, nodes get podCIDRs, a namespace with
content is deleted completely; and the HPA scales a Deployment from PodMetrics."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import pytest

import navarch
from tests.api.util import configmap, eventually, obj
from tests.control.conftest import Daemons

pytestmark = pytest.mark.asyncio

CONTROLLERS = ("--controllers", "endpoints,namespace,garbagecollector,nodeipam")


def pod(name: str, ns: str, labels: dict[str, str], owner: Any = None) -> Any:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": owner.metadata.name, "uid": owner.metadata.uid,
                                    "controller": True, "blockOwnerDeletion": True}]
    return obj({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "c", "image": "localhost/web:1",
                                         "ports": [{"name": "http",
                                                    "containerPort": 8080}]}]}})


async def set_ready(client: navarch.Client, ns: str, name: str, ip: str, ready: bool) -> None:
    """Play the kubelet: Running with an IP and a Ready condition."""
    current = await client.pods(ns).get(name)
    current.status.phase = "Running"
    current.status.pod_ip = ip
    del current.status.conditions[:]
    current.status.conditions.add(type="Ready", status="True" if ready else "False")
    await client.pods(ns).update_status(current)


async def test_infrastructure_controllers(daemons: Daemons, client: navarch.Client,
                                          ns: str) -> None:
    daemons.start("controllers", *CONTROLLERS)

    # --- endpoints follow readiness, named target ports resolved ---------------------
    await client.services(ns).create(obj({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}))
    await client.pods(ns).create(pod("web-1", ns, {"app": "web"}))
    await set_ready(client, ns, "web-1", "10.1.0.5", ready=False)

    async def endpoints(ready: list[str], not_ready: list[str]) -> bool:
        try:
            ep = await client.endpoints(ns).get("web")
        except navarch.NotFound:
            return False
        got = ([a.ip for s in ep.subsets for a in s.addresses],
               [a.ip for s in ep.subsets for a in s.not_ready_addresses],
               [p.port for s in ep.subsets for p in s.ports])
        return got == (ready, not_ready, [8080])
    await eventually(lambda: endpoints([], ["10.1.0.5"]), 20, "a not-ready address")
    await set_ready(client, ns, "web-1", "10.1.0.5", ready=True)
    await eventually(lambda: endpoints(["10.1.0.5"], []), 20, "the address to be ready")

    # --- the garbage collector: background, foreground and orphan propagation ----------
    async def owned(name: str) -> None:
        rs = await client.replicasets(ns).create(obj({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
        for i in range(2):
            await client.pods(ns).create(pod(f"{name}-{i}", ns, {"app": name}, owner=rs))

    async def gone(name: str) -> bool:
        pods = await client.pods(ns).list(label_selector=f"app={name}")
        try:
            await client.replicasets(ns).get(name)
        except navarch.NotFound:
            return not pods.items
        return False

    for name, policy in (("bg", "Background"), ("fg", "Foreground")):
        await owned(name)
        await client.replicasets(ns).delete(name, propagation_policy=policy)
        await eventually(functools.partial(gone, name), 20,
                         f"the ReplicaSet {name} and its pods to go ({policy})")
    await owned("orphans")
    await client.replicasets(ns).delete("orphans", propagation_policy="Orphan")

    async def orphaned() -> bool:
        pods = (await client.pods(ns).list(label_selector="app=orphans")).items
        try:
            await client.replicasets(ns).get("orphans")
        except navarch.NotFound:
            return len(pods) == 2 and not any(p.metadata.owner_references for p in pods)
        return False
    await eventually(orphaned, 20, "the pods to be orphaned")

    # --- nodes get podCIDRs ------------------------------------------------------------
    names = [f"ipam-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    for name in names:
        await client.nodes().create(obj({"apiVersion": "v1", "kind": "Node",
                                         "metadata": {"name": name}}))

    async def cidrs() -> set[str] | None:
        got = {(await client.nodes().get(n)).spec.pod_cidr for n in names}
        return None if "" in got else got
    assigned = await eventually(cidrs, 20, "podCIDRs on the nodes")
    assert len(assigned) == 2 and all(c.startswith("10.244.") for c in assigned)
    for name in names:
        node = await client.nodes().get(name)
        assert list(node.spec.pod_cidrs) == [node.spec.pod_cidr]
        await client.nodes().delete(name)

    # --- a namespace with content is deleted completely --------------------------------
    await client.configmaps(ns).create(configmap("settings", ns))
    await client.namespaces().delete(ns)

    async def namespace_gone() -> bool:
        try:
            await client.namespaces().get(ns)
        except navarch.NotFound:
            return True
        return False
    await eventually(namespace_gone, 30, "the namespace to be deleted")
    for kind in ("pods", "services", "configmaps", "endpoints"):
        assert not (await client.resource(kind, ns).list()).items, kind


async def test_hpa_scales_a_deployment_from_pod_metrics(daemons: Daemons,
                                                        client: navarch.Client,
                                                        ns: str) -> None:
    daemons.start("controllers", "--controllers", "horizontalpodautoscaling",
                  "--horizontal-pod-autoscaler-sync-period", "0.5")
    labels = {"app": "auto"}
    await client.deployments(ns).create(obj({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "auto", "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "img"}]}}}}))
    metrics = client.resource("podmetrics", ns)
    for i in range(2):
        body = pod(f"auto-{i}", ns, labels)
        body.spec.containers[0].resources.requests["cpu"] = "500m"
        await client.pods(ns).create(body)
        await set_ready(client, ns, f"auto-{i}", f"10.2.0.{i + 1}", ready=True)
        await metrics.create(obj({
            "apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": f"auto-{i}", "namespace": ns}, "window": "30s",
            "containers": [{"name": "c", "usage": {"cpu": "450m"}}]}))
    stored = await metrics.get("auto-0")
    assert stored.containers[0].usage["cpu"] == "450m" and stored.window.seconds == 30
    await client.horizontalpodautoscalers(ns).create(obj({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "auto", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "auto"},
                 "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": 50}}}]}}))

    async def scaled() -> bool:
        d = await client.deployments(ns).get("auto")
        return d.spec.replicas == 4
    await eventually(scaled, 20, "the HPA to scale the Deployment to 4")

    async def reported() -> Any:
        h = await client.horizontalpodautoscalers(ns).get("auto")
        return h.status.desired_replicas == 4 and h.status.current_metrics
    await eventually(reported, 20, "the HPA status")
