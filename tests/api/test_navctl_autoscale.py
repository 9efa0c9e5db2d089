"""navctl autoscale end to end: the real command against a real API server, checking what
it prints and the HorizontalPodAutoscaler the server stored."""

from __future__ import annotations

from typing import Any

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import deployment_doc, navctl
from tests.api.util import obj


async def test_autoscale_a_deployment_as_kubectl_does(apiserver: ApiServerProcess,
                                                      client: navarch.Client, ns: str) -> None:
    doc = deployment_doc("web")
    doc["metadata"]["namespace"] = ns
    await client.deployments(ns).create(obj(doc))
    result = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "web",
                          "--min=2", "--max=5", "--cpu-percent=60")
    assert (result.code, result.out, result.err) == (
        0, "horizontalpodautoscaler.autoscaling/web autoscaled\n", "")
    hpa: Any = await client.horizontalpodautoscalers(ns).get("web")
    ref = hpa.spec.scale_target_ref
    assert (ref.api_version, ref.kind, ref.name) == ("apps/v1", "Deployment", "web")
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 5)
    (metric,) = hpa.spec.metrics
    assert (metric.type, metric.resource.name, metric.resource.target.type,
            metric.resource.target.average_utilization) == ("Resource", "cpu",
                                                            "Utilization", 60)

    named = await navctl(apiserver, "-n", ns, "autoscale", "deploy/web", "--max=3",
                         "--name", "web-b", "-o", "name")
    assert (named.code, named.out) == (0, "horizontalpodautoscaler.autoscaling/web-b\n")
    b: Any = await client.horizontalpodautoscalers(ns).get("web-b")
    assert (b.spec.min_replicas, b.spec.metrics[0].resource.target.average_utilization) == (
        1, 80)

    again = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "web", "--max=3")
    assert (again.code, again.out) == (1, "")
    assert "AlreadyExists" in again.err and '"web" already exists' in again.err


async def test_autoscale_refuses_what_it_cannot_do(apiserver: ApiServerProcess,
                                                   client: navarch.Client, ns: str) -> None:
    missing = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "nope", "--max=3")
    assert (missing.code, missing.out) == (1, "")
    assert 'Error from server (NotFound): deployments' in missing.err
    assert '"nope" not found' in missing.err
    no_max = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "web")
    assert no_max.code == 1
    assert "--max=MAXPODS is required and must be at least 1, max: -1" in no_max.err
    upside_down = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "web",
                               "--min=4", "--max=2")
    assert "--max=MAXPODS must be larger or equal to --min=MINPODS, max: 2, min: 4" in \
        upside_down.err
    pod = await navctl(apiserver, "-n", ns, "autoscale", "pod", "web", "--max=2")
    assert "cannot autoscale a Pod: only a Deployment, ReplicaSet or StatefulSet" in pod.err
    doc = deployment_doc("web")
    doc["metadata"]["namespace"] = ns
    await client.deployments(ns).create(obj(doc))
    for dry_run in ("client", "server"):
        dry = await navctl(apiserver, "-n", ns, "autoscale", "deployment", "web", "--max=2",
                           f"--dry-run={dry_run}", "-o", "json")
        assert dry.code == 0, dry.err
        assert '"kind": "HorizontalPodAutoscaler"' in dry.out
        assert '"maxReplicas": 2' in dry.out
    assert list((await client.horizontalpodautoscalers(ns).list()).items) == []
