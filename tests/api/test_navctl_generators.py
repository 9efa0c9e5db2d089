"""navctl run and navctl create deployment|configmap|secret generic end to end: the real
command against a real API server, read back with the SDK."""

from __future__ import annotations

from pathlib import Path

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl


async def test_run_and_create_deployment(apiserver: ApiServerProcess, client: navarch.Client,
                                         ns: str) -> None:
    ran = await navctl(apiserver, "-n", ns, "run", "shell", "--image=localhost/busybox:1",
                       "--restart=Never", "--", "sleep", "3600")
    assert (ran.code, ran.out, ran.err) == (0, "pod/shell created\n", "")
    pod = await client.pods(ns).get("shell")
    assert pod.metadata.labels["run"] == "shell"
    assert (pod.spec.restart_policy, list(pod.spec.containers[0].args)) == (
        "Never", ["sleep", "3600"])

    made = await navctl(apiserver, "-n", ns, "create", "deployment", "hello-node",
                        "--image=localhost/agnhost:2.39", "--port=8080", "--",
                        "/agnhost", "netexec", "--http-port=8080")
    assert made.out == "deployment.apps/hello-node created\n"
    hello = await client.deployments(ns).get("hello-node")
    container = hello.spec.template.spec.containers[0]
    assert (container.name, list(container.command), container.ports[0].container_port) == (
        "agnhost", ["/agnhost", "netexec", "--http-port=8080"], 8080)
    assert dict(hello.spec.selector.match_labels) == {"app": "hello-node"}
    again = await navctl(apiserver, "-n", ns, "create", "deployment", "hello-node",
                         "--image=localhost/agnhost:2.39")
    assert (again.code, again.err) == (1, 'Error from server (AlreadyExists): '
                                          'deployments.apps "hello-node" already exists\n')


async def test_create_configmap_and_secret(apiserver: ApiServerProcess,
                                           client: navarch.Client, ns: str,
                                           tmp_path: Path) -> None:
    props = tmp_path / "game.properties"
    props.write_text("lives=3\n")
    cm = await navctl(apiserver, "-n", ns, "create", "configmap", "game",
                      f"--from-file={props}", "--from-literal=mode=easy")
    assert cm.out == "configmap/game created\n"
    assert dict((await client.configmaps(ns).get("game")).data) == {
        "game.properties": "lives=3\n", "mode": "easy"}
    secret = await navctl(apiserver, "-n", ns, "create", "secret", "generic", "db",
                          "--from-literal=password=s3cret")
    assert secret.out == "secret/db created\n"
    stored = await client.secrets(ns).get("db")
    assert stored.type == "Opaque"
    assert dict(stored.data) == {"password": b"s3cret"}  # base64 in JSON, bytes here
