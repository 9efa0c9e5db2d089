"""``navctl edit TYPE NAME | TYPE/NAME``: an object as YAML in an editor, saved back.

    get ─▶ YAML (with kubectl's header) in $KUBE_EDITOR, $EDITOR or vi ─▶ read it back
        ─▶ unchanged / empty: "Edit cancelled" (exit 0)
        ─▶ changed: a JSON merge patch of the differences, pinned to the resourceVersion
           that was edited (someone else's write in between: Conflict, nothing lost)
        ─▶ refused (bad YAML, apiVersion/kind/name changed, the server's errors): the
           file is reopened with the errors as comments on top; saved again unchanged,
           the edit is cancelled and a copy of the file kept (exit 1), as kubectl does.

``edit_outcome`` is the pure part: what a saved file means for the object it showed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from navarch import _patch
from navarch._errors import ApiError
from navarch._kinds import Kind
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.printers import object_ref, to_yaml
from navarch._navctl.targets import object_dict, parse_targets

__all__ = ["HEADER", "EditOutcome", "edit_outcome", "editor_command", "run_edit"]

HEADER = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
          "# and an empty file will abort the edit. If an error occurs while saving this "
          "file will be\n"
          "# reopened with the relevant failures.\n"
          "#\n")


@dataclass(frozen=True)
class EditOutcome:
    """What a saved file means: ``empty``, ``unchanged``, ``invalid`` (``error`` says
    why) or ``patch`` (``patch`` is the JSON merge patch to send)."""

    what: str
    patch: Any = None
    error: str = ""


def editor_command() -> list[str]:
    """$KUBE_EDITOR, else $EDITOR, else vi, split as a shell would."""
    for variable in ("KUBE_EDITOR", "EDITOR"):
        value = os.environ.get(variable, "").strip()
        if value:
            return shlex.split(value)
    return ["vi"]


def _content(text: str) -> str:
    """The file without its comment lines."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("#"))


def edit_outcome(original: dict[str, Any], saved: str) -> EditOutcome:
    """What ``saved`` (the file as the editor left it) asks of ``original``."""
    content = _content(saved)
    if not content.strip():
        return EditOutcome("empty")
    try:
        edited = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        return EditOutcome("invalid", error=f"the file is not valid YAML: {exc}")
    if not isinstance(edited, dict):
        return EditOutcome("invalid", error="the file must hold one object (a mapping)")
    identity = [(d.get("apiVersion"), d.get("kind"), (d.get("metadata") or {}).get("name"))
                for d in (original, edited)]
    if identity[0] != identity[1]:
        return EditOutcome("invalid",
                           error="At least one of apiVersion, kind and name was changed")
    patch = _patch.create_merge_patch(original, edited)
    if not patch:
        return EditOutcome("unchanged")
    assert isinstance(patch, dict)
    version = (original.get("metadata") or {}).get("resourceVersion")
    if version:  # the edit was of this version: a write in between is a Conflict
        patch.setdefault("metadata", {})["resourceVersion"] = version
    return EditOutcome("patch", patch)


def _with_errors(kind: Kind, name: str, errors: list[str], saved: str) -> str:
    """The file to reopen: the header, the errors as comments, the user's content."""
    lines = [f'# {kind.group_resource} "{name}" was not valid:']
    for error in errors:
        lines += [f"# * {line}" if i == 0 else f"#   {line}"
                  for i, line in enumerate(error.splitlines())]
    return HEADER + "\n".join(lines) + "\n#\n" + _content(saved)


def _editor_round(command: list[str], path: str, text: str) -> str:
    """Write ``text`` to ``path``, run the editor on it, and return what it saved."""
    file = Path(path)
    file.write_text(text, encoding="utf-8")
    try:
        done = subprocess.run([*command, path], check=False)
    except OSError as exc:
        raise NavctlError(f"unable to launch the editor {' '.join(command)!r}: "
                          f"{exc.strerror}") from None
    if done.returncode != 0:
        raise NavctlError(f"there was a problem with the editor {' '.join(command)!r}: "
                          f"it exited with code {done.returncode}")
    return file.read_text(encoding="utf-8")


async def _edit_one(ctx: Context, kind: Kind, namespace: str, name: str,
                    command: list[str]) -> None:
    client = ctx.client().resource(kind, namespace)
    try:
        found = await client.get(name)
    except ApiError as exc:
        ctx.fail(error_message(exc, ctx.address))
        return
    original = object_dict(kind, found)
    text = HEADER + to_yaml(original)
    fd, path = tempfile.mkstemp(prefix="navctl-edit-", suffix=".yaml")
    os.close(fd)
    keep = False
    try:
        reopened = False
        while True:
            saved = await asyncio.to_thread(_editor_round, command, path, text)
            if reopened and saved == text:
                keep = True
                ctx.fail("error: Edit cancelled, no valid changes were saved.\n"
                         f'A copy of your changes has been stored to "{path}"')
                return
            outcome = edit_outcome(original, saved)
            if outcome.what == "empty":
                ctx.warn("Edit cancelled, saved file was empty.")
                return
            if outcome.what == "unchanged":
                ctx.warn("Edit cancelled, no changes made.")
                return
            errors = [outcome.error] if outcome.what == "invalid" else []
            if not errors:
                try:
                    await client.patch(name, outcome.patch, patch_type="merge")
                except ApiError as exc:
                    errors = [error_message(exc, ctx.address)]
                else:
                    ctx.print(f"{object_ref(kind, name)} edited")
                    return
            text = _with_errors(kind, name, errors, saved)
            reopened = True
    finally:
        if not keep:
            os.unlink(path)


async def run_edit(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl edit``: each named object in turn."""
    selection = parse_targets(args.targets)
    if not selection.named:
        raise NavctlError("resource(s) were provided, but no name was specified")
    command = editor_command()
    for kind, names in selection.groups:
        for name in names:
            await _edit_one(ctx, kind, ctx.namespace if kind.namespaced else "", name,
                            command)
