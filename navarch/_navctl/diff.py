"""``navctl diff -f FILE``: what ``navctl apply -f FILE`` would change, as ``kubectl diff``.

For each object of the manifests: the live object (none if absent) and the object the
API server would store, from a server dry run of the same create or patch ``apply``
sends. Both are written as YAML to ``LIVE-…`` and ``MERGED-…`` directories, one file per
object named ``[group.]version.Kind.namespace.name``, and compared with ``diff -u -N``
(or the program in ``KUBECTL_EXTERNAL_DIFF``). Exit status as kubectl's: 0 no
differences, 1 differences, above 1 an error. The resourceVersion of the would-be
object is the live one's (a dry run writes nothing), so that only real changes show.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from navarch import _codec
from navarch._errors import ApiError, NotFound
from navarch._kinds import Kind
from navarch._navctl.apply import (
    ManifestTarget,
    apply_patch,
    manifest_target,
    read_manifests,
    with_last_applied,
)
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.printers import to_yaml

__all__ = ["file_name", "run_diff"]


def file_name(kind: Kind, namespace: str, name: str) -> str:
    """kubectl's name for an object's file: ``apps.v1.Deployment.default.web``."""
    group = f"{kind.group}." if kind.group else ""
    return f"{group}{kind.version}.{kind.kind}.{namespace}.{name}"


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return doc


async def _merged(ctx: Context, target: ManifestTarget
                  ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(live, would-be) of one manifest's object, in JSON form."""
    resource = ctx.client().resource(target.kind, target.namespace)
    try:
        live = await resource.get(target.name)
    except NotFound:
        made = await resource.create(target.body(with_last_applied(target.manifest.raw)),
                                     dry_run=True)
        return None, _clean(_codec.to_dict(made))
    patch = apply_patch(target.kind, target.manifest.raw, live)
    would = await resource.patch(target.name, patch, dry_run=True) if patch else live
    merged = _clean(_codec.to_dict(would))
    merged.setdefault("metadata", {})["resourceVersion"] = live.metadata.resource_version
    return _clean(_codec.to_dict(live)), merged


async def run_diff(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl diff``."""
    if not args.filename:
        raise NavctlError("must specify -f (the manifests to compare with the cluster)")
    manifests = read_manifests(args.filename, args.recursive)
    with tempfile.TemporaryDirectory(prefix="navctl-diff-") as root:
        live_dir = Path(tempfile.mkdtemp(prefix="LIVE-", dir=root))
        merged_dir = Path(tempfile.mkdtemp(prefix="MERGED-", dir=root))
        for manifest in manifests:
            target = manifest_target(manifest, ctx)
            try:
                live, merged = await _merged(ctx, target)
            except ApiError as exc:
                ctx.warn(error_message(exc, ctx.address))
                ctx.exit_code = 2  # kubectl: above 1 is an error, 1 means "differs"
                continue
            name = file_name(target.kind, target.namespace, target.name)
            if live is not None:
                (live_dir / name).write_text(to_yaml(live))
            (merged_dir / name).write_text(to_yaml(merged))
        program = os.environ.get("KUBECTL_EXTERNAL_DIFF", "") or "diff -u -N"
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(program), str(live_dir), str(merged_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
    ctx.out.write(out.decode(errors="replace"))
    ctx.out.flush()
    code = proc.returncode or 0
    if code > 1:
        ctx.warn(err.decode(errors="replace").rstrip("\n"))
        ctx.exit_code = code
    elif ctx.exit_code == 0:
        ctx.exit_code = code
