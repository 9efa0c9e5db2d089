"""navctl patch end to end, and the API server's strategic merge patch: the real command
against a real API server."""

from __future__ import annotations

import json
from pathlib import Path

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl
from tests.api.util import deployment


async def test_strategic_patch_changes_one_container(apiserver: ApiServerProcess,
                                                     client: navarch.Client, ns: str) -> None:
    made = deployment("web", ns)
    made.spec.template.spec.containers[0].ports.add(container_port=8080)
    made.spec.template.spec.containers.add(name="sidecar", image="localhost/side:1")
    await client.deployments(ns).create(made)
    patch = json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "localhost/web:2"}]}}}})
    result = await navctl(apiserver, "-n", ns, "patch", "deployment", "web", "-p", patch)
    assert (result.code, result.out, result.err) == (0, "deployment.apps/web patched\n", "")
    web = await client.deployments(ns).get("web")
    assert [(c.name, c.image) for c in web.spec.template.spec.containers] == [
        ("web", "localhost/web:2"), ("sidecar", "localhost/side:1")]
    assert web.spec.template.spec.containers[0].ports[0].container_port == 8080

    again = await navctl(apiserver, "-n", ns, "patch", "deploy/web", "-p", patch)
    assert again.out == "deployment.apps/web patched (no change)\n"

    # the same patch as a JSON merge patch replaces the list: the sidecar goes
    merge = await navctl(apiserver, "-n", ns, "patch", "deploy/web", "--type", "merge",
                         "-p", patch, "--dry-run=server", "-o", "json")
    assert [c["name"] for c in json.loads(merge.out)["spec"]["template"]["spec"][
        "containers"]] == ["web"]
    assert len((await client.deployments(ns).get("web")).spec.template.spec.containers) == 2


async def test_patch_types_files_and_errors(apiserver: ApiServerProcess, client: navarch.Client,
                                            ns: str, tmp_path: Path) -> None:
    await client.deployments(ns).create(deployment("api", ns, replicas=1))
    ops = tmp_path / "ops.yaml"
    ops.write_text("- op: replace\n  path: /spec/replicas\n  value: 3\n")
    jp = await navctl(apiserver, "-n", ns, "patch", "deploy/api", "--type=json",
                      "--patch-file", str(ops))
    assert jp.out == "deployment.apps/api patched\n"
    assert (await client.deployments(ns).get("api")).spec.replicas == 3
    dry = await navctl(apiserver, "-n", ns, "patch", "deploy/api", "-p",
                       "{spec: {replicas: 5}}", "--dry-run=client", "-o", "name")
    assert dry.out == "deployment.apps/api\n"
    assert (await client.deployments(ns).get("api")).spec.replicas == 3

    none = await navctl(apiserver, "-n", ns, "patch", "deploy/api")
    assert (none.code, none.err) == (1, "error: must specify --patch or --patch-file "
                                        "containing the contents of the patch\n")
    shape = await navctl(apiserver, "-n", ns, "patch", "deploy/api", "--type=json", "-p",
                         '{"spec": {}}')
    assert shape.code == 1 and "is a list of operations" in shape.err
    key = await navctl(apiserver, "-n", ns, "patch", "deploy/api", "-p",
                       '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}')
    assert key.code == 1
    assert 'each item of a strategic merge patch needs its merge key "name"' in key.err
    missing = await navctl(apiserver, "-n", ns, "patch", "deploy/nope", "-p", "{}")
    assert missing.err == ('Error from server (NotFound): deployments.apps "nope" '
                           "not found\n")
