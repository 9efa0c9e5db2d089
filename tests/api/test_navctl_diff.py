"""navctl diff end to end: what apply would change, against a real API server."""

from __future__ import annotations

from pathlib import Path

import navarch
from navarch._kinds import resource
from navarch._navctl.diff import file_name
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import configmap_doc, deployment_doc, navctl, write


def test_file_names_are_kubectls() -> None:
    assert file_name(resource("deployments"), "default", "web") == \
        "apps.v1.Deployment.default.web"
    assert file_name(resource("configmaps"), "demo", "cfg") == "v1.ConfigMap.demo.cfg"


async def test_diff_shows_what_apply_would_change(apiserver: ApiServerProcess,
                                                  client: navarch.Client, ns: str,
                                                  tmp_path: Path) -> None:
    first = write(tmp_path / "v1.yaml", configmap_doc("cfg", {"a": "1", "b": "2"}))
    assert (await navctl(apiserver, "-n", ns, "apply", "-f", first)).code == 0
    same = await navctl(apiserver, "-n", ns, "diff", "-f", first)
    assert (same.code, same.out, same.err) == (0, "", "")

    second = write(tmp_path / "v2.yaml", configmap_doc("cfg", {"a": "1", "b": "3"}),
                   deployment_doc("web"))
    changed = await navctl(apiserver, "-n", ns, "diff", "-f", second)
    assert changed.code == 1, changed.err
    lines = changed.out.splitlines()
    assert any(line.startswith("+++") and f"/v1.ConfigMap.{ns}.cfg\t" in line
               for line in lines)
    assert '-  b: "2"' in lines and '+  b: "3"' in lines
    assert any(line.startswith("+++") and f"/apps.v1.Deployment.{ns}.web\t" in line
               for line in lines)
    assert "+  replicas: 2" in lines  # the Deployment is new: every line is added
    # nothing was changed by the diff itself
    assert dict((await client.configmaps(ns).get("cfg")).data) == {"a": "1", "b": "2"}
    assert (await client.deployments(ns).list()).items == []
