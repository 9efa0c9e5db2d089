"""``navctl edit``'s pure part: what a saved file asks of the object it showed
(navarch/_navctl/edit.py)."""

from __future__ import annotations

import pytest
import yaml

from navarch._navctl.edit import HEADER, edit_outcome, editor_command

ORIGINAL = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "42"},
            "data": {"a": "1", "b": "2"}}


def saved(doc: object, header: str = HEADER) -> str:
    return header + yaml.safe_dump(doc)


def test_a_change_becomes_a_merge_patch_pinned_to_the_edited_version() -> None:
    edited = {**ORIGINAL, "data": {"a": "1", "c": "3"}}
    outcome = edit_outcome(ORIGINAL, saved(edited))
    assert (outcome.what, outcome.patch) == (
        "patch", {"data": {"b": None, "c": "3"}, "metadata": {"resourceVersion": "42"}})


def test_unchanged_and_empty_files() -> None:
    assert edit_outcome(ORIGINAL, saved(ORIGINAL)).what == "unchanged"
    assert edit_outcome(ORIGINAL, saved(ORIGINAL, HEADER + "# more words\n")).what == \
        "unchanged"
    assert edit_outcome(ORIGINAL, HEADER).what == "empty"
    assert edit_outcome(ORIGINAL, "\n  \n").what == "empty"


@pytest.mark.parametrize(("text", "error"), [
    (HEADER + "data: [unclosed\n", "the file is not valid YAML"),
    (HEADER + "- a list\n", "the file must hold one object (a mapping)"),
    (saved({**ORIGINAL, "kind": "Secret"}), "apiVersion, kind and name was changed"),
    (saved({**ORIGINAL, "metadata": {"name": "other"}}), "apiVersion, kind and name"),
])
def test_refused_files_say_why(text: str, error: str) -> None:
    outcome = edit_outcome(ORIGINAL, text)
    assert outcome.what == "invalid" and error in outcome.error


def test_the_editor_comes_from_kube_editor_then_editor_then_vi(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_EDITOR", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    assert editor_command() == ["vi"]
    monkeypatch.setenv("EDITOR", "nano -w")
    assert editor_command() == ["nano", "-w"]
    monkeypatch.setenv("KUBE_EDITOR", "'/opt/my editor' --wait")
    assert editor_command() == ["/opt/my editor", "--wait"]
