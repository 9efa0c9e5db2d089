"""navctl cordon, uncordon and drain end to end: the real command against a real API
server. No kubelet runs here, so pods are deleted with ``--grace-period=0`` (at once)."""

from __future__ import annotations

import uuid
from typing import Any

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl
from tests.api.util import obj


def node(name: str) -> Any:
    return obj({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})


def bound_pod(name: str, ns: str, node_name: str, owner: tuple[str, str, str] | None = None
              ) -> Any:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if owner:
        api_version, kind, owner_name = owner
        meta["ownerReferences"] = [{"apiVersion": api_version, "kind": kind,
                                    "name": owner_name, "uid": str(uuid.uuid4()),
                                    "controller": True}]
    return obj({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"nodeName": node_name,
                         "containers": [{"name": "c", "image": "busybox"}]}})


def daemonset(name: str, ns: str) -> Any:
    labels = {"app": name}
    return obj({"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})


async def test_cordon_and_uncordon(apiserver: ApiServerProcess, client: navarch.Client
                                   ) -> None:
    name = f"n-{uuid.uuid4().hex[:8]}"
    await client.nodes().create(node(name))
    first = await navctl(apiserver, "cordon", name)
    assert (first.code, first.out) == (0, f"node/{name} cordoned\n")
    assert (await client.nodes().get(name)).spec.unschedulable
    again = await navctl(apiserver, "cordon", name)
    assert again.out == f"node/{name} already cordoned\n"
    dry = await navctl(apiserver, "uncordon", name, "--dry-run=server")
    assert dry.out == f"node/{name} uncordoned (server dry run)\n"
    assert (await client.nodes().get(name)).spec.unschedulable
    back = await navctl(apiserver, "uncordon", name)
    assert back.out == f"node/{name} uncordoned\n"
    assert not (await client.nodes().get(name)).spec.unschedulable
    missing = await navctl(apiserver, "cordon", f"{name}-x")
    assert missing.code == 1
    assert f'nodes "{name}-x" not found' in missing.err


async def test_drain_refuses_then_deletes_what_kubectl_would(
        apiserver: ApiServerProcess, client: navarch.Client, ns: str) -> None:
    name = f"n-{uuid.uuid4().hex[:8]}"
    await client.nodes().create(node(name))
    await client.daemonsets(ns).create(daemonset("agent", ns))
    pods = client.pods(ns)
    await pods.create(bound_pod("web-1", ns, name, ("apps/v1", "ReplicaSet", "web")))
    await pods.create(bound_pod("agent-1", ns, name, ("apps/v1", "DaemonSet", "agent")))
    await pods.create(bound_pod("lonely", ns, name))
    await pods.create(bound_pod("elsewhere", ns, f"{name}-other",
                                ("apps/v1", "ReplicaSet", "web")))

    refused = await navctl(apiserver, "drain", name, "--grace-period=0")
    assert refused.code == 1
    assert refused.out == f"node/{name} cordoned\n"
    problem = ("[cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
               f"{ns}/agent-1, cannot delete Pods that declare no controller (use --force to "
               f"override): {ns}/lonely]")
    assert refused.err == (
        f'error: unable to drain node "{name}" due to error: {problem}, continuing '
        f"command...\nThere are pending nodes to be drained:\n {name}\nerror: {problem}\n")
    assert sorted(p.metadata.name for p in (await pods.list()).items) == [
        "agent-1", "elsewhere", "lonely", "web-1"]  # nothing deleted
    assert (await client.nodes().get(name)).spec.unschedulable

    drained = await navctl(apiserver, "drain", name, "--ignore-daemonsets", "--force",
                           "--grace-period=0", "--timeout=30s")
    assert drained.code == 0, drained.err
    assert drained.err == (f"Warning: ignoring DaemonSet-managed Pods: {ns}/agent-1; "
                           f"deleting Pods that declare no controller: {ns}/lonely\n")
    lines = drained.out.splitlines()
    assert lines[0] == f"node/{name} already cordoned"
    assert sorted(lines[1:5]) == [f"evicting pod {ns}/lonely", f"evicting pod {ns}/web-1",
                                  "pod/lonely evicted", "pod/web-1 evicted"]
    assert lines[5:] == [f"node/{name} drained"]
    assert sorted(p.metadata.name for p in (await pods.list()).items) == [
        "agent-1", "elsewhere"]
