"""navctl expose end to end: the real command (a subprocess) against a real API server,
checking what it prints and, with the SDK client, the Service the server stored."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import deployment_doc, navctl, write
from tests.api.util import configmap, obj

SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")


def web_pod(namespace: str) -> Any:
    """A Pod with two container ports and labels."""
    return obj({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": namespace,
                             "labels": {"run": "web", "tier": "front"}},
                "spec": {"containers": [
                    {"name": "web", "image": "localhost/web:1",
                     "ports": [{"containerPort": 80, "name": "http"}]},
                    {"name": "dns", "image": "localhost/dns:1",
                     "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}})


async def test_expose_deployment_as_node_port(apiserver: ApiServerProcess,
                                              client: navarch.Client, ns: str) -> None:
    doc = deployment_doc("web")
    doc["metadata"].update(namespace=ns, labels={"app": "web", "team": "a"})
    await client.deployments(ns).create(obj(doc))
    result = await navctl(apiserver, "-n", ns, "expose", "deployment", "web",
                          "--type=NodePort", "--port", "8080")
    assert (result.code, result.out, result.err) == (0, "service/web exposed\n", "")
    svc = await client.services(ns).get("web")
    assert ipaddress.ip_address(svc.spec.cluster_ip) in SERVICE_RANGE
    assert svc.spec.type == "NodePort"
    assert dict(svc.spec.selector) == {"app": "web"}
    assert dict(svc.metadata.labels) == {"app": "web", "team": "a"}
    (port,) = svc.spec.ports
    assert (port.port, port.target_port, port.protocol) == (8080, "8080", "TCP")
    assert 30000 <= port.node_port <= 32767

    again = await navctl(apiserver, "-n", ns, "expose", "deploy/web", "--port", "8080")
    assert (again.code, again.out, again.err) == (
        1, "", 'Error from server (AlreadyExists): services "web" already exists\n')


async def test_expose_pod_and_service_by_introspection(apiserver: ApiServerProcess,
                                                       client: navarch.Client, ns: str
                                                       ) -> None:
    await client.pods(ns).create(web_pod(ns))
    from_pod = await navctl(apiserver, "-n", ns, "expose", "po", "web", "-o", "name")
    assert (from_pod.code, from_pod.out) == (0, "service/web\n")
    svc = await client.services(ns).get("web")
    assert dict(svc.spec.selector) == {"run": "web", "tier": "front"}
    assert [(p.name, p.port, p.protocol, p.target_port) for p in svc.spec.ports] == [
        ("port-1", 80, "TCP", "80"), ("port-2", 53, "UDP", "53")]

    second = await navctl(apiserver, "-n", ns, "expose", "svc", "web", "--name=web-https",
                          "--port=443", "--target-port=http", "--labels=svc=https",
                          "--session-affinity=ClientIP", "-o", "json")
    assert second.code == 0, second.err
    printed = yaml.safe_load(second.out)
    assert printed["metadata"]["name"] == "web-https" and printed["spec"]["clusterIP"]
    https = await client.services(ns).get("web-https")
    assert dict(https.spec.selector) == {"run": "web", "tier": "front"}
    assert dict(https.metadata.labels) == {"svc": "https"}
    assert https.spec.session_affinity == "ClientIP"
    assert [(p.port, p.target_port) for p in https.spec.ports] == [(443, "http")]

    headless = await navctl(apiserver, "-n", ns, "expose", "pod", "web", "--name=peers",
                            "--cluster-ip=None")
    assert headless.out == "service/peers exposed\n"
    assert (await client.services(ns).get("peers")).spec.cluster_ip == "None"


async def test_dry_runs_store_nothing(apiserver: ApiServerProcess, client: navarch.Client,
                                      ns: str, tmp_path: Path) -> None:
    manifest = write(tmp_path / "web.yaml", deployment_doc("web"))
    client_side = await navctl(apiserver, "-n", ns, "expose", "-f", manifest,
                               "--dry-run=client", "-o", "yaml")
    assert client_side.code == 0, client_side.err
    printed = yaml.safe_load(client_side.out)
    assert printed["metadata"] == {"name": "web", "namespace": ns}
    assert printed["spec"] == {"ports": [{"port": 8080, "protocol": "TCP",
                                          "targetPort": 8080}],
                               "selector": {"app": "web"}}
    server_side = await navctl(apiserver, "-n", ns, "expose", "-f", manifest,
                               "--dry-run=server", "--type=LoadBalancer")
    assert (server_side.code, server_side.out) == (
        0, "service/web exposed (server dry run)\n")
    assert (await client.services(ns).list_all()).items == []
    plain = await navctl(apiserver, "-n", ns, "expose", "-f", manifest, "--dry-run")
    assert plain.out == "service/web exposed (dry run)\n"
    assert (await client.services(ns).list_all()).items == []


@pytest.mark.parametrize(("args", "err"), [
    (("deploy", "nope", "--port=80"),
     'Error from server (NotFound): deployments.apps "nope" not found\n'),
    (("configmap", "cfg", "--port=80"), "error: cannot expose a ConfigMap\n"),
    (("deploy", "bare"), "error: couldn't find port via --port flag or introspection\n"),
    (("deploy", "bare", "--port=80", "--type=Sideways"), None),
    (("deploy",), "error: resource(s) were provided, but no name was specified\n"),
])
async def test_refusals_create_nothing(apiserver: ApiServerProcess, client: navarch.Client,
                                       ns: str, args: tuple[str, ...], err: str | None
                                       ) -> None:
    await client.configmaps(ns).create(configmap("cfg", ns))
    bare = deployment_doc("bare")
    del bare["spec"]["template"]["spec"]["containers"][0]["ports"]
    bare["metadata"]["namespace"] = ns
    await client.deployments(ns).create(obj(bare))
    result = await navctl(apiserver, "-n", ns, "expose", *args)
    assert (result.code, result.out) == (1, "")
    if err is None:  # the server's validation, worded as kubectl prints it
        assert result.err.startswith('The Service "bare" is invalid: spec.type: ')
        assert "Sideways" in result.err
    else:
        assert result.err == err
    assert (await client.services(ns).list_all()).items == []
