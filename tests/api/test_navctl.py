"""navctl end to end: the real command (a subprocess) against a real API server.

Each test works in its own namespace (``ns``) and checks both what navctl prints and, with
the SDK client, what it did on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.util import configmap, deployment, eventually, obj, pod
from tests.store.cluster import REPO, free_ports

ENV = dict(os.environ, PYTHONPATH=str(REPO), NAVARCH_CONFIG="/nonexistent")
ENV.pop("NAVARCH_SERVER", None)


@dataclass(frozen=True)
class Result:
    """A finished navctl run."""

    code: int
    out: str
    err: str


def _command(server: str | None, args: tuple[str, ...]) -> list[str]:
    prefix = ["--server", server] if server else []
    return [sys.executable, "-m", "navarch._navctl", *prefix, *args]


@contextlib.asynccontextmanager
async def started(apiserver: ApiServerProcess | None, *args: str, stdin: bool = False
                  ) -> AsyncIterator[asyncio.subprocess.Process]:
    """A navctl process, killed on the way out if still running."""
    proc = await asyncio.create_subprocess_exec(
        *_command(apiserver.address if apiserver else None, args), env=ENV, cwd=REPO,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def finished(proc: asyncio.subprocess.Process, stdin: str | None = None) -> Result:
    """The outcome of a started navctl (within a minute)."""
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None),
                                      60.0)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def navctl(apiserver: ApiServerProcess | None, *args: str, stdin: str | None = None
                 ) -> Result:
    """Run navctl to completion."""
    async with started(apiserver, *args, stdin=stdin is not None) as proc:
        return await finished(proc, stdin)


def write(path: Path, *docs: dict[str, Any]) -> str:
    """Write a multi-document YAML manifest; returns its path."""
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def deployment_doc(name: str, replicas: int = 2, image: str = "localhost/web:1"
                   ) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "web", "image": image,
                                         "ports": [{"containerPort": 8080}]}]}}}}


def configmap_doc(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# --- apply / create ------------------------------------------------------------------------

async def test_apply_creates_then_is_unchanged_then_configures(
        apiserver: ApiServerProcess, client: navarch.Client, ns: str, tmp_path: Path) -> None:
    manifest = write(tmp_path / "app.yaml", deployment_doc("web"),
                     configmap_doc("cfg", {"a": "1", "b": "2"}))
    first = await navctl(apiserver, "-n", ns, "apply", "-f", manifest)
    assert (first.code, first.out, first.err) == (
        0, "deployment.apps/web created\nconfigmap/cfg created\n", "")
    web = await client.deployments(ns).get("web")
    cfg = await client.configmaps(ns).get("cfg")
    recorded = json.loads(web.metadata.annotations[
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert recorded == deployment_doc("web")

    # someone else labels the ConfigMap; apply leaves what it never set alone
    await client.configmaps(ns).patch("cfg", {"metadata": {"labels": {"owner": "ops"}}})
    cfg = await client.configmaps(ns).get("cfg")
    again = await navctl(apiserver, "-n", ns, "apply", "-f", manifest)
    assert (again.code, again.out) == (
        0, "deployment.apps/web unchanged\nconfigmap/cfg unchanged\n")
    assert (await client.deployments(ns).get("web")).metadata.resource_version == \
        web.metadata.resource_version
    assert (await client.configmaps(ns).get("cfg")).metadata.resource_version == \
        cfg.metadata.resource_version

    edited = write(tmp_path / "app.yaml", deployment_doc("web", replicas=3),
                   configmap_doc("cfg", {"a": "1"}))
    third = await navctl(apiserver, "-n", ns, "apply", "-f", edited)
    assert (third.code, third.out) == (
        0, "deployment.apps/web configured\nconfigmap/cfg configured\n")
    assert (await client.deployments(ns).get("web")).spec.replicas == 3
    cfg = await client.configmaps(ns).get("cfg")
    assert dict(cfg.data) == {"a": "1"}  # the key dropped from the manifest is gone
    assert dict(cfg.metadata.labels) == {"owner": "ops"}


async def test_apply_directory_and_stdin(apiserver: ApiServerProcess, client: navarch.Client,
                                         ns: str, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "a.yaml", configmap_doc("a", {"k": "v"}))
    write(tmp_path / "sub" / "b.yml", configmap_doc("b", {"k": "v"}))
    (tmp_path / "notes.txt").write_text("not a manifest")
    flat = await navctl(apiserver, "-n", ns, "apply", "-f", str(tmp_path))
    assert flat.out == "configmap/a created\n"
    deep = await navctl(apiserver, "-n", ns, "apply", "-R", "-f", str(tmp_path))
    assert deep.out == "configmap/a unchanged\nconfigmap/b created\n"
    piped = await navctl(apiserver, "-n", ns, "apply", "-f", "-",
                         stdin=yaml.safe_dump(configmap_doc("c", {"k": "v"})))
    assert piped.out == "configmap/c created\n"
    names = {c.metadata.name for c in (await client.configmaps(ns).list()).items}
    assert {"a", "b", "c"} <= names


async def test_apply_refuses_a_bad_manifest_before_sending_anything(
        apiserver: ApiServerProcess, client: navarch.Client, ns: str, tmp_path: Path) -> None:
    bad = deployment_doc("bad")
    bad["spec"]["replicas"] = "three"
    manifest = write(tmp_path / "bad.yaml", configmap_doc("first", {"k": "v"}), bad)
    result = await navctl(apiserver, "-n", ns, "apply", "-f", manifest)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith(f"error: {manifest}: document 2, line ")
    assert "spec.replicas: expected an integer, got string" in result.err
    with pytest.raises(navarch.NotFound):
        await client.configmaps(ns).get("first")


async def test_apply_reports_invalid_objects_per_field(
        apiserver: ApiServerProcess, ns: str, tmp_path: Path) -> None:
    manifest = write(tmp_path / "neg.yaml", deployment_doc("neg", replicas=-1))
    result = await navctl(apiserver, "-n", ns, "apply", "-f", manifest)
    assert result.code == 1
    assert result.err.startswith('The Deployment "neg" is invalid: ')
    assert "spec.replicas: Invalid value: -1" in result.err


async def test_create_then_already_exists(apiserver: ApiServerProcess, client: navarch.Client,
                                          ns: str, tmp_path: Path) -> None:
    manifest = write(tmp_path / "cm.yaml", configmap_doc("cfg", {"k": "v"}))
    created = await navctl(apiserver, "-n", ns, "create", "-f", manifest)
    assert (created.code, created.out) == (0, "configmap/cfg created\n")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in \
        (await client.configmaps(ns).get("cfg")).metadata.annotations
    again = await navctl(apiserver, "-n", ns, "create", "-f", manifest)
    assert again.code == 1
    assert again.err == 'Error from server (AlreadyExists): configmaps "cfg" already exists\n'


# --- get -----------------------------------------------------------------------------------

async def test_get_tables_and_formats(apiserver: ApiServerProcess, client: navarch.Client,
                                      ns: str) -> None:
    await client.configmaps(ns).create(configmap("alpha", ns, {"a": "1"}, {"tier": "front"}))
    await client.configmaps(ns).create(configmap("beta", ns, {"a": "1", "b": "2"}))
    table = await navctl(apiserver, "-n", ns, "get", "configmaps")
    lines = table.out.splitlines()
    assert lines[0] == "NAME    DATA   AGE"
    assert [line.split()[:2] for line in lines[1:]] == [["alpha", "1"], ["beta", "2"]]

    as_json = json.loads((await navctl(apiserver, "-n", ns, "get", "cm", "alpha",
                                       "-o", "json")).out)
    assert (as_json["apiVersion"], as_json["kind"]) == ("v1", "ConfigMap")
    assert as_json["metadata"]["name"] == "alpha" and as_json["data"] == {"a": "1"}

    as_yaml = yaml.safe_load((await navctl(apiserver, "-n", ns, "get", "cm", "-o", "yaml")).out)
    assert as_yaml["kind"] == "List"
    assert [i["metadata"]["name"] for i in as_yaml["items"]] == ["alpha", "beta"]

    names = await navctl(apiserver, "-n", ns, "get", "cm", "-o", "name")
    assert names.out == "configmap/alpha\nconfigmap/beta\n"
    selected = await navctl(apiserver, "-n", ns, "get", "cm", "-l", "tier=front", "-o", "name")
    assert selected.out == "configmap/alpha\n"
    by_field = await navctl(apiserver, "-n", ns, "get", "cm", "--field-selector",
                            "metadata.name=beta", "-o", "name")
    assert by_field.out == "configmap/beta\n"


async def test_get_jsonpath_and_custom_columns(apiserver: ApiServerProcess,
                                               client: navarch.Client, ns: str,
                                               tmp_path: Path) -> None:
    await client.pods(ns).create(pod("web", ns, {"app": "web", "tier": "front"}))
    await client.pods(ns).create(pod("db", ns, {"app": "db"}, image="localhost/db:2"))
    one = await navctl(apiserver, "-n", ns, "get", "pod", "web", "-o",
                       "jsonpath={.metadata.labels.tier}")
    assert (one.code, one.out) == (0, "front")  # no newline, as kubectl
    names = await navctl(apiserver, "-n", ns, "get", "pods", "-o",
                         "jsonpath={.items[*].metadata.name}")
    assert names.out == "db web"
    images = await navctl(apiserver, "-n", ns, "get", "pods", "-o",
                          'jsonpath={range .items[?(@.metadata.labels.app=="db")]}'
                          '{.metadata.name}={.spec.containers[0].image}{"\\n"}{end}')
    assert images.out == "db=localhost/db:2\n"
    columns = await navctl(apiserver, "-n", ns, "get", "pods", "-o",
                           "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier")
    assert columns.out.splitlines() == ["NAME   TIER", "db     <none>", "web    front"]
    spec = tmp_path / "columns.txt"
    spec.write_text("NAME          IMAGE\n.metadata.name  .spec.containers[*].image\n")
    from_file = await navctl(apiserver, "-n", ns, "get", "pods", "--no-headers", "-o",
                             f"custom-columns-file={spec}")
    assert from_file.out.splitlines() == ["db    localhost/db:2", "web   localhost/busybox:1"]
    bad = await navctl(apiserver, "-n", ns, "get", "pods", "-o", "jsonpath={.items[x]}")
    assert bad.code == 1
    assert bad.err.startswith("error: error parsing jsonpath template: invalid array index")


async def test_get_all_namespaces_wide_and_several_kinds(
        apiserver: ApiServerProcess, client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("web", ns, {"app": "web"}))
    await client.deployments(ns).create(deployment("api", ns))
    everywhere = await navctl(apiserver, "get", "pods", "-A", "-l", "app=web")
    header, *rows = everywhere.out.splitlines()
    assert header.split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert [ns, "web", "0/1", "Pending"] in [row.split()[:4] for row in rows]
    wide = await navctl(apiserver, "-n", ns, "get", "pods", "-o", "wide")
    assert wide.out.splitlines()[0].split()[-6:] == [
        "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    both = await navctl(apiserver, "-n", ns, "get", "deploy,po")
    tables = both.out.split("\n\n")
    assert tables[0].splitlines()[1].startswith("deployment.apps/api ")
    assert tables[1].splitlines()[1].startswith("pod/web ")


async def test_get_nothing_and_missing(apiserver: ApiServerProcess, ns: str) -> None:
    empty = await navctl(apiserver, "-n", ns, "get", "pods")
    assert (empty.code, empty.out, empty.err) == (
        0, "", f"No resources found in {ns} namespace.\n")
    missing = await navctl(apiserver, "-n", ns, "get", "pod", "nope")
    assert (missing.code, missing.err) == (
        1, 'Error from server (NotFound): pods "nope" not found\n')
    unknown = await navctl(apiserver, "get", "widgets")
    assert (unknown.code, unknown.err) == (
        1, 'error: the server doesn\'t have a resource type "widgets"\n')


async def test_logs_arguments_and_selector_errors(apiserver: ApiServerProcess,
                                                  client: navarch.Client, ns: str) -> None:
    neither = await navctl(apiserver, "-n", ns, "logs")
    assert neither.code == 1
    assert "POD or TYPE/NAME is a required argument for the logs command" in neither.err
    both = await navctl(apiserver, "-n", ns, "logs", "p", "-l", "app=x")
    assert (both.code, both.err) == (1, "error: only a selector (-l) or a POD name is "
                                        "allowed\n")
    nothing = await navctl(apiserver, "-n", ns, "logs", "-l", "app=x")
    assert (nothing.code, nothing.out, nothing.err) == (
        0, "", f"No resources found in {ns} namespace.\n")
    for i in range(3):
        p = pod(f"x{i}", ns)
        p.metadata.labels["app"] = "x"
        await client.pods(ns).create(p)
    too_many = await navctl(apiserver, "-n", ns, "logs", "-l", "app=x", "-f",
                            "--max-log-requests", "2")
    assert (too_many.code, too_many.err) == (
        1, "error: you are attempting to follow 3 log streams, but maximum allowed "
           "concurrency is 2, use --max-log-requests to increase the limit\n")
    unscheduled = await navctl(apiserver, "-n", ns, "logs", "-l", "app=x")
    assert unscheduled.code == 1
    assert "pod x0 is not scheduled to a node yet" in unscheduled.err


async def test_get_manifest_objects(apiserver: ApiServerProcess, client: navarch.Client,
                                    ns: str, tmp_path: Path) -> None:
    await client.configmaps(ns).create(configmap("cfg", ns))
    manifest = write(tmp_path / "cm.yaml", configmap_doc("cfg", {"k": "v"}))
    result = await navctl(apiserver, "-n", ns, "get", "-f", manifest, "-o", "name")
    assert result.out == "configmap/cfg\n"


async def test_get_watch_prints_changes(apiserver: ApiServerProcess, client: navarch.Client,
                                        ns: str) -> None:
    await client.configmaps(ns).create(configmap("first", ns))
    async with started(apiserver, "-n", ns, "get", "cm", "--watch") as proc:
        async def line() -> str:
            assert proc.stdout is not None
            return (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert (await line()).split() == ["NAME", "DATA", "AGE"]
        assert (await line()).split()[:2] == ["first", "1"]
        await client.configmaps(ns).create(configmap("second", ns, {"a": "1", "b": "2"}))
        assert (await line()).split()[:2] == ["second", "2"]
        await client.configmaps(ns).delete("first")
        assert (await line()).split()[:2] == ["first", "1"]


# --- describe ------------------------------------------------------------------------------

async def test_describe_shows_sections_and_events(apiserver: ApiServerProcess,
                                                   client: navarch.Client, ns: str) -> None:
    await client.pods(ns).create(pod("web", ns, {"app": "web"}))
    await client.pods(ns).create(pod("quiet", ns))
    event = obj({"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": "web.1", "namespace": ns},
                 "involvedObject": {"kind": "Pod", "name": "web", "namespace": ns},
                 "reason": "Scheduled", "message": "Successfully assigned it", "type": "Normal",
                 "source": {"component": "default-scheduler"}, "count": 1,
                 "firstTimestamp": "2024-01-01T00:00:00Z",
                 "lastTimestamp": "2024-01-01T00:00:00Z"})
    await client.events(ns).create(event)
    result = await navctl(apiserver, "-n", ns, "describe", "pod", "web")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["Name:", "web"]
    assert lines[1].split() == ["Namespace:", ns]
    assert ["Labels:", "app=web"] in [line.split() for line in lines]
    assert "Containers:" in lines and "  main:" in lines
    events_at = lines.index("Events:")
    assert lines[events_at + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[events_at + 3].split()[:2] == ["Normal", "Scheduled"]
    assert lines[events_at + 3].endswith("default-scheduler  Successfully assigned it")

    quiet = await navctl(apiserver, "-n", ns, "describe", "pods", "quiet")
    assert quiet.out.splitlines()[-1].split() == ["Events:", "<none>"]
    by_label = await navctl(apiserver, "-n", ns, "describe", "pods", "-l", "app=web")
    assert by_label.out.splitlines()[0].split() == ["Name:", "web"]
    assert "quiet" not in by_label.out


async def test_rollout_status_gives_up_after_its_timeout(apiserver: ApiServerProcess,
                                                        client: navarch.Client,
                                                        ns: str) -> None:
    """No controller runs here, so the rollout never finishes: ``--timeout`` ends the
    wait with kubectl's error; a bad duration is refused before anything is asked."""
    await client.deployments(ns).create(deployment("slow", ns))
    result = await navctl(apiserver, "-n", ns, "rollout", "status", "deployment/slow",
                          "--timeout", "1s")
    assert result.code == 1
    assert result.out == "Waiting for deployment spec update to be observed...\n"
    assert result.err == "error: timed out waiting for the condition\n"
    bad = await navctl(apiserver, "-n", ns, "rollout", "status", "deployment/slow",
                       "--timeout", "soon")
    assert bad.code == 1
    assert bad.err.startswith('error: invalid value "soon" for --timeout')


async def test_describe_deployment_and_service(apiserver: ApiServerProcess,
                                               client: navarch.Client, ns: str) -> None:
    await client.deployments(ns).create(deployment("web", ns, replicas=2))
    await client.services(ns).create(obj({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    deploy = await navctl(apiserver, "-n", ns, "describe", "deploy/web")
    assert "Replicas:" in deploy.out and "2 desired" in deploy.out
    assert "Pod Template:" in deploy.out and "StrategyType:" in deploy.out
    svc = await navctl(apiserver, "-n", ns, "describe", "svc", "web")
    lines = [line.split() for line in svc.out.splitlines()]
    assert ["Type:", "ClusterIP"] in lines
    assert ["Port:", "<unset>", "80/TCP"] in lines
    assert ["TargetPort:", "8080/TCP"] in lines


# --- delete, scale, label, annotate -------------------------------------------------------

async def test_delete_waits_until_the_object_is_gone(apiserver: ApiServerProcess,
                                                     client: navarch.Client, ns: str) -> None:
    held = configmap("held", ns)
    held.metadata.finalizers.append("example.com/hold")
    await client.configmaps(ns).create(held)
    async with started(apiserver, "-n", ns, "delete", "cm", "held", "--timeout=60s") as proc:
        async def marked() -> bool:
            current = await client.configmaps(ns).get("held")
            return current.metadata.HasField("deletion_timestamp")
        await eventually(marked, 30, what="deletion to be requested")
        assert proc.returncode is None  # still waiting: the finalizer holds the object
        await client.configmaps(ns).patch("held", {"metadata": {"finalizers": None}})
        result = await finished(proc)
    assert (result.code, result.out) == (0, 'configmap "held" deleted\n')
    with pytest.raises(navarch.NotFound):
        await client.configmaps(ns).get("held")


async def test_delete_times_out_and_by_selector(apiserver: ApiServerProcess,
                                                client: navarch.Client, ns: str) -> None:
    stuck = configmap("stuck", ns)
    stuck.metadata.finalizers.append("example.com/hold")
    await client.configmaps(ns).create(stuck)
    timed_out = await navctl(apiserver, "-n", ns, "delete", "cm/stuck", "--timeout=1s")
    assert timed_out.code == 1
    assert timed_out.out == 'configmap "stuck" deleted\n'
    assert timed_out.err == "error: timed out waiting for the condition on configmaps/stuck\n"
    await client.configmaps(ns).patch("stuck", {"metadata": {"finalizers": None}})

    for name, labels in (("a", {"x": "1"}), ("b", {"x": "1"}), ("c", None)):
        await client.configmaps(ns).create(configmap(name, ns, labels=labels))
    chosen = await navctl(apiserver, "-n", ns, "delete", "cm", "-l", "x=1")
    assert chosen.out == 'configmap "a" deleted\nconfigmap "b" deleted\n'
    left = {c.metadata.name for c in (await client.configmaps(ns).list()).items}
    assert "c" in left and not {"a", "b"} & left
    missing = await navctl(apiserver, "-n", ns, "delete", "cm", "nope")
    assert (missing.code, missing.err) == (
        1, 'Error from server (NotFound): configmaps "nope" not found\n')
    ignored = await navctl(apiserver, "-n", ns, "delete", "cm", "nope", "--ignore-not-found")
    assert (ignored.code, ignored.out, ignored.err) == (0, "", "")


async def test_scale(apiserver: ApiServerProcess, client: navarch.Client, ns: str) -> None:
    await client.deployments(ns).create(deployment("web", ns, replicas=1))
    scaled = await navctl(apiserver, "-n", ns, "scale", "deploy/web", "--replicas=4")
    assert (scaled.code, scaled.out) == (0, "deployment.apps/web scaled\n")
    assert (await client.deployments(ns).get("web")).spec.replicas == 4
    refused = await navctl(apiserver, "-n", ns, "scale", "deployment", "web", "--replicas=2",
                           "--current-replicas=3")
    assert (refused.code, refused.err) == (1, "error: Expected replicas to be 3, was 4\n")
    assert (await client.deployments(ns).get("web")).spec.replicas == 4


async def test_label_and_annotate(apiserver: ApiServerProcess, client: navarch.Client,
                                  ns: str) -> None:
    await client.configmaps(ns).create(configmap("cfg", ns))

    async def labels() -> dict[str, str]:
        return dict((await client.configmaps(ns).get("cfg")).metadata.labels)

    added = await navctl(apiserver, "-n", ns, "label", "cm", "cfg", "tier=front", "team=a")
    assert (added.code, added.out) == (0, "configmap/cfg labeled\n")
    assert await labels() == {"tier": "front", "team": "a"}
    refused = await navctl(apiserver, "-n", ns, "label", "cm", "cfg", "tier=back")
    assert (refused.code, refused.err) == (
        1, "error: 'tier' already has a value (front), and --overwrite is false\n")
    assert (await labels())["tier"] == "front"
    changed = await navctl(apiserver, "-n", ns, "label", "cm/cfg", "tier=back", "--overwrite")
    assert changed.out == "configmap/cfg labeled\n"
    removed = await navctl(apiserver, "-n", ns, "label", "cm", "cfg", "team-")
    assert removed.out == "configmap/cfg unlabeled\n"
    assert await labels() == {"tier": "back"}

    noted = await navctl(apiserver, "-n", ns, "annotate", "cm", "cfg", "note=a=b")
    assert (noted.code, noted.out) == (0, "configmap/cfg annotated\n")
    again = await navctl(apiserver, "-n", ns, "annotate", "cm", "cfg", "note=other")
    assert again.err == "error: 'note' already has a value (a=b), and --overwrite is false\n"
    current = await client.configmaps(ns).get("cfg")
    assert current.metadata.annotations["note"] == "a=b"


# --- explain, api-resources, version, connection errors ----------------------------------

async def test_explain(apiserver: ApiServerProcess) -> None:
    field = await navctl(apiserver, "explain", "deployment.spec.replicas")
    assert field.code == 0
    assert field.out.splitlines()[:4] == [
        "KIND:     Deployment", "VERSION:  apps/v1", "", "FIELD:    replicas <integer>"]
    pod_doc = await navctl(apiserver, "explain", "pods")
    assert "   spec\t<Object>" in pod_doc.out.splitlines()
    missing = await navctl(apiserver, "explain", "pods.spec.nope")
    assert (missing.code, missing.err) == (1, 'error: field "nope" does not exist\n')


async def test_api_resources_and_version(apiserver: ApiServerProcess) -> None:
    found = await navctl(apiserver, "api-resources")
    rows = [line.split() for line in found.out.splitlines()]
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["pods", "po", "v1", "true", "Pod"] in rows
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows
    assert ["nodes", "no", "v1", "false", "Node"] in rows
    assert sum(1 for r in rows if r[0] == "horizontalpodautoscalers") == 1
    names = await navctl(apiserver, "api-resources", "-o", "name", "--api-group", "apps")
    assert "deployments.apps" in names.out.splitlines()

    version = await navctl(apiserver, "version")
    lines = version.out.splitlines()
    assert lines[0] == f"Client Version: {navarch.__version__}"
    assert lines[1].startswith("Server Version: ") and len(lines[1]) > len("Server Version: ")


async def test_cluster_info_lists_the_cluster_services(apiserver: ApiServerProcess,
                                                       client: navarch.Client) -> None:
    name = f"dns-{uuid.uuid4().hex[:8]}"
    svc = navarch.from_dict({
        "metadata": {"name": name, "namespace": "kube-system",
                     "labels": {"kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "TestDNS"}},
        "spec": {"ports": [{"name": "dns", "protocol": "UDP", "port": 53}]}},
        navarch.v1.core_pb2.Service)
    created = await client.services("kube-system").create(svc)
    try:
        info = await navctl(apiserver, "cluster-info")
    finally:
        await client.services("kube-system").delete(name)
    assert info.code == 0, info.err
    lines = info.out.splitlines()
    assert lines[0] == f"Navarch control plane is running at {apiserver.address}"
    assert (f"TestDNS is running at {created.spec.cluster_ip}:53 (dns/UDP) "
            f"(Service kube-system/{name})") in lines[1:-2]
    assert lines[-2:] == ["", "To further debug and diagnose cluster problems, use "
                          "'navctl get events -A', 'navctl describe nodes' and "
                          "'navctl get pods -n kube-system'."]


async def test_unreachable_server_and_no_server() -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    result = await navctl(None, "--server", address, "--request-timeout", "5s", "get", "pods")
    assert result.code == 1
    assert result.err == (f"The connection to the server {address} was refused - did you "
                          "specify the right host or port?\n")
    nowhere = await navctl(None, "get", "pods")
    assert nowhere.code == 1
    assert nowhere.err.startswith("error: no API server given: pass --server HOST:PORT")
