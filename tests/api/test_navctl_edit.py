"""navctl edit end to end: the real command, an editor that is a script, a real API
server. The script replaces one string in the file (or empties it) the first time it is
opened, saves it as it is any later time, and keeps a copy of every file it was given,
so that the test sees what the user would have seen."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

import navarch
from navarch._navctl.edit import HEADER
from tests.api import test_navctl
from tests.api.harness import ApiServerProcess
from tests.api.test_navctl import navctl
from tests.api.util import deployment

EDITOR = """
import pathlib, sys
seen, old, new, path = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
file = pathlib.Path(path)
text = file.read_text()
done = len(list(seen.iterdir()))
(seen / f"round-{done}.yaml").write_text(text)
if not done:
    file.write_text("" if old == "EMPTY" else text.replace(old, new, 1))
"""


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``editor(old, new)`` sets $EDITOR to replace ``old`` by ``new``; returns the
    directory where each round's file is kept."""
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)

    def use(old: str, new: str = "") -> Path:
        seen = tmp_path / f"seen-{len(list(tmp_path.glob('seen-*')))}"
        seen.mkdir()
        monkeypatch.setitem(test_navctl.ENV, "EDITOR", shlex.join(
            [sys.executable, str(script), str(seen), old, new]))
        monkeypatch.delitem(test_navctl.ENV, "KUBE_EDITOR", raising=False)
        return seen
    return use


def kept(path: str) -> str:
    """The content of the copy navctl kept, which is then removed."""
    copy = Path(path)
    try:
        return copy.read_text()
    finally:
        copy.unlink()


def rounds(seen: Path) -> list[str]:
    return [(seen / f"round-{i}.yaml").read_text() for i in range(len(list(seen.iterdir())))]


async def test_edit_saves_the_change(apiserver: ApiServerProcess, client: navarch.Client,
                                     ns: str, editor) -> None:  # type: ignore[no-untyped-def]
    await client.deployments(ns).create(deployment("web", ns, replicas=2))
    seen = editor("replicas: 2", "replicas: 3")
    result = await navctl(apiserver, "-n", ns, "edit", "deployment", "web")
    assert (result.code, result.out, result.err) == (0, "deployment.apps/web edited\n", "")
    assert (await client.deployments(ns).get("web")).spec.replicas == 3
    [shown] = rounds(seen)
    assert shown.startswith(HEADER) and "kind: Deployment\n" in shown

    editor("nothing like this")
    same = await navctl(apiserver, "-n", ns, "edit", "deploy/web")
    assert (same.code, same.out, same.err) == (0, "", "Edit cancelled, no changes made.\n")
    editor("EMPTY")
    empty = await navctl(apiserver, "-n", ns, "edit", "deploy/web")
    assert (empty.code, empty.err) == (0, "Edit cancelled, saved file was empty.\n")
    assert (await client.deployments(ns).get("web")).spec.replicas == 3


async def test_a_refused_edit_is_reopened_then_kept(apiserver: ApiServerProcess,
                                                   client: navarch.Client, ns: str,
                                                   editor) -> None:  # type: ignore[no-untyped-def]
    await client.deployments(ns).create(deployment("web", ns, replicas=2))
    before = await client.deployments(ns).get("web")
    for old, new, why in (("replicas: 2", "replicas: -1", "spec.replicas"),
                          ("name: web\n", "name: other\n",
                           "At least one of apiVersion, kind and name was changed")):
        seen = editor(old, new)
        result = await navctl(apiserver, "-n", ns, "edit", "deployment/web")
        assert result.code == 1
        first, second = rounds(seen)  # the second time the user saved it as it was
        assert not first.splitlines()[4].startswith("#")  # no errors the first time
        assert second.startswith(HEADER + '# deployments.apps "web" was not valid:\n# * ')
        assert why in second and new in second
        message, stored = result.err.splitlines()
        assert message == "error: Edit cancelled, no valid changes were saved."
        copy = stored.split('"')[1]
        assert stored == f'A copy of your changes has been stored to "{copy}"'
        assert kept(copy) == second
    after = await client.deployments(ns).get("web")
    assert after.metadata.resource_version == before.metadata.resource_version


async def test_edit_of_a_missing_object(apiserver: ApiServerProcess, ns: str,
                                        editor) -> None:  # type: ignore[no-untyped-def]
    seen = editor("a", "b")
    result = await navctl(apiserver, "-n", ns, "edit", "configmap", "nope")
    assert (result.code, result.err) == (
        1, 'Error from server (NotFound): configmaps "nope" not found\n')
    assert rounds(seen) == []
